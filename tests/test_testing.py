"""The testing module shipped to embedding apps (docs/testing.md): its
strategies give valid ledgers, its state machine runs, its assertion helper
fails on a defect."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import rule, run_state_machine_as_test

import timebank
from timebank import errors, testing
from timebank.domain.values import parse_minutes, validate_entry_id, validate_member_id


@settings(max_examples=40, deadline=None)
@given(ledger=testing.ledgers())
def test_generated_ledgers_are_valid_and_sound(ledger: testing.Ledger) -> None:
    tb = ledger.build()  # the importer refuses anything invalid
    testing.assert_sound(tb)
    kinds = {e["kind"] for e in ledger.entries}
    assert kinds <= {"exchange", "pot_exchange", "donation", "gift", "opening_balance",
                     "reversal"}  # fmt: skip
    recorded = {e["group_id"] if e.get("group_id") else e["entry_id"] for e in ledger.entries}
    assert tb._app.index.count_entries() == len(recorded)


@given(member=testing.member_ids(), entry=testing.entry_ids(), amount=testing.hours())
def test_id_and_amount_strategies_give_valid_values(member: str, entry: str, amount: str) -> None:
    assert validate_member_id(member) == member
    assert validate_entry_id(entry) == entry
    assert 0 < parse_minutes(amount) <= 1440


TestLedger = testing.LedgerStateMachine.TestCase
TestLedger.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)


def test_the_state_machines_proposals_take_effect_and_are_declined() -> None:
    """Its members' proposals are confirmed or approved into entries, and
    declined, with the audit after every step: read back from each run's
    store (an entry recorded under the proposal's id; one neither recorded
    nor pending any more)."""
    took_effect: set[str] = set()
    declined: set[str] = set()

    class Watched(testing.LedgerStateMachine):
        def teardown(self) -> None:
            waiting = {p.entry_id for p in self.tb.pending(testing.ROOT)}
            for entry_id in self.proposed:
                try:
                    recorded = self.tb.entry(entry_id)
                except errors.EntryNotFound:
                    if entry_id not in waiting:
                        declined.add(entry_id)
                else:
                    took_effect.add(recorded.entry_id)
            super().teardown()

    run_state_machine_as_test(
        Watched, settings=settings(max_examples=50, stateful_step_count=25, deadline=None)
    )
    assert took_effect, "no proposal took effect"
    assert declined, "no proposal was declined"


def test_assert_sound_fails_with_the_findings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    member = {"member_id": "a", "kind": "individual", "bank": testing.ROOT,
              "joined_on": "2026-01-01"}  # fmt: skip
    donation = {"entry_id": "d", "occurred_on": "2026-02-01", "kind": "donation",
                "provider": "a", "receiver": "", "hours": "1", "bank": testing.ROOT}  # fmt: skip
    tb = testing.Ledger(members=(member,), entries=(donation,)).build(
        timebank.open(url, clock=lambda: testing.NOW)
    )
    testing.assert_sound(tb)
    tb.close()
    conn = sqlite3.connect(tmp_path / "s.db")
    with conn:  # the pot emptied twice: a reversal duplicated through the raw database
        row = conn.execute(
            "SELECT originator_id, originator_version, topic, state FROM stored_events"
            " WHERE topic LIKE '%DonationMade'"
        ).fetchone()
        conn.execute("INSERT INTO stored_events VALUES (?, ?, ?, ?)",
                     (row[0], row[1] + 100, row[2], row[3]))  # fmt: skip
    conn.close()
    with timebank.open(url, clock=lambda: testing.NOW) as again, pytest.raises(AssertionError) as e:
        testing.assert_sound(again)
    assert "duplicate_entry_id" in str(e.value)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_member_and_entry_strategies_give_rows_the_ledger_records(data: st.DataObject) -> None:
    # a bank of the app's own too, which Ledger.build opens as the import's create_banks does
    bank = data.draw(st.sampled_from([testing.ROOT, testing.HUB, "riverside"]), label="bank")
    people = data.draw(
        st.lists(testing.members(bank), min_size=2, max_size=6, unique_by=lambda m: m["member_id"]),
        label="members",
    )
    rows = data.draw(
        st.lists(testing.entries(people), max_size=20, unique_by=lambda e: e["entry_id"]),
        label="entries",
    )
    tb = testing.Ledger(members=tuple(people), entries=tuple(rows)).build()
    testing.assert_sound(tb)
    assert tb._app.index.count_entries() == len(rows)  # every row recorded, none refused
    expected: dict[tuple[str, str], int] = {}  # the balances, summed from the rows alone
    for row in rows:
        minutes = parse_minutes(row["hours"].lstrip("-")) * (-1 if row["hours"][0] == "-" else 1)
        far = {"exchange": row["receiver"], "gift": row["receiver"], "donation": timebank.POT,
               "opening_balance": timebank.OPENING}[row["kind"]]  # fmt: skip
        earned = -minutes if row["kind"] in ("gift", "donation") else minutes
        for account, change in ((row["provider"], earned), (far, -earned)):
            key = (row["bank"], account)
            expected[key] = expected.get(key, 0) + change
    held = {(b.bank, b.account): b.balance_minutes for b in tb.balances()}
    assert {k: v for k, v in held.items() if v} == {k: v for k, v in expected.items() if v}


def test_entries_needs_two_members_in_one_bank() -> None:
    one = {"member_id": "a", "kind": "individual", "bank": testing.ROOT, "joined_on": "2026-01-01"}
    with pytest.raises(ValueError, match="two members in one bank"):
        find(testing.entries([one]), lambda _: True)


def test_the_state_machine_opens_the_banks_and_members_the_docs_name() -> None:
    machine = testing.LedgerStateMachine()
    machine.open_banks()
    assert set(machine.MEMBERS) == {testing.ROOT, testing.HUB, testing.OTHER}
    for bank, names in machine.MEMBERS.items():
        assert machine.tb.bank(bank).opened_on == testing.OPENED
        assert machine.tb.role(bank, testing.ACTOR) == "admin"
        assert sorted(m.member for m in machine.tb.members(bank)) == sorted(names)
    machine.teardown()


def test_the_state_machine_names_each_refusal_in_the_statistics(tmp_path: Path) -> None:
    """An app's rule refused on every step tests nothing: the statistics say so."""
    (tmp_path / "test_rota.py").write_text(textwrap.dedent("""
        from hypothesis import settings
        from hypothesis.stateful import rule

        from timebank import testing


        class RotaMachine(testing.LedgerStateMachine):
            @rule()
            def shift_by_an_app_with_no_role(self):
                self.attempt(lambda: self.tb.record_exchange(
                    testing.ROOT, "a1", "a2", "1", actor="rota-app"))


        TestRota = RotaMachine.TestCase
        TestRota.settings = settings(max_examples=3, stateful_step_count=3, deadline=None)
    """))  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--hypothesis-show-statistics", "test_rota.py"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "refused: not_permitted" in run.stdout


