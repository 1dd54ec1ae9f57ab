"""The audit's own replay of the read model's balance and figure tables.

The read model is checked against what the raw log says its tables must
hold, computed here independently of the projector (the same rules, a
second implementation): balances (``rm_accounts``), entry totals by day and
by month (``rm_daily``, ``rm_monthly``: hours, exchanges, transactions, by
month, by category, donations, pot-funded hours), the pots day by day
(``rm_pot_daily``), memberships (``rm_memberships``: member counts, new
members), connections (``rm_pair_days``, ``rm_pairs``) and members' activity
(``rm_activity``: active and inactive members). Every figure of a report is
computed from those tables. A fresh projection of the whole log (every
table, row for row) is the slower ``full`` comparison.

The tables are read in one read transaction, with the read model's
position, before the replay; they are compared when the replay reaches that
position, so a read model that is behind the log is compared as of where it
is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import Any

from timebank.domain.values import POT, EntryKind
from timebank.readmodel import ReadModel
from timebank.readmodel._projector import SERVICE_KINDS, WAITING_TABLES

__all__ = [
    "STALE",
    "Seen",
    "Table",
    "TableReplay",
    "differences",
    "read_tables",
    "without_waiting_days",
]

_Account = tuple[str, str]  # (bank, account)

#: The read model's tables as the comparison reads them: name -> query of
#: (key..., value...) rows. Rows whose values are all zero or null mean
#: nothing (a reversal can leave one) and are left out by the query itself.
_QUERIES = {
    "rm_accounts": (
        "SELECT bank, account, balance_minutes FROM rm_accounts"
        " WHERE coalesce(balance_minutes, 0) != 0"
    ),
    "rm_daily": (
        "SELECT bank, receiver_bank, day, kind, category, entries, minutes FROM rm_daily"
        " WHERE coalesce(entries, 0) != 0 OR coalesce(minutes, 0) != 0"
    ),
    "rm_monthly": (
        "SELECT bank, receiver_bank, month, kind, category, entries, minutes FROM rm_monthly"
        " WHERE coalesce(entries, 0) != 0 OR coalesce(minutes, 0) != 0"
    ),
    "rm_pot_daily": ("SELECT bank, day, minutes FROM rm_pot_daily WHERE coalesce(minutes, 0) != 0"),
    "rm_memberships": "SELECT bank, member, started_on, kind, ended_on FROM rm_memberships",
    "rm_pair_days": (
        "SELECT bank_a, account_a, bank_b, account_b, day, exchanges FROM rm_pair_days"
        " WHERE coalesce(exchanges, 0) != 0"
    ),
    "rm_pairs": (
        "SELECT bank_a, account_a, bank_b, account_b, exchanges, first_day, last_day"
        " FROM rm_pairs WHERE coalesce(exchanges, 0) != 0"
        " OR first_day IS NOT NULL OR last_day IS NOT NULL"
    ),
    "rm_activity": (
        "SELECT bank, account, exchanges, first_day, last_day FROM rm_activity"
        " WHERE coalesce(exchanges, 0) != 0 OR first_day IS NOT NULL OR last_day IS NOT NULL"
    ),
}
#: How many leading columns of each query are the key.
_KEYS = {
    "rm_accounts": 2,
    "rm_daily": 5,
    "rm_monthly": 5,
    "rm_pot_daily": 2,
    "rm_memberships": 3,
    "rm_pair_days": 5,
    "rm_pairs": 4,
    "rm_activity": 2,
}

Table = dict[tuple[Any, ...], tuple[Any, ...]]

#: Span table -> the table of its keys whose first and last days wait for
#: the end of a catch-up (read with the compared tables): the projector's.
STALE = WAITING_TABLES


def without_waiting_days(spans: Table, waiting: Iterable[tuple[Any, ...]]) -> Table:
    """``rm_activity`` or ``rm_pairs`` rows with the first and last days of
    the ``waiting`` keys left out (their counts kept): a catch-up settles
    those days at its end, so a read model caught in the middle of one holds
    them stale."""
    trimmed = dict(spans)
    for key in waiting:
        if key in trimmed:
            exchanges = trimmed[key][0]
            if exchanges:
                trimmed[key] = (exchanges, None, None)
            else:  # nothing standing: the row settles to zero and no days
                del trimmed[key]
    return trimmed


def read_tables(model: ReadModel) -> tuple[int, dict[str, Table]]:
    """The read model's position and its compared tables, read in one
    snapshot (another process catching it up meanwhile changes neither); no
    tables when it was never built. (Read before the replay: on another
    thread beside it, the two contend for the interpreter and the audit of a
    million entries took longer, measured.)"""
    db = model.db
    with db.snapshot():
        if "rm_position" not in db.table_names():
            return 0, {}
        position = int(db.execute("SELECT notification_id FROM rm_position")[0][0])
        tables = {name: _table(name, db.execute(sql)) for name, sql in _QUERIES.items()}
        for stale in STALE.values():
            tables[stale] = {tuple(key): () for key in db.execute(f"SELECT * FROM {stale}")}  # noqa: S608
        return position, tables


def _table(name: str, rows: list[tuple[Any, ...]]) -> Table:
    # key and value sliced in C: rm_pair_days has a row per pair and day
    n = _KEYS[name]
    keys, values = map(itemgetter(slice(n)), rows), map(itemgetter(slice(n, None)), rows)
    return dict(zip(keys, values, strict=True))


_GROUP = EntryKind.GROUP_EXCHANGE.value

#: An entry as its other bank's side and its reversal need it: its daily
#: key (bank, receiver bank, day, kind, category), minutes, and the
#: accounts that provided and received service (none but for a service
#: exchange).
Seen = tuple[tuple[str, str, str, str, str], int, tuple[_Account, ...], tuple[_Account, ...]]


class TableReplay:
    """Accumulates, event by event, what the compared tables must hold.

    The auditor calls :meth:`entry` for the first event of an entry id and
    keeps what it returns with its own record of the id; :meth:`side` for a
    later event of the id (an inter-bank entry has one per bank) and
    :meth:`reversal` for a reversal's events, with that kept record. It
    gives the balances and memberships it keeps itself to :meth:`expected`.

    Kept lean because it runs for every entry of the log (a million in the
    benchmark): a plain tuple per entry whose key and accounts are shared,
    and counters by day under each pair of accounts and each account.
    """

    def __init__(self) -> None:
        self._shared: dict[tuple[str, ...], Any] = {}  # accounts and daily keys, one of each
        self.daily: dict[tuple[str, ...], list[int]] = {}
        self.pot_daily: defaultdict[tuple[str, str], int] = defaultdict(int)
        #: pair of accounts (bank, account, bank, account) -> day -> standing exchanges
        self.pair_days: defaultdict[tuple[str, ...], defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        #: (bank, account) -> day -> standing exchanges it took part in
        self.activity_days: defaultdict[_Account, defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )

    def entry(
        self, bank: str, kind: EntryKind | None, d: dict[str, Any], legs: list[tuple[str, int]]
    ) -> Seen:
        """The first event of an entry id, on ``bank`` (``kind`` None: one side
        of an inter-bank entry); what its other side and its reversal need of
        it, for the auditor to keep."""
        shared = self._shared
        if kind is None:
            kind_value, home, other = d["kind"], d["provider_bank"], d["receiver_bank"]
        else:
            kind_value, home, other = kind._value_, bank, ""
        providers: tuple[_Account, ...] = ()
        receivers: tuple[_Account, ...] = ()
        if kind_value in SERVICE_KINDS:
            if kind_value == _GROUP:
                group = d["participants"]
                providers = tuple(self._account(home, a) for a, m in group if m > 0)
                receivers = tuple(self._account(home, a) for a, m in group if m < 0)
            else:
                providers = (self._account(home, d["provider"]),)
                receivers = (self._account(other or home, d["receiver"]),)
        key = (home, other or "", d["occurred_on"]["_data_"], kind_value, d["category"] or "")
        seen = (shared.setdefault(key, key), d["minutes"], providers, receivers)
        self._count(seen, 1)
        self.side(bank, seen, d, legs)
        return seen

    def side(self, bank: str, seen: Seen, d: dict[str, Any], legs: list[tuple[str, int]]) -> None:
        """An entry's event on ``bank``: the first, or the other bank's side."""
        self._active(seen, bank, 1)
        self._pot(bank, d["occurred_on"]["_data_"], legs)

    def reversal(
        self, bank: str, d: dict[str, Any], original: Seen, first: bool, legs: list[tuple[str, int]]
    ) -> None:
        """One event of a reversal of ``original``, on ``bank`` (``first``: the
        reversal id's first event)."""
        if first:
            self._count(original, -1)
        self._active(original, bank, -1)
        self._pot(bank, d["occurred_on"]["_data_"], legs)

    def _account(self, bank: str, account: Any) -> _Account:
        key = (bank, str(account))
        shared: _Account = self._shared.setdefault(key, key)
        return shared

    def _count(self, seen: Seen, sign: int) -> None:
        key, minutes, providers, receivers = seen
        totals = self.daily.get(key)
        if totals is None:
            self.daily[key] = [sign, sign * minutes]
        else:
            totals[0] += sign
            totals[1] += sign * minutes
        day = key[2]
        for p in providers:
            for r in receivers:
                self.pair_days[(*p, *r) if p < r else (*r, *p)][day] += sign

    def _active(self, seen: Seen, bank: str, sign: int) -> None:
        # each bank's side counts its own accounts, once per entry
        day = seen[0][2]
        accounts = seen[2] + seen[3]
        if len(accounts) > 1 and (len(accounts) > 2 or accounts[0] == accounts[1]):
            accounts = tuple(set(accounts))
        for account in accounts:
            if account[0] == bank:
                self.activity_days[account][day] += sign

    def _pot(self, bank: str, day: str, legs: list[tuple[str, int]]) -> None:
        for account, minutes in legs:
            if account == POT:
                self.pot_daily[bank, day] += minutes

    # --- the comparison ---------------------------------------------------------------
    def expected(
        self,
        balances: dict[_Account, int],
        memberships: Iterable[tuple[str, str, str, str, str | None]],
    ) -> dict[str, Table]:
        """What each compared table must hold, given the replay's balances
        and memberships (bank, member, started_on, kind, ended_on)."""
        monthly: defaultdict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0])
        for (home, other, day, kind, category), (n, m) in self.daily.items():
            totals = monthly[home, other, day[:7], kind, category]
            totals[0] += n
            totals[1] += m
        return {
            "rm_accounts": _nonzero({k: (m,) for k, m in balances.items()}),
            "rm_daily": _nonzero({k: tuple(v) for k, v in self.daily.items()}),
            "rm_monthly": _nonzero({k: tuple(v) for k, v in monthly.items()}),
            "rm_pot_daily": _nonzero({k: (m,) for k, m in self.pot_daily.items()}),
            "rm_memberships": {(b, m, s): (k, e) for b, m, s, k, e in memberships},
            "rm_pair_days": {
                (*pair, day): (n,)
                for pair, days in self.pair_days.items()
                for day, n in days.items()
                if n
            },
            "rm_pairs": _spans(self.pair_days),
            "rm_activity": _spans(self.activity_days),
        }


def _nonzero(table: Table) -> Table:
    return {k: v for k, v in table.items() if any(value not in (0, None) for value in v)}


def _spans(days: Mapping[Any, Mapping[str, int]]) -> Table:
    """key -> day -> standing exchanges, as key -> (exchanges, first day,
    last day) over the days on which the key has standing exchanges."""
    return {
        key: (sum(counts.values()), min(standing), max(standing))
        for key, counts in days.items()
        if (standing := [day for day, n in counts.items() if n])
    }


def differences(ours: Table, theirs: Table) -> list[tuple[Any, ...]]:
    """Keys whose rows differ (or are in one table only), sorted."""
    if ours == theirs:  # compared in C: most audits stop here
        return []
    keys = {k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)}
    return sorted(keys, key=lambda k: tuple(str(v) for v in k))
