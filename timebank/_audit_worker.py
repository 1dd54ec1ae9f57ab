"""The audit's read-model comparison, in a process of its own.

The audit's two replays of the log need nothing from each other: the one
that checks every invariant, and the one that rebuilds what the read
model's balance and figure tables must hold (:func:`compare_figures`).
Both are Python work, so on one interpreter they take turns; with the
second in another Python process beside the audit, it uses another core
and the whole audit takes about as long as the longer of the two
(docs/performance.md). That process imports the same timebank as this
one, opens the store by its URL, read only, and writes what it found as
JSON; the URL (which may hold a password) comes on standard input, not
the command line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import timebank
from timebank._audit import FiguresCompared, Finding
from timebank.domain.errors import StorageError

__all__ = ["WORTH_IT_FROM", "Comparison", "available", "start"]

#: The read model's position (events) from which the second process pays
#: for its start (about a second: a new interpreter importing timebank);
#: a smaller store is compared in the audit's own process, after its replay.
WORTH_IT_FROM = 100_000


def available() -> bool:
    """Whether this interpreter can start another of itself (not when it is
    embedded in, or frozen into, another program)."""
    return bool(sys.executable) and not getattr(sys, "frozen", False)


class Comparison:
    """The comparison running in another process: call it to wait for what
    it found (:class:`StorageError` if the process failed), or
    :meth:`cancel` it (the audit's own replay failed)."""

    def __init__(self, process: subprocess.Popen[bytes], answer: Future[tuple[bytes, bytes]]):
        self._process = process
        self._answer = answer  # the process's stdout and stderr, once it ends

    def __call__(self) -> FiguresCompared:
        out, err = self._answer.result()
        if self._process.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines()
            raise StorageError(
                "the audit's read-model comparison failed: "
                + (lines[-1] if lines else f"exit status {self._process.returncode}")
            )
        found = json.loads(out)
        return int(found["position"]), [Finding(**f) for f in found["findings"]]

    def cancel(self) -> None:
        """Stop the process if it still runs."""
        if self._process.poll() is None:
            self._process.kill()


def start(url: str) -> Comparison:
    """Start comparing the read model of the store at ``url`` in another
    process; calling what it returns waits for what it found. Raises
    :class:`StorageError` there if the process failed."""
    here = str(Path(timebank.__file__).resolve().parent.parent)  # this timebank's home
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    process = subprocess.Popen(
        [sys.executable, "-c", "from timebank._audit_worker import main; main()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": path},
    )
    # a thread waits on the pipes (it holds no lock while it waits), so a
    # large answer never blocks the process while this one replays
    waiter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-figures")
    answer = waiter.submit(process.communicate, url.encode())
    waiter.shutdown(wait=False)
    return Comparison(process, answer)


def main() -> None:
    url = sys.stdin.read().strip()
    with timebank.open(url, create=False) as tb:
        position, findings = tb._compare_figures()
    json.dump({"position": position, "findings": [f.to_dict() for f in findings]}, sys.stdout)
