"""The audit's own replay of the read model's balance and figure tables.

The read model is checked against what the raw log says its tables must
hold, computed here independently of the projector (the same rules, a
second implementation): balances (``rm_accounts``), entry totals by day and
by month (``rm_daily``, ``rm_monthly``: hours, exchanges, transactions, by
month, by category, donations, pot-funded hours), the pots day by day
(``rm_pot_daily``), memberships (``rm_memberships``: member counts, new
members), connections (``rm_pair_days``, ``rm_pairs``; ``rm_connections``:
members with one connection) and members' activity (``rm_activity``: active
and inactive members). Every figure of a report is
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
from itertools import chain, groupby
from operator import itemgetter
from typing import Any

from timebank.domain.values import POT, EntryKind
from timebank.readmodel import ReadModel
from timebank.readmodel._projector import EVERY_ACCOUNT, SERVICE_KINDS, WAITING_TABLES

__all__ = [
    "CONNECTIONS_WAITING",
    "STALE",
    "Seen",
    "Table",
    "TableReplay",
    "differences",
    "read_tables",
    "without_waiting_accounts",
    "without_waiting_days",
]

_AccountKey = tuple[str, str]  # (bank, account)

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
    "rm_pair_days": (  # in the order of its index by pair: grouped by _table
        "SELECT bank_a, account_a, bank_b, account_b, day, exchanges FROM rm_pair_days"
        " WHERE coalesce(exchanges, 0) != 0 ORDER BY bank_a, account_a, bank_b, account_b, day"
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
    "rm_connections": (
        "SELECT bank, account, connected_on, partner, second_on FROM rm_connections"
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
    "rm_connections": 2,
}

Table = dict[tuple[Any, ...], tuple[Any, ...]]
#: ``rm_pair_days`` as compared: pair (bank, account, bank, account) ->
#: day -> standing exchanges (a row per pair and day would be a million
#: keys built on both sides, at a million entries).
PairDays = dict[tuple[str, ...], dict[str, int]]

#: Span table -> the table of its keys whose first and last days wait for
#: the end of a catch-up (read with the compared tables): the projector's.
STALE = WAITING_TABLES
#: The accounts whose rm_connections rows wait for the end of a catch-up.
CONNECTIONS_WAITING = "rm_stale_connections"


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


def without_waiting_accounts(connections: Table, waiting: Iterable[tuple[Any, ...]]) -> Table:
    """``rm_connections`` rows with the ``waiting`` accounts left out (all of
    them, when every account waits: a catch-up from empty not yet at its
    end)."""
    keys = {tuple(key) for key in waiting}
    if EVERY_ACCOUNT in keys:
        return {}
    return {key: row for key, row in connections.items() if key not in keys}


def read_tables(model: ReadModel) -> tuple[int, dict[str, Any]]:
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
        tables: dict[str, Any] = {
            name: _table(name, db.execute(sql)) for name, sql in _QUERIES.items()
        }
        for stale in (*STALE.values(), CONNECTIONS_WAITING):
            tables[stale] = {tuple(key): () for key in db.execute(f"SELECT * FROM {stale}")}  # noqa: S608
        return position, tables


_PAIR, _DAY_AND_COUNT = itemgetter(0, 1, 2, 3), itemgetter(4, 5)


def _table(name: str, rows: list[tuple[Any, ...]]) -> Table | PairDays:
    if name == "rm_pair_days":  # rows in pair order: grouped, and each group's days, in C
        return {pair: dict(map(_DAY_AND_COUNT, days)) for pair, days in groupby(rows, _PAIR)}
    # key and value sliced in C
    n = _KEYS[name]
    keys, values = map(itemgetter(slice(n)), rows), map(itemgetter(slice(n, None)), rows)
    return dict(zip(keys, values, strict=True))


_GROUP = EntryKind.GROUP_EXCHANGE.value


class _Account:
    """One account of the replay, shared by every entry that names it, with
    its standing exchanges by day, and by day with each account it provided
    service to (keyed by that account's object, which hashes by identity:
    no names are hashed per entry)."""

    __slots__ = ("days", "key", "partners")

    def __init__(self, key: _AccountKey) -> None:
        self.key = key
        self.days: defaultdict[str, int] = defaultdict(int)
        #: each account it provided service to -> day -> standing exchanges
        self.partners: dict[_Account, defaultdict[str, int]] = {}


#: A daily key's totals: the key (bank, receiver bank, day, kind,
#: category), entries, minutes.
_Daily = list[Any]

#: An entry as its other bank's side and its reversal need it: its daily
#: totals (shared with every entry of the same key), minutes, and the
#: accounts that provided and received service (none but for a service
#: exchange).
Seen = tuple[_Daily, int, tuple[_Account, ...], tuple[_Account, ...]]


class TableReplay:
    """Accumulates, event by event, what the compared tables must hold.

    The auditor calls :meth:`entry` for the first event of an entry id and
    keeps what it returns with its own record of the id; :meth:`side` for a
    later event of the id (an inter-bank entry has one per bank) and
    :meth:`reversal` for a reversal's events, with that kept record. It
    gives the balances and memberships it keeps itself to :meth:`expected`.

    Kept lean because it runs for every entry of the log (a million in the
    benchmark): a plain tuple per entry whose daily key is shared, and one
    :class:`_Account` per account holding its counters by day, so that an
    entry's counts are found from the accounts it already holds.
    """

    def __init__(self) -> None:
        #: bank -> account -> its replay
        self._accounts: defaultdict[str, dict[str, _Account]] = defaultdict(dict)
        self.daily: dict[tuple[str, ...], _Daily] = {}
        self.pot_daily: defaultdict[tuple[str, str], int] = defaultdict(int)

    def entry(
        self, bank: str, kind: EntryKind | None, d: dict[str, Any], legs: list[tuple[str, int]]
    ) -> Seen:
        """The first event of an entry id, on ``bank`` (``kind`` None: one side
        of an inter-bank entry); what its other side and its reversal need of
        it, for the auditor to keep."""
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
        daily = self.daily.get(key)
        if daily is None:
            daily = self.daily[key] = [key, 0, 0]
        seen = (daily, d["minutes"], providers, receivers)
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
        accounts = self._accounts[bank]
        found = accounts.get(account)
        if found is None:  # new, or not named by a string (an event written around the API)
            name = str(account)
            found = accounts.get(name)
            if found is None:
                found = accounts[name] = _Account((bank, name))
        return found

    def _count(self, seen: Seen, sign: int) -> None:
        daily, minutes, providers, receivers = seen
        daily[1] += sign
        daily[2] += sign * minutes
        day = daily[0][2]
        for p in providers:
            partners = p.partners
            for r in receivers:
                days = partners.get(r)
                if days is None:
                    days = partners[r] = defaultdict(int)
                days[day] += sign

    def _active(self, seen: Seen, bank: str, sign: int) -> None:
        # each bank's side counts its own accounts, once per entry
        day = seen[0][0][2]
        accounts = seen[2] + seen[3]
        if len(accounts) > 1 and (len(accounts) > 2 or accounts[0] is accounts[1]):
            accounts = tuple(set(accounts))
        for account in accounts:
            if account.key[0] == bank:
                account.days[day] += sign

    def _pot(self, bank: str, day: str, legs: list[tuple[str, int]]) -> None:
        for account, minutes in legs:
            if account == POT:
                self.pot_daily[bank, day] += minutes

    # --- the comparison ---------------------------------------------------------------
    def expected(
        self,
        balances: dict[_AccountKey, int],
        memberships: Iterable[tuple[str, str, str, str, str | None]],
    ) -> dict[str, Any]:
        """What each compared table must hold, given the replay's balances
        and memberships (bank, member, started_on, kind, ended_on)."""
        monthly: defaultdict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0])
        for (home, other, day, kind, category), n, m in self.daily.values():
            totals = monthly[home, other, day[:7], kind, category]
            totals[0] += n
            totals[1] += m
        accounts = [a for by_bank in self._accounts.values() for a in by_bank.values()]
        pair_days = self._pairs(accounts)
        return {
            "rm_accounts": _nonzero({k: (m,) for k, m in balances.items()}),
            "rm_daily": _nonzero({k: (n, m) for k, n, m in self.daily.values()}),
            "rm_monthly": _nonzero({k: tuple(v) for k, v in monthly.items()}),
            "rm_pot_daily": _nonzero({k: (m,) for k, m in self.pot_daily.items()}),
            "rm_memberships": {(b, m, s): (k, e) for b, m, s, k, e in memberships},
            "rm_pair_days": pair_days,
            "rm_pairs": _spans(pair_days),
            "rm_activity": _spans({a.key: a.days for a in accounts}),
            "rm_connections": _connections(pair_days),
        }

    @staticmethod
    def _pairs(accounts: Iterable[_Account]) -> PairDays:
        """Each pair of accounts (the lesser first) -> day -> standing
        exchanges, whichever way round each went; days with none left out."""
        pairs: PairDays = {}
        for p in accounts:
            for r, days in p.partners.items():
                pair = (*p.key, *r.key) if p.key < r.key else (*r.key, *p.key)
                merged = pairs.get(pair)
                if merged is None:
                    pairs[pair] = days
                else:  # exchanges both ways: a new dict, the accounts' own are kept
                    merged = pairs[pair] = dict(merged)
                    for day, n in days.items():
                        merged[day] = merged.get(day, 0) + n
        for key, counts in pairs.items():
            if 0 in counts.values():  # reversed to nothing
                pairs[key] = {day: n for day, n in counts.items() if n}
        return {key: counts for key, counts in pairs.items() if counts}


def _connections(pair_days: PairDays) -> Table:
    """Each account's first connection and the first day of its second, as
    ``rm_connections`` holds them: (bank, account) -> (connected_on,
    partner, second_on), the partner a member (null when two began on the
    first day)."""
    firsts: defaultdict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for (bank_a, account_a, bank_b, account_b), days in pair_days.items():
        first = min(days)
        for own, partner in (((bank_a, account_a), account_b), ((bank_b, account_b), account_a)):
            known = firsts[own].get(partner)
            if known is None or first < known:
                firsts[own][partner] = first
    table: Table = {}
    for account, by_partner in firsts.items():
        (partner, connected_on), *others = sorted(by_partner.items(), key=itemgetter(1))
        second_on = min((day for _, day in others), default=None)
        table[account] = (connected_on, None if second_on == connected_on else partner, second_on)
    return table


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


def differences(ours: Table | PairDays, theirs: Table | PairDays) -> list[tuple[Any, ...]]:
    """Keys whose rows differ (or are in one table only), sorted; a pair's
    days are rows of their own."""
    if ours == theirs:  # compared in C: most audits stop here
        return []
    if any(isinstance(v, dict) for v in chain(ours.values(), theirs.values())):
        ours, theirs = _by_day(ours), _by_day(theirs)
    keys = {k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)}
    return sorted(keys, key=lambda k: tuple(str(v) for v in k))


def _by_day(pairs: Mapping[tuple[Any, ...], Any]) -> Table:
    return {(*pair, day): (n,) for pair, days in pairs.items() for day, n in days.items()}
