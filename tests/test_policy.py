"""Bank policies: validation and the limit-breach rule."""

from __future__ import annotations

import pytest

from timebank.domain.errors import InvalidPolicy
from timebank.domain.policy import BalanceLimits, LimitMode, Policy


def test_defaults_are_24_hours_per_entry_pot_at_zero_and_refuse() -> None:
    policy = Policy()
    assert policy.entry_minutes_max == 1440
    assert policy.pot == BalanceLimits(0, None)
    assert policy.limit_mode is LimitMode.REFUSE
    assert Policy.from_dict(policy.to_dict()) == policy


def test_the_pot_can_never_be_allowed_below_zero() -> None:
    with pytest.raises(InvalidPolicy):
        Policy(pot=BalanceLimits(-60, None))


@pytest.mark.parametrize(
    "kwargs",
    [{"entry_minutes_max": 0}, {"entry_minutes_max": -5}, {"timezone": "Mars/Olympus"},
     {"limit_mode": "maybe"}, {"opening_balance_minutes_max": 0}],
)  # fmt: skip
def test_inconsistent_policies_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises((InvalidPolicy, ValueError)):
        Policy(**kwargs)  # type: ignore[arg-type]


def test_limits_must_contain_zero() -> None:
    with pytest.raises(InvalidPolicy):
        BalanceLimits(60, None)
    with pytest.raises(InvalidPolicy):
        BalanceLimits(None, -60)


def test_a_change_breaks_a_limit_only_when_it_moves_further_out() -> None:
    limits = BalanceLimits(-600, 600)
    assert limits.breach(0, -600) is None
    assert limits.breach(0, -601) == -600
    assert limits.breach(600, 1) == 600
    # Already past a limit (a flagged entry, or a tightened policy): moving
    # back towards the limits is allowed, moving further out is not.
    assert limits.breach(-700, 50) is None
    assert limits.breach(-700, -1) == -600
    assert BalanceLimits().breach(0, -(10**9)) is None
