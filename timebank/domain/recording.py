"""The time of recording: the system's clock, made never to go back.

Every event's ``timestamp`` comes from here, and so does the instant a
command reads today from (``docs/architecture.md``, "Two clocks"). A process
never hands out an instant before one it handed out already, and an event is
always stamped after the event before it in its stream: a system clock
stepped back makes the next stamps wait on the latest, a microsecond apart,
rather than go back. Since each command reads today before it stamps its
events, no event is stamped on a day before the today its checks used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Self
from uuid import UUID

from eventsourcing.domain import Aggregate

__all__ = ["RecordedAggregate", "RecordingClock", "recording_now"]

_MICROSECOND = timedelta(microseconds=1)


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
        """The time now: not before any instant this clock handed out."""
        with self._lock:
            self._latest = max(self._source(), self._latest)
            return self._latest

    def stamp(self, after: datetime | None = None) -> datetime:
        """An event's instant: after every instant this clock handed out, and
        after ``after`` (the stamp of the event before it in its stream)."""
        with self._lock:
            floor = self._latest if after is None else max(self._latest, after)
            self._latest = max(self._source(), floor + _MICROSECOND)
            return self._latest


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
