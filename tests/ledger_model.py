"""An independent model of a ledger for the report tests: random operations
are sent through the public API, and what the API accepted is remembered
here, in plain Python, so that every report figure can be counted again from
the test's own records (never from the read model or the event log)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from hypothesis import strategies as st

import timebank
from timebank.errors import TimebankError

from .conftest import TODAY  # the stores' today (their fixed clock): nothing is dated after it

ACTOR = "coord-1"
POT = "@pot"
ROOT, HUB = "b", "b/hub"
OPENED = date(2026, 1, 1)
SERVICE = {"exchange", "pot_exchange", "group_exchange"}
CATEGORIES = ("gardening", "shopping", None)
AREAS = ("north-ward", "south-ward", None)
#: Members of each bank, with their kind; i1 is a member of both banks.
MEMBERS = {
    ROOT: {"i1": "individual", "i2": "individual", "i3": "individual", "o1": "organisation"},
    HUB: {"h1": "individual", "h2": "individual", "i1": "individual", "o2": "organisation"},
}


@dataclass
class Entry:
    entry_id: str
    kind: str
    bank: str
    receiver_bank: str | None
    day: date
    minutes: int
    category: str | None = None
    provider: str | None = None
    receiver: str | None = None
    participants: list[tuple[str, int]] = field(default_factory=list)
    reverses: str | None = None
    reversed: bool = False

    def banks(self) -> set[str]:
        return {self.bank, self.receiver_bank or self.bank}

    def service_accounts(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(providers, receivers) as (bank, member) accounts."""
        if self.kind == "group_exchange":
            return (
                [(self.bank, m) for m, n in self.participants if n > 0],
                [(self.bank, m) for m, n in self.participants if n < 0],
            )
        return [(self.bank, str(self.provider))], [
            (self.receiver_bank or self.bank, str(self.receiver))
        ]

    def pot_legs(self) -> list[tuple[str, int]]:
        """(bank whose pot moves, minutes) of an entry that is not a reversal."""
        pot_bank = self.receiver_bank or self.bank
        if self.kind == "donation":
            return [(pot_bank, self.minutes)]
        if self.kind == "pot_exchange":
            return [(pot_bank, -self.minutes)]
        if self.kind == "gift":  # a pot may give, and another bank's pot receive
            return [(self.bank, -self.minutes)] * (self.provider == POT) + [
                (pot_bank, self.minutes)
            ] * (self.receiver == POT)
        return []


@dataclass
class Model:
    entries: dict[str, Entry] = field(default_factory=dict)
    #: (bank, member) -> kind and membership periods [start, end or None].
    kinds: dict[tuple[str, str], str] = field(default_factory=dict)
    periods: dict[tuple[str, str], list[list[date | None]]] = field(default_factory=dict)
    #: member -> the area their profile names (none: no profile).
    areas: dict[str, str] = field(default_factory=dict)


def new_ledger(tb: timebank.Timebank, data: st.DataObject, steps: int) -> Model:
    """Open the two banks, join the members, then try ``steps`` random
    operations; returns the model of what was accepted."""
    model = Model()
    tb.create_bank(ROOT, name="Root", actor=ACTOR, opened_on=OPENED)
    tb.create_bank(HUB, name="Hub", actor=ACTOR, opened_on=OPENED)
    for bank, members in MEMBERS.items():
        for member, kind in members.items():
            joined = OPENED + timedelta(days=data.draw(st.integers(0, 60), label="joined"))
            tb.join(bank, member, kind=kind, actor=ACTOR, joined_on=joined)
            model.kinds[bank, member] = kind
            model.periods[bank, member] = [[joined, None]]
    for member in sorted({m for members in MEMBERS.values() for m in members}):
        area = data.draw(st.sampled_from(AREAS), label="area")
        if area is not None:
            tb.set_profile(member, timebank.Profile(area=area), actor=ACTOR)
            model.areas[member] = area
    for n in range(steps):
        _step(tb, data, model, f"x{n}")
    return model


