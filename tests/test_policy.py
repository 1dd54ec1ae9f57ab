"""Bank policies: validation and the limit-breach rule."""

from __future__ import annotations

import pytest

from timebank.domain.errors import InvalidPolicy
from timebank.domain.policy import (
    PENDING_EXPIRY_DAYS_MAX,
    BalanceLimits,
    LeaveRule,
    LimitMode,
    Policy,
)
from timebank.domain.values import MINUTES_ABS_MAX


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


def test_the_edges_of_each_setting() -> None:
    """The smallest and largest value each setting takes, and the first it
    does not."""
    assert BalanceLimits(0, 0) == BalanceLimits(lowest_minutes=0, highest_minutes=0)
    assert BalanceLimits(-MINUTES_ABS_MAX, MINUTES_ABS_MAX).lowest_minutes == -MINUTES_ABS_MAX
    for lowest, highest in ((1, None), (None, -1), (-MINUTES_ABS_MAX - 1, None), (-1.5, None),
                            (None, "60"), (True, None)):  # fmt: skip
        with pytest.raises(InvalidPolicy):
            BalanceLimits(lowest, highest)  # type: ignore[arg-type]
    for setting in ("entry_minutes_max", "opening_balance_minutes_max",
                    "approval_threshold_minutes"):  # fmt: skip
        for good in (1, MINUTES_ABS_MAX):
            assert getattr(Policy(**{setting: good}), setting) == good  # type: ignore[arg-type]
        for bad in (0, MINUTES_ABS_MAX + 1, 1.5, "60"):
            with pytest.raises(InvalidPolicy, match=setting):
                Policy(**{setting: bad})  # type: ignore[arg-type]
    for days in (1, PENDING_EXPIRY_DAYS_MAX):
        assert Policy(pending_expiry_days=days).pending_expiry_days == days
    for days in (0, PENDING_EXPIRY_DAYS_MAX + 1, "7", 7.0):
        with pytest.raises(InvalidPolicy, match="pending_expiry_days") as raised:
            Policy(pending_expiry_days=days)  # type: ignore[arg-type]
        assert raised.value.value == days


def test_no_change_breaks_a_limit_it_does_not_move_past() -> None:
    """A 0-minute line (the person a pot-funded exchange helped) breaks no
    limit, however far out the balance already is."""
    limits = BalanceLimits(-60, 60)
    assert limits.breach(-120, 0) is None
    assert limits.breach(120, 0) is None
    assert limits.breach(60, 0) is None


def test_a_policy_stored_before_a_setting_existed_reads_with_its_default() -> None:
    """Events are never rewritten: a policy an earlier release stored lacks
    the settings added since, and each takes its default."""
    stored = Policy().to_dict()
    for added in ("on_leave", "clearing", "permissions", "pending_expiry_days",
                  "approval_threshold_minutes"):  # fmt: skip
        older = {k: v for k, v in stored.items() if k != added}
        assert Policy.from_dict(older) == Policy(), added
    changed = Policy(on_leave=LeaveRule.DONATE, pending_expiry_days=7)
    assert Policy.from_dict(changed.to_dict()) == changed
    with pytest.raises(InvalidPolicy, match=r"unknown settings in a policy: \['fly'\]"):
        Policy.from_dict({**stored, "fly": True})
