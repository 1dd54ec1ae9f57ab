"""The journal export cross-checked by an independent accounting tool:
hledger (Debian's package) reads `timebank export --format ledger` and its
balance report must equal timebank's balances, for generated ledgers."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import attrs
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import timebank
from timebank import testing
from timebank._reporting import journal_account
from timebank.domain.bank import bank_uuid

from .conftest import ACTOR, BACKENDS, fixed_clock, open_store
from .ledger_model import new_ledger

HLEDGER = shutil.which("hledger")
needs_hledger = pytest.mark.skipif(
    HLEDGER is None and not os.environ.get("CI"),
    reason="hledger is not installed (scripts/check installs it; CI always has it)",
)


def _hledger_balances(journal: Path) -> dict[str, int]:
    """Every account's balance in minutes, as hledger computes it."""
    assert HLEDGER is not None, "CI installs hledger (scripts/check)"
    out = subprocess.run(
        [HLEDGER, "-f", str(journal), "balance", "--flat", "--no-total", "--empty", "-O", "csv"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(out)))
    balances: dict[str, int] = {}
    for row in rows:
        amount = row["balance"].strip()
        value, _, unit = amount.partition(" ")
        assert unit in ("min", ""), amount
        balances[row["account"]] = int(value)
    return balances


def _check_against_hledger(tb: timebank.Timebank, directory: Path) -> None:
    journal = directory / "timebank.journal"
    with journal.open("w", encoding="utf-8") as out:
        transactions = tb.export_ledger(out)
    ours = {
        journal_account(b.bank, b.account): b.balance_minutes
        for b in tb.balances()
        if b.balance_minutes
    }
    theirs = {account: m for account, m in _hledger_balances(journal).items() if m}
    assert theirs == ours
    assert transactions == tb._app.index.count_entries()  # every entry, once
    assert transactions == journal.read_text().count("\n20")  # one dated line per entry