def _step(tb: timebank.Timebank, data: st.DataObject, model: Model, entry_id: str) -> None:
    op = data.draw(
        st.sampled_from(
            ["exchange"] * 6
            + ["inter_bank", "pot_exchange", "donation", "gift", "pot_gift", "opening", "group"]
            + ["reverse"] * 2
            + ["leave", "rejoin"]
        ),
        label="op",
    )
    day = OPENED + timedelta(days=data.draw(st.integers(0, 165), label="day"))
    minutes = data.draw(st.sampled_from([15, 30, 60, 90, 120]), label="minutes")
    category = data.draw(st.sampled_from(CATEGORIES), label="category")
    bank = data.draw(st.sampled_from([ROOT, HUB]), label="bank")
    members = sorted(MEMBERS[bank])
    a, b = data.draw(st.permutations(members), label="members")[:2]
    other = HUB if bank == ROOT else ROOT
    far = data.draw(st.sampled_from(sorted(MEMBERS[other])), label="far")
    entry: Entry | None = None
    try:
        if op == "exchange":
            tb.record_exchange(bank, a, b, minutes=minutes, actor=ACTOR, occurred_on=day,
                               category=category, entry_id=entry_id)  # fmt: skip
            entry = Entry(entry_id, "exchange", bank, None, day, minutes, category, a, b)
        elif op == "inter_bank":
            tb.record_exchange(bank, a, far, minutes=minutes, actor=ACTOR, occurred_on=day,
                               category=category, entry_id=entry_id, receiver_bank=other)  # fmt: skip
            entry = Entry(entry_id, "exchange", bank, other, day, minutes, category, a, far)
        elif op == "pot_exchange":
            tb.record_pot_exchange(bank, a, b, minutes=minutes, actor=ACTOR, occurred_on=day,
                                   category=category, entry_id=entry_id)  # fmt: skip
            entry = Entry(entry_id, "pot_exchange", bank, None, day, minutes, category, a, b)
        elif op == "donation":
            to_other = data.draw(st.booleans(), label="to other pot")
            tb.donate(bank, a, minutes=minutes, actor=ACTOR, occurred_on=day, entry_id=entry_id,
                      receiver_bank=other if to_other else None)  # fmt: skip
            entry = Entry(entry_id, "donation", bank, other if to_other else None, day, minutes,
                          None, a)  # fmt: skip
        elif op == "gift":
            tb.gift(bank, a, b, minutes=minutes, actor=ACTOR, occurred_on=day, entry_id=entry_id)
            entry = Entry(entry_id, "gift", bank, None, day, minutes, None, a, b)
        elif op == "pot_gift":  # from the pot, or to another bank's pot
            giver, taker, to_bank = data.draw(
                st.sampled_from([(POT, b, None), (POT, far, other), (POT, POT, other),
                                 (a, POT, other)]),
                label="pot gift",
            )  # fmt: skip
            tb.gift(bank, giver, taker, minutes=minutes, actor=ACTOR, occurred_on=day,
                    entry_id=entry_id, receiver_bank=to_bank)  # fmt: skip
            entry = Entry(entry_id, "gift", bank, to_bank, day, minutes, None, giver, taker)
        elif op == "opening":
            signed = minutes * data.draw(st.sampled_from([1, -1]), label="sign")
            tb.record_opening_balance(bank, a, minutes=signed, actor=ACTOR, occurred_on=day,
                                      entry_id=entry_id)  # fmt: skip
            entry = Entry(entry_id, "opening_balance", bank, None, day, signed, None, a)
        elif op == "group":
            providers, receivers = members[:2], members[2:]
            tb.record_group_exchange(
                bank, dict.fromkeys(providers, "0:30"), dict.fromkeys(receivers, "0:30"),
                actor=ACTOR, occurred_on=day, category=category, entry_id=entry_id,
            )  # fmt: skip
            parts = [(m, 30) for m in providers] + [(m, -30) for m in receivers]
            entry = Entry(entry_id, "group_exchange", bank, None, day, 60, category,
                          participants=parts)  # fmt: skip
        elif op == "reverse":
            candidates = sorted(
                e.entry_id
                for e in model.entries.values()
                if e.kind != "reversal" and not e.reversed
            )
            if not candidates:
                return
            target = model.entries[data.draw(st.sampled_from(candidates), label="target")]
            when = max(day, target.day)
            tb.reverse(target.entry_id, actor=ACTOR, reversal_id=entry_id, occurred_on=when)
            target.reversed = True
            entry = Entry(entry_id, "reversal", target.bank, target.receiver_bank, when,
                          target.minutes, target.category, reverses=target.entry_id)  # fmt: skip
        elif op == "leave":
            tb.leave(bank, a, actor=ACTOR, left_on=day)
            model.periods[bank, a][-1][1] = day
        elif op == "rejoin":
            tb.rejoin(bank, a, actor=ACTOR, rejoined_on=day)
            model.periods[bank, a].append([day, None])
    except TimebankError:
        return
    if entry is not None:
        model.entries[entry.entry_id] = entry


