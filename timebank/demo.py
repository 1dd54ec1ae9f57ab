"""A demo time bank: four months of realistic activity in one store.

Used by ``timebank demo``. Everything goes through the public API, so the
demo is also a worked example of it.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from timebank.api import Timebank
from timebank.domain.errors import PotOverdrawn
from timebank.domain.policy import BalanceLimits, LimitMode, Policy
from timebank.storage import Profile

__all__ = ["DEMO_BANK", "DEMO_HUB", "run_demo"]

DEMO_BANK = "riverside"
#: A mini time bank run by the library inside the demo bank.
DEMO_HUB = "riverside/library-hub"
ACTOR = "coord-demo"
_DAYS = 120
_NAMES = [
    "Ada", "Bashir", "Carys", "Dev", "Eileen", "Femi", "Gwen", "Hamid", "Iris", "Jack",
    "Kemi", "Lowri",
]  # fmt: skip
_ORGANISATIONS = ["Riverside Library", "St Mary's Primary", "Oak Lodge Care Home"]
#: The wards the individuals live in (the report's figures by area).
_WARDS = ["north-ward", "south-ward", "old-town"]
_CATEGORIES = [
    "gardening", "befriending", "shopping", "diy", "computer-help", "lifts", "cooking",
]  # fmt: skip


def run_demo(tb: Timebank, today: date) -> int:
    """Create the demo bank and record its activity; return the entries recorded.

    Deterministic for a given ``today``: members, amounts and dates come from a
    seeded random generator.
    """
    rng = random.Random(2026)  # noqa: S311 - demo data, not security
    opened = today - timedelta(days=_DAYS)
    policy = Policy(
        individual=BalanceLimits(-10 * 60, 40 * 60),
        organisation=BalanceLimits(-100 * 60, 200 * 60),
        limit_mode=LimitMode.FLAG,
    )
    tb.create_bank(
        DEMO_BANK, name="Riverside Time Bank", actor=ACTOR, policy=policy, opened_on=opened
    )
    people = _join_members(tb, rng, opened)
    organisations = people[-len(_ORGANISATIONS) :]
    individuals = people[: -len(_ORGANISATIONS)]
    count = 0
    for n in range(90):
        day = opened + timedelta(days=7 + n * (_DAYS - 8) // 90)
        provider, receiver = rng.sample(people, 2)
        hours = f"{rng.choice([1, 1, 1, 2, 2, 3])}:{rng.choice(['00', '30'])}"
        tb.record_exchange(
            DEMO_BANK, provider, receiver, hours,
            actor=ACTOR, occurred_on=day, category=rng.choice(_CATEGORIES),
            entry_id=f"demo-ex-{n:03d}",
        )  # fmt: skip
        count += 1
        if n % 15 == 7:  # members and organisations give to the pot now and then
            donor = rng.choice(organisations + individuals[:3])
            tb.donate(
                DEMO_BANK, donor, "2", actor=ACTOR, occurred_on=day, entry_id=f"demo-don-{n:03d}"
            )
            count += 1
        if n % 20 == 12:  # the pot pays for help to someone with no credits
            helper, helped = rng.sample(individuals, 2)
            try:
                tb.record_pot_exchange(
                    DEMO_BANK, helper, helped, "1:30", actor=ACTOR, occurred_on=day,
                    category="befriending", entry_id=f"demo-pot-{n:03d}",
                )  # fmt: skip
                count += 1
            except PotOverdrawn:
                pass  # the pot refuses help it cannot pay for; the demo moves on
    tb.gift(DEMO_BANK, individuals[0], individuals[1], "1", actor=ACTOR,
            occurred_on=today - timedelta(days=10), entry_id="demo-gift-1")  # fmt: skip
    mistaken = tb.record_exchange(
        DEMO_BANK, individuals[2], individuals[3], "4", actor=ACTOR,
        occurred_on=today - timedelta(days=3), category="diy", entry_id="demo-mistake",
    )  # fmt: skip
    tb.reverse(mistaken.entry_id, actor=ACTOR, reversal_id="demo-mistake-reversal")
    return count + 3 + _run_hub(tb, individuals, today)


def _run_hub(tb: Timebank, individuals: list[str], today: date) -> int:
    """A mini time bank with its own coordinator and members, an exchange
    with the parent bank through clearing accounts, and an exchange a member
    proposed and the other confirmed. Returns the entries recorded."""
    opened = today - timedelta(days=30)
    tb.create_bank(DEMO_HUB, name="Library hub", actor=ACTOR, opened_on=opened)
    tb.grant_role(DEMO_HUB, "coord-library", "coordinator", actor=ACTOR)
    hub_members = ["h-001", "h-002", "h-003", individuals[0]]  # one is in both banks
    for member in hub_members:
        tb.join(DEMO_HUB, member, kind="individual", actor="coord-library", joined_on=opened)
    tb.record_exchange(
        DEMO_BANK, individuals[1], "h-001", "2", actor=ACTOR, receiver_bank=DEMO_HUB,
        occurred_on=today - timedelta(days=20), category="computer-help",
        entry_id="demo-inter-bank-1",
    )  # fmt: skip
    tb.propose(
        DEMO_HUB, "exchange", "h-002", "h-003", "1:30", actor="h-002",
        occurred_on=today - timedelta(days=2), category="shopping", entry_id="demo-proposed-1",
    )  # fmt: skip
    tb.confirm("demo-proposed-1", actor="h-003")
    tb.appoint_guardian(DEMO_HUB, "h-003", "angel-1", actor="coord-library")
    tb.propose(
        DEMO_HUB, "exchange", "h-001", "h-003", "1", actor="angel-1", on_behalf_of="h-003",
        occurred_on=today - timedelta(days=1), category="lifts", entry_id="demo-proposed-2",
    )  # fmt: skip
    return 2


def _join_members(tb: Timebank, rng: random.Random, opened: date) -> list[str]:
    members: list[str] = []
    for i, name in enumerate(_NAMES):
        member = f"m-{i + 1:03d}"
        joined = opened + timedelta(days=rng.randrange(0, 7))
        tb.join(DEMO_BANK, member, kind="individual", actor=ACTOR, joined_on=joined,
                profile=Profile(display_name=name, area=_WARDS[i % len(_WARDS)]))  # fmt: skip
        members.append(member)
    for i, name in enumerate(_ORGANISATIONS):
        member = f"org-{i + 1:02d}"
        tb.join(DEMO_BANK, member, kind="organisation", actor=ACTOR, joined_on=opened,
                profile=Profile(display_name=name))  # fmt: skip
        members.append(member)
    return members
