"""A bound for the read model's catch-up: the projection moved into SQLite.

Measurement only (imported by ``bench/reports.py``); timebank does not use
it. The benchmark store's log is ~97 % two-party entries of one bank
(exchanges, pot-funded exchanges, donations, gifts, opening balances).
Here those are projected entirely inside SQLite, a batch at a time, as the
projector's batches are: their fields extracted from the ``ATTACH``ed
store's JSON with ``json_extract``, their legs taken from a small table
that the domain's own :func:`~timebank.domain.entries.legs_for` fills, and
every read-model table written with ``INSERT … SELECT`` (the additive
tables with the same upserts the projector sends). The other events (banks,
members, group exchanges, reversals) go through the real
:class:`~timebank.readmodel._projector.Projector` in the same transaction:
bank and member events before the SQL, the rest after it, so a reversal
finds the entry it undoes. Each batch commits with its position; the
catch-up ends as the real one does (report indexes, settling spans).

The caller compares the tables written here with the projector's (they
must be equal, or the bound means nothing), so this is also a second,
independent check of the projector on a large log.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from timebank.domain.entries import legs_for
from timebank.domain.values import CLEARING_PREFIX, OPENING, POT, EntryKind
from timebank.readmodel import SqliteReadModelDB, no_cyclic_gc
from timebank.readmodel._projector import (
    _ENTRY_TOPICS,
    _HANDLERS,
    EVERY_ACCOUNT,
    SERVICE_KINDS,
    Projector,
    settle_connections,
    settle_spans,
)
from timebank.readmodel._schema import SCHEMA_VERSION, TABLES, create_statements, index_statements

#: The two-party kinds of one bank, by topic.
TWO_PARTY = {
    topic: kind
    for topic, kind in _ENTRY_TOPICS.items()
    if kind is not None and kind is not EntryKind.GROUP_EXCHANGE
}

_STAGE = (
    "INSERT INTO temp.staged SELECT e.rowid, b.bank, e.topic, k.kind, k.service,"
    " json_extract(e.s, '$.entry_id'), json_extract(e.s, '$.occurred_on._data_'),"
    " json_extract(e.s, '$.minutes'), json_extract(e.s, '$.category'),"
    " json_extract(e.s, '$.provider'), json_extract(e.s, '$.receiver'),"
    " json_extract(e.s, '$.timestamp._data_'), json_extract(e.s, '$.actor'),"
    " json_extract(e.s, '$.on_behalf_of'),"
    " CASE WHEN json_array_length(e.s, '$.flags') > 0 THEN json_extract(e.s, '$.flags') END"
    " FROM (SELECT rowid, originator_id, topic, CAST(state AS TEXT) AS s"
    "  FROM store.stored_events WHERE rowid > ? AND rowid <= ? AND topic IN ({topics})) e"
    " JOIN main.rm_banks b ON b.stream = e.originator_id"
    " JOIN (SELECT DISTINCT topic, kind, service FROM temp.legs) k ON k.topic = e.topic"
)
_SPAN = (
    " ON CONFLICT ({key}) DO UPDATE SET exchanges = {t}.exchanges + excluded.exchanges,"
    " first_day = min({t}.first_day, excluded.first_day),"
    " last_day = max({t}.last_day, excluded.last_day)"
)
#: (step, statement) for each batch, after the fields are staged.
_STEPS: tuple[tuple[str, str], ...] = (
    ("legs", "INSERT INTO temp.staged_legs SELECT s.seq, s.bank,"
     " coalesce(CASE l.src WHEN 'provider' THEN s.provider WHEN 'receiver' THEN s.receiver END,"
     " l.account), l.role, l.sign * s.minutes, s.day, l.position"
     " FROM temp.staged s JOIN temp.legs l ON l.topic = s.topic"),
    ("entry rows", "INSERT INTO rm_entries SELECT entry_id, seq, bank, NULL, kind, day, minutes,"
     " category, provider, receiver, NULL, NULL, recorded_at, actor, on_behalf_of, flags,"
     " NULL, NULL FROM temp.staged ORDER BY seq"),
    ("party rows", "INSERT INTO rm_entry_parties SELECT s.entry_id, l.bank, l.account, l.role,"
     " l.minutes, l.seq, l.seq, l.day, s.kind, s.category, l.position, 0"
     " FROM temp.staged_legs l JOIN temp.staged s ON s.seq = l.seq"
     # the person a pot-funded exchange helped: a party with no leg
     " UNION ALL SELECT entry_id, bank, receiver, 'receiver', 0, seq, seq, day, kind, category,"
     " NULL, 0 FROM temp.staged WHERE kind = 'pot_exchange' AND receiver IS NOT NULL"
     " AND receiver <> provider"),
    ("pot flows", "INSERT INTO rm_pot_flows SELECT s.entry_id, l.bank, l.day, s.kind,"
     " l.minutes, 0 FROM temp.staged_legs l JOIN temp.staged s ON s.seq = l.seq"
     " WHERE l.role = 'pot'"),
    ("pot daily", "INSERT INTO rm_pot_daily SELECT bank, day, sum(minutes) FROM temp.staged_legs"
     " WHERE role = 'pot' GROUP BY bank, day ON CONFLICT (bank, day) DO UPDATE"
     " SET minutes = rm_pot_daily.minutes + excluded.minutes"),
    ("balances", "INSERT INTO rm_accounts SELECT bank, account, CASE"
     f" WHEN account = '{POT}' THEN 'pot' WHEN account = '{OPENING}' THEN 'opening'"
     f" WHEN substr(account, 1, {len(CLEARING_PREFIX)}) = '{CLEARING_PREFIX}' THEN 'clearing'"
     " ELSE 'member' END, sum(minutes), NULL, NULL FROM temp.staged_legs WHERE true"
     " GROUP BY bank, account ON CONFLICT (bank, account) DO UPDATE"
     " SET balance_minutes = rm_accounts.balance_minutes + excluded.balance_minutes"),
    *(
        (table, f"INSERT INTO {table} SELECT bank, '', {day}, kind, coalesce(category, ''),"
         " count(*), sum(minutes) FROM temp.staged WHERE true GROUP BY 1, 2, 3, 4, 5"
         f" ON CONFLICT (bank, receiver_bank, {column}, kind, category) DO UPDATE"
         f" SET entries = {table}.entries + excluded.entries,"
         f" minutes = {table}.minutes + excluded.minutes")
        for table, column, day in (
            ("rm_daily", "day", "day"), ("rm_monthly", "month", "substr(day, 1, 7)"),
        )
    ),
    ("pair-days", "INSERT INTO rm_pair_days SELECT bank, min(provider, receiver), bank,"
     " max(provider, receiver), day, count(*) FROM temp.staged WHERE service"
     " GROUP BY 1, 2, 3, 4, 5 ON CONFLICT (day, bank_a, account_a, bank_b, account_b)"
     " DO UPDATE SET exchanges = rm_pair_days.exchanges + excluded.exchanges"),
    ("pairs", "INSERT INTO rm_pairs SELECT bank, min(provider, receiver), bank,"
     " max(provider, receiver), count(*), min(day), max(day) FROM temp.staged WHERE service"
     " GROUP BY 1, 2, 3, 4"
     + _SPAN.format(key="bank_a, account_a, bank_b, account_b", t="rm_pairs")),
    ("activity", "INSERT INTO rm_activity SELECT bank, account, count(*), min(day), max(day)"
     " FROM (SELECT bank, provider AS account, day FROM temp.staged WHERE service"
     " UNION ALL SELECT bank, receiver, day FROM temp.staged WHERE service"
     " AND receiver <> provider) WHERE true GROUP BY 1, 2"
     + _SPAN.format(key="bank, account", t="rm_activity")),
    ("clear", "DELETE FROM temp.staged"),
    ("clear", "DELETE FROM temp.staged_legs"),
)  # fmt: skip


def project_in_sql(
    store: Path, scratch: Path, batch: int = 20_000
) -> tuple[float, dict[str, float]]:
    """Build a read model of ``store``'s log into the new file ``scratch``;
    the seconds taken, and the seconds of each step."""
    topics = list(TWO_PARTY)
    marks = ", ".join("?" * len(topics))
    db = SqliteReadModelDB(scratch)  # the read model's own pragmas
    conn = db.conn
    conn.execute("PRAGMA temp_store=MEMORY")
    # (a plain path, not a read-only URI, which not every SQLite build reads
    # in ATTACH: the batches then lock the store too, as nothing else runs)
    conn.execute("ATTACH DATABASE ? AS store", (str(store),))
    steps: dict[str, float] = {}

    def run(step: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        started = time.perf_counter()
        rows = conn.execute(sql, params).fetchall()
        steps[step] = steps.get(step, 0.0) + time.perf_counter() - started
        return rows

    started = time.perf_counter()
    for statement in create_statements("sqlite"):
        conn.execute(statement)
    conn.execute("INSERT INTO rm_position VALUES (1, 0, ?, NULL)", (SCHEMA_VERSION,))
    conn.execute(
        "CREATE TEMP TABLE legs (topic TEXT, kind TEXT, service INT, position INT,"
        " src TEXT, account TEXT, sign INT, role TEXT)"
    )
    provider, receiver = "\x00provider", "\x00receiver"
    for topic, kind in TWO_PARTY.items():
        for position, (account, amount) in enumerate(legs_for(kind, provider, receiver, 1)):
            src = {provider: "provider", receiver: "receiver"}.get(account)
            role = ("receiver" if position else "provider") if src else account.lstrip("@")
            conn.execute(
                "INSERT INTO temp.legs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (topic, kind.value, kind.value in SERVICE_KINDS, position, src,
                 None if src else account, amount, role),
            )  # fmt: skip
    conn.execute(
        "CREATE TEMP TABLE staged (seq INTEGER PRIMARY KEY, bank TEXT, topic TEXT, kind TEXT,"
        " service INT, entry_id TEXT, day TEXT, minutes INT, category TEXT, provider TEXT,"
        " receiver TEXT, recorded_at TEXT, actor TEXT, on_behalf_of TEXT, flags TEXT)"
    )
    conn.execute(
        "CREATE TEMP TABLE staged_legs (seq INT, bank TEXT, account TEXT, role TEXT,"
        " minutes INT, day TEXT, position INT)"
    )
    last = int(conn.execute("SELECT max(rowid) FROM store.stored_events").fetchone()[0])
    position = 0
    with no_cyclic_gc():
        while position < last:
            end = min(position + batch, last)
            with db.exclusive():
                others = run(
                    "read other events",
                    "SELECT rowid, originator_id, topic, state FROM store.stored_events"
                    f" WHERE rowid > ? AND rowid <= ? AND topic NOT IN ({marks}) ORDER BY rowid",
                    (position, end, *topics),
                )
                t = time.perf_counter()
                banks = {
                    str(s): str(b) for s, b in conn.execute("SELECT stream, bank FROM rm_banks")
                }
                projector = Projector(db, banks, every_connection_waits=True)
                projector.apply([r for r in others if r[2] in _HANDLERS])  # type: ignore[misc]
                steps["projector"] = steps.get("projector", 0.0) + time.perf_counter() - t
                run("stage fields", _STAGE.format(topics=marks), (position, end, *topics))
                for step, sql in _STEPS:
                    run(step, sql)
                t = time.perf_counter()
                projector.apply([r for r in others if r[2] not in _HANDLERS])  # type: ignore[misc]
                projector.flush()
                conn.execute("UPDATE rm_position SET notification_id = ?", (end,))
                steps["projector"] += time.perf_counter() - t
                t = time.perf_counter()
            steps["commit"] = steps.get("commit", 0.0) + time.perf_counter() - t
            position = end
        t = time.perf_counter()
        with db.exclusive():
            for statement in index_statements():
                conn.execute(statement)
            settle_spans(db)
            conn.execute("INSERT INTO rm_stale_connections VALUES (?, ?)", EVERY_ACCOUNT)
            settle_connections(db)
        steps["indexes, spans"] = time.perf_counter() - t
    seconds = time.perf_counter() - started
    db.close()
    return seconds, steps


def differing_rows(a: Path, b: Path) -> dict[str, int]:
    """Rows of each read-model table in one file and not the other (the
    tables whose count is not 0)."""
    conn = sqlite3.connect(a)
    conn.execute("ATTACH DATABASE ? AS b", (str(b),))
    differ = {}
    for table in TABLES:
        if table == "rm_position":
            continue
        columns = ", ".join(r[1] for r in conn.execute(f"PRAGMA main.table_info({table})"))
        count = sum(
            int(conn.execute(
                f"SELECT count(*) FROM (SELECT {columns} FROM {x}.{table}"
                f" EXCEPT SELECT {columns} FROM {y}.{table})"
            ).fetchone()[0])
            for x, y in (("main", "b"), ("b", "main"))
        )  # fmt: skip
        if count:
            differ[table] = count
    conn.close()
    return differ
