"""Checking the balances an older system showed against the store
(docs/import.md, "Checking balances against the older system")."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import timebank
from timebank.cli import cli
from timebank.domain.values import format_hours, parse_minutes
from timebank.errors import ImportFailed, InvalidInput
from timebank.importing import BalanceMismatch

from .conftest import ACTOR, fixed_clock, snapshot_state
from .ledger_model import OPENED, new_ledger


def _row(account: str, on: str, hours: str, bank: str = "riverside") -> dict[str, str]:
    return {"bank": bank, "account": account, "on": on, "hours": hours}


def _history(tb: timebank.Timebank, bank: str) -> None:
    """ann helps bob 3:30 in February; bob helps ann 1:00 on 1 March; bob
    gives the pot 0:15 on 2 March; the February exchange is reversed on
    10 March."""
    tb.record_exchange(bank, "ann", "bob", "3:30", actor=ACTOR, occurred_on="2026-02-01",
                       entry_id="feb")  # fmt: skip
    tb.record_exchange(bank, "bob", "ann", "1", actor=ACTOR, occurred_on="2026-03-01")
    tb.donate(bank, "bob", "0:15", actor=ACTOR, occurred_on="2026-03-02")
    tb.reverse("feb", actor=ACTOR, occurred_on="2026-03-10")


def test_balances_at_the_end_of_their_days_agree_and_each_that_differs_is_named(
    tb: timebank.Timebank, bank: str
) -> None:
    _history(tb, bank)
    before = snapshot_state(tb)
    rows = [
        _row("ann", "2026-01-31", "0"),  # before any entry
        _row("ann", "2026-02-01", "3:30"),  # the day's entry counts
        _row("ann", "2026-03-09", "2:30"),  # the reversal of 10 March does not yet
        _row("ann", "2026-03-10", "-1"),
        _row("bob", "2026-03-02", "-2:45"),
        _row("@pot", "2026-03-01", "0.25"),  # wrong: the donation is of 2 March
        _row("bob", "2026-06-15", "3:15"),  # wrong: bob has 0:45 by then
    ]
    result = tb.check_balances(rows, source="old.csv")
    assert snapshot_state(tb) == before  # nothing written
    assert result.rows == 7
    assert not result.ok
    assert result.mismatches == (
        BalanceMismatch("old.csv", 7, bank, "@pot", date(2026, 3, 1), 15, 0),
        BalanceMismatch("old.csv", 8, bank, "bob", date(2026, 6, 15), 195, 45),
    )
    assert [m.difference_minutes for m in result.mismatches] == [-15, -150]
    assert str(result.mismatches[0]) == (
        "old.csv:7: hours: 0:15: the store gives 0:00 at the end of 2026-03-01 (0:15 less)"
    )
    assert result.summary() == "old.csv: 7 rows read; 5 agree; 2 differ"
    assert result.to_dict()["mismatches"][1] == {
        "file": "old.csv", "line": 8, "bank": bank, "account": "bob", "on": "2026-06-15",
        "expected_minutes": 195, "actual_minutes": 45, "difference_minutes": -150,
    }  # fmt: skip
    agreeing = tb.check_balances([_row("bob", "2026-06-15", "0:45")])
    assert (agreeing.ok, agreeing.summary()) == (True, "balances: 1 row read; 1 agrees; 0 differ")


def test_many_balances_are_summed_a_few_hundred_to_a_query_each_at_its_row(
    tb: timebank.Timebank, bank: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check of 450 rows (each account on each day from January to May):
    the balances are summed 200 to a query, and each is its
    own row's, as the statements give them; one a minute off, in the last
    query, is the one mismatch. The bank is read once, not once a row."""
    _history(tb, bank)
    accounts = ["ann", "bob", "@pot"]
    days = [date(2026, 1, 1) + timedelta(days=n) for n in range(150)]
    rows = []
    for day in days:
        for account in accounts:
            minutes = sum(line.minutes for line in tb.ledger_statement(bank, account)
                          if line.occurred_on <= day)  # fmt: skip
            rows.append(_row(account, day.isoformat(), format_hours(minutes)))
    assert len(rows) == 450
    assert len({r["hours"] for r in rows}) > 3  # balances that differ from row to row
    read = []
    bank_of = tb._app.bank

    def counted(bank_id: str) -> object:
        read.append(bank_id)
        return bank_of(bank_id)

    monkeypatch.setattr(tb._app, "bank", counted)
    assert tb.check_balances(rows).ok
    assert read == [bank]
    off = 437  # line 439: the last query's
    given = parse_minutes(rows[off]["hours"], allow_negative=True, allow_zero=True)
    rows[off] = {**rows[off], "hours": format_hours(given - 1)}
    result = tb.check_balances(rows)
    assert [(m.line, m.account, m.difference_minutes) for m in result.mismatches] == [
        (off + 2, rows[off]["account"], 1)
    ]


