"""A bank's policy: per-entry limits, balance limits per account kind, timezone."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from timebank.domain.errors import InvalidPolicy
from timebank.domain.roles import Permissions
from timebank.domain.values import MINUTES_ABS_MAX, AccountKind, is_whole

__all__ = ["BalanceLimits", "LeaveRule", "LimitMode", "Policy"]


class LimitMode(StrEnum):
    """What happens when an entry would take a balance past a limit."""

    REFUSE = "refuse"  #: the entry is refused with BalanceLimitExceeded
    FLAG = "flag"  #: the entry is recorded and flagged for the coordinator


class LeaveRule(StrEnum):
    """What happens to a member's balance when they leave a bank."""

    FREEZE = "freeze"  #: the balance stays, unchanged
    DONATE = "donate"  #: a positive balance is donated to the bank's pot


def _optional_minutes(value: int | None) -> None:
    if value is not None and (not is_whole(value) or abs(value) > MINUTES_ABS_MAX):
        raise InvalidPolicy(f"limit must be whole minutes or None: {value!r}", value=value)


@attrs.frozen
class BalanceLimits:
    """Lowest and highest balance allowed, in minutes; ``None`` means no limit.

    ``lowest_minutes`` must be at most 0 and ``highest_minutes`` at least 0,
    so that a new account (balance 0) is always within its limits.
    """

    lowest_minutes: int | None = None
    highest_minutes: int | None = None

    def __attrs_post_init__(self) -> None:
        _optional_minutes(self.lowest_minutes)
        _optional_minutes(self.highest_minutes)
        if self.lowest_minutes is not None and self.lowest_minutes > 0:
            raise InvalidPolicy("lowest balance must be 0 or below", limits=self)
        if self.highest_minutes is not None and self.highest_minutes < 0:
            raise InvalidPolicy("highest balance must be 0 or above", limits=self)

    def breach(self, balance_minutes: int, change_minutes: int) -> int | None:
        """The limit that ``change_minutes`` breaks, or ``None``.

        A change breaks a limit when it leaves the balance outside the limits
        *and* moves it further out; a change that brings an out-of-limit
        balance back towards its limits is always allowed.
        """
        after = balance_minutes + change_minutes
        low, high = self.lowest_minutes, self.highest_minutes
        if low is not None and change_minutes < 0 and after < low:
            return low
        if high is not None and change_minutes > 0 and after > high:
            return high
        return None

    def to_dict(self) -> dict[str, int | None]:
        return {"lowest_minutes": self.lowest_minutes, "highest_minutes": self.highest_minutes}


