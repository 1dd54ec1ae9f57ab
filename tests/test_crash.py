"""Crash safety: a writer killed with SIGKILL at random moments leaves a store
that opens, keeps every invariant, and holds exactly the acknowledged entries
(plus, at most, the one being recorded when the kill came: committed, not
yet acknowledged)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import timebank
from timebank import errors

from .conftest import ACTOR, BACKENDS, fixed_clock, new_postgres_schema

KILLS = 20
HUB = "crash/hub"

WRITER = """
import sys
from datetime import UTC, datetime
import timebank
from timebank import errors
url, prefix = sys.argv[1], sys.argv[2]
clock = lambda: datetime(2026, 6, 15, 12, tzinfo=UTC)
with timebank.open(url, clock=clock) as tb:
    n = 0
    while True:
        entry_id = f"{prefix}-{n}"
        if n % 3 == 0:
            tb.record_exchange("crash", "a", "b", minutes=1 + n % 7, actor="coord-1",
                               entry_id=entry_id)
        elif n % 3 == 1:
            tb.record_exchange("crash", "b", "c", minutes=2, actor="coord-1",
                               receiver_bank="crash/hub", entry_id=entry_id)
        else:
            tb.propose("crash/hub", "exchange", "c", "d", minutes=3, actor="c",
                       entry_id=entry_id)
            tb.confirm(entry_id, actor="d")
        print(entry_id, flush=True)
        n += 1
"""


def _store_url(kind: str, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'crash.db'}" if kind == "sqlite" else new_postgres_schema()


@pytest.mark.parametrize("kind", [k for k in BACKENDS if k != "memory"])
def test_writers_killed_at_random_lose_only_what_was_not_acknowledged(
    kind: str, tmp_path: Path
) -> None:
    url = _store_url(kind, tmp_path)
    with timebank.open(url, clock=fixed_clock) as tb:
        tb.create_bank("crash", name="Crash", actor=ACTOR, opened_on="2026-01-01")
        tb.create_bank(HUB, name="Hub", actor=ACTOR, opened_on="2026-01-01")
        for member in ("a", "b"):
            tb.join("crash", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
        for member in ("c", "d"):
            tb.join(HUB, member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    rng = random.Random(20261122)
    acknowledged: list[str] = []
    in_flight: set[str] = set()
    for kill in range(KILLS):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, url, f"k{kill}"],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        assert writer.stdout is not None
        first = writer.stdout.readline()  # it is up and recording
        assert first.startswith(f"k{kill}-"), first
        time.sleep(rng.uniform(0.0, 0.3))
        writer.send_signal(signal.SIGKILL)
        rest = writer.stdout.read()
        writer.wait()
        lines = [first.strip(), *rest.split()]
        acknowledged += lines
        in_flight.add(f"k{kill}-{len(lines)}")  # the one it may have been recording
        with timebank.open(url, clock=fixed_clock) as tb:
            tb.check_invariants()
            for entry_id in lines:
                tb.entry(entry_id)  # raises EntryNotFound if an acknowledged entry is lost
            extra = tb._app.index.count_entries() - len(acknowledged)
            committed_in_flight = {e for e in in_flight if _recorded(tb, e)}
            assert extra == len(committed_in_flight), (extra, committed_in_flight)
            assert tb.pending(HUB) == [] or all(p.entry_id in in_flight for p in tb.pending(HUB))
    assert len(acknowledged) >= KILLS


def _recorded(tb: timebank.Timebank, entry_id: str) -> bool:
    try:
        tb.entry(entry_id)
    except errors.EntryNotFound:
        return False
    return True
