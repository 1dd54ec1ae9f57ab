"""Migration between backends: a store with every kind of fact, copied to
every other backend, gives the same banks, balances, entries, statements,
pending entries and profiles, and keeps working afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import timebank
from timebank import errors
from timebank.cli import cli
from timebank.migrate import migrate

from .conftest import ACTOR, BACKENDS, open_store


def fill(tb: timebank.Timebank) -> None:
    """Every kind of fact: mini bank, roles, guardians, all entry kinds,
    inter-bank entries and their reversal, pending entries, leaving, erasure."""
    hub = "north/hub"
    tb.create_bank("north", name="North", actor=ACTOR, opened_on="2026-01-01")
    tb.create_bank(hub, name="Hub", actor=ACTOR, opened_on="2026-01-01")
    tb.grant_role("north", "co", "coordinator", actor=ACTOR)
    for bank, member in [("north", "a"), ("north", "b"), ("north", "o"), (hub, "c"), (hub, "a")]:
        kind = "organisation" if member == "o" else "individual"
        tb.join(bank, member, kind=kind, actor="co", joined_on="2026-01-01",
                profile=timebank.Profile(display_name=f"Person {member}", area="ward-1"))  # fmt: skip
    tb.appoint_guardian(hub, "c", "angel", actor="co")
    tb.record_exchange("north", "a", "b", "2", actor="co", category="diy", entry_id="x1")
    tb.donate("north", "o", "3", actor="co", entry_id="d1")
    tb.record_pot_exchange("north", "b", "a", "1", actor="co", entry_id="p1")
    tb.gift("north", "a", "b", "0:30", actor="a", entry_id="g1")
    tb.record_opening_balance("north", "o", minutes=-90, actor="co", entry_id="ob1")
    tb.record_group_exchange("north", {"o": "2"}, {"a": "1", "b": "1"}, actor="co",
                             entry_id="grp1")  # fmt: skip
    tb.record_exchange("north", "b", "c", "1", actor="co", receiver_bank=hub, entry_id="ib1")
    tb.record_exchange("north", "a", "c", "2", actor="co", receiver_bank=hub, entry_id="ib2")
    tb.reverse("ib2", actor="co", reversal_id="r-ib2")
    tb.reverse("x1", actor="co", reversal_id="r-x1")
    tb.propose(hub, "exchange", "c", "a", "1", actor="angel", on_behalf_of="c", entry_id="pe1")
    tb.propose("north", "exchange", "a", "b", "1", actor="a", entry_id="pe2")
    tb.confirm("pe2", actor="b")
    tb.propose("north", "exchange", "a", "b", "1", actor="a", entry_id="pe3")
    tb.decline("pe3", actor="b")
    tb.leave("north", "b", actor="b")
    tb.erase_member("o", actor="co")


def view(tb: timebank.Timebank) -> object:
    banks = [b.bank for b in tb.banks()]
    return (
        [b.to_dict() for b in tb.banks()],
        [b.to_dict() for b in tb.balances()],
        [tb.entry(e) for e in ("x1", "r-x1", "ib1", "ib2", "r-ib2", "grp1", "pe2")],
        [
            [line.to_dict() for line in tb.statement(bank, m.member)]
            for bank in banks
            for m in tb.members(bank)
        ],
        [[p.to_dict() for p in tb.pending(bank)] for bank in banks],
        [tb.figures(bank).to_dict() for bank in banks],
        tb._app.profiles.all(),
        tb.guardians("north/hub", "c"),
        tb._app.index.settled_index(),  # a bank's stream is named by its id: the same
    )


@pytest.mark.parametrize("source_kind", BACKENDS)
@pytest.mark.parametrize("target_kind", BACKENDS)
def test_a_store_migrates_whole_to_any_backend(
    source_kind: str, target_kind: str, tmp_path: Path
) -> None:
    for side in ("source", "target"):
        (tmp_path / side).mkdir()
    source = open_store(source_kind, tmp_path / "source")()
    target = open_store(target_kind, tmp_path / "target")()
    try:
        fill(source)
        done = migrate(source, target, page_size=7)  # many pages
        assert done.entries == source._app.index.count_entries()
        assert done.banks == 2
        assert done.profiles == 3  # a, b and c: o's profile was erased
        assert view(target) == view(source)
        # the copy works on: a confirmation, an entry, a reversal
        target.confirm("pe1", actor="a")
        target.record_exchange("north/hub", "c", "a", "1", actor="co", entry_id="after")
        target.reverse("ib1", actor="co")
        with pytest.raises(errors.EntryConflict, match="its proposal was declined by 'b'"):
            target.propose("north", "exchange", "a", "c", "1", actor="a", entry_id="pe3")
        target.check_invariants()
        with pytest.raises(errors.StoreNotEmpty):
            migrate(source, target)
    finally:
        source.close()
        target.close()


def test_a_store_written_before_the_settled_index_is_named_and_migrated_whole(
    tmp_path: Path,
) -> None:
    """A store from before ids of declined proposals were kept spent has the
    index of settled proposals empty (docs/events.md): the audit names the
    missing rows, and a migration rebuilds them from the log."""
    import sqlite3

    old, new = tmp_path / "old.db", tmp_path / "new.db"
    with timebank.open(f"sqlite:///{old}") as tb:
        fill(tb)
    with sqlite3.connect(old) as conn:
        conn.execute("DELETE FROM timebank_settled")
    conn.close()
    with timebank.open(f"sqlite:///{old}") as tb, timebank.open(f"sqlite:///{new}") as target:
        [finding] = tb.audit(read_model=False).errors
        assert (finding.check, finding.ids["entry_id"]) == ("pending_index", "pe3")
        migrate(tb, target)
    with timebank.open(f"sqlite:///{new}") as tb:
        report = tb.audit(read_model=False)
        assert report.ok, report.summary()
        with pytest.raises(errors.EntryConflict, match="is spent"):
            tb.propose("north", "exchange", "a", "c", "1", actor="a", entry_id="pe3")


def test_the_cli_migrates_sqlite_to_another_file(tmp_path: Path) -> None:
    source_url = f"sqlite:///{tmp_path / 'old.db'}"
    target_url = f"sqlite:///{tmp_path / 'new.db'}"
    with timebank.open(source_url) as tb:
        fill(tb)
        expected = [b.to_dict() for b in tb.balances()]
    result = CliRunner().invoke(cli, ["--db", source_url, "migrate", "--to", target_url])
    assert result.exit_code == 0, result.output
    # the result on standard output, the progress on standard error
    with timebank.open(source_url) as tb:
        events = tb._app.recorder.max_notification_id()
    assert result.stdout.startswith(f"migrated {events} events: ")
    assert result.stdout.endswith("; balances and counts verified equal\n")
    assert result.stdout.count("\n") == 1
    assert f"copied {events} events\n" in result.stderr
    out = CliRunner().invoke(cli, ["--db", target_url, "balances", "--format", "json"])
    assert [
        {k: row[k] for k in ("bank", "account", "kind", "balance_minutes")}
        for row in json.loads(out.output)
    ] == [{k: row[k] for k in ("bank", "account", "kind", "balance_minutes")} for row in expected]
    again = CliRunner().invoke(cli, ["--db", source_url, "migrate", "--to", target_url])
    assert again.exit_code == 1
    assert "store_not_empty" in again.output


def test_a_writer_of_the_source_waits_for_the_migration_and_misses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The migration holds the source's write lock: a command of another
    handle (another process, as far as the lock is concerned) meanwhile is
    refused once the lock's timeout has passed, writes nothing the copy
    would miss, and the migration verifies; afterwards the source takes
    writes again."""
    import threading

    import timebank.storage.sqlite as sqlite_storage

    (tmp_path / "target").mkdir()
    url = f"sqlite:///{tmp_path / 'source.db'}"
    source, writer = timebank.open(url), timebank.open(url)
    target = open_store("sqlite", tmp_path / "target")()
    monkeypatch.setattr(sqlite_storage, "LOCK_TIMEOUT_S", 0.2)  # once opened (SQLite's own wait)
    copying, refused = threading.Event(), threading.Event()

    def progress(_: int) -> None:  # the first page is copied: hold on until the writer tried
        copying.set()
        assert refused.wait(timeout=30)

    try:
        fill(source)
        before = source._app.recorder.max_notification_id()
        done: list[object] = []
        thread = threading.Thread(
            target=lambda: done.append(migrate(source, target, page_size=7, progress=progress))
        )
        thread.start()
        assert copying.wait(timeout=30)
        with pytest.raises(errors.StorageError, match="write lock"):
            writer.record_exchange("north/hub", "c", "a", "1", actor="co", entry_id="meanwhile")
        refused.set()
        thread.join(timeout=60)
        assert len(done) == 1  # verified: the stores are equal
        assert source._app.recorder.max_notification_id() == before
        writer.record_exchange("north/hub", "c", "a", "1", actor="co", entry_id="after")
        assert writer.entry("after").minutes == 60
    finally:
        refused.set()
        for tb in (source, writer, target):
            tb.close()