def _positive_minutes(_: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if not is_whole(value) or not 0 < value <= MINUTES_ABS_MAX:
        raise InvalidPolicy(f"{attribute.name} must be positive whole minutes: {value!r}")


def _optional_positive_minutes(_: Any, attribute: attrs.Attribute[int], value: int | None) -> None:
    if value is not None:
        _positive_minutes(_, attribute, value)


#: Longest expiry a policy may give pending entries (a year).
PENDING_EXPIRY_DAYS_MAX = 366


def _expiry_days(_: Any, __: attrs.Attribute[int], value: int) -> None:
    if not is_whole(value) or not 0 < value <= PENDING_EXPIRY_DAYS_MAX:
        raise InvalidPolicy(f"pending_expiry_days must be 1..366: {value!r}", value=value)


def _timezone(_: Any, __: attrs.Attribute[str], value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidPolicy(f"unknown timezone: {value!r}", timezone=value) from None


def _instance_of(kind: type) -> Callable[[Any, attrs.Attribute[Any], object], None]:
    """A validator: the setting holds a ``kind`` (a :class:`BalanceLimits`,
    the :class:`Permissions`), or :class:`InvalidPolicy` names it."""

    def check(_: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kind):
            raise InvalidPolicy(
                f"{attribute.name} must be {kind.__name__}, got {value!r}", value=value
            )

    return check


_limits = _instance_of(BalanceLimits)


def _limit_mode(value: object) -> LimitMode:
    return LimitMode(_choice(LimitMode, "limit_mode", value))


def _leave_rule(value: object) -> LeaveRule:
    return LeaveRule(_choice(LeaveRule, "on_leave", value))


def _choice(kind: type[StrEnum], name: str, value: object) -> str:
    """``value`` if it is one of ``kind``'s, or :class:`InvalidPolicy` that
    names the setting and its values."""
    if not isinstance(value, str) or value not in {str(k) for k in kind}:
        choices = ", ".join(str(k) for k in kind)
        raise InvalidPolicy(f"{name} must be one of {choices}: {value!r}", value=value)
    return str(value)


def _pot_limits(_: Any, attribute: attrs.Attribute[BalanceLimits], value: BalanceLimits) -> None:
    _limits(_, attribute, value)
    if value.lowest_minutes != 0:
        raise InvalidPolicy("the pot's lowest balance is 0", limits=value)


@attrs.frozen
class Policy:
    """The rules a bank applies to its entries.

    Defaults: at most 24 hours per entry, opening balances up to 10,000 hours
    either way, no balance limits for members and organisations, the pot never
    below 0, limit breaches refused, dates in the Europe/London timezone, and
    a leaving member's balance frozen, no limits on clearing accounts, the
    default :class:`Permissions`, pending entries expiring after 30 days and
    no approval threshold (see docs/workflows.md).
    """

    entry_minutes_max: int = attrs.field(default=24 * 60, validator=_positive_minutes)
    opening_balance_minutes_max: int = attrs.field(default=10_000 * 60, validator=_positive_minutes)
    individual: BalanceLimits = attrs.field(default=BalanceLimits(), validator=_limits)
    organisation: BalanceLimits = attrs.field(default=BalanceLimits(), validator=_limits)
    pot: BalanceLimits = attrs.field(default=BalanceLimits(0, None), validator=_pot_limits)
    limit_mode: LimitMode = attrs.field(default=LimitMode.REFUSE, converter=_limit_mode)
    timezone: str = attrs.field(default="Europe/London", validator=_timezone)
    on_leave: LeaveRule = attrs.field(default=LeaveRule.FREEZE, converter=_leave_rule)
    #: Limits of the clearing accounts a bank keeps with the other banks of
    #: its tree: a "trust line" for inter-bank entries.
    clearing: BalanceLimits = attrs.field(default=BalanceLimits(), validator=_limits)
    permissions: Permissions = attrs.field(factory=Permissions, validator=_instance_of(Permissions))
    pending_expiry_days: int = attrs.field(default=30, validator=_expiry_days)
    #: Entries proposed by members for more than this wait for a coordinator.
    approval_threshold_minutes: int | None = attrs.field(
        default=None, validator=_optional_positive_minutes
    )

    def limits_for(self, kind: AccountKind) -> BalanceLimits | None:
        """Balance limits for an account kind; system accounts have none."""
        if kind is AccountKind.INDIVIDUAL:
            return self.individual
        if kind is AccountKind.ORGANISATION:
            return self.organisation
        if kind is AccountKind.POT:
            return self.pot
        if kind is AccountKind.CLEARING:
            return self.clearing
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reads it back."""
        return {
            "entry_minutes_max": self.entry_minutes_max,
            "opening_balance_minutes_max": self.opening_balance_minutes_max,
            "individual": self.individual.to_dict(),
            "organisation": self.organisation.to_dict(),
            "pot": self.pot.to_dict(),
            "limit_mode": str(self.limit_mode),
            "timezone": self.timezone,
            "on_leave": str(self.on_leave),
            "clearing": self.clearing.to_dict(),
            "permissions": self.permissions.to_dict(),
            "pending_expiry_days": self.pending_expiry_days,
            "approval_threshold_minutes": self.approval_threshold_minutes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        """Read :meth:`to_dict`'s form; settings added in later releases take
        their defaults when absent (events are never rewritten). A setting
        this version does not know is :class:`InvalidPolicy` (a stored
        policy that holds one is damaged, or of a later release)."""
        unknown = data.keys() - _SETTINGS
        if unknown:
            raise InvalidPolicy(f"unknown settings in a policy: {sorted(unknown)}")
        return cls(
            entry_minutes_max=data["entry_minutes_max"],
            opening_balance_minutes_max=data["opening_balance_minutes_max"],
            individual=BalanceLimits(**data["individual"]),
            organisation=BalanceLimits(**data["organisation"]),
            pot=BalanceLimits(**data["pot"]),
            limit_mode=LimitMode(data["limit_mode"]),
            timezone=data["timezone"],
            on_leave=LeaveRule(data.get("on_leave", LeaveRule.FREEZE)),
            clearing=BalanceLimits(**data.get("clearing", {})),
            permissions=Permissions.from_dict(data.get("permissions", {})),
            pending_expiry_days=data.get("pending_expiry_days", 30),
            approval_threshold_minutes=data.get("approval_threshold_minutes"),
        )


#: The settings a policy's dict holds (:meth:`Policy.to_dict`).
_SETTINGS = frozenset(Policy().to_dict())