# --- the figures, counted from the model ------------------------------------------
def _members(model: Model, banks: set[str], end: date) -> tuple[set[str], dict[str, date]]:
    """The members of the banks with an active membership on ``end``, and
    the day each first joined one of them."""
    on_end = {
        m
        for (b, m), spans in model.periods.items()
        if b in banks and any(s <= end and (x is None or end <= x) for s, x in spans)  # type: ignore[operator]
    }
    first_joined: dict[str, date] = {}
    for (b, m), spans in model.periods.items():
        if b in banks:
            first_joined[m] = min(first_joined.get(m, spans[0][0]), spans[0][0])  # type: ignore[type-var]
    return on_end, first_joined


def expected(model: Model, banks: set[str], start: date, end: date) -> dict[str, object]:
    """Every report figure by the definitions in docs/reports.md."""
    standing = [e for e in model.entries.values() if e.kind != "reversal" and not e.reversed]
    counted = [e for e in standing if start <= e.day <= end and e.banks() & banks]
    service = [e for e in counted if e.kind in SERVICE]

    def people(accounts: set[tuple[str, str]]) -> set[str]:
        return {m for b, m in accounts if b in banks}

    def took_part(e: Entry) -> set[tuple[str, str]]:
        providers, receivers = e.service_accounts()
        return {*providers, *receivers}

    active = people({acc for e in service for acc in took_part(e)})
    recent_from = end - timedelta(days=89)
    recent = people(
        {
            acc
            for e in standing
            if e.kind in SERVICE and recent_from <= e.day <= end
            for acc in took_part(e)
        }
    )
    on_end, first_joined = _members(model, banks, end)
    kinds = {m: k for (b, m), k in model.kinds.items() if b in banks}

    def pairs(e: Entry) -> set[tuple[tuple[str, str], tuple[str, str]]]:
        providers, receivers = e.service_accounts()
        return {(min(p, r), max(p, r)) for p in providers for r in receivers}

    in_period = {pair for e in service for pair in pairs(e)}
    partners: defaultdict[str, set[str]] = defaultdict(set)  # member -> members
    for e in standing:
        if e.kind in SERVICE and e.day <= end:
            for pair in pairs(e):
                for own, other in (pair, pair[::-1]):
                    if own[0] in banks:
                        partners[own[1]].add(other[1])
    first_day: dict[object, date] = {}
    for e in standing:
        if e.kind in SERVICE:
            for pair in pairs(e):
                first_day[pair] = min(first_day.get(pair, e.day), e.day)
    pot_balance = 0
    for e in model.entries.values():
        if e.day > end:
            continue
        if e.kind == "reversal":
            legs = [(b, -m) for b, m in model.entries[str(e.reverses)].pot_legs()]
        else:
            legs = e.pot_legs()
        pot_balance += sum(m for b, m in legs if b in banks)
    by_category: defaultdict[str | None, list[int]] = defaultdict(lambda: [0, 0])
    by_month: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
    for e in service:
        by_category[e.category][0] += e.minutes
        by_category[e.category][1] += 1
        by_month[e.day.isoformat()[:7]][0] += e.minutes
        by_month[e.day.isoformat()[:7]][1] += 1
    new = {m for m, d in first_joined.items() if start <= d <= end}
    return {
        "exchanged_minutes": sum(e.minutes for e in service),
        "exchanges": len(service),
        "transactions": sum(1 for e in counted if e.kind != "opening_balance"),
        "individual_members": sum(1 for m in on_end if kinds[m] == "individual"),
        "organisations": sum(1 for m in on_end if kinds[m] == "organisation"),
        "new_members": len(new),
        "active_members": len(active),
        "inactive_members": len(on_end - recent),
        "donated_to_pot_minutes": sum(
            e.minutes
            for e in counted
            if e.kind == "donation" and (e.receiver_bank or e.bank) in banks
        ),
        "pot_funded_minutes": sum(
            e.minutes
            for e in counted
            if e.kind == "pot_exchange" and (e.receiver_bank or e.bank) in banks
        ),
        "pot_balance_minutes": pot_balance,
        "connections": len(in_period),
        "new_connections": sum(1 for pair in in_period if first_day[pair] >= start),
        "members_with_one_connection": sum(1 for m in on_end if len(partners[m]) == 1),
        "by_category": {k: tuple(v) for k, v in by_category.items()},
        "by_month": {k: tuple(v) for k, v in by_month.items()},
        "members_by_month": _members_by_month(model, banks, start, end, first_joined),
        "by_kind": {
            kind: tuple(
                sum(1 for m in group if kinds[m] == kind)
                for group in (on_end, new, active, on_end - recent)
            )
            for kind in ("individual", "organisation")
        },
    }


