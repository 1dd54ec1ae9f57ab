"""Tools for testing code that embeds timebank (docs/testing.md); needs the
extra ``timebank[testing]`` (hypothesis).

- Strategies: :func:`member_ids`, :func:`entry_ids`, :func:`hours`,
  :func:`days`, :func:`members` and :func:`entries` (rows in the interchange
  layout), :func:`ledgers` (whole valid ledgers: two banks and a mini bank,
  every kind of entry, inter-bank entries, reversals, pot flows, loaded with
  :meth:`Ledger.build`).
- :class:`LedgerStateMachine`: random commands through the public API
  (entries, and members' proposals confirmed, approved or declined), the
  audit after every step; subclass it and add rules that drive your code.
- :func:`assert_sound`: run the audit on any store; fail with its findings.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import attrs
from hypothesis import currently_in_test_context, event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from timebank.api import Timebank, audit
from timebank.domain.entries import RecordedEntry
from timebank.domain.errors import TimebankError
from timebank.storage.memory import MemoryBackend

__all__ = [
    "ACTOR",
    "ENTRY_KINDS",
    "HUB",
    "NOW",
    "OPENED",
    "OTHER",
    "ROOT",
    "Ledger",
    "LedgerStateMachine",
    "assert_sound",
    "days",
    "entries",
    "entry_ids",
    "hours",
    "ledgers",
    "member_ids",
    "members",
]

#: The banks :func:`ledgers` and :class:`LedgerStateMachine` open: a root
#: bank, a mini bank inside it, and a second root bank.
ROOT, HUB, OTHER = "northside", "northside/hub", "southside"
#: The day those banks open, and their members join.
OPENED = date(2026, 1, 1)
#: Who opens them, so their admin: the actor of every command the state
#: machine runs. An app's own actor needs a role granted by it.
ACTOR = "auditor"
#: The clock of the stores made here: "today" is 200 days after OPENED.
NOW = datetime(2026, 7, 20, 12, tzinfo=UTC)


def assert_sound(store: Timebank | str) -> None:
    """Fail (``AssertionError``) with the audit's summary unless the store
    (an open :class:`Timebank`, or a store's URL) audits clean: every
    invariant of docs/audit.md, on a replay of its log."""
    report = audit(store)
    assert report.ok, report.summary()


# --- strategies -----------------------------------------------------------------------
def member_ids() -> st.SearchStrategy[str]:
    """Valid member ids (``[A-Za-z0-9][A-Za-z0-9._-]{0,63}``)."""
    return st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,15}", fullmatch=True)


def entry_ids() -> st.SearchStrategy[str]:
    """Valid entry ids (``[A-Za-z0-9][A-Za-z0-9._:-]{0,127}``)."""
    return st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,23}", fullmatch=True)


def hours(max_minutes: int = 1440) -> st.SearchStrategy[str]:
    """Positive amounts as the API and the CSV take them: ``H:MM``,
    ``H:MM:00`` (a spreadsheet's duration) or decimal hours that are whole
    minutes (``1.5``, ``0.25``)."""
    minutes = st.integers(1, max_minutes)
    clock = minutes.map(lambda m: f"{m // 60}:{m % 60:02}")
    duration = clock.map(lambda text: f"{text}:00")
    decimal = st.integers(1, max_minutes // 15).map(lambda q: str(Decimal(q * 15) / 60))
    return clock | duration | decimal


def days(start: date = OPENED, end: date | None = None) -> st.SearchStrategy[date]:
    """Dates from ``start`` to ``end`` (default: 200 days on)."""
    return st.dates(start, end or start + timedelta(days=200))


#: The kinds of entry :func:`entries` draws from.
ENTRY_KINDS = ("exchange", "gift", "donation", "opening_balance")


def members(
    bank: str = ROOT, joined: st.SearchStrategy[date] | None = None
) -> st.SearchStrategy[dict[str, str]]:
    """Member rows in the interchange layout (docs/import.md): a valid id,
    individual or organisation, ``bank``, and a join date (``joined``,
    default :func:`days`). Draw several with unique ids:
    ``st.lists(members(), min_size=2, unique_by=lambda m: m["member_id"])``."""
    return st.fixed_dictionaries({
        "member_id": member_ids(),
        "kind": st.sampled_from(["individual", "organisation"]),
        "bank": st.just(bank),
        "joined_on": (joined or days()).map(date.isoformat),
    })  # fmt: skip


@st.composite
def entries(
    draw: st.DrawFn, people: Sequence[Mapping[str, str]], kinds: Sequence[str] = ENTRY_KINDS
) -> dict[str, str]:
    """One entry row in the interchange layout among ``people`` (member
    rows as :func:`members` gives, at least two in one bank): an exchange or
    gift between two members of a bank, a donation to its pot, or an opening
    balance (some negative), of at most 24 hours, dated on or after its
    members joined and not after :data:`NOW`. Each row can be recorded on
    its own by a bank with default policies; draw several with
    ``st.lists(entries(people), unique_by=lambda e: e["entry_id"])``. (Pot-
    funded help and reversals depend on what came before: see
    :func:`ledgers`.)"""
    by_bank: dict[str, list[Mapping[str, str]]] = {}
    for person in people:
        by_bank.setdefault(person["bank"], []).append(person)
    banks = sorted(bank for bank, rows in by_bank.items() if len(rows) > 1)
    if not banks:
        raise ValueError("entries() needs two members in one bank")
    bank = draw(st.sampled_from(banks), label="bank")
    provider, receiver = draw(st.permutations(by_bank[bank]), label="members")[:2]
    kind = draw(st.sampled_from(list(kinds)), label="kind")
    two = kind in ("exchange", "gift")
    joined = max(
        date.fromisoformat(p["joined_on"]) for p in ((provider, receiver) if two else (provider,))
    )
    day = draw(st.dates(joined, max(joined, NOW.date())), label="day")
    amount = draw(hours(), label="hours")
    if kind == "opening_balance" and draw(st.booleans(), label="negative"):
        amount = f"-{amount}"
    return {
        "entry_id": draw(entry_ids(), label="entry_id"), "occurred_on": day.isoformat(),
        "kind": kind, "provider": provider["member_id"],
        "receiver": receiver["member_id"] if two else "", "hours": amount, "bank": bank,
        "category": draw(st.sampled_from(["", "diy", "shopping", "befriending"]), label="category"),
    }  # fmt: skip


@attrs.frozen
class Ledger:
    """A valid ledger in the interchange layout (docs/import.md)."""

    members: tuple[dict[str, str], ...]
    entries: tuple[dict[str, str], ...]

    def build(self, tb: Timebank | None = None) -> Timebank:
        """Open :data:`ROOT`, :data:`HUB` and :data:`OTHER` on
        :data:`OPENED` and load the ledger into ``tb`` (default: a new
        in-memory store whose clock is :data:`NOW`) through the importer,
        which opens any other bank a member row names, as ``create_banks``
        does; returns the store. :data:`ACTOR` is every bank's admin."""
        tb = tb or Timebank(MemoryBackend(), clock=lambda: NOW)
        for bank in (ROOT, HUB, OTHER):
            tb.create_bank(bank, name=bank, actor=ACTOR, opened_on=OPENED)
        tb.import_members(list(self.members), actor=ACTOR, create_banks=True)
        tb.import_entries(list(self.entries), actor=ACTOR)
        return tb


@st.composite
def ledgers(draw: st.DrawFn, max_entries: int = 40) -> Ledger:  # noqa: PLR0912, PLR0915 - one flat recipe per kind of entry
    """Whole valid ledgers: members in three banks (one a mini bank, one
    member in two banks), then exchanges, pot-funded help, donations, gifts,
    opening balances, group exchanges, exchanges between the root bank and
    its mini bank, and reversals; the pots never go below zero."""
    banks = {ROOT: ["a1", "a2", "a3", "org1"], HUB: ["h1", "h2", "a1"], OTHER: ["s1", "s2"]}
    members = tuple(
        {"member_id": m, "kind": "organisation" if m.startswith("org") else "individual",
         "bank": bank, "joined_on": OPENED.isoformat()}
        for bank, names in banks.items() for m in names
    )  # fmt: skip
    pots = dict.fromkeys(banks, 0)
    entries: list[dict[str, str]] = []
    reversible: list[tuple[str, str, int, str]] = []  # id, bank, pot change, day
    for n in range(draw(st.integers(0, max_entries), label="entries")):
        bank = draw(st.sampled_from(sorted(banks)), label="bank")
        a, b = draw(st.permutations(banks[bank]), label="members")[:2]
        day = draw(days(OPENED, OPENED + timedelta(days=150)), label="day")
        minutes = draw(st.sampled_from([15, 30, 60, 90, 120, 180]), label="minutes")
        kind = draw(st.sampled_from(
            ["exchange"] * 5 + ["pot_exchange", "donation", "gift", "opening_balance",
                                "group", "inter_bank", "reversal"]), label="kind")  # fmt: skip
        entry_id = f"t{n}"
        category = draw(st.sampled_from(["", "diy", "shopping"]), label="category")
        row = {"entry_id": entry_id, "occurred_on": day.isoformat(), "kind": kind,
               "provider": a, "receiver": b, "hours": _clock(minutes), "bank": bank,
               "category": category}  # fmt: skip
        pot_change = 0
        if kind == "pot_exchange":
            if pots[bank] < minutes:
                kind = row["kind"] = "exchange"
            else:
                pot_change = -minutes
        elif kind == "donation":
            row["receiver"] = ""
            pot_change = minutes
        elif kind == "opening_balance":
            row["receiver"] = ""
            if draw(st.booleans(), label="negative"):
                row["hours"] = "-" + row["hours"]
        elif kind == "inter_bank":
            if bank == OTHER:
                row["kind"] = "exchange"
            else:
                row["kind"] = "exchange"
                far = HUB if bank == ROOT else ROOT
                others = [m for m in banks[far] if m != a]  # one person is one person
                row["receiver"] = draw(st.sampled_from(others), label="far")
                row["receiver_bank"] = far
        elif kind == "group":  # a gives the minutes, two others share them
            takers = [m for m in banks[bank] if m != a][:2]
            half = minutes // 2 if minutes % 30 == 0 else 15
            row.update(kind="exchange", group_id=entry_id, receiver="",
                       hours=_clock(half * len(takers)))  # fmt: skip
            entries.append(row)
            entries.extend({**row, "provider": "", "receiver": t, "hours": _clock(half)}
                           for t in takers)  # fmt: skip
            continue
        elif kind == "reversal":
            candidates = [
                r for r in reversible if pots[r[1]] - r[2] >= 0 and r[3] <= row["occurred_on"]
            ]
            if not candidates:
                continue
            original, original_bank, change, _ = draw(st.sampled_from(candidates), label="undo")
            reversible.remove((original, original_bank, change, _))
            pots[original_bank] -= change
            entries.append({**row, "kind": "reversal", "provider": "", "receiver": "",
                            "hours": "", "bank": original_bank, "category": "",
                            "reverses": original})  # fmt: skip
            continue
        pots[bank] += pot_change
        entries.append(row)
        reversible.append((entry_id, bank, pot_change, row["occurred_on"]))
    return Ledger(members, tuple(entries))


def _clock(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02}"


# --- the state machine ----------------------------------------------------------------
class LedgerStateMachine(RuleBasedStateMachine):
    """Random commands through the public API on one store, and the audit
    after every step (:func:`assert_sound`). A command the ledger refuses
    with a named error is fine; it must change nothing.

    Subclass it to test your own code: override :meth:`open_store` to use
    your backend (a new, empty store each run; :attr:`tmp_path` is a new
    directory each run, for a file), and add ``@rule`` methods that call
    your code with ``self.tb``; every invariant is then checked after your
    steps too.
    The banks are :data:`ROOT`, :data:`HUB` and :data:`OTHER`, their
    members :attr:`MEMBERS`, and every command runs as :data:`ACTOR`, but
    a member's own proposal and the other party's confirmation, which run
    as those members.
    Each refusal is a hypothesis event (``refused: <code>``), so
    ``pytest --hypothesis-show-statistics`` shows how often each came.
    """

    #: The members each bank has from the start (``org...`` are
    #: organisations); ``a1`` is a member of the root bank and its mini bank.
    MEMBERS: ClassVar[Mapping[str, tuple[str, ...]]] = {
        ROOT: ("a1", "a2", "org1"), HUB: ("h1", "a1"), OTHER: ("s1",),
    }  # fmt: skip

    def open_store(self) -> Timebank:
        """The store to drive (default: a new in-memory one at :data:`NOW`).

        Called once a run, and must give a new, empty store each time: a
        file in :attr:`tmp_path` (``timebank.open(f"sqlite:///{self.tmp_path
        / 'test.db'}", clock=lambda: testing.NOW)``), or a new schema on a
        test server. A store that already holds banks is refused with a
        ``ValueError`` saying so."""
        return Timebank(MemoryBackend(), clock=lambda: NOW)

    @initialize()
    def open_banks(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="timebank-run-")
        #: A new, empty directory for this run's files, removed when it ends.
        self.tmp_path = Path(self._tmp.name)
        self.tb = self.open_store()
        held = [b.bank for b in self.tb.banks()]
        if held:
            raise ValueError(
                "open_store must give a new, empty store each run (it is called once a"
                f" run), and this one already holds banks {', '.join(held)}: open a file"
                " in self.tmp_path, a new directory each run, or a new schema"
            )
        self.recorded: list[str] = []
        self.proposed: list[str] = []
        for bank in (ROOT, HUB, OTHER):
            self.tb.create_bank(bank, name=bank, actor=ACTOR, opened_on=OPENED)
        for bank, names in self.MEMBERS.items():
            for m in names:
                kind = "organisation" if m.startswith("org") else "individual"
                self.tb.join(bank, m, kind=kind, actor=ACTOR, joined_on=OPENED)

    def attempt(self, command: Callable[[], Any]) -> Any:
        """Run ``command``; a named refusal must leave every balance as it
        was. It returns what ``command`` returned, or ``None`` when refused;
        a refusal is recorded as the hypothesis event ``refused: <code>``
        (``refused: not_permitted``): a rule refused in every run tests
        nothing, and the statistics show it."""
        before = sorted((b.bank, b.account, b.balance_minutes) for b in self.tb.balances())
        try:
            return command()
        except TimebankError as refusal:
            after = sorted((b.bank, b.account, b.balance_minutes) for b in self.tb.balances())
            assert after == before, "a refused command changed a balance"
            if currently_in_test_context():
                event(f"refused: {refusal.code}")
            return None

    @rule(kind=st.sampled_from(["exchange", "pot_exchange", "gift"]),
          bank=st.sampled_from([ROOT, HUB]), pair=st.permutations(["a1", "a2", "org1", "h1"]),
          amount=hours(240), day=days(OPENED, OPENED + timedelta(days=190)))  # fmt: skip
    def record(self, kind: str, bank: str, pair: list[str], amount: str, day: date) -> None:
        provider, receiver = pair[:2]
        method = {"exchange": self.tb.record_exchange, "pot_exchange": self.tb.record_pot_exchange,
                  "gift": self.tb.gift}[kind]  # fmt: skip
        entry = self.attempt(
            lambda: method(bank, provider, receiver, amount, actor=ACTOR, occurred_on=day)
        )
        if entry is not None:
            self.recorded.append(entry.entry_id)

    @rule(member=st.sampled_from(["a1", "a2", "org1"]), amount=hours(240))
    def donate(self, member: str, amount: str) -> None:
        entry = self.attempt(lambda: self.tb.donate(ROOT, member, amount, actor=ACTOR))
        if entry is not None:
            self.recorded.append(entry.entry_id)

    @rule(provider=st.sampled_from(["a1", "a2"]), receiver=st.sampled_from(["h1", "a1"]),
          amount=hours(120))  # fmt: skip
    def between_banks(self, provider: str, receiver: str, amount: str) -> None:
        entry = self.attempt(lambda: self.tb.record_exchange(
            ROOT, provider, receiver, amount, actor=ACTOR, receiver_bank=HUB))  # fmt: skip
        if entry is not None:
            self.recorded.append(entry.entry_id)

    @rule(kind=st.sampled_from(["exchange", "exchange", "pot_exchange", "gift"]),
          pair=st.permutations(["a1", "a2", "org1"]), amount=hours(240))  # fmt: skip
    def propose(self, kind: str, pair: list[str], amount: str) -> None:
        """A member proposes an entry of their own in the root bank: it waits
        for the other party's confirmation, or a coordinator's approval."""
        provider, receiver = pair[:2]
        pending = self.attempt(
            lambda: self.tb.propose(ROOT, kind, provider, receiver, amount, actor=provider)
        )
        if pending is not None:
            self.proposed.append(pending.entry_id)

    @rule(data=st.data(), decline=st.integers(0, 2).map(lambda n: n == 0))
    def settle(self, data: st.DataObject, decline: bool) -> None:
        """A proposal moves on: the party it waits for confirms it, or
        :data:`ACTOR` approves it (it takes effect, or is refused as a limit
        would be breached), or now and then :data:`ACTOR` declines it."""
        waiting = {p.entry_id: p for p in self.tb.pending(ROOT)}
        ids = [e for e in self.proposed if e in waiting]
        if not ids:
            return
        pending = waiting[data.draw(st.sampled_from(ids), label="settle")]
        entry_id = pending.entry_id
        if decline:
            self.attempt(lambda: self.tb.decline(entry_id, actor=ACTOR))
            return
        if pending.awaiting == "confirmation" and pending.confirmer is not None:
            confirmer = pending.confirmer
            result = self.attempt(lambda: self.tb.confirm(entry_id, actor=confirmer))
        else:
            result = self.attempt(lambda: self.tb.approve(entry_id, actor=ACTOR))
        if isinstance(result, RecordedEntry):  # it took effect
            self.recorded.append(entry_id)

    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        if self.recorded:
            target = data.draw(st.sampled_from(self.recorded), label="reverse")
            self.attempt(lambda: self.tb.reverse(target, actor=ACTOR))

    @invariant()
    def sound(self) -> None:
        if hasattr(self, "tb"):
            assert_sound(self.tb)

    def teardown(self) -> None:
        try:
            if hasattr(self, "tb"):
                self.tb.close()
        finally:
            if hasattr(self, "_tmp"):
                self._tmp.cleanup()
