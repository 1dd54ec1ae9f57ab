"""The API's types hold an embedding app's type checker to what the API
takes (docs/api.md, "Types"). mypy checks this file in the suite's own
run (``scripts/check``, ``[tool.mypy] files``) in strict mode, which reports
a ``# type: ignore`` that silences nothing: each ``# type: ignore[arg-type]``
below fails that check on the day the API's types stop refusing the value.
Each call also runs here, and is refused at run time with the named error,
as it is for an app that has no type checker."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

import timebank
from timebank import errors

from .conftest import ACTOR, snapshot_state


def refused_at_run_time(tb: timebank.Timebank, command: Callable[[], object]) -> None:
    before = snapshot_state(tb)
    with pytest.raises(errors.InvalidAmount, match="float"):
        command()
    assert snapshot_state(tb) == before


def test_a_float_of_hours_is_refused_by_the_type_checker_and_at_run_time(
    tb: timebank.Timebank, bank: str
) -> None:
    refused_at_run_time(tb, lambda: tb.record_exchange(bank, "ann", "bob", 1.5, actor=ACTOR))  # type: ignore[arg-type]
    refused_at_run_time(tb, lambda: tb.record_pot_exchange(bank, "ann", "bob", 0.5, actor=ACTOR))  # type: ignore[arg-type]
    refused_at_run_time(tb, lambda: tb.donate(bank, "ann", 1.0, actor=ACTOR))  # type: ignore[arg-type]
    refused_at_run_time(tb, lambda: tb.gift(bank, "ann", "bob", 0.25, actor=ACTOR))  # type: ignore[arg-type]
    refused_at_run_time(tb, lambda: tb.record_opening_balance(bank, "ann", -2.5, actor=ACTOR))  # type: ignore[arg-type]
    refused_at_run_time(tb, lambda: tb.propose(bank, "exchange", "ann", "bob", 1.5, actor="ann"))  # type: ignore[arg-type]
    provided, received = {"ann": 1.5}, {"bob": "1:30"}
    group = tb.record_group_exchange
    refused_at_run_time(tb, lambda: group(bank, provided, received, actor=ACTOR))  # type: ignore[arg-type]
    refused_at_run_time(tb, lambda: tb.members_near_limit(bank, within=0.5))  # type: ignore[arg-type]


def test_text_int_and_decimal_hours_are_taken_by_both(tb: timebank.Timebank, bank: str) -> None:
    amounts: list[timebank.Hours] = ["1:30", "1.5", 1, Decimal("0.25")]
    entries = [tb.record_exchange(bank, "ann", "bob", h, actor=ACTOR) for h in amounts]
    assert [e.minutes for e in entries] == [90, 90, 60, 15]
    group = tb.record_group_exchange(bank, {"ann": 1, "cat": "0:30"}, {"bob": Decimal("1.5")},
                                     actor=ACTOR)  # fmt: skip
    assert group.legs == (("ann", 60), ("cat", 30), ("bob", -90))