def _members_by_month(
    model: Model, banks: set[str], start: date, end: date, first_joined: dict[str, date]
) -> dict[str, tuple[int, int]]:
    """Month -> (new members, members on its last day in the period), for
    each month the report lists: those the period touches, up to this one
    (the model dates nothing after today)."""

    def next_month(day: date) -> date:  # its first day
        return (day.replace(day=28) + timedelta(days=4)).replace(day=1)

    months: dict[str, tuple[int, int]] = {}
    stop = min(end, next_month(TODAY) - timedelta(days=1))
    day = start
    while day <= stop:
        following = next_month(day)
        last = min(stop, following - timedelta(days=1))
        new = sum(1 for joined in first_joined.values() if day <= joined <= last)
        months[day.isoformat()[:7]] = (new, len(_members(model, banks, last)[0]))
        day = following
    return months


def expected_by_area(
    model: Model, banks: set[str], start: date, end: date
) -> dict[str | None, tuple[int, ...]]:
    """``by_area`` by the definitions in docs/reports.md: area -> (members,
    new members, active members, minutes given, minutes received,
    exchanges), areas with a figure other than 0 only."""
    standing = [e for e in model.entries.values() if e.kind != "reversal" and not e.reversed]
    service = [
        e for e in standing if e.kind in SERVICE and start <= e.day <= end and e.banks() & banks
    ]
    figures: defaultdict[str | None, list[int]] = defaultdict(lambda: [0] * 6)
    on_end, first_joined = _members(model, banks, end)
    new = {m for m, day in first_joined.items() if start <= day <= end}
    active: set[str] = set()
    for e in service:
        providers, receivers = e.service_accounts()
        shares = dict(e.participants) if e.kind == "group_exchange" else {}
        areas = set()
        for account, given in [(p, 1) for p in providers] + [(r, 0) for r in receivers]:
            bank, member = account
            if bank not in banks:
                continue
            active.add(member)
            area = model.areas.get(member)
            areas.add(area)
            minutes = abs(shares[member]) if shares else e.minutes
            figures[area][3 if given else 4] += minutes
        for area in areas:
            figures[area][5] += 1
    for column, members in enumerate((on_end, new, active)):
        for member in members:
            figures[model.areas.get(member)][column] += 1
    return {area: tuple(values) for area, values in figures.items() if any(values)}


