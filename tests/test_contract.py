"""The storage contract: every command and query of the API runs on every
backend. The backend-parametrised test modules are the contract suite; this
checks that together they call every public method of :class:`Timebank`."""

from __future__ import annotations

import inspect
import re
from datetime import date
from pathlib import Path

import timebank

from .conftest import BACKENDS, TODAY

#: The modules whose tests run on every backend (through the tb/reopen fixtures).
CONTRACT_MODULES = [
    "test_entries", "test_group_exchanges", "test_membership", "test_workflows",
    "test_pending", "test_migrate", "test_contract", "test_reports", "test_import", "test_audit",
    "test_backup", "test_subject_access", "test_balance_check", "test_clocks", "test_retries",
]  # fmt: skip


def test_the_contract_suite_calls_every_public_method() -> None:
    methods = sorted(
        name
        for name, value in inspect.getmembers(timebank.Timebank)
        if not name.startswith("_") and callable(value)
    )
    text = "".join((Path(__file__).parent / f"{m}.py").read_text() for m in CONTRACT_MODULES)
    missing = [m for m in methods if not re.search(rf"\.{m}\(", text)]
    assert missing == [], f"not exercised on every backend: {missing}"
    assert len(BACKENDS) >= 2


def test_today_is_the_banks_date(tb: timebank.Timebank) -> None:
    tb.create_bank("b", name="B", actor="coord-1", opened_on="2026-01-01",
                   policy=timebank.Policy(timezone="Pacific/Kiritimati"))  # fmt: skip
    assert tb.today() == TODAY  # Europe/London: 13:00 on 15 June
    assert tb.today("b") == date(2026, 6, 16)  # UTC+14: already the 16th
