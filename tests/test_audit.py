"""The journal export cross-checked by an independent accounting tool:
hledger (Debian's package) reads `timebank export --format ledger` and its
balance report must equal timebank's balances, for generated ledgers."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import timebank
from timebank._reporting import journal_account

from .conftest import fixed_clock
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
    assert transactions == 0 or ours  # entries moved balances: the check compared something
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
