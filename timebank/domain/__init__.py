"""The pure domain of timebank: no I/O, only the standard library, attrs and
``eventsourcing.domain``. A test walks these modules' imports to keep it so."""

from timebank.domain.bank import Bank, bank_uuid
from timebank.domain.entries import Leg, NewEntry, RecordedEntry, legs_for
from timebank.domain.policy import BalanceLimits, LimitMode, Policy
from timebank.domain.values import (
    OPENING,
    POT,
    AccountKind,
    EntryKind,
    format_hours,
    parse_date,
    parse_minutes,
)

__all__ = [
    "OPENING",
    "POT",
    "AccountKind",
    "BalanceLimits",
    "Bank",
    "EntryKind",
    "Leg",
    "LimitMode",
    "NewEntry",
    "Policy",
    "RecordedEntry",
    "bank_uuid",
    "format_hours",
    "legs_for",
    "parse_date",
    "parse_minutes",
]
