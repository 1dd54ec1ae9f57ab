"""timebank: an event-sourced time-banking ledger. 1 hour of help = 1 time credit.

Open a store with :func:`timebank.open` and use the :class:`Timebank` it
returns; every refused command raises a :class:`TimebankError` subclass from
:mod:`timebank.errors` and changes nothing. :func:`timebank.audit` checks
that a store keeps every ledger invariant.
"""

from timebank._audit import AuditReport, Finding
from timebank.api import Timebank, audit, open, restore
from timebank.domain.entries import RecordedEntry
from timebank.domain.errors import TimebankError
from timebank.domain.policy import BalanceLimits, LeaveRule, LimitMode, Policy
from timebank.domain.roles import Action, Permissions, Role
from timebank.domain.values import (
    OPENING,
    POT,
    AccountKind,
    EntryKind,
    Hours,
    format_hours,
    parse_minutes,
)
from timebank.importing import (
    BalanceCheck,
    BalanceMismatch,
    ImportFailed,
    ImportResult,
    RowProblem,
    read_csv,
)
from timebank.readmodel import ReadModel
from timebank.readmodel.report import (
    AreaFigures,
    CategoryFigures,
    KindFigures,
    MemberActivity,
    MonthFigures,
    Report,
)
from timebank.readmodel.words import REPORT_WORDS
from timebank.storage import Profile
from timebank.storage._format import STORE_FORMAT
from timebank.views import (
    AccountBalance,
    Backup,
    BankEntry,
    BankInfo,
    Erasure,
    Figures,
    InactiveMember,
    Member,
    NearLimit,
    OneConnection,
    PendingEntry,
    Restored,
    StatementLine,
    SubjectAccess,
)

#: This release: pyproject.toml reads the package's version from here, and
#: CHANGELOG.md's newest section is headed with it.
__version__ = "0.1.0"

__all__ = [
    "OPENING",
    "POT",
    "REPORT_WORDS",
    "STORE_FORMAT",
    "AccountBalance",
    "AccountKind",
    "Action",
    "AreaFigures",
    "AuditReport",
    "Backup",
    "BalanceCheck",
    "BalanceLimits",
    "BalanceMismatch",
    "BankEntry",
    "BankInfo",
    "CategoryFigures",
    "EntryKind",
    "Erasure",
    "Figures",
    "Finding",
    "Hours",
    "ImportFailed",
    "ImportResult",
    "InactiveMember",
    "KindFigures",
    "LeaveRule",
    "LimitMode",
    "Member",
    "MemberActivity",
    "MonthFigures",
    "NearLimit",
    "OneConnection",
    "PendingEntry",
    "Permissions",
    "Policy",
    "Profile",
    "ReadModel",
    "RecordedEntry",
    "Report",
    "Restored",
    "Role",
    "RowProblem",
    "StatementLine",
    "SubjectAccess",
    "Timebank",
    "TimebankError",
    "audit",
    "format_hours",
    "open",
    "parse_minutes",
    "read_csv",
    "restore",
]
