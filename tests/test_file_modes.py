"""Who can read the files timebank makes (docs/storage.md, "Who can read
the files"): a new store holds members' profiles, so it is its owner's
alone whatever the umask, and the files made beside it take its mode; an
output holding personal data is owner-only, a report is as any new file.
On real files, with the common umask 022 (which left them all readable by
every account on the machine)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import timebank
from timebank.cli import cli

from .conftest import ACTOR, fixed_clock

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _fill(url: str) -> None:
    """A bank, a member with a profile, a report (the read model built)."""
    with timebank.open(url, clock=fixed_clock) as tb:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
        tb.join("b", "ann", kind="individual", actor=ACTOR, joined_on="2026-01-01",
                profile=timebank.Profile(display_name="Ann", email="ann@example.org"))  # fmt: skip
        tb.report("b")


def test_a_new_store_and_all_beside_it_are_the_owners_alone(tmp_path: Path) -> None:
    store = tmp_path / "tb.db"
    _fill(f"sqlite:///{store}")
    with timebank.open(f"sqlite:///{store}", clock=fixed_clock) as tb:  # WAL files open
        tb.backup(tmp_path / "backup.db")
        made = [store, tmp_path / "tb.db-wal", tmp_path / "tb.db-shm", tmp_path / "tb.db.lock",
                tmp_path / "tb.reports.db", tmp_path / "backup.db"]  # fmt: skip
        assert {p.name: _mode(p) for p in made} == {p.name: 0o600 for p in made}


def test_files_made_beside_a_store_opened_to_a_group_are_open_to_it(tmp_path: Path) -> None:
    """A store its owner opened to a group of service accounts on purpose
    keeps its new lock, read model and backups open to the same group (a
    lock owner-only would refuse the group's writers), and its own mode is
    never changed."""
    store = tmp_path / "shared.db"
    with timebank.open(f"sqlite:///{store}", clock=fixed_clock):
        pass
    store.chmod(0o660)
    _fill(f"sqlite:///{store}")
    with timebank.open(f"sqlite:///{store}", clock=fixed_clock) as tb:
        tb.backup(tmp_path / "backup.db")
    made = [store, tmp_path / "shared.db.lock", tmp_path / "shared.reports.db",
            tmp_path / "backup.db"]  # fmt: skip
    assert {p.name: _mode(p) for p in made} == {p.name: 0o660 for p in made}


def test_a_restored_store_is_as_open_as_the_one_it_replaces(tmp_path: Path) -> None:
    store = tmp_path / "tb.db"
    _fill(f"sqlite:///{store}")
    with timebank.open(f"sqlite:///{store}", clock=fixed_clock) as tb:
        tb.backup(tmp_path / "backup.db")
    (tmp_path / "backup.db").chmod(0o644)  # copied about with another mode
    store.chmod(0o640)
    restored = timebank.restore(tmp_path / "backup.db", f"sqlite:///{store}")
    assert restored.replaced is not None
    assert _mode(store) == 0o640
    fresh = tmp_path / "elsewhere.db"  # nothing to replace: as open as the backup
    timebank.restore(tmp_path / "backup.db", f"sqlite:///{fresh}")
    assert _mode(fresh) == 0o644


def test_personal_data_written_out_is_the_owners_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tb.db'}"
    _fill(url)

    def run(*args: str) -> None:
        result = CliRunner().invoke(cli, ["--db", url, "--actor", ACTOR, *args])
        assert result.exit_code == 0, result.output

    run("subject-access", "ann", "-o", str(tmp_path / "ann.json"))
    assert json.loads((tmp_path / "ann.json").read_text())["profile"]["email"] == "ann@example.org"
    run("export", "--format", "csv", "--to", str(tmp_path / "out"))
    run("report", "--bank", "b", "--format", "json", "-o", str(tmp_path / "report.json"))
    modes = {p: _mode(tmp_path / p) for p in ("ann.json", "out/members.csv", "out/entries.csv")}
    assert modes == dict.fromkeys(modes, 0o600)
    assert _mode(tmp_path / "report.json") == 0o644  # figures only: as any new file
    # a file replaced keeps the mode it was given
    (tmp_path / "ann.json").chmod(0o640)
    run("subject-access", "ann", "-o", str(tmp_path / "ann.json"))
    assert _mode(tmp_path / "ann.json") == 0o640
