"""The read model's tables (documented, column by column, in docs/reports.md).

One SQL text serves SQLite and PostgreSQL: dates are ISO text, amounts are
integer minutes, and the empty string stands for "none" in the key columns
of the aggregate tables (a primary key cannot hold NULL).
"""

from __future__ import annotations

__all__ = [
    "INDEXES",
    "LOOKUP_INDEXES",
    "RETIRED_INDEXES",
    "SCHEMA_VERSION",
    "TABLES",
    "create_statements",
    "index_statements",
    "upgrade_statements",
]

#: Bumped whenever a table or the meaning of a column changes: a read model
#: of another version is dropped and rebuilt from the log when opened,
#: unless :func:`upgrade_statements` brings it up in place.
SCHEMA_VERSION = 9

_KEYED = "{without_rowid}"

#: Table name -> CREATE TABLE statement (``{without_rowid}`` and ``{seq_key}``
#: are filled in per dialect). The order is the order of creation.
TABLES: dict[str, str] = {
    "rm_position": (
        "CREATE TABLE rm_position ("
        " singleton INTEGER PRIMARY KEY CHECK (singleton = 1),"
        " notification_id BIGINT NOT NULL,"
        " schema_version INTEGER NOT NULL,"
        " last_event TEXT)"
    ),
    "rm_banks": (
        "CREATE TABLE rm_banks ("
        " bank TEXT PRIMARY KEY, stream TEXT NOT NULL UNIQUE, parent TEXT,"
        " name TEXT NOT NULL, opened_on TEXT NOT NULL, policy TEXT NOT NULL)"
    ),
    "rm_accounts": (
        "CREATE TABLE rm_accounts ("
        " bank TEXT NOT NULL, account TEXT NOT NULL, kind TEXT NOT NULL,"
        " balance_minutes BIGINT NOT NULL, status TEXT, joined_on TEXT,"
        " PRIMARY KEY (bank, account))" + _KEYED
    ),
    "rm_memberships": (
        "CREATE TABLE rm_memberships ("
        " bank TEXT NOT NULL, member TEXT NOT NULL, kind TEXT NOT NULL,"
        " started_on TEXT NOT NULL, ended_on TEXT,"
        " PRIMARY KEY (bank, member, started_on))" + _KEYED
    ),
    "rm_entries": (
        "CREATE TABLE rm_entries ("
        " entry_id TEXT NOT NULL UNIQUE, seq {seq_key}, bank TEXT NOT NULL,"
        " receiver_bank TEXT, kind TEXT NOT NULL, occurred_on TEXT NOT NULL,"
        " minutes BIGINT NOT NULL, category TEXT, provider TEXT, receiver TEXT,"
        " reverses TEXT, reversed_by TEXT, recorded_at TEXT NOT NULL, actor TEXT NOT NULL,"
        " on_behalf_of TEXT, flags TEXT, receiver_recorded_at TEXT, receiver_flags TEXT)"
    ),
    "rm_entry_parties": (
        "CREATE TABLE rm_entry_parties ("
        " entry_id TEXT NOT NULL, bank TEXT NOT NULL, account TEXT NOT NULL,"
        " role TEXT NOT NULL, minutes BIGINT NOT NULL, seq BIGINT NOT NULL,"
        " entry_seq BIGINT NOT NULL,"
        " occurred_on TEXT NOT NULL, kind TEXT NOT NULL, category TEXT,"
        " leg INTEGER, reversed INTEGER NOT NULL)"
    ),
    "rm_pot_flows": (
        "CREATE TABLE rm_pot_flows ("
        " entry_id TEXT NOT NULL, bank TEXT NOT NULL, occurred_on TEXT NOT NULL,"
        " kind TEXT NOT NULL, minutes BIGINT NOT NULL, reversed INTEGER NOT NULL,"
        " PRIMARY KEY (entry_id, bank))" + _KEYED
    ),
    "rm_pot_daily": (
        "CREATE TABLE rm_pot_daily ("
        " bank TEXT NOT NULL, day TEXT NOT NULL, minutes BIGINT NOT NULL,"
        " PRIMARY KEY (bank, day))" + _KEYED
    ),
    "rm_daily": (
        "CREATE TABLE rm_daily ("
        " bank TEXT NOT NULL, receiver_bank TEXT NOT NULL, day TEXT NOT NULL,"
        " kind TEXT NOT NULL, category TEXT NOT NULL,"
        " entries BIGINT NOT NULL, minutes BIGINT NOT NULL,"
        " PRIMARY KEY (bank, receiver_bank, day, kind, category))" + _KEYED
    ),
    "rm_monthly": (
        "CREATE TABLE rm_monthly ("
        " bank TEXT NOT NULL, receiver_bank TEXT NOT NULL, month TEXT NOT NULL,"
        " kind TEXT NOT NULL, category TEXT NOT NULL,"
        " entries BIGINT NOT NULL, minutes BIGINT NOT NULL,"
        " PRIMARY KEY (bank, receiver_bank, month, kind, category))" + _KEYED
    ),
    "rm_activity": (
        "CREATE TABLE rm_activity ("
        " bank TEXT NOT NULL, account TEXT NOT NULL,"
        " exchanges BIGINT NOT NULL, first_day TEXT, last_day TEXT,"
        " PRIMARY KEY (bank, account))" + _KEYED
    ),
    # Accounts whose first and last days in rm_activity wait to be recomputed
    # from their party rows (a reversal took one of their exchanges out): the
    # end of each catch-up settles them, once the index that the
    # recomputation seeks by exists (empty between catch-ups).
    "rm_stale_activity": (
        "CREATE TABLE rm_stale_activity ("
        " bank TEXT NOT NULL, account TEXT NOT NULL,"
        " PRIMARY KEY (bank, account))" + _KEYED
    ),
    # The same for pairs in rm_pairs, recomputed from rm_pair_days.
    "rm_stale_pairs": (
        "CREATE TABLE rm_stale_pairs ("
        " bank_a TEXT NOT NULL, account_a TEXT NOT NULL,"
        " bank_b TEXT NOT NULL, account_b TEXT NOT NULL,"
        " PRIMARY KEY (bank_a, account_a, bank_b, account_b))" + _KEYED
    ),
    # Each account's first connection and the day of its second: who has
    # exactly one connection on a day is then one row per account, not a
    # grouping of every pair (recomputed from rm_pairs at the end of a
    # catch-up, for the accounts waiting in rm_stale_connections).
    "rm_connections": (
        "CREATE TABLE rm_connections ("
        " bank TEXT NOT NULL, account TEXT NOT NULL, connected_on TEXT NOT NULL,"
        " partner TEXT, second_on TEXT,"
        " PRIMARY KEY (bank, account))" + _KEYED
    ),
    # ('', '') stands for every account: a catch-up from empty settles all.
    "rm_stale_connections": (
        "CREATE TABLE rm_stale_connections ("
        " bank TEXT NOT NULL, account TEXT NOT NULL,"
        " PRIMARY KEY (bank, account))" + _KEYED
    ),
    "rm_pairs": (
        "CREATE TABLE rm_pairs ("
        " bank_a TEXT NOT NULL, account_a TEXT NOT NULL,"
        " bank_b TEXT NOT NULL, account_b TEXT NOT NULL,"
        " exchanges BIGINT NOT NULL, first_day TEXT, last_day TEXT,"
        " PRIMARY KEY (bank_a, account_a, bank_b, account_b))" + _KEYED
    ),
    "rm_pair_days": (
        "CREATE TABLE rm_pair_days ("
        " bank_a TEXT NOT NULL, account_a TEXT NOT NULL,"
        " bank_b TEXT NOT NULL, account_b TEXT NOT NULL,"
        " day TEXT NOT NULL, exchanges BIGINT NOT NULL,"
        # keyed by day first: a catch-up's rows come in (roughly) day order
        # and are appended; keyed by pair, each batch rewrote pages all over
        # the table (a million-event rebuild took ~8 s longer, measured)
        " PRIMARY KEY (day, bank_a, account_a, bank_b, account_b))" + _KEYED
    ),
}