def test_a_balances_file_that_cannot_be_read_names_every_row_and_checks_nothing(
    tb: timebank.Timebank, bank: str
) -> None:
    rows = [
        _row("ann", "2026-02-01", "1", bank="nowhere"),
        _row("zed", "2026-02-01", "1"),
        _row("ann", "2026-06-16", "1"),  # after today
        _row("ann", "2026-02-01", "1.51"),
        _row("bob", "2026-02-01", "1"),
        _row("bob", "2026-02-01", "2"),  # the same day given another balance
        _row("an id", "01/02/2026", "1"),
        _row("bob", "2026-02-01", "1"),  # the same again: no problem
        _row("hal", "2026-02-01", "1"),  # a member of the mini bank only
        _row("Ann", "2026-02-01", "1"),  # ids are case-sensitive
    ]
    tb.create_bank(f"{bank}/hub", name="Hub", actor=ACTOR, opened_on="2026-01-01")
    tb.join(f"{bank}/hub", "hal", kind="individual", actor=ACTOR, joined_on="2026-01-01")
    with pytest.raises(ImportFailed) as failed:
        tb.check_balances(rows, source="old.csv")
    assert [str(p) for p in failed.value.problems] == [
        "old.csv:2: bank: nowhere: no bank 'nowhere'",
        f"old.csv:3: account: zed: no account 'zed' in bank '{bank}' (a member of no bank:"
        " the members file brings them in first)",
        f"old.csv:4: on: 2026-06-16: after today (2026-06-15) in bank '{bank}'",
        "old.csv:5: hours: 1.51: amount is not a whole number of minutes: '1.51'",
        "old.csv:7: hours: 2: 'bob' is given 1 on 2026-02-01 on line 6",
        "old.csv:8: account: an id: invalid account: 'an id' (a member id, '@pot',"
        " '@opening', or '@clearing:' and a bank id)",
        "old.csv:8: on: 01/02/2026: not a date in the form YYYY-MM-DD (ISO); give --date-format"
        " (date_format= from Python) for another form, such as %d/%m/%Y",
        f"old.csv:10: account: hal: no account 'hal' in bank '{bank}' (a member of '{bank}/hub')",
        f"old.csv:11: account: Ann: no account 'Ann' in bank '{bank}' (a member of no bank:"
        f" the members file brings them in first; member ids are case-sensitive: 'ann' is a"
        f" member of '{bank}')",
    ]
    assert str(failed.value).startswith("nothing was checked: 9 problems\n")
    with pytest.raises(ImportFailed) as limited:
        tb.check_balances(rows, source="old.csv", max_errors=2)
    assert [p.line for p in limited.value.problems] == [2, 3]
    assert limited.value.limit_reached == 2
    dated = tb.check_balances([_row("ann", "01/02/2026", "0")], date_format="%d/%m/%Y")
    assert dated.ok
    with pytest.raises(ImportFailed, match="required column missing"):
        tb.check_balances([{"bank": bank, "account": "ann", "on": "2026-02-01"}])
    with pytest.raises(InvalidInput):
        tb.check_balances("bank,account,on,hours")


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_any_ledgers_balances_agree_at_any_day_and_one_minute_off_is_named(
    data: st.DataObject,
) -> None:
    """The balance at a day's end, read from the read model, is the sum of
    the account's lines of the log's own statement dated on or before it;
    one balance a minute off is the one mismatch, one minute less."""
    with timebank.Timebank(timebank.storage.memory.MemoryBackend(), clock=fixed_clock) as tb:
        new_ledger(tb, data, data.draw(st.integers(1, 30), label="steps"))
        accounts = sorted((b.bank, b.account) for b in tb.balances())  # pots, clearing too
        days = st.integers(0, (fixed_clock().date() - OPENED).days).map(
            lambda n: OPENED + timedelta(days=n)
        )
        rows = []
        for bank, account in accounts:
            day = data.draw(days, label=f"{bank} {account}")
            minutes = sum(line.minutes for line in tb.ledger_statement(bank, account)
                          if line.occurred_on <= day)  # fmt: skip
            rows.append({"bank": bank, "account": account, "on": day.isoformat(),
                         "hours": format_hours(minutes)})  # fmt: skip
        assert tb.check_balances(rows).ok
        off = data.draw(st.integers(0, len(rows) - 1), label="off")
        given = parse_minutes(rows[off]["hours"], allow_negative=True, allow_zero=True)
        rows[off] = {**rows[off], "hours": format_hours(given + 1)}
        result = tb.check_balances(rows)
        assert [(m.line, m.difference_minutes) for m in result.mismatches] == [(off + 2, -1)]


def test_the_cli_lists_each_balance_that_differs_and_exits_1(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with timebank.open(url, clock=fixed_clock) as tb:
        tb.create_bank("riverside", name="R", actor=ACTOR, opened_on="2026-01-01")
        for member in ("ann", "bob"):
            tb.join("riverside", member, kind="individual", actor=ACTOR,
                    joined_on="2026-01-01")  # fmt: skip
        tb.record_exchange("riverside", "ann", "bob", "2", actor=ACTOR, occurred_on="2026-02-01")
    path = tmp_path / "balances.csv"
    path.write_text("bank,account,on,hours\nriverside,ann,2026-02-01,2\n"
                    "riverside,bob,2026-02-01,-1:30\n", encoding="utf-8")  # fmt: skip
    out = CliRunner().invoke(cli, ["--db", url, "import", "check-balances", str(path)])
    assert out.exit_code == 1, out.output
    assert out.output == (
        f"{path}:3: hours: -1:30: the store gives -2:00 at the end of 2026-02-01 (0:30 less)\n"
        f"{path}: 2 rows read; 1 agrees; 1 differs\n"
    )
    path.write_text("bank,account,on,hours\nriverside,ann,2026-02-01,2\n", encoding="utf-8")
    out = CliRunner().invoke(cli, ["--db", url, "import", "check-balances", str(path)])
    assert (out.exit_code, out.output) == (0, f"{path}: 1 row read; 1 agrees; 0 differ\n")
    path.write_text("bank,account,on,hours\nriverside,cat,2026-02-01,2\n", encoding="utf-8")
    out = CliRunner().invoke(cli, ["--db", url, "import", "check-balances", str(path)])
    assert out.exit_code == 1
    assert out.output == (
        f"{path}:2: account: cat: no account 'cat' in bank 'riverside' (a member of no bank:"
        " the members file brings them in first)\n"
        "error: import_failed: 1 problem; nothing was checked\n"
    )
