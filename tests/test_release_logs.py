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
from timebank.storage.memory import MemoryBackend

from .conftest import BACKENDS, new_postgres_schema
from .release_logs import DATA, answers, event_classes, load, stored_log

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


@pytest.mark.parametrize("log", LOGS, ids=_release)
@pytest.mark.parametrize("kind", BACKENDS)
def test_a_store_an_earlier_release_wrote_reads_the_same(
    log: Path, kind: str, tmp_path: Path
) -> None:
    expected = json.loads(log.with_name(f"release-{_release(log)}.expected.json").read_text())
    now = datetime.fromisoformat(expected.pop("now"))
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
