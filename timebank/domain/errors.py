"""One hierarchy of named errors for every refused command.

Every error has a stable ``code`` (snake_case, safe to match on) and carries
the ids involved as attributes, so a caller can act on it without parsing
the message. A refused command changes nothing.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AlreadyReversed",
    "BalanceLimitExceeded",
    "BankAlreadyExists",
    "BankNotFound",
    "BeforeBankOpened",
    "CannotReverseReversal",
    "ConcurrencyConflict",
    "EntryConflict",
    "EntryNotFound",
    "EntryTooLarge",
    "InvalidAmount",
    "InvalidDate",
    "InvalidGroup",
    "InvalidId",
    "InvalidInput",
    "InvalidPolicy",
    "LeaveBeforeLastEntry",
    "MemberAlreadyJoined",
    "MemberNotActive",
    "MemberNotFound",
    "MemberStatusConflict",
    "NotFound",
    "OccurredBeforeJoining",
    "OccurredInFuture",
    "PotOverdrawn",
    "ReversalBeforeEntry",
    "RuleViolation",
    "SelfExchange",
    "StorageError",
    "StoreNotFound",
    "TimebankError",
    "UnsupportedStorageURL",
]


class TimebankError(Exception):
    """Base of every error timebank raises on purpose."""

    code: ClassVar[str] = "timebank_error"

    def __init__(self, message: str, **ids: Any) -> None:
        super().__init__(message)
        self.message = message
        self.ids: dict[str, Any] = ids
        for key, value in ids.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return self.message


# --- input that can never be valid -------------------------------------------
class InvalidInput(TimebankError):
    """The input is malformed, whatever the state of the ledger."""

    code = "invalid_input"


class InvalidAmount(InvalidInput):
    """An amount is not a positive whole number of minutes (or is unparseable)."""

    code = "invalid_amount"


class InvalidId(InvalidInput):
    """An id is empty, too long, or has characters ids may not have."""

    code = "invalid_id"


class InvalidDate(InvalidInput):
    """A date is not an ISO date (YYYY-MM-DD)."""

    code = "invalid_date"


class InvalidGroup(InvalidInput):
    """A group exchange is malformed: no provider or no receiver, a member on
    both sides or twice, a share that is not positive, providers' and
    receivers' minutes that do not balance, or too many participants."""

    code = "invalid_group"


class InvalidPolicy(InvalidInput):
    """A bank policy is inconsistent (for example a pot allowed below zero)."""

    code = "invalid_policy"


# --- things that are not there -------------------------------------------------
class NotFound(TimebankError):
    code = "not_found"


class BankNotFound(NotFound):
    code = "bank_not_found"


class MemberNotFound(NotFound):
    code = "member_not_found"


class EntryNotFound(NotFound):
    code = "entry_not_found"


# --- things that are there already --------------------------------------------
class BankAlreadyExists(TimebankError):
    code = "bank_already_exists"


class MemberAlreadyJoined(TimebankError):
    code = "member_already_joined"


class EntryConflict(TimebankError):
    """An entry id is already recorded with different fields.

    ``field`` names the first field that differs, as TigerBeetle's
    ``exists_with_different_*`` results do.
    """

    code = "entry_conflict"


# --- rules of the ledger --------------------------------------------------------
class RuleViolation(TimebankError):
    """The input is well formed but the ledger's rules refuse it."""

    code = "rule_violation"


class SelfExchange(RuleViolation):
    code = "self_exchange"


class EntryTooLarge(RuleViolation):
    code = "entry_too_large"


class OccurredInFuture(RuleViolation):
    code = "occurred_in_future"


class OccurredBeforeJoining(RuleViolation):
    code = "occurred_before_joining"


class BalanceLimitExceeded(RuleViolation):
    code = "balance_limit_exceeded"


class PotOverdrawn(RuleViolation):
    code = "pot_overdrawn"


class AlreadyReversed(RuleViolation):
    code = "already_reversed"


class CannotReverseReversal(RuleViolation):
    code = "cannot_reverse_reversal"


class ReversalBeforeEntry(RuleViolation):
    code = "reversal_before_entry"


class MemberNotActive(RuleViolation):
    """A suspended member, or one who has left, cannot take part in new entries."""

    code = "member_not_active"


class MemberStatusConflict(RuleViolation):
    """A lifecycle command does not apply to the member's current state
    (``status``): suspending someone who is not active, rejoining someone who
    has not left, and so on."""

    code = "member_status_conflict"


class LeaveBeforeLastEntry(RuleViolation):
    """A member cannot leave on a date before one of their entries."""

    code = "leave_before_last_entry"


class BeforeBankOpened(RuleViolation):
    """A member cannot join (nor a bank record anything) before it opened."""

    code = "before_bank_opened"


# --- storage ----------------------------------------------------------------------
class ConcurrencyConflict(TimebankError):
    """Other writers kept changing the same bank; retries were exhausted."""

    code = "concurrency_conflict"


class StorageError(TimebankError):
    code = "storage_error"


class UnsupportedStorageURL(StorageError):
    code = "unsupported_storage_url"


class StoreNotFound(StorageError):
    code = "store_not_found"
