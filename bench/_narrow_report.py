"""The period report computed at query time from the rows issue 5 names
(entries, one row per participant, memberships) and nothing else: what a
narrower read model, one without the additive report tables, would have to
do for every report.

``narrow_report`` runs each figure's query in one read transaction and
returns the figures with each query's time; bench/reports.py compares the
figures with the read model's report (they must be equal) and prints the
times against the report's target.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

#: Service exchanges: what hours, exchanges, connections and activity count.
SERVICE = "('exchange', 'pot_exchange', 'group_exchange')"
#: A service leg of the period: a provider or receiver in a standing
#: (not reversed) service exchange.
_LEGS = (
    f"FROM rm_entry_parties WHERE +bank = :bank AND kind IN {SERVICE} AND reversed = 0"
    " AND role IN ('provider', 'receiver')"
)
_PAIRS = (
    "SELECT min(p.account, r.account) AS a, max(p.account, r.account) AS b, p.occurred_on AS day"
    " FROM rm_entry_parties p JOIN rm_entry_parties r ON r.entry_seq = p.entry_seq"
    f" WHERE +p.bank = :bank AND +r.bank = :bank AND p.kind IN {SERVICE} AND p.reversed = 0"
    " AND p.role = 'provider' AND r.role = 'receiver'"
)
QUERIES: dict[str, str] = {
    "hours_exchanged, exchanges": (
        "SELECT COALESCE(SUM(minutes), 0), COUNT(DISTINCT entry_seq)"
        f" {_LEGS} AND role = 'provider' AND occurred_on BETWEEN :start AND :end"
    ),
    "transactions": (
        "SELECT COUNT(*) FROM rm_entries WHERE bank = :bank"
        " AND kind NOT IN ('opening_balance', 'reversal') AND reversed_by IS NULL"
        " AND occurred_on BETWEEN :start AND :end"
    ),
    "active_members": (
        f"SELECT COUNT(DISTINCT account) {_LEGS} AND occurred_on BETWEEN :start AND :end"
    ),
    "connections": (
        f"SELECT COUNT(*) FROM (SELECT DISTINCT a, b FROM ({_PAIRS}"
        " AND p.occurred_on BETWEEN :start AND :end))"
    ),
    "new_connections": (
        f"SELECT COUNT(*) FROM (SELECT a, b, MIN(day) AS first FROM ({_PAIRS}"
        " AND p.occurred_on <= :end) GROUP BY a, b HAVING first >= :start)"
    ),
    "inactive_members": (
        "SELECT COUNT(*) FROM rm_memberships m WHERE m.bank = :bank"
        " AND m.started_on <= :end AND (m.ended_on IS NULL OR m.ended_on > :end)"
        " AND m.member NOT IN (SELECT account"
        f" {_LEGS} AND occurred_on BETWEEN :since AND :end)"
    ),
    "by_month": (
        "SELECT substr(occurred_on, 1, 7), SUM(minutes), COUNT(DISTINCT entry_seq)"
        f" {_LEGS} AND role = 'provider' AND occurred_on BETWEEN :start AND :end GROUP BY 1"
    ),
    "by_category": (
        "SELECT category, SUM(minutes), COUNT(DISTINCT entry_seq)"
        f" {_LEGS} AND role = 'provider' AND occurred_on BETWEEN :start AND :end GROUP BY 1"
    ),
}


def narrow_report(
    path: str, bank: str, start: date, end: date
) -> tuple[dict[str, Any], dict[str, float]]:
    """The figures of ``bank`` from ``start`` to ``end`` computed from the
    rows alone in the read model at ``path``, and each query's seconds."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.execute("PRAGMA cache_size = -65536")  # the read model's own page cache
    params = {
        "bank": bank,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "since": (end - timedelta(days=89)).isoformat(),
    }
    figures: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    try:
        db.execute("BEGIN")
        for name, sql in QUERIES.items():
            started = time.perf_counter()
            rows = db.execute(sql, params).fetchall()
            seconds[name] = time.perf_counter() - started
            figures[name] = rows[0] if "by_" not in name else sorted(rows, key=str)
        db.execute("COMMIT")
    finally:
        db.close()
    return figures, seconds


def report_figures(report: Any) -> dict[str, Any]:
    """The same figures from a :class:`timebank.readmodel.report.Report`."""
    return {
        "hours_exchanged, exchanges": (report.exchanged_minutes, report.exchanges),
        "transactions": (report.transactions,),
        "active_members": (report.active_members,),
        "connections": (report.connections,),
        "new_connections": (report.new_connections,),
        "inactive_members": (report.inactive_members,),
        "by_month": sorted(
            ((m.month, m.exchanged_minutes, m.exchanges) for m in report.by_month if m.exchanges),
            key=str,
        ),
        "by_category": sorted(
            ((c.category, c.exchanged_minutes, c.exchanges) for c in report.by_category), key=str
        ),
    }


def best_of(runs: int, measure: Callable[[], tuple[dict[str, Any], dict[str, float]]]) -> Any:
    """The figures, and each query's best time of ``runs``."""
    best: dict[str, float] = {}
    figures: dict[str, Any] = {}
    for _ in range(runs):
        figures, seconds = measure()
        best = {k: min(v, best.get(k, v)) for k, v in seconds.items()}
    return figures, best
