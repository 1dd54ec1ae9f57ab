"""Progress bars: on a real terminal (a pseudo-terminal) the long commands
show one, with a rate; off a terminal they show nothing and print only their
summary (issue 6: "a progress bar with rows per second on a terminal; plain
summary lines when not on a terminal"; docs/reports.md, "Progress")."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

import timebank
from timebank import _cli_import, cli
from timebank.readmodel import BATCH_SIZE

from .conftest import fixed_clock, read_terminal

#: One batch of the read model and a little more, so that catching up is
#: long enough to show its bar.
ENTRIES = BATCH_SIZE + 100
MEMBERS = 40
_CLI = [sys.executable, "-c", "from timebank.cli import main; main()"]


def _files(directory: Path, count: int = ENTRIES) -> tuple[Path, Path]:
    members, entries = directory / "members.csv", directory / "entries.csv"
    with members.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["member_id", "kind", "bank", "joined_on"])
        out.writerows([f"m{i}", "individual", "b", "2024-01-01"] for i in range(MEMBERS))
    with entries.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["entry_id", "occurred_on", "kind", "provider", "receiver", "hours", "bank"])
        out.writerows(
            [f"e{n}", (date(2024, 1, 1) + timedelta(days=n % 700)).isoformat(), "exchange",
             f"m{n % MEMBERS}", f"m{(n + 1) % MEMBERS}", "1", "b"]
            for n in range(count)
        )  # fmt: skip
    return members, entries


def _on_a_terminal(*args: str) -> str:
    """Run the CLI with a pseudo-terminal as its standard streams; all it
    wrote there."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([*_CLI, *args], stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    shown = read_terminal(master)
    os.close(master)
    assert proc.wait(timeout=300) == 0, shown.decode(errors="replace")
    return shown.decode()


def _off_a_terminal(*args: str) -> tuple[str, str]:
    done = subprocess.run(
        [*_CLI, *args], check=False, capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    directory = tmp_path_factory.mktemp("progress")
    members, entries = _files(directory)
    db = f"sqlite:///{directory / 'store.db'}"
    _off_a_terminal("--db", db, "import", "members", str(members), "--create-banks")
    return db, entries


def test_an_import_shows_its_bar_on_a_terminal_and_only_its_summary_off_one(
    store: tuple[str, Path],
) -> None:
    db, entries = store
    shown = _on_a_terminal("--db", db, "import", "entries", str(entries))
    assert "applying rows" in shown
    assert "rows/s" in shown
    # its length is the file's rows, its header line not counted
    assert set(re.findall(r" \d+/(\d+) ", shown)) == {str(ENTRIES)}, shown
    assert f"recorded {ENTRIES:,}" in shown
    # again, off a terminal: nothing to record, and no bar
    out, err = _off_a_terminal("--db", db, "import", "entries", str(entries))
    assert f"{ENTRIES:,} already present" in out
    assert "applying rows" not in out + err
    assert "rows/s" not in out + err


def test_catching_the_read_model_up_shows_a_bar_when_far_behind(
    store: tuple[str, Path],
) -> None:
    db, entries = store
    _off_a_terminal("--db", db, "import", "entries", str(entries))  # if run alone
    # No read model yet, or deleted (docs: the next report rebuilds it).
    for part in Path(db.removeprefix("sqlite:///")).parent.glob("store.reports.db*"):
        part.unlink()
    with timebank.open(db, clock=fixed_clock) as tb:
        assert tb.read_model.behind() == tb.read_model.log_end() >= BATCH_SIZE
    shown = _on_a_terminal("--db", db, "report", "--bank", "b", "--format", "json")
    assert "catching up the read model" in shown
    assert "events/s" in shown
    assert f'"exchanges": {ENTRIES}' in shown  # and the report itself
    # Caught up now: the next report shows no bar.
    shown = _on_a_terminal("--db", db, "report", "--bank", "b", "--format", "json")
    assert "catching up the read model" not in shown
    assert f'"exchanges": {ENTRIES}' in shown
    # A rebuild is the whole log: a bar on a terminal, none off one.
    assert "catching up the read model" in _on_a_terminal("--db", db, "read-model", "rebuild")
    out, err = _off_a_terminal("--db", db, "read-model", "rebuild")
    assert out.startswith("rebuilt ")
    assert err == ""
    data = json.loads(_off_a_terminal("--db", db, "report", "--bank", "b", "--format", "json")[0])
    assert data["exchanges"] == ENTRIES


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_an_import_stopped_by_ctrl_c_says_so_and_leaves_the_store_as_it_was(
    tmp_path: Path,
) -> None:
    """Ctrl-C during an import printed click's bare "Aborted!": now one line
    that says what is in the store (none of the file's rows), exit 130, and
    the same import run again records the whole file. The signal is sent
    once the bar shows that rows are being applied."""
    members, entries = _files(tmp_path, 4 * BATCH_SIZE)  # still importing at the signal
    db = f"sqlite:///{tmp_path / 'store.db'}"
    _off_a_terminal("--db", db, "import", "members", str(members), "--create-banks")
    master, slave = pty.openpty()
    # SIGINT at its default in the command, as on a terminal: a shell's
    # background job (`... &`) starts with it ignored, and the command would
    # inherit that, finish the import and exit 0.
    proc = subprocess.Popen([*_CLI, "--db", db, "import", "entries", str(entries)],
                            stdin=slave, stdout=slave, stderr=slave,
                            preexec_fn=_sigint_default)  # noqa: PLW1509 - a signal reset, no lock  # fmt: skip
    os.close(slave)
    shown = b""
    while b"applying rows" not in shown:
        shown += os.read(master, 1 << 16)
    proc.send_signal(signal.SIGINT)
    shown += read_terminal(master)
    os.close(master)
    text = shown.decode(errors="replace")
    assert proc.wait(timeout=60) == 130, text
    assert "error: interrupted: stopped before it finished" in text
    assert "Traceback" not in text
    assert "Aborted!" not in text
    with timebank.open(db, clock=fixed_clock) as tb:
        assert tb._app.index.count_entries() == 0
    out, _ = _off_a_terminal("--db", db, "import", "entries", str(entries))
    assert f"recorded {4 * BATCH_SIZE:,}" in out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_shows_how_far_it_is_and_the_rate_so_far(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bar's position is the items done (its callers pass the total so
    far, not the step), and its rate is those items over the seconds since
    it began, read from a clock the test sets."""
    now = [100.0]
    monkeypatch.setattr(cli, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with cli._progress_bar(1000, "applying rows", "rows") as advance:
        now[0] = 102.0
        advance(400)
        shown = terminal.getvalue()
        assert "400/1000" in shown
        assert "200 rows/s" in shown
        now[0] = 104.0
        advance(1000)
    shown = terminal.getvalue()
    assert "1000/1000" in shown
    assert "250 rows/s" in shown
    assert "1400" not in shown


@pytest.mark.parametrize(
    ("content", "lines"),
    [(b"", 0), (b"a", 1), (b"a\n", 1), (b"a\nb", 2), (b"a\nb\n", 2), (b"\n\n", 2)],
)
def test_the_import_bar_counts_a_last_line_with_no_line_break(
    tmp_path: Path, content: bytes, lines: int
) -> None:
    (tmp_path / "rows.csv").write_bytes(content)
    assert _cli_import._lines(tmp_path / "rows.csv") == lines