@needs_hledger
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_hledger_balances_equal_timebank_balances(
    data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with timebank.Timebank(timebank.storage.memory.MemoryBackend(), clock=fixed_clock) as tb:
        new_ledger(tb, data, data.draw(st.integers(1, 40), label="steps"))
        _check_against_hledger(tb, tmp_path_factory.mktemp("j"))


@needs_hledger
def test_the_cli_writes_the_journal(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from timebank.cli import cli

    url = f"sqlite:///{tmp_path / 'j.db'}"
    with timebank.open(url, clock=fixed_clock) as tb:
        tb.create_bank("r", name="R", actor="c", opened_on="2026-01-01")
        for m in ("a", "b"):
            tb.join("r", m, kind="individual", actor="c", joined_on="2026-01-01")
        tb.record_exchange("r", "a", "b", "1:30", actor="c", occurred_on="2026-02-01")
        tb.donate("r", "a", "0:30", actor="c", occurred_on="2026-02-02")
    out = CliRunner().invoke(cli, ["--db", url, "export", "--format", "ledger", "--to",
                                   str(tmp_path / "out")])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "(2 transactions)" in out.output
    balances = _hledger_balances(tmp_path / "out" / "timebank.journal")
    assert balances == {"r:members:a": 60, "r:members:b": -90, "r:pot": 30}


# --- the audit ------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_generated_ledger_audits_clean(data: st.DataObject) -> None:
    with timebank.Timebank(timebank.storage.memory.MemoryBackend(), clock=fixed_clock) as tb:
        new_ledger(tb, data, data.draw(st.integers(0, 40), label="steps"))
        tb.read_model.catch_up()
        report = tb.audit()
        assert report.errors == []
        assert report.entries == len({row.entry_id for row in _entries(tb)})


def _entries(tb: timebank.Timebank) -> list[timebank.StatementLine]:
    return [line for b in tb.balances() for line in tb.statement(b.bank, b.account)]


def test_a_clean_store_audits_clean_and_flagged_breaches_are_notes(
    tb: timebank.Timebank, bank: str
) -> None:
    limits = timebank.BalanceLimits(lowest_minutes=-60, highest_minutes=None)
    policy = timebank.Policy(individual=limits, limit_mode=timebank.LimitMode.FLAG)
    tb.create_bank("flag", name="Flag", actor=ACTOR, policy=policy, opened_on="2026-01-01")
    for m in ("a", "b"):
        tb.join("flag", m, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    # @opening has no limits: a carried balance past a member's limit flags nothing
    tb.record_opening_balance("flag", "a", "5", actor=ACTOR, occurred_on="2026-01-01")
    tb.record_exchange(
        "flag", "a", "b", "2:00", actor=ACTOR, occurred_on="2026-02-01", entry_id="f"
    )
    # a limit loosened: an entry past the old one and inside the new is no breach
    looser = timebank.BalanceLimits(lowest_minutes=-240, highest_minutes=None)
    tb.set_policy("flag", attrs.evolve(policy, individual=looser), actor=ACTOR)
    tb.record_exchange(
        "flag", "a", "b", "1:00", actor=ACTOR, occurred_on="2026-02-02", entry_id="g"
    )
    assert tb.entry("g").flags == ()
    tb.record_exchange(
        bank, "ann", "bob", "1:00", actor=ACTOR, occurred_on="2026-02-01", entry_id="x"
    )
    tb.reverse("x", actor=ACTOR, reversal_id="x-undo")
    tb.report(bank)  # builds the read model, which the audit then compares
    report = tb.audit()
    assert report.ok, report.summary()
    assert [(f.check, f.severity, f.ids["entry_id"]) for f in report.findings] == [
        ("limit_flagged", "info", "f"),
    ]  # fmt: skip


# --- a store corrupted on purpose: the audit finds each defect --------------------------
def _store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    limits = timebank.BalanceLimits(lowest_minutes=-120, highest_minutes=None)
    with timebank.open(url, clock=fixed_clock) as tb:
        tb.create_bank("c", name="C", actor="c", opened_on="2026-01-01",
                       policy=timebank.Policy(individual=limits))  # fmt: skip
        for m in ("a", "b"):
            tb.join("c", m, kind="individual", actor="c", joined_on="2026-01-01")
        tb.set_profile("a", timebank.Profile(display_name="Ada Lovelace"), actor="c")
        tb.record_exchange("c", "a", "b", "1:00", actor="c", occurred_on="2026-02-01",
                           entry_id="e1")  # fmt: skip
        tb.reverse("e1", actor="c", reversal_id="e1-undo", occurred_on="2026-02-02")
        tb.record_exchange("c", "a", "b", "1:00", actor="c", occurred_on="2026-02-03",
                           entry_id="e2")  # fmt: skip
        tb.donate("c", "a", "0:30", actor="c", occurred_on="2026-02-04")
        tb.report("c")
        assert tb.audit().ok
    return url


def _append(
    url: str,
    topic_end: str,
    change: Callable[[dict[str, Any]], None],
    *,
    indexed: bool = False,
    bank_id: str | None = None,
) -> None:
    """Append, with raw SQL, a copy of the last event whose topic ends with
    ``topic_end`` (of the bank ``bank_id``, if given), changed by ``change``,
    as the bank's next event (with ``indexed``, and its entry's row in the
    entry index, as the API writes it)."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    streams = "%" if bank_id is None else bank_uuid(bank_id).hex
    with conn:
        bank, topic, state = conn.execute(
            "SELECT originator_id, topic, state FROM stored_events WHERE topic LIKE ?"
            " AND originator_id LIKE ? ORDER BY rowid DESC LIMIT 1", (f"%{topic_end}", streams),
        ).fetchone()  # fmt: skip
        (version,) = conn.execute(
            "SELECT MAX(originator_version) FROM stored_events WHERE originator_id = ?", (bank,)
        ).fetchone()
        event = orjson.loads(state)
        change(event)
        conn.execute("INSERT INTO stored_events VALUES (?, ?, ?, ?)",
                     (bank, version + 1, topic, orjson.dumps(event)))  # fmt: skip
        if indexed:
            conn.execute("INSERT INTO timebank_entry_index VALUES (?, ?, ?, ?)",
                         (event["entry_id"], bank, version + 1, event.get("reverses")))  # fmt: skip
    conn.close()


def _alter_read_model(tmp_path: Path, sql: str) -> int:
    """Run ``sql`` on the read model of the store ``_store`` built; rows changed."""
    conn = sqlite3.connect(tmp_path / "c.reports.db")
    with conn:
        changed = conn.execute(sql).rowcount
    conn.close()
    return changed


def _audit(url: str) -> list[str]:
    with timebank.open(url, clock=fixed_clock, create=False) as tb:
        report = tb.audit()
    return [f.check for f in report.errors]


@pytest.mark.parametrize(
    ("topic_end", "change", "check"),
    [
        # a reversal duplicated through the raw database
        ("EntryReversed", lambda e: e.update(entry_id="e1-again"), "reversed_twice"),
        # an entry id recorded twice
        ("ExchangeRecorded", lambda e: None, "duplicate_entry_id"),
        # a reversal's id reused by an entry
        ("ExchangeRecorded", lambda e: e.update(entry_id="e1-undo"), "duplicate_entry_id"),
        # a reversal of an entry the log never held
        (
            "EntryReversed",
            lambda e: e.update(entry_id="r2", reverses="never"),
            "reversal_of_unknown_entry",
        ),
        # legs stored with their event (a reversal's, a group's, a side's) that do
        # not balance, which leave the bank's accounts not summing to zero
        (
            "EntryReversed",
            lambda e: e.update(entry_id="r3", reverses="e2", reversed_legs=[["a", -60], ["b", 30]]),
            "unbalanced_entry",
        ),
        (
            "EntryReversed",
            lambda e: e.update(entry_id="r3", reverses="e2", reversed_legs=[["a", -60], ["b", 30]]),
            "bank_sum",
        ),
        # legs that take the pot below zero
        (
            "EntryReversed",
            lambda e: e.update(
                entry_id="r3", reverses="e2", reversed_legs=[["@pot", -60], ["a", 60]]
            ),
            "pot_negative",
        ),
    ],
)
def test_an_event_copied_through_the_raw_database_is_found(
    tmp_path: Path, topic_end: str, change: Callable[[dict[str, Any]], None], check: str
) -> None:
    url = _store(tmp_path)
    _append(url, topic_end, change)
    assert check in _audit(url)


def _tree_store(tmp_path: Path) -> str:
    """Bank ``c`` (a, z) and its mini bank ``c/h`` (b), with an entry ``e1``
    in ``c`` and an entry ``i1`` from ``c`` to ``c/h``."""
    url = f"sqlite:///{tmp_path / 'i.db'}"
    with timebank.open(url, clock=fixed_clock) as tb:
        tb.create_bank("c", name="C", actor="c", opened_on="2026-01-01")
        tb.create_bank("c/h", name="H", actor="c", opened_on="2026-01-01")
        for bank, member in (("c", "a"), ("c", "z"), ("c/h", "b")):
            tb.join(bank, member, kind="individual", actor="c", joined_on="2026-01-01")
        day = {"actor": "c", "occurred_on": "2026-02-01"}
        tb.record_exchange("c", "a", "z", "1", entry_id="e1", **day)
        tb.record_exchange("c", "a", "b", "1", receiver_bank="c/h", entry_id="i1", **day)
        assert tb.audit().ok
    return url


def test_an_entry_id_of_one_bank_reused_by_a_side_between_two_banks_is_found(
    tmp_path: Path,
) -> None:
    """The two sides of an entry between banks share its id, in two banks'
    logs; an entry of one bank and a side in another under one id are two
    entries."""
    url = _tree_store(tmp_path)
    _append(url, "InterBankEntryRecorded", lambda e: e.update(entry_id="e1"), bank_id="c/h")
    assert "duplicate_entry_id" in _audit(url)


def test_one_side_of_an_entry_between_banks_without_the_other_is_found(tmp_path: Path) -> None:
    """Each clearing account mirrors the other bank's: a side with no
    partner leaves them apart."""
    url = _tree_store(tmp_path)
    _append(url, "InterBankEntryRecorded", lambda e: e.update(entry_id="i2"), bank_id="c/h")
    assert "clearing_sum" in _audit(url)


def test_an_entry_in_the_log_of_no_bank_is_found(tmp_path: Path) -> None:
    url = _tree_store(tmp_path)
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    with conn:
        topic, state = conn.execute(
            "SELECT topic, state FROM stored_events WHERE topic LIKE '%ExchangeRecorded'"
        ).fetchone()
        conn.execute("INSERT INTO stored_events VALUES (?, 1, ?, ?)",
                     (bank_uuid("nowhere").hex, topic, state))  # fmt: skip
    conn.close()
    assert "unknown_bank" in _audit(url)


def test_imported_entries_between_banks_audit_clean_whichever_side_the_log_holds_first(
    tb: timebank.Timebank,
) -> None:
    """An import writes bank by bank, so the log may hold an entry's
    receiving side before its provider's; the entry index keys it by the
    provider's bank whatever the order, and so does the audit's replay."""
    tb.create_bank("c", name="C", actor="c", opened_on="2026-01-01")
    tb.create_bank("c/h", name="H", actor="c", opened_on="2026-01-01")
    tb.join("c", "a", kind="individual", actor="c", joined_on="2026-01-01")
    tb.join("c/h", "b", kind="individual", actor="c", joined_on="2026-01-01")
    row = {"occurred_on": "2026-02-01", "kind": "exchange", "hours": "1", "category": "",
           "note": "", "reverses": "", "group_id": ""}  # fmt: skip
    tb.import_entries([
        {**row, "entry_id": "i1", "provider": "b", "receiver": "a", "bank": "c/h",
         "receiver_bank": "c"},
        {**row, "entry_id": "i2", "provider": "a", "receiver": "b", "bank": "c",
         "receiver_bank": "c/h"},
        {**row, "entry_id": "r2", "kind": "reversal", "provider": "", "receiver": "",
         "hours": "", "bank": "c/h", "reverses": "i2", "receiver_bank": ""},
    ], actor="c")  # fmt: skip
    report = tb.audit()
    assert report.findings == (), report.summary()
    assert report.entries == 3


def test_every_stream_of_a_sound_log_runs_from_1_without_a_gap(
    tb: timebank.Timebank, bank: str
) -> None:
    """What the audit's ``event_missing`` check reads, on every backend: each
    stream's count of events and highest version, equal on a sound log, and
    every event of the log counted once."""
    from timebank.domain.registry import REGISTRY_ID

    tb.record_exchange(bank, "ann", "bob", "1", actor=ACTOR)
    tb.create_bank("hub", name="Hub", actor=ACTOR, opened_on="2026-01-01")
    streams = tb._app.index.stream_versions()
    assert {bank_uuid(bank).hex, bank_uuid("hub").hex, REGISTRY_ID.hex} == streams.keys()
    assert all(events == highest for events, highest in streams.values()), streams
    assert streams[bank_uuid(bank).hex][0] == 6  # opened, four joined, one exchange
    assert sum(events for events, _ in streams.values()) == tb._app.recorder.max_notification_id()
    assert tb.audit().ok


def test_an_event_appended_out_of_band_is_found(tmp_path: Path) -> None:
    url = _store(tmp_path)

    def ghost(e: dict[str, Any]) -> None:
        e.update(entry_id="ghost-1", provider="ghost", minutes=600)
        e["occurred_on"]["_data_"] = "2030-01-01"

    _append(url, "ExchangeRecorded", ghost)
    found = _audit(url)
    # the banks cannot even load it (an account that never joined)
    for check in ("outside_membership", "future_entry", "limit_breached", "bank_unreadable"):
        assert check in found, (check, found)


def _alter_snapshot(url: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Change the state of bank ``c``'s snapshot in the file with raw SQL
    (what a faulty release's snapshot would hold)."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    with conn:
        version, state = conn.execute(
            "SELECT originator_version, state FROM stored_snapshots").fetchone()  # fmt: skip
        snapshot = orjson.loads(state)
        change(snapshot["state"])
        conn.execute("UPDATE stored_snapshots SET state = ? WHERE originator_version = ?",
                     (orjson.dumps(snapshot), version))  # fmt: skip
    conn.close()


def _later_start(state: dict[str, Any]) -> None:
    state["periods"]["b"][0][0]["_data_"] = "2026-01-15"


@pytest.mark.parametrize(
    ("change", "check"),
    [
        (lambda state: state["balances"].update(a=600), "balances"),
        (lambda state: state["kinds"].update(b="organisation"), "bank_members"),
        (_later_start, "bank_members"),
        (lambda state: state["joined_on"]["b"].update(_data_="2026-01-02"), "bank_members"),
        (lambda state: state["last_occurred_on"]["a"].update(_data_="2026-01-20"), "bank_members"),
        (lambda state: state.update(entries_count=99), "bank_details"),
        (lambda state: state.update(name="Not C"), "bank_details"),
    ],
    ids=[
        "balance",
        "kind",
        "membership-period",
        "joined-on",
        "last-entry-day",
        "entries-count",
        "name",
    ],
)
def test_a_snapshot_that_does_not_hold_what_its_events_add_up_to_is_found(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], check: str
) -> None:
    url = _store(tmp_path)
    with timebank.open(url, clock=fixed_clock, create=False) as tb:
        tb._app.take_snapshot(bank_uuid("c"))  # of the bank as it is
    _alter_snapshot(url, lambda state: None)
    assert _audit(url) == []  # the snapshot as taken, through the same rewrite
    _alter_snapshot(url, change)
    assert _audit(url) == [check]


def _workflow_store(tmp_path: Path) -> str:
    """A bank with a suspended member, a coordinator, a guardian and two
    pending entries (one awaiting confirmation, one approval), snapshotted."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    with timebank.open(url, clock=fixed_clock) as tb:
        tb.create_bank("c", name="C", actor="c", opened_on="2026-01-01",
                       policy=timebank.Policy(approval_threshold_minutes=60))  # fmt: skip
        for m in ("a", "b", "d"):
            tb.join("c", m, kind="individual", actor="c", joined_on="2026-01-01")
        tb.suspend("c", "d", actor="c")
        tb.grant_role("c", "broker", "coordinator", actor="c")
        tb.appoint_guardian("c", "b", "gina", actor="c")
        tb.propose("c", "exchange", "a", "b", "0:30", actor="a", entry_id="p1")
        tb.propose("c", "exchange", "a", "b", "2:00", actor="a", entry_id="p2")
        tb.confirm("p2", actor="gina", on_behalf_of="b")  # now awaits approval
        tb._app.take_snapshot(bank_uuid("c"))
        assert tb.audit().ok
    return url


def _pending(state: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], state["pending"])


@pytest.mark.parametrize(
    ("change", "check"),
    [
        (lambda state: state["status"].update(d="active"), "bank_members"),
        (lambda state: state["roles"].update(a="admin"), "bank_roles"),
        (lambda state: state["roles"].pop("broker"), "bank_roles"),
        (lambda state: state["guardians"].clear(), "bank_roles"),
        (lambda state: _pending(state).pop("p1"), "bank_pending"),
        (lambda state: _pending(state)["p2"].update(awaiting="confirmation"), "bank_pending"),
        (lambda state: _pending(state)["p1"].update(minutes=600), "bank_pending"),
    ],
    ids=[
        "status",
        "role-granted",
        "role-revoked",
        "guardian",
        "pending-dropped",
        "pending-awaiting",
        "pending-minutes",
    ],
)
def test_a_snapshot_of_workflow_state_its_events_do_not_add_up_to_is_found(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], check: str
) -> None:
    """A member's status, the roles and guardians (who may do what: a role
    written into a snapshot is a privilege nobody granted) and the pending
    entries, as the store loads them, are compared with the replay too."""
    url = _workflow_store(tmp_path)
    _alter_snapshot(url, lambda state: None)
    assert _audit(url) == []  # the snapshot as taken, through the same rewrite
    _alter_snapshot(url, change)
    assert _audit(url) == [check]


def test_a_read_model_row_altered_is_found(tmp_path: Path) -> None:
    url = _store(tmp_path)
    _alter_read_model(
        tmp_path,
        "UPDATE rm_accounts SET balance_minutes = balance_minutes + 60 WHERE account = 'a'",
    )
    assert _audit(url) == ["read_model"]


@pytest.mark.parametrize(
    ("table", "change"),
    [
        ("rm_daily", "UPDATE rm_daily SET minutes = minutes + 1 WHERE entries > 0"),
        ("rm_monthly", "UPDATE rm_monthly SET entries = entries + 1"),
        ("rm_pot_daily", "UPDATE rm_pot_daily SET minutes = minutes - 30"),
        ("rm_memberships", "UPDATE rm_memberships SET ended_on = '2026-03-01' WHERE member = 'b'"),
        # (a WHERE: SQLite 3.26 counts no rows changed when it
        # empties a WITHOUT ROWID table whole)
        ("rm_pair_days", "DELETE FROM rm_pair_days WHERE exchanges > 0"),
        ("rm_pair_days", "UPDATE rm_pair_days SET exchanges = exchanges + 1"),
        ("rm_pairs", "UPDATE rm_pairs SET first_day = '2026-01-15'"),
        ("rm_activity", "UPDATE rm_activity SET exchanges = exchanges + 1 WHERE account = 'a'"),
        ("rm_connections", "UPDATE rm_connections SET connected_on = '2026-01-15'"),
        ("rm_connections", "UPDATE rm_connections SET second_on = '2026-02-04'"),
        ("rm_connections", "DELETE FROM rm_connections WHERE account = 'a'"),
    ],
)
def test_each_figure_table_altered_is_found(
    tmp_path: Path, table: str, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from timebank import _audit_worker

    monkeypatch.setattr(_audit_worker, "WORTH_IT_FROM", 0)  # a small store, still beside
    started: list[str] = []
    real_start = _audit_worker.start
    monkeypatch.setattr(_audit_worker, "start", lambda u: started.append(u) or real_start(u))
    url = _store(tmp_path)
    assert _alter_read_model(tmp_path, change) > 0
    with timebank.open(url, clock=fixed_clock, create=False) as tb:
        found = tb.audit().errors  # compared in a second process
        here = tb._compare_figures()  # the same comparison, in this one
    assert [(f.check, f.ids["table"]) for f in found] == [("read_model", table)]
    assert started == [url, url]  # the clean store's audit too
    assert here[1] == list(found)


def test_a_pair_day_altered_is_named_by_its_pair_and_day(tmp_path: Path) -> None:
    url = _store(tmp_path)
    # one more exchange on a day the pair never exchanged, and none on the day it did
    assert (
        _alter_read_model(
            tmp_path, "UPDATE rm_pair_days SET day = '2026-02-10' WHERE day = '2026-02-03'"
        )
        == 1
    )
    with timebank.open(url, clock=fixed_clock, create=False) as tb:
        (found,) = tb.audit().errors
    assert (found.check, found.ids["table"], found.ids["rows"]) == ("read_model", "rm_pair_days", 2)
    assert found.ids["first"] == ["c", "a", "c", "b", "2026-02-03"]


def test_a_failed_comparison_process_is_an_error_not_a_clean_audit(tmp_path: Path) -> None:
    from timebank import _audit_worker

    with pytest.raises(timebank.errors.StorageError, match=r"comparison failed.*no timebank store"):
        _audit_worker.start(f"sqlite:///{tmp_path / 'missing.db'}")()


def test_the_full_comparison_finds_what_the_figures_do_not_hold(tmp_path: Path) -> None:
    url = _store(tmp_path)
    _alter_read_model(
        tmp_path, "UPDATE rm_entries SET actor = 'someone-else' WHERE entry_id = 'e2'"
    )
    with timebank.open(url, clock=fixed_clock, create=False) as tb:
        assert tb.audit().ok  # no figure reads the actor
        found = tb.audit(read_model="full").errors
    assert [(f.check, f.ids["table"]) for f in found] == [("read_model", "rm_entries")]
    # the command's --read-model chooses the same comparisons
    from click.testing import CliRunner

    from timebank.cli import cli

    for mode, status in (("full", 1), ("figures", 0), ("skip", 0)):
        out = CliRunner().invoke(cli, ["--db", url, "audit", "--read-model", mode])
        assert out.exit_code == status, (mode, out.output)
    out = CliRunner().invoke(
        cli, ["--db", url, "audit", "--read-model", "full", "--format", "json"]
    )
    found = json.loads(out.output)["findings"]
    assert [(f["check"], f["ids"]["table"]) for f in found] == [("read_model", "rm_entries")]


def test_a_read_model_behind_the_log_is_compared_where_it_is(tmp_path: Path) -> None:
    url = _store(tmp_path)
    with timebank.open(url, clock=fixed_clock, create=False) as tb:
        tb.record_exchange("c", "b", "a", "2:00", actor="c", occurred_on="2026-02-05")
        report = tb.audit()  # the read model has not read the new entry
        assert report.ok, report.summary()
        assert [f.check for f in report.findings] == ["read_model_behind"]
    _alter_read_model(tmp_path, "UPDATE rm_accounts SET balance_minutes = 0 WHERE account = 'b'")
    with timebank.open(url, clock=fixed_clock, create=False) as tb:
        assert [f.check for f in tb.audit().errors] == ["read_model"]
        tb.read_model.rebuild()
        assert tb.audit().findings == ()


@pytest.mark.parametrize("check", [True, "full"])
def test_a_read_model_of_another_log_is_noted_as_to_be_rebuilt_not_compared(
    tmp_path: Path, check: bool | str
) -> None:
    """The store's file replaced by hand by an earlier copy of itself, its
    read model left beside it: the read model follows events the log no
    longer holds, so the next read rebuilds it; the audit says that, and
    reports none of its tables as a defect."""
    url = _store(tmp_path)
    shutil.copy(tmp_path / "c.db", tmp_path / "earlier.db")
    with timebank.open(url, clock=fixed_clock, create=False) as tb:
        tb.record_exchange("c", "b", "a", "2:00", actor="c", occurred_on="2026-02-05")
        tb.report("c")  # the read model reads it
    shutil.copy(tmp_path / "earlier.db", tmp_path / "c.db")
    with timebank.open(url, clock=fixed_clock, create=False) as tb:
        report = tb.audit(read_model=check)  # type: ignore[arg-type]
        assert report.ok, report.summary()
        assert [(f.check, f.severity) for f in report.findings] == [("read_model_rebuild", "info")]
        assert "it applied events the log does not hold" in report.findings[0].message
        tb.report("c")  # rebuilt
        assert tb.audit(read_model=check).findings == ()  # type: ignore[arg-type]


def test_days_waiting_for_the_end_of_a_catch_up_are_a_note_and_counts_still_checked(
    tmp_path: Path,
) -> None:
    """A read model stopped in the middle of a catch-up holds the first and
    last days of accounts and pairs a reversal moved as they were
    (rm_stale_activity and rm_stale_pairs list them until the catch-up's end
    settles them): the audit notes them and still compares their counts."""
    url = _store(tmp_path)  # e1 (2026-02-01) reversed: a's and b's days start 02-03
    assert _alter_read_model(
        tmp_path,
        "UPDATE rm_activity SET first_day = '2026-02-01' WHERE bank = 'c' AND account = 'a'",
    )
    assert _alter_read_model(tmp_path, "INSERT INTO rm_stale_activity VALUES ('c', 'a')")
    assert _alter_read_model(tmp_path, "UPDATE rm_pairs SET first_day = '2026-02-01'")
    assert _alter_read_model(tmp_path, "INSERT INTO rm_stale_pairs SELECT bank_a, account_a,"
                             " bank_b, account_b FROM rm_pairs")  # fmt: skip
    with timebank.open(url, clock=fixed_clock, create=False) as tb:
        for mode in (True, "full"):
            report = tb.audit(read_model=mode)
            assert report.ok, (mode, report.summary())
            assert [f.check for f in report.findings] == ["read_model_settling"], mode
    assert _alter_read_model(
        tmp_path, "UPDATE rm_activity SET exchanges = exchanges + 1 WHERE account = 'a'"
    )
    with timebank.open(url, clock=fixed_clock, create=False) as tb:
        for mode in (True, "full"):
            found = tb.audit(read_model=mode).errors
            assert [(f.check, f.ids["table"]) for f in found] == [("read_model", "rm_activity")]
    assert _alter_read_model(
        tmp_path, "UPDATE rm_activity SET exchanges = exchanges - 1 WHERE account = 'a'"
    )
    with timebank.open(url, clock=fixed_clock, create=False) as tb:
        assert tb.read_model.catch_up() == 0  # nothing new to apply; settles a
        assert tb.read_model.db.execute(
            "SELECT first_day FROM rm_activity WHERE bank = 'c' AND account = 'a'"
        ) == [("2026-02-03",)]
        assert tb.read_model.db.execute("SELECT first_day FROM rm_pairs") == [("2026-02-03",)]
        assert tb.audit(read_model="full").findings == ()
        assert tb.audit().findings == ()


def test_connections_waiting_for_the_end_of_a_catch_up_are_a_note(tmp_path: Path) -> None:
    """Accounts queued in rm_stale_connections (one by one, or all of them
    from empty) are recomputed at the end of the catch-up: until then the
    audit notes them and leaves their rm_connections rows out."""
    url = _store(tmp_path)
    changed = "UPDATE rm_connections SET connected_on = '2026-01-15' WHERE account = 'a'"
    for waiting in ("('c', 'a')", "('', '')"):
        assert _alter_read_model(tmp_path, changed)
        assert _alter_read_model(tmp_path, f"INSERT INTO rm_stale_connections VALUES {waiting}")
        with timebank.open(url, clock=fixed_clock, create=False) as tb:
            for mode in (True, "full"):
                report = tb.audit(read_model=mode)
                assert report.ok, (mode, report.summary())
                assert [f.check for f in report.findings] == ["read_model_settling"], mode
            assert tb.read_model.catch_up() == 0  # nothing new to apply; settles a
            assert tb.read_model.db.execute(
                "SELECT connected_on FROM rm_connections WHERE account = 'a'"
            ) == [("2026-02-03",)]
            assert tb.read_model.db.execute("SELECT * FROM rm_stale_connections") == []
            assert tb.audit(read_model="full").findings == ()
    assert _alter_read_model(tmp_path, changed)
    with timebank.open(url, clock=fixed_clock, create=False) as tb:  # nothing waits now
        found = tb.audit().errors
    assert [(f.check, f.ids["table"]) for f in found] == [("read_model", "rm_connections")]


def test_personal_data_inside_an_event_is_found(tmp_path: Path) -> None:
    url = _store(tmp_path)
    _append(url, "ExchangeRecorded", lambda e: e.update(entry_id="p-1", category="Ada Lovelace"))
    assert "personal_data" in _audit(url)


def test_the_api_function_audits_a_store_by_its_url_and_writes_nothing(tmp_path: Path) -> None:
    url = _store(tmp_path)
    assert timebank.audit(url).ok
    testing.assert_sound(url)
    _append(url, "EntryReversed", lambda e: e.update(entry_id="e1-again"))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    report = timebank.audit(url)
    # (and not in the entry index: written around the API)
    assert [f.check for f in report.errors] == _audit(url) == ["reversed_twice", "entry_index"]
    with timebank.open(url, create=False) as tb:  # an open store is audited as it is
        assert timebank.audit(tb, read_model=False).errors == tb.audit(read_model=False).errors
    with pytest.raises(AssertionError, match="reversed_twice"):
        testing.assert_sound(url)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    missing = tmp_path / "missing.db"
    with pytest.raises(timebank.errors.StoreNotFound):
        timebank.audit(f"sqlite:///{missing}")
    assert not missing.exists()


def test_the_audit_command_exits_1_on_a_defect_and_writes_nothing(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from timebank.cli import cli

    url = _store(tmp_path)
    run = CliRunner().invoke
    out = run(cli, ["--db", url, "audit"])
    assert out.exit_code == 0
    assert re.match(r"audit: \d+ events, 1 bank, 4 entries: clean\n", out.output), out.output
    _append(url, "EntryReversed", lambda e: e.update(entry_id="e1-again"))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.suffix == ".db"}
    out = run(cli, ["--db", url, "audit", "--format", "json"])
    assert out.exit_code == 1
    report = json.loads(out.output)
    assert report["ok"] is False
    assert {f["check"] for f in report["findings"]} >= {"reversed_twice"}
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.suffix == ".db"}
    assert after == before


def test_the_journal_on_every_backend(tb: timebank.Timebank, bank: str, tmp_path: Path) -> None:
    tb.record_exchange(bank, "ann", "bob", "1:30", actor=ACTOR, occurred_on="2026-02-01")
    tb.donate(bank, "cat", "0:45", actor=ACTOR, occurred_on="2026-02-02", entry_id="d")
    tb.reverse("d", actor=ACTOR, reversal_id="d-undo")
    out = io.StringIO()
    assert tb.export_ledger(out) == 3
    sums: dict[str, int] = {}
    for line in out.getvalue().splitlines():
        if line.startswith("    "):
            account, minutes, _ = line.split()
            sums[account] = sums.get(account, 0) + int(minutes)
    ours = {journal_account(b.bank, b.account): b.balance_minutes for b in tb.balances()}
    assert {a: m for a, m in sums.items() if m} == {a: m for a, m in ours.items() if m}
    assert sums[f"{bank}:members:ann"] == 90
    if HLEDGER is not None:
        journal = tmp_path / "j.journal"
        journal.write_text(out.getvalue(), encoding="utf-8")
        assert {a: m for a, m in _hledger_balances(journal).items() if m} == {
            a: m for a, m in sums.items() if m
        }


@pytest.mark.parametrize(
    ("zone", "recorded", "today"),
    [
        # local time ahead of UTC: the local day is after the UTC one
        ("Pacific/Auckland", "2026-01-01T20:00:00+00:00", "2026-01-02"),
        # local time behind UTC: the local day is before the UTC one
        ("America/New_York", "2026-01-02T02:00:00+00:00", "2026-01-01"),
    ],
)
def test_a_future_entry_is_judged_by_the_banks_own_day(
    tmp_path: Path, zone: str, recorded: str, today: str
) -> None:
    """An entry on the bank's local day of recording is not in the future,
    whichever side of the UTC day that falls; the day after it is. (Events
    are stamped with the wall clock, so the stamp is set on copies.)"""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    with timebank.open(url, clock=lambda: datetime.fromisoformat(recorded)) as tb:
        tb.create_bank("c", name="C", actor="c", opened_on="2025-12-01",
                       policy=timebank.Policy(timezone=zone))  # fmt: skip
        for m in ("a", "b"):
            tb.join("c", m, kind="individual", actor="c", joined_on="2025-12-01")
        tb.record_exchange("c", "a", "b", "1:00", actor="c", occurred_on=today, entry_id="e1")
    tomorrow = (date.fromisoformat(today) + timedelta(days=1)).isoformat()
    for entry_id, day, found in (("e2", today, []), ("e3", tomorrow, ["future_entry"])):

        def copy(e: dict[str, Any], entry_id: str = entry_id, day: str = day) -> None:
            e.update(entry_id=entry_id)
            e["occurred_on"]["_data_"] = day
            e["timestamp"]["_data_"] = recorded

        _append(url, "ExchangeRecorded", copy, indexed=True)
        assert _audit(url) == found, (entry_id, day)


@pytest.mark.parametrize("offset", ["+00:00", "+05:00"])
def test_a_log_stamped_back_in_time_is_marked(tmp_path: Path, offset: str) -> None:
    """An event stamped before the one before it in its bank's log (timebank
    stamps each after the last, unless a clock is put back by more than a
    minute) is marked once, where it happens: a stamp written in another
    zone is compared as a time (10:30 at +05:00 is before 09:00 in UTC)."""
    url = _store(tmp_path)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        (state,) = conn.execute("SELECT state FROM stored_events ORDER BY rowid DESC LIMIT 1"
                                ).fetchone()  # fmt: skip
    last = datetime.fromisoformat(orjson.loads(state)["timestamp"]["_data_"])
    back = (last - timedelta(hours=1)).astimezone(timezone(timedelta(hours=int(offset[1:3]))))
    for entry_id in ("e3", "e4"):

        def copy(e: dict[str, Any], entry_id: str = entry_id) -> None:
            e.update(entry_id=entry_id)
            e["timestamp"]["_data_"] = back.isoformat()

        _append(url, "ExchangeRecorded", copy, indexed=True)
    with timebank.open(url, clock=fixed_clock, create=False) as tb:
        report = tb.audit()
    # information, not an error (a clock put back does it too); the copies'
    # own findings (a limit passed) are not this test's
    assert "recorded_out_of_order" not in [f.check for f in report.errors]
    marked = [f for f in report.findings if f.check == "recorded_out_of_order"]
    assert [(f.severity, f.ids["bank"], f.ids["times"]) for f in marked] == [("info", "c", 1)]
    assert f"stamped {back.isoformat()}, after an event stamped {last.isoformat()}" in (
        marked[0].message
    )


def _json_values(value: Any) -> Iterator[str]:
    """Every string value (not key) in decoded JSON."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _json_values(v)
    elif isinstance(value, list):
        for v in value:
            yield from _json_values(v)


_texts = st.text(max_size=8) | st.sampled_from(['Ada "A" Lovelace', "Zoë", "a\\b", "x"])
_json = st.recursive(
    st.integers(-(2**63), 2**63 - 1) | _texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_texts, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(event=st.dictionaries(_texts, _json, max_size=4), value=_texts, encoding=st.integers(0, 2))
def test_personal_data_is_a_string_value_in_every_encoding(
    event: dict[str, Any], value: str, encoding: int
) -> None:
    """A profile value is found in a stored event exactly when it is one of
    the event's string values (never merely a key, nor part of a longer
    string), however the event's JSON was written."""
    from timebank._audit import _encoded, _holds_personal

    state = [
        lambda e: json.dumps(e, ensure_ascii=False).encode(),
        lambda e: json.dumps(e).encode(),
        orjson.dumps,
    ][encoding](event)
    assert _holds_personal(state, _encoded({value})) == (value in set(_json_values(event)))