#: Indexes the projector itself looks entries up by: created with the tables.
LOOKUP_INDEXES: tuple[tuple[str, str, str], ...] = (
    # by the entry's integer key, not its id: the keys arrive in increasing
    # order, so the index is appended to; indexed by entry id, random ids
    # (the API's default) made 2,000,000 rows take 20.5 s instead of 6.3 s
    ("rm_entry_parties_by_entry", "rm_entry_parties", "entry_seq"),
)
#: Indexes for reports and for people reading the tables: created after the
#: rows when a read model is built from empty (appending rows, then sorting
#: each index once, is several times faster than keeping them up to date).
INDEXES: tuple[tuple[str, ...], ...] = (
    # statements, inactive members, and settling rm_stale_activity; kept up to
    # date, it was more than half of the party rows' writing time (rows for
    # random accounts, measured: 2,000,000 rows 5.7 s without it, 18.9 s with).
    # It holds what a statement's page is chosen by (seq) and what the page
    # and the balance before it read (entry_seq, minutes): a page is then read
    # from the index alone, not from every row of the account (a 100-line
    # page of the benchmark pot's 49,899 lines: 6.9-17.7 ms against 94-229 ms)
    ("rm_account_lines", "rm_entry_parties", "bank, account, occurred_on, seq, entry_seq, minutes"),
    ("rm_entries_by_date", "rm_entries", "occurred_on"),
    # the flagged entries (coordinators' lists of limit breaches), one index
    # a side: partial, so they hold the few flagged rows alone, cost nothing
    # to keep up, and a list of them reads no other row of the period (a
    # million entries' history with none flagged: 0.3 ms, where the index by
    # date read every row in 730 ms)
    ("rm_entries_flagged", "rm_entries", "occurred_on, seq", "flags IS NOT NULL"),
    (
        "rm_entries_receiver_flagged",
        "rm_entries",
        "occurred_on, seq",
        "receiver_flags IS NOT NULL",
    ),
    ("rm_pot_flows_by_bank", "rm_pot_flows", "bank, occurred_on"),
    ("rm_memberships_by_member", "rm_memberships", "member"),
    ("rm_pairs_by_first_day", "rm_pairs", "first_day"),
    # an account's pairs in which it is the second of the two (its pairs as
    # the first are a seek into the key), for settling rm_stale_connections.
    # The account first: led by bank_b, SQLite answered the reports' "bank_a
    # IN (...) OR bank_b IN (...)" by merging two index searches, not by one
    # pass over the table (153 ms against 40 ms at a million entries)
    ("rm_pairs_by_account_b", "rm_pairs", "account_b, bank_b"),
    # connections of a period straddled by a pair's first and last days, and
    # settling rm_stale_pairs
    (
        "rm_pair_days_by_pair",
        "rm_pair_days",
        "bank_a, account_a, bank_b, account_b, day, exchanges",
    ),
)


