"""A store written by an earlier release reads the same in this one.

Each ``tests/data/release-VERSION.events.jsonl`` is the event log a release
wrote for a scenario that triggers every event class it had, exactly as
stored; ``release-VERSION.expected.json`` is what that release answered
from it (tests/release_logs.py writes both, once, when the release is made).
Here the log is written as it stands into a store of each backend, with
the index rows rebuilt by the function a migration uses, and this release
must read it: every event decodes, the audit is clean, and every answer
the release gave is given again. An event renamed, a field renamed or
retyped without an upcast, a topic moved: each fails here before a
council's store does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.utils import get_topic

import timebank
from timebank._event_shapes import event_fields
from timebank.storage._format import STORE_FORMAT
from timebank.storage.memory import MemoryBackend

from .conftest import BACKENDS, new_postgres_schema
from .release_logs import DATA, answers, event_classes, load, stored_log, table_columns

LOGS = sorted(DATA.glob("release-*.events.jsonl"))


def _release(log: Path) -> str:
    return log.name.removeprefix("release-").removesuffix(".events.jsonl")


def _opener(kind: str, tmp_path: Path, clock: Callable[[], datetime]) -> Callable[[], Any]:
    if kind == "memory":
        backend = MemoryBackend()
        return lambda: timebank.Timebank(backend, clock=clock)
    url = new_postgres_schema() if kind == "postgres" else f"sqlite:///{tmp_path / 'old.db'}"
    return lambda: timebank.open(url, clock=clock)


def _differences(expected: Any, actual: Any, where: str = "") -> Iterator[str]:
    """Where ``actual`` does not give what ``expected`` holds. A key this
    release added to an answer is not a difference; a key it lost, or any
    value that changed, is."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key, value in expected.items():
            if key not in actual:
                yield f"{where}/{key}: missing"
            else:
                yield from _differences(value, actual[key], f"{where}/{key}")
    elif isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            yield f"{where}: {len(actual)} items, not {len(expected)}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
            yield from _differences(e, a, f"{where}[{i}]")
    elif expected != actual:
        yield f"{where}: {actual!r}, not {expected!r}"


def test_every_event_class_is_in_a_release_log() -> None:
    """A new event class goes into the next release's log, so that every
    later release is tested on reading it."""
    logged = {json.loads(line)["topic"] for log in LOGS for line in log.read_text().splitlines()}
    assert {get_topic(cls) for cls in event_classes().values()} - logged == set()


def _expected(log: Path) -> dict[str, Any]:
    return dict(json.loads(log.with_name(f"release-{_release(log)}.expected.json").read_text()))


def test_the_store_format_is_raised_when_what_a_store_holds_changes(tmp_path: Path) -> None:
    """Beside its log, each release recorded the store format it wrote and
    the tables it made (docs/storage.md, "The store's format"). While this
    checkout's format is that of the newest release, an earlier release of
    that format must read what it writes: the same event classes with the
    same fields as in the logs of that format, the same tables with the
    same columns. Any change fails here, naming it, until STORE_FORMAT is
    raised (timebank/storage/_format.py)."""
    newest = max(LOGS, key=lambda log: tuple(int(p) for p in _release(log).split(".")))
    recorded = _expected(newest)["store"]
    assert recorded["format"] <= STORE_FORMAT, "the format went down since the newest release"
    if recorded["format"] < STORE_FORMAT:
        return  # raised since: the next release's log records what it holds
    logged: dict[str, set[str]] = {}
    for log in LOGS:
        if _expected(log)["store"]["format"] == STORE_FORMAT:
            for line in log.read_text().splitlines():
                event = json.loads(line)
                logged.setdefault(event["topic"], set()).update(event["state"])
    changes = []
    for name, cls in sorted(event_classes().items()):
        topic = get_topic(cls)
        fields = event_fields(topic)
        if topic not in logged:
            changes.append(f"{name} is a new event class")
        elif fields != logged[topic]:
            added, gone = sorted(fields - logged[topic]), sorted(logged[topic] - fields)
            changes.append(f"{name}: fields added {added}, gone {gone}")
    tables = table_columns(tmp_path / "store.db")
    for table in sorted(tables.keys() | recorded["tables"].keys()):
        if tables.get(table) != recorded["tables"].get(table):
            changes.append(f"table {table}: {recorded['tables'].get(table)} -> {tables.get(table)}")
    assert changes == [], f"raise STORE_FORMAT (store format {STORE_FORMAT}): " + "; ".join(changes)


@pytest.mark.parametrize("log", LOGS, ids=_release)
@pytest.mark.parametrize("kind", BACKENDS)
def test_a_store_an_earlier_release_wrote_reads_the_same(
    log: Path, kind: str, tmp_path: Path
) -> None:
    expected = _expected(log)
    now = datetime.fromisoformat(expected.pop("now"))
    expected.pop("store")
    reopen = _opener(kind, tmp_path, lambda: now)
    stored = stored_log(log)
    with reopen() as tb:
        load(tb, stored)  # every event decodes
    with reopen() as tb:  # a process that opens the store afresh
        audit = tb.audit(read_model="full")
        assert audit.ok, audit.summary()
        assert audit.events == len(stored)
        found = list(_differences(expected, answers(tb)))
    assert found == [], "\n".join(found[:20])