@dataclass
class _Did:
    """What one member did in a period, as the model counts it."""

    exchanges: int = 0
    given: int = 0
    received: int = 0
    partners: set[str] = field(default_factory=set)
    days: list[date] = field(default_factory=list)


def expected_activity(
    model: Model, banks: set[str], start: date, end: date
) -> dict[str, tuple[object, ...]]:
    """``member_activity`` by the definitions in docs/reports.md: member ->
    (exchanges, minutes given, minutes received, partners, first and last
    exchange day), for every member of the banks whose membership was
    active on a day of the period."""
    did = {
        m: _Did()
        for (b, m), spans in model.periods.items()
        if b in banks and any(s <= end and (x is None or x >= start) for s, x in spans)  # type: ignore[operator]
    }
    for e in model.entries.values():
        if e.kind not in SERVICE or e.reversed or not start <= e.day <= end:
            continue
        providers, receivers = e.service_accounts()
        shares = dict(e.participants) if e.kind == "group_exchange" else {}
        for own, others, giving in ((providers, receivers, True), (receivers, providers, False)):
            for bank, member in own:
                if bank not in banks:
                    continue
                minutes = abs(shares[member]) if shares else e.minutes
                row = did[member]
                row.exchanges += 1
                if giving:
                    row.given += minutes
                else:
                    row.received += minutes
                row.partners.update(m for _, m in others)
                row.days.append(e.day)
    return {
        m: (r.exchanges, r.given, r.received, len(r.partners), min(r.days, default=None),
            max(r.days, default=None))
        for m, r in did.items()
    }  # fmt: skip


def expected_entries(
    model: Model, banks: set[str], start: date, end: date
) -> list[tuple[object, ...]]:
    """The bank's list of entries (``Timebank.entries``) from the model: every
    entry with a side in ``banks`` dated in the period, by date and then in
    the order recorded; a reversal names its target's parties, category and
    banks, and an entry its reversal."""
    reversal_of = {e.reverses: e.entry_id for e in model.entries.values() if e.reverses}
    rows = []
    for e in model.entries.values():  # in the order recorded
        if not (e.bank in banks or e.receiver_bank in banks) or not start <= e.day <= end:
            continue
        parties = model.entries[e.reverses] if e.reverses else e
        rows.append((e.entry_id, e.kind, e.day, e.minutes, e.bank, e.receiver_bank,
                     parties.provider, parties.receiver, e.category, e.reverses,
                     reversal_of.get(e.entry_id)))  # fmt: skip
    return sorted(rows, key=lambda row: row[2])  # stable: recorded order within a day


def entry_rows(entries: list[timebank.BankEntry]) -> list[tuple[object, ...]]:
    """The same fields of a bank's list of entries."""
    return [
        (e.entry_id, e.kind.value, e.occurred_on, e.minutes, e.bank, e.receiver_bank,
         e.provider, e.receiver, e.category, e.reverses, e.reversed_by)
        for e in entries
    ]  # fmt: skip


def actual(report: timebank.Report) -> dict[str, object]:
    """The same figures read from a report."""
    data = {name: getattr(report, name) for name in expected_names()}
    data["by_category"] = {
        c.category: (c.exchanged_minutes, c.exchanges) for c in report.by_category
    }
    data["by_month"] = {
        m.month: (m.exchanged_minutes, m.exchanges) for m in report.by_month if m.exchanges
    }
    data["members_by_month"] = {m.month: (m.new_members, m.members) for m in report.by_month}
    data["by_kind"] = {
        k.kind: (k.members, k.new_members, k.active_members, k.inactive_members)
        for k in report.by_kind
    }
    return data


def expected_names() -> list[str]:
    return [
        "exchanged_minutes", "exchanges", "transactions", "individual_members",
        "organisations", "new_members", "active_members", "inactive_members",
        "donated_to_pot_minutes", "pot_funded_minutes", "pot_balance_minutes",
        "connections", "new_connections", "members_with_one_connection",
    ]  # fmt: skip