def test_the_pages_state_machine_on_a_file_runs_a_new_store_each_run() -> None:
    """The page's subclass, as written there, with its backend: a SQLite
    file in each run's own directory, removed when the run ends."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "testing.md").read_text()
    (block,) = [
        b for b in re.findall(r"```python\n(.*?)```", page, flags=re.S) if "RotaMachine" in b
    ]
    shifts: list[str] = []

    class MyApp:  # the page's app: records a shift as ACTOR
        @staticmethod
        def record_shift(tb: timebank.Timebank, volunteer: str, helped: str, hours: str) -> None:
            shifts.append(hours)
            tb.record_exchange(testing.ROOT, volunteer, helped, hours, actor=testing.ACTOR)

    scope: dict[str, object] = {"timebank": timebank, "testing": testing, "rule": rule,
                                "my_app": MyApp}  # fmt: skip
    exec(block, scope)  # the page's own code
    runs: list[tuple[Path, str]] = []

    class Watched(scope["RotaMachine"]):  # type: ignore[misc,valid-type]
        def open_store(self) -> timebank.Timebank:
            store = super().open_store()
            runs.append((self.tmp_path, store.today().isoformat()))
            assert (self.tmp_path / "test.db").exists()
            return store

    run_state_machine_as_test(
        Watched, settings=settings(max_examples=8, stateful_step_count=6, deadline=None)
    )
    assert len(runs) >= 8
    assert shifts  # the page's rule ran
    assert len({path for path, _ in runs}) == len(runs)  # a new directory each run
    assert not any(path.exists() for path, _ in runs)  # each removed when its run ended
    assert {today for _, today in runs} == {testing.NOW.date().isoformat()}


def test_a_store_opened_again_for_a_second_run_is_refused_saying_why(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'test.db'}"

    class SameFile(testing.LedgerStateMachine):
        def open_store(self) -> timebank.Timebank:
            return timebank.open(url, clock=lambda: testing.NOW)

    # the second run finds the first's banks; hypothesis then also reports
    # that the runs drew differently (they did: the store outlived its run)
    with pytest.raises(Exception) as failed:  # noqa: PT011 - read below
        run_state_machine_as_test(
            SameFile, settings=settings(max_examples=5, stateful_step_count=2, deadline=None)
        )
    chain: list[BaseException] = []
    error: BaseException | None = failed.value
    while error is not None and len(chain) < 10:
        chain.append(error)
        error = error.__cause__ or error.__context__
    refused = [e for e in chain if isinstance(e, ValueError)]
    assert refused, [repr(e) for e in chain]
    assert str(refused[0]) == (
        "open_store must give a new, empty store each run (it is called once a run), and"
        " this one already holds banks northside, northside/hub, southside: open a file in"
        " self.tmp_path, a new directory each run, or a new schema"
    )