@pytest.mark.parametrize("kind", [k for k in BACKENDS if k != "memory"])
def test_the_comparison_process_opens_the_same_store(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second process reaches the store (a PostgreSQL schema too) and
    compares what the audit's own process would."""
    from timebank import _audit_worker

    with open_store(kind, tmp_path)() as tb:
        tb.create_bank("w", name="W", actor="c", opened_on="2026-01-01")
        for m in ("a", "b"):
            tb.join("w", m, kind="individual", actor="c", joined_on="2026-01-01")
        tb.record_exchange("w", "a", "b", "1:00", actor="c", occurred_on="2026-02-01")
        tb.read_model.catch_up()
        url = tb.backend.reopen_url
        assert url is not None
        position, found = _audit_worker.start(url)()
        assert (position, found) == tb._compare_figures()
        assert position == tb.read_model.position() > 0
        monkeypatch.setattr(_audit_worker, "WORTH_IT_FROM", 0)
        assert tb.audit().findings == ()


def test_the_comparison_process_is_given_the_password_that_the_url_hides() -> None:
    from timebank.storage.postgres import PostgresBackend

    backend = PostgresBackend("postgresql://tb:s3cret@127.0.0.1:5432/tb?schema=w")
    assert "s3cret" not in backend.url
    assert backend.reopen_url == "postgresql://tb:s3cret@127.0.0.1:5432/tb?schema=w"


def test_only_a_store_another_process_can_open_is_compared_beside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative SQLite path is reopened from anywhere; a store in memory
    is compared in the audit's own process."""
    monkeypatch.chdir(tmp_path)
    with timebank.open("sqlite:///relative.db") as tb:
        assert tb.backend.reopen_url == f"sqlite:///{(tmp_path / 'relative.db').resolve()}"
    assert timebank.storage.memory.MemoryBackend().reopen_url is None


def test_the_comparison_process_is_stopped_when_the_audit_itself_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal

    from timebank import _audit_worker, api

    url = _store(tmp_path)
    monkeypatch.setattr(_audit_worker, "WORTH_IT_FROM", 0)
    started: list[_audit_worker.Comparison] = []
    real_start = _audit_worker.start
    monkeypatch.setattr(
        _audit_worker, "start", lambda u: started.append(real_start(u)) or started[-1]
    )

    def replay_fails(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the replay failed")

    monkeypatch.setattr(api, "audit_log", replay_fails)
    with (
        timebank.open(url, clock=fixed_clock, create=False) as tb,
        pytest.raises(RuntimeError, match="the replay failed"),
    ):
        tb.audit()
    (comparison,) = started
    # killed while it was still starting (a new interpreter takes far longer
    # than the failed replay), not left to finish on its own
    assert comparison._process.wait(timeout=60) == -signal.SIGKILL


def test_the_table_replay_names_an_account_by_its_text_whatever_the_json_held() -> None:
    from timebank._audit_tables import TableReplay

    replay = TableReplay()  # a participant written as a number around the API is the same account
    assert replay._account("b", 5) is replay._account("b", "5") is replay._account("b", 5)
    assert replay._account("b", "5").key == ("b", "5")


# --- the entry and pending indexes --------------------------------------------------
def _without_index_rows(
    tb: timebank.Timebank, entries: list[str], pending: list[str], settled: tuple[str, ...] = ()
) -> None:
    """Delete rows of the entry, pending and settled indexes around the
    API, in the store's own database (a hand edit, a damaged page)."""
    if tb.url.startswith("memory:"):
        recorder = tb._app.recorder
        for entry_id in entries:
            del recorder._entries[entry_id]
        for entry_id in pending:
            del recorder._pending[entry_id]
        for entry_id in settled:
            del recorder._settled[entry_id]
        return
    statements = [
        *(("timebank_entry_index", e) for e in entries),
        *(("timebank_pending", e) for e in pending),
        *(("timebank_settled", e) for e in settled),
    ]
    if tb.url.startswith("sqlite:"):
        conn = sqlite3.connect(tb.url.removeprefix("sqlite:///"))
        with conn:
            for table, entry_id in statements:
                conn.execute(f"DELETE FROM {table} WHERE entry_id = ?", (entry_id,))
        conn.close()
        return
    import psycopg

    from .conftest import POSTGRES_URL, postgres_schema

    schema = postgres_schema(tb.url)
    with psycopg.connect(str(POSTGRES_URL), autocommit=True) as pg:
        for table, entry_id in statements:
            pg.execute(f'DELETE FROM "{schema}".{table} WHERE entry_id = %s', (entry_id,))


def test_the_entry_and_pending_indexes_are_compared_with_the_log(
    tb: timebank.Timebank, bank: str
) -> None:
    """Every entry's row in the entry index, an inter-bank entry's (and a
    reversal of one) on its provider's bank, written by the API and by an
    import (which writes one bank's events before the other's), and the
    pending entries' rows: a clean audit. Rows deleted around the API are
    named, each by its bank."""
    hub = f"{bank}/hub"
    tb.create_bank(hub, name="Hub", actor=ACTOR, opened_on="2026-01-01")
    tb.join(hub, "hal", kind="individual", actor=ACTOR, joined_on="2026-01-01")
    day = {"actor": ACTOR, "occurred_on": "2026-02-01"}
    tb.record_exchange(bank, "ann", "bob", "1", entry_id="plain", **day)
    tb.reverse("plain", actor=ACTOR, reversal_id="plain-undo", occurred_on="2026-02-02")
    tb.record_exchange(hub, "hal", "ann", "1", receiver_bank=bank, entry_id="out", **day)
    tb.record_exchange(bank, "bob", "hal", "2", receiver_bank=hub, entry_id="in", **day)
    tb.reverse("in", actor=ACTOR, reversal_id="in-undo", occurred_on="2026-02-03")
    header = "entry_id,occurred_on,kind,provider,receiver,hours,bank,receiver_bank,reverses"
    rows = [f"imp,2026-02-04,exchange,hal,cat,1,{hub},{bank},",
            f"imp-undo,2026-02-05,reversal,,,,{bank},,imp"]  # fmt: skip
    tb.import_entries(csv.DictReader(io.StringIO("\n".join([header, *rows]))), actor=ACTOR)
    tb.propose(bank, "exchange", "ann", "bob", "1", actor="ann", entry_id="p1")
    tb.propose(hub, "exchange", "hal", "ann", "1", actor="hal", receiver_bank=bank, entry_id="d1")
    tb.decline("d1", actor="ann")
    report = tb.audit(read_model=False)
    assert report.ok, report.summary()
    _without_index_rows(tb, entries=["plain", "in-undo", "imp-undo"], pending=["p1"],
                        settled=("d1",))  # fmt: skip
    found = {(f.check, f.ids["bank"]): f for f in tb.audit(read_model=False).errors}
    # imp-undo's row is on its entry's provider's bank, the hub, as is d1's
    assert set(found) == {("entry_index", bank), ("entry_index", hub), ("pending_index", bank),
                          ("pending_index", hub)}  # fmt: skip
    assert found["pending_index", hub].message == (
        f"the index of settled proposals of {hub!r} differs from the log: 1 of the log's"
        " declined or expired proposals missing from it (first 'd1')"
    )
    named = {b: (f.ids["missing"], f.ids["extra"], f.ids["entry_id"])
             for (check, b), f in found.items() if check == "entry_index"}  # fmt: skip
    assert named == {bank: (2, 0, "in-undo"), hub: (1, 0, "imp-undo")}
    message = found["entry_index", bank].message
    assert "2 of the log's entries missing from it (first 'in-undo')" in message
    assert "could be recorded again" in message
    assert found["pending_index", bank].ids == {"bank": bank, "missing": 1, "extra": 0,
                                                "entry_id": "p1"}  # fmt: skip


def test_an_entry_id_that_names_two_things_is_found(
    tb: timebank.Timebank, bank: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry id names one thing for good: a recorded entry or one
    proposal (docs/workflows.md). With the API's checks of ids taken away
    (as a bug, or a writer racing a check made outside the write lock,
    would), an entry recorded under a pending or a declined proposal's id,
    and a proposal under a recorded entry's or a declined proposal's id,
    are each named once."""
    day = {"actor": ACTOR, "occurred_on": "2026-02-01"}
    tb.record_exchange(bank, "ann", "bob", "1", entry_id="r1", **day)
    for entry_id in ("p1", "d1", "d2"):
        tb.propose(bank, "exchange", "ann", "bob", "1", actor="ann", entry_id=entry_id)
    for entry_id in ("d1", "d2"):
        tb.decline(entry_id, actor="bob")
    tb.record_exchange(bank, "cat", "bob", "1", entry_id="ok", **day)
    assert tb.audit(read_model=False).ok
    monkeypatch.setattr(timebank.Timebank, "_check_not_pending", lambda self, entry_id: None)
    tb.record_exchange(bank, "bob", "cat", "1", entry_id="p1", **day)
    tb.record_exchange(bank, "bob", "cat", "1", entry_id="d1", **day)
    tb.propose(bank, "exchange", "ann", "bob", "1", actor="ann", entry_id="d2")
    monkeypatch.setattr(tb._app.index, "find_entry", lambda entry_id: None)
    tb.propose(bank, "exchange", "ann", "bob", "1", actor="ann", entry_id="r1")
    monkeypatch.undo()
    found = [f for f in tb.audit(read_model=False).errors if f.check == "entry_id_reused"]
    rule = "an entry id names one thing for good"
    assert [(f.ids["entry_id"], f.message) for f in found] == [
        ("d2", f"entry id 'd2' names a proposal in {bank!r} that was declined or expired and"
               f" a proposal made after it: {rule}"),
        ("r1", f"entry id 'r1' names a recorded entry and a proposal made after it: {rule}"),
        ("d1", f"entry id 'd1' names a recorded entry and a proposal in {bank!r} that was"
               f" declined or expired: {rule}"),
        ("p1", f"entry id 'p1' names a recorded entry and a pending proposal in {bank!r}:"
               f" {rule}"),
    ]  # fmt: skip
    assert all(f.ids["bank"] == bank for f in found[:2])


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # the bank's last event, a donation, deleted: its row names no entry
        (
            "DELETE FROM stored_events WHERE rowid = (SELECT MAX(rowid) FROM stored_events)",
            "1 row for no entry of the log",
        ),
        (
            "UPDATE timebank_entry_index SET version = version + 1 WHERE entry_id = 'e2'",
            "in the version or the reversed entry of a row",
        ),
        (
            "UPDATE timebank_entry_index SET reverses = NULL WHERE entry_id = 'e1-undo'",
            "in the version or the reversed entry of a row",
        ),
        (
            "INSERT INTO timebank_entry_index SELECT 'e9', bank_uuid, 99, NULL"
            " FROM timebank_entry_index WHERE entry_id = 'e2'",
            "1 row for no entry of the log (first 'e9')",
        ),
    ],
    ids=["event deleted", "version", "reverses", "row added"],
)
def test_an_entry_index_changed_around_the_api_is_found(
    tmp_path: Path, sql: str, expected: str
) -> None:
    url = _store(tmp_path)
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    with conn:
        assert conn.execute(sql).rowcount == 1
    conn.close()
    with timebank.open(url, clock=fixed_clock, create=False) as tb:
        errors = tb.audit(read_model=False).errors
    assert [(f.check, f.ids["bank"]) for f in errors] == [("entry_index", "c")]
    assert expected in errors[0].message
