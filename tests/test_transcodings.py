"""The stored form of events: timebank's transcoder (orjson where it gives
the same result) writes and reads exactly what the library's own JSON
transcoder writes and reads, for any value, and for every event a ledger
records."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import timebank
from timebank import Policy
from timebank.storage.transcodings import FastJSONTranscoder, _plain, register_transcodings

from .conftest import fixed_clock
from .ledger_model import new_ledger


def _transcoder(cls: type[JSONTranscoder]) -> JSONTranscoder:
    """A transcoder with the application's registrations (the library's, then timebank's)."""
    transcoder = cls()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    register_transcodings(transcoder)
    return transcoder


LIBRARY, FAST = _transcoder(JSONTranscoder), _transcoder(FastJSONTranscoder)

_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5))])
#: Every kind of value an event or snapshot may hold, and some no event holds
#: (floats, lone surrogates, integers past 64 bits), which must still come
#: out exactly as the library's encoder writes them, or fail as it fails.
LEAVES = st.one_of(
    st.text(),
    st.text(st.characters(codec=None, exclude_categories=())),  # surrogates too
    st.integers(),
    st.integers(-(2**63), 2**64 - 1),
    st.booleans(),
    st.none(),
    st.dates(),
    st.datetimes(timezones=_ZONES),
    st.floats(),
    st.uuids(),
    st.decimals(allow_nan=False),
    st.builds(Policy),
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=6), inner, max_size=4),
        st.dictionaries(st.integers(0, 9), inner, max_size=2),
    ),
    max_leaves=12,
)


def _encoded(transcoder: JSONTranscoder, value: Any) -> bytes | type[BaseException]:
    try:
        return transcoder.encode(value)
    except Exception as e:
        return type(e)


@settings(max_examples=400)
@given(VALUES)
def test_encoding_gives_the_library_s_bytes_or_its_error(value: Any) -> None:
    assert _encoded(FAST, value) == _encoded(LIBRARY, value)


@settings(max_examples=400)
@given(VALUES)
def test_decoding_gives_the_library_s_values(value: Any) -> None:
    encoded = _encoded(LIBRARY, value)
    if not isinstance(encoded, bytes):
        return  # nothing the library can store
    decoded = FAST.decode(encoded)
    assert repr(decoded) == repr(LIBRARY.decode(encoded))  # repr: NaN is not equal to itself


def test_plain_is_exact_types_only() -> None:
    class Text(str):
        pass

    assert _plain({"a": [1, "b", None, True, date(2026, 1, 1), datetime.now(UTC)], "c": ()})
    assert not _plain({"a": 1.5})
    assert not _plain([Text("a")])
    assert not _plain({1: "a"})
    assert not _plain({"a": [Decimal(1)]})


@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_every_event_of_a_ledger_is_stored_as_the_library_stores_it(data: st.DataObject) -> None:
    with timebank.Timebank(timebank.storage.memory.MemoryBackend(), clock=fixed_clock) as tb:
        new_ledger(tb, data, data.draw(st.integers(5, 30), label="steps"))
        stored = tb._app.recorder.select_notifications(start=1, limit=10_000)
        transcoder = tb._app.mapper.transcoder
    # the application's transcoder is the one compared here, with the same transcodings
    assert type(transcoder) is FastJSONTranscoder
    assert transcoder.names.keys() == LIBRARY.names.keys() == FAST.names.keys()
    entry_events = 0
    for record in stored:
        state = LIBRARY.decode(record.state)
        assert FAST.decode(record.state) == state
        assert FAST.encode(state) == LIBRARY.encode(state) == record.state
        if "entry_id" in state and "minutes" in state:  # the entry events: orjson's path
            assert _plain(state), record.topic
            entry_events += 1
    # a ledger whose every entry was refused (one member joined) checks no
    # entry event: drawn again (too many such draws fail as Unsatisfiable)
    assume(entry_events > 0)
