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
#: How far back a clock is waited on, as docs/architecture.md says.
A_MINUTE = timedelta(minutes=1)
#: An NTP correction: the system clock put back half a minute.
STEP = timedelta(seconds=30)


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
    """A system clock that reads ``moment`` and, once armed, is stepped back
    half a minute just after its next reading (an NTP correction landing
    between the check of a command and the stamp of its event)."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment
        self.armed = False

    def __call__(self) -> datetime:
        read = self.moment
        if self.armed:
            self.armed = False
            self.moment -= STEP
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
    """The store's own clock (none given). Ten seconds past midnight, an
    entry is dated the new day; the system clock then steps back half a
    minute before its event is stamped. The stamp stays on the new day, after every earlier
    one, and the audit is clean. Today does not go back either: the next
    entry, recorded while the system clock still reads the old day, is
    dated the new day and stamped after the first."""
    reopen = open_store(kind, tmp_path, clock=None)
    with reopen() as tb:
        _opened(tb)
        midnight_past = datetime(2026, 6, 15, 0, 0, 10, tzinfo=UTC)
        stepped.moment = midnight_past
        stepped.armed = True
        first = tb.record_exchange("b", "ann", "bob", "1", actor=ACTOR, entry_id="e1")
        assert stepped.moment == datetime(2026, 6, 14, 23, 59, 40, tzinfo=UTC)  # stepped back
        assert first.occurred_on == date(2026, 6, 15)
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


@pytest.mark.parametrize("apart", [timedelta(seconds=30), timedelta(hours=2)])
def test_a_banks_events_are_stamped_after_the_one_before_whichever_writer_wrote_it(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, apart: timedelta
) -> None:
    """Two writers of one store, one's system clock ahead of the other's.
    Up to a minute apart, the writer behind stamps its event after the one
    ahead's last in the bank's log; further apart, with its own clock (the
    other's is wrong, or its own: waiting on it would hold every stamp)."""
    noon = datetime(2026, 6, 15, 12, tzinfo=UTC)
    behind, ahead = RecordingClock(lambda: noon), RecordingClock(lambda: noon + apart)
    reopen = open_store(kind, tmp_path, clock=lambda: noon)
    with reopen() as first, reopen() as second:
        monkeypatch.setattr(recording, "CLOCK", behind)
        _opened(first)
        monkeypatch.setattr(recording, "CLOCK", ahead)
        late = second.record_exchange("b", "ann", "bob", "1", actor=ACTOR, entry_id="e1")
        assert noon + apart <= late.recorded_at < noon + apart + timedelta(seconds=1)
        monkeypatch.setattr(recording, "CLOCK", behind)
        after = first.record_exchange("b", "bob", "ann", "1", actor=ACTOR, entry_id="e2")
        findings = [(f.check, f.severity, f.ids) for f in first.audit().findings]
        if apart <= A_MINUTE:
            assert late.recorded_at < after.recorded_at < late.recorded_at + timedelta(seconds=1)
            assert findings == []
        else:
            assert noon < after.recorded_at < noon + timedelta(seconds=1)
            # the audit marks where the bank's log goes back
            assert findings == [("recorded_out_of_order", "info",
                                 {"bank": "b", "event": findings[0][2]["event"], "times": 1})]  # fmt: skip


def test_a_clock_set_a_year_ahead_and_corrected_is_followed_at_once(
    kind: str, tmp_path: Path, stepped: _SteppedBack
) -> None:
    """The system clock was set a year ahead by mistake: the store's today
    and stamps followed it. Once it is corrected, today and the stamps are
    the true ones again at once, not a year later, and the audit is clean."""
    true = datetime(2026, 6, 15, 12, tzinfo=UTC)
    stepped.moment = true + timedelta(days=365)
    reopen = open_store(kind, tmp_path, clock=None)
    with reopen() as tb:
        _opened(tb)
        wrong = tb.record_exchange("b", "ann", "bob", "1", actor=ACTOR, entry_id="e1")
        assert wrong.occurred_on == date(2027, 6, 15)
        stepped.moment = true  # corrected
        assert tb.today("b") == date(2026, 6, 15)
        right = tb.record_exchange("b", "bob", "ann", "1", actor=ACTOR, entry_id="e2")
        assert right.occurred_on == date(2026, 6, 15)
        assert true <= right.recorded_at < true + timedelta(seconds=1)
        # no error; the audit marks the correction, where the bank's log goes back
        (finding,) = tb.audit().findings
        assert (finding.check, finding.severity, finding.ids["bank"]) == (
            "recorded_out_of_order",
            "info",
            "b",
        )
        assert "stamped 2026-06-15T12:00:00" in finding.message
        assert "after an event stamped 2027-06-15T12:00:00" in finding.message


#: System clock readings: each the last one moved by up to two minutes
#: either way, or by up to a day.
_steps = st.lists(
    st.integers(-120_000_000, 120_000_000) | st.integers(-86_400_000_000, 86_400_000_000),
    min_size=1,
    max_size=40,
)


@given(steps=_steps, calls=st.lists(st.sampled_from(["now", "stamp", "near", "far"]),
                                    min_size=40, max_size=40))  # fmt: skip
def test_the_clock_of_recording_goes_back_only_with_a_clock_put_back_a_minute(
    steps: list[int], calls: list[str]
) -> None:
    """Whatever the system clock does: an instant handed out is never before
    the system's reading, nor more than a minute after it (but for the
    microseconds that keep stamps apart); it is never before the instant
    handed out before it (a stamp: after it), unless the system clock was
    put back by more than a minute; and a stamp is after the stream's stamp
    it is given when that is at most a minute ahead ("near"), not when it
    is further ("far")."""
    readings = iter(steps)
    system = [datetime(2026, 6, 15, tzinfo=UTC)]

    def source() -> datetime:
        system[0] += timedelta(microseconds=next(readings, 1))
        return system[0]

    clock = RecordingClock(source)
    handed: list[datetime] = []
    for n, call in enumerate(calls):
        stream = None
        if call == "now":
            moment = clock.now()
        else:
            ahead = {"stamp": None, "near": timedelta(seconds=50), "far": timedelta(seconds=70)}
            stream = None if ahead[call] is None else system[0] + ahead[call]
            moment = clock.stamp(after=stream)
        read = system[0]
        if stream is not None and stream - read <= A_MINUTE:  # as the clock read it
            assert moment > stream
        assert read <= moment <= read + A_MINUTE + timedelta(microseconds=n + 1)
        if handed and handed[-1] - read <= A_MINUTE:
            assert moment > handed[-1] if call != "now" else moment >= handed[-1]
        handed.append(moment)
