"""Clock faults: a `clock` ahead of the system's, a system clock stepped back,
and writers whose clocks differ (docs/architecture.md, "Two clocks").

Whatever the clocks do, no entry is stamped on a day before its date (the
audit's ``future_entry``), today never moves forward past the system's day,
and the stamps of a bank's log only go forward.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

import timebank
from timebank import errors
from timebank.domain import recording
from timebank.domain.recording import RecordingClock

from .conftest import ACTOR, BACKENDS, open_store
from .test_entries import refused

LONDON = ZoneInfo("Europe/London")
HOUR = timedelta(hours=1)


def _system_day() -> date:
    return datetime.now(LONDON).date()


@pytest.fixture(params=BACKENDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _opened(store: timebank.Timebank, bank: str = "b", opened_on: str = "2026-01-01") -> None:
    store.create_bank(bank, name="B", actor=ACTOR, opened_on=opened_on,
                      policy=timebank.Policy(timezone="UTC"))  # fmt: skip
    for member in ("ann", "bob"):
        store.join(bank, member, kind="individual", actor=ACTOR, joined_on=opened_on)


def test_a_clock_ahead_of_the_systems_moves_no_command_forward(kind: str, tmp_path: Path) -> None:
    """A clock 40 days ahead: today is still the system's day, so an entry
    on the clock's day is in the future, one on the system's is audited
    clean, and a proposal does not expire before its day comes."""
    ahead = timedelta(days=40)
    with open_store(kind, tmp_path, clock=lambda: datetime.now(UTC) + ahead)() as tb:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
        for member in ("ann", "bob"):
            tb.join("b", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
        before = _system_day()
        today = tb.today("b")
        assert today in {before, _system_day()}
        by_clock = (datetime.now(UTC) + ahead).astimezone(LONDON).date()
        refused(tb, errors.OccurredInFuture,
                lambda: tb.record_exchange("b", "ann", "bob", "1", actor=ACTOR,
                                           occurred_on=by_clock))  # fmt: skip
        entry = tb.record_exchange("b", "ann", "bob", "1", actor=ACTOR)
        assert entry.occurred_on in {today, _system_day()}
        assert entry.recorded_at.astimezone(LONDON).date() >= entry.occurred_on
        proposed = tb.propose("b", "exchange", "bob", "ann", "2", actor="bob", entry_id="p1")
        # by the clock's day the proposal's 30 days are over; by the
        # system's day they are not, and the system's day is what counts
        assert by_clock > proposed.expires_on
        assert tb.expire_pending("b", actor=ACTOR) == []
        assert not tb.pending("b")[0].expired
        tb.confirm("p1", actor="ann")
        assert (tb.balance("b", "ann"), tb.balance("b", "bob")) == (-60, 60)
        assert tb.audit().findings == ()


class _SteppedBack:
    """A system clock that reads ``moments[0]`` and, once armed, is stepped
    back an hour just after its next reading (an NTP correction landing
    between the check of a command and the stamp of its event)."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment
        self.armed = False

    def __call__(self) -> datetime:
        read = self.moment
        if self.armed:
            self.armed = False
            self.moment -= HOUR
        return read


@pytest.fixture
def stepped(monkeypatch: pytest.MonkeyPatch) -> _SteppedBack:
    """The process's clock of recording replaced by one a test steps."""
    system = _SteppedBack(datetime(2026, 6, 14, 23, 50, tzinfo=UTC))
    monkeypatch.setattr(recording, "CLOCK", RecordingClock(system))
    return system


def test_a_system_clock_stepped_back_across_midnight_stamps_no_entry_before_its_day(
    kind: str, tmp_path: Path, stepped: _SteppedBack
) -> None:
    """The store's own clock (none given). Ten past midnight, an entry is
    dated the new day; the system clock then steps back an hour before its
    event is stamped. The stamp stays on the new day, after every earlier
    one, and the audit is clean. Today does not go back either: the next
    entry, recorded while the system clock still reads the old day, is
    dated the new day and stamped after the first."""
    reopen = open_store(kind, tmp_path, clock=None)
    with reopen() as tb:
        _opened(tb)
        stepped.moment = datetime(2026, 6, 15, 0, 10, tzinfo=UTC)
        stepped.armed = True
        first = tb.record_exchange("b", "ann", "bob", "1", actor=ACTOR, entry_id="e1")
        assert stepped.moment == datetime(2026, 6, 14, 23, 10, tzinfo=UTC)  # stepped back
        assert first.occurred_on == date(2026, 6, 15)
        midnight_past = datetime(2026, 6, 15, 0, 10, tzinfo=UTC)
        assert midnight_past < first.recorded_at < midnight_past + timedelta(seconds=1)
        second = tb.record_exchange("b", "bob", "ann", "1", actor=ACTOR, entry_id="e2")
        assert (second.occurred_on, tb.today("b")) == (date(2026, 6, 15), date(2026, 6, 15))
        assert first.recorded_at < second.recorded_at < midnight_past + timedelta(seconds=1)
        assert tb.audit().findings == ()
    with reopen() as again:
        assert [again.entry(e).recorded_at for e in ("e1", "e2")] == [
            first.recorded_at,
            second.recorded_at,
        ]


def test_a_banks_events_are_stamped_after_the_one_before_whichever_writer_wrote_it(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writers of one store, one's system clock an hour ahead of the
    other's: the writer behind stamps its event after the one ahead's last
    in the bank's log, not before it."""
    noon = datetime(2026, 6, 15, 12, tzinfo=UTC)
    behind, ahead = RecordingClock(lambda: noon), RecordingClock(lambda: noon + HOUR)
    reopen = open_store(kind, tmp_path, clock=lambda: noon)
    with reopen() as first, reopen() as second:
        monkeypatch.setattr(recording, "CLOCK", behind)
        _opened(first)
        monkeypatch.setattr(recording, "CLOCK", ahead)
        late = second.record_exchange("b", "ann", "bob", "1", actor=ACTOR, entry_id="e1")
        assert noon + HOUR <= late.recorded_at < noon + HOUR + timedelta(seconds=1)
        monkeypatch.setattr(recording, "CLOCK", behind)
        after = first.record_exchange("b", "bob", "ann", "1", actor=ACTOR, entry_id="e2")
        assert after.recorded_at > late.recorded_at
        assert first.audit().findings == ()


#: System clock readings: each the last one moved by up to a day either way.
_steps = st.lists(st.integers(-86_400_000_000, 86_400_000_000), min_size=1, max_size=40)


@given(steps=_steps, calls=st.lists(st.sampled_from(["now", "stamp", "after"]), min_size=40,
                                    max_size=40))  # fmt: skip
def test_the_clock_of_recording_never_goes_back(steps: list[int], calls: list[str]) -> None:
    """Whatever the system clock does: every stamp is after every instant
    handed out before it (stamps and readings of now) and after the
    stream's stamp it is given; readings of now never go back; and none is
    before the system's reading of its moment."""
    readings = iter(steps)
    system = [datetime(2026, 6, 15, tzinfo=UTC)]

    def source() -> datetime:
        system[0] += timedelta(microseconds=next(readings, 1))
        return system[0]

    clock = RecordingClock(source)
    handed: list[datetime] = []
    for call in calls:
        if call == "now":
            moment = clock.now()
            assert not handed or moment >= handed[-1]
        else:
            stream = system[0] + HOUR if call == "after" else None
            moment = clock.stamp(after=stream)
            assert not handed or moment > handed[-1]
            assert stream is None or moment > stream
        assert moment >= system[0]
        handed.append(moment)