def create_statements(dialect: str) -> list[str]:
    """Every CREATE TABLE statement for ``dialect`` (sqlite or postgresql),
    and the look-up indexes."""
    return [_table(ddl, dialect) for ddl in TABLES.values()] + [
        _create_index(*index) for index in LOOKUP_INDEXES
    ]


def _table(ddl: str, dialect: str) -> str:
    sqlite = dialect == "sqlite"
    return ddl.format(
        without_rowid=" WITHOUT ROWID" if sqlite else "",
        # SQLite: the rowid itself (entries are appended in seq order, and a
        # statement joins its lines' entries by it)
        seq_key="INTEGER PRIMARY KEY" if sqlite else "BIGINT PRIMARY KEY",
    )


#: The steps that bring a read model of one schema version to the next in
#: place, without applying the log again: version -> (the tables the next
#: one adds, the statements that queue them to be filled by the end of the
#: next catch-up). 7 to 8 adds rm_connections: every account is queued and
#: settled from rm_pairs, in about a second at a million entries, where a
#: rebuild takes 45. 8 to 9 clears the receiver of donations, which an
#: import once stored as the pot (a donation names none).
_UPGRADES: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {
    7: (
        ("rm_connections", "rm_stale_connections"),
        ("INSERT INTO rm_stale_connections VALUES ('', '')",),  # every account waits
    ),
    8: ((), ("UPDATE rm_entries SET receiver = NULL WHERE kind = 'donation'",)),
}


def upgrade_statements(version: int, dialect: str) -> list[str] | None:
    """The statements that bring a read model of schema ``version`` to this
    one in place, step by step, or ``None`` if a step is missing and it must
    be rebuilt from the log."""
    statements: list[str] = []
    for step in range(version, SCHEMA_VERSION):
        if step not in _UPGRADES:
            return None
        tables, fill = _UPGRADES[step]
        statements += [_table(TABLES[name], dialect) for name in tables] + list(fill)
    if not statements:
        return None
    return [*statements, f"UPDATE rm_position SET schema_version = {SCHEMA_VERSION}"]  # noqa: S608 - a constant


#: Indexes of earlier releases that an index above replaces: dropped by the
#: catch-up that creates their replacement, so that a read model is not
#: rebuilt for an index (its tables are the same).
RETIRED_INDEXES = ("rm_entry_parties_by_account",)


def index_statements() -> list[str]:
    """The report indexes (``IF NOT EXISTS``: cheap once they are there);
    the ones they replace, ``RETIRED_INDEXES``, are dropped first
    (``ReadModelDB.drop_indexes``)."""
    return [_create_index(*index) for index in INDEXES]


def _create_index(name: str, table: str, columns: str, where: str = "") -> str:
    """The index's statement; with ``where``, a partial index of the rows
    that hold it."""
    return f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})" + (
        f" WHERE {where}" if where else ""
    )
