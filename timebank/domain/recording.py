"""The time of recording: the system's clock, made not to go back.

Every event's ``timestamp`` comes from here, and so does the instant a
command reads today from (``docs/architecture.md``, "Two clocks"). A process
never hands out an instant before one it handed out already, and an event is
always stamped after the event before it in its stream: a system clock
stepped back makes the next stamps wait on the latest, a microsecond apart,
rather than go back. Since each command reads today before it stamps its
events, no event is stamped on a day before the today its checks used. A
clock stepped back by more than :data:`FOLLOWED_BACK` is followed instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Self
from uuid import UUID

from eventsourcing.domain import Aggregate

__all__ = ["FOLLOWED_BACK", "RecordedAggregate", "RecordingClock", "recording_now"]

_MICROSECOND = timedelta(microseconds=1)
#: How far back a clock may step and be waited on (an NTP correction, two
#: machines' clocks a little apart). Beyond it the clock is followed: one
#: that was badly wrong and is corrected would otherwise hold today and the
#: stamps at the wrong time until the true time caught up.
FOLLOWED_BACK = timedelta(minutes=1)


def _system_time() -> datetime:
    return datetime.now(UTC)


class RecordingClock:
    """The system's clock (or ``source``, a test's), never going back.

    Safe to share between threads: one lock orders every reading.
    """

    def __init__(self, source: Callable[[], datetime] = _system_time) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._latest = datetime.min.replace(tzinfo=UTC)

    def now(self) -> datetime:
        """The time now: not before any instant this clock handed out (but
        see :data:`FOLLOWED_BACK`)."""
        with self._lock:
            self._latest = max(self._read(), self._latest)
            return self._latest

    def stamp(self, after: datetime | None = None) -> datetime:
        """An event's instant: after every instant this clock handed out, and
        after ``after`` (the stamp of the event before it in its stream),
        unless either is ahead of the source by more than
        :data:`FOLLOWED_BACK`."""
        with self._lock:
            read = self._read()
            floor = self._latest
            if after is not None and after - read <= FOLLOWED_BACK:
                floor = max(floor, after)
            self._latest = max(read, floor + _MICROSECOND)
            return self._latest

    def _read(self) -> datetime:
        """The source's time; a source put back by more than
        :data:`FOLLOWED_BACK` is followed (called under the lock)."""
        read = self._source()
        if self._latest - read > FOLLOWED_BACK:
            self._latest = read
        return read


#: The process's clock of recording (tests replace it to step time back).
CLOCK = RecordingClock()


def recording_now() -> datetime:
    """The time of recording now, by the process's clock (``CLOCK``)."""
    return CLOCK.now()


class RecordedAggregate(Aggregate):
    """An aggregate whose events are stamped by the clock of recording.

    The eventsourcing library stamps events with ``datetime.now`` each; here
    each stamp is later than the stream's previous event and than every
    instant the process handed out (``RecordingClock.stamp``).
    """

    @classmethod
    def _create(cls, event_class: Any, *, id: UUID | None = None, **kwargs: Any) -> Self:
        kwargs.setdefault("timestamp", CLOCK.stamp())
        return super()._create(event_class, id=id, **kwargs)

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", CLOCK.stamp(after=self.modified_on))
        super().trigger_event(event_class, **kwargs)
