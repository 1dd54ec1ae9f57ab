"""eventsourcing transcodings for the domain's value types (kept next to storage).

Events and snapshots are JSON. ``date`` and :class:`~timebank.domain.Policy`
have no JSON form of their own, so they are registered here.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder, Transcoding

from timebank.domain.policy import Policy

__all__ = ["DateAsISO", "FastJSONTranscoder", "PolicyAsDict", "register_transcodings"]


class DateAsISO(Transcoding):
    """``date(2026, 1, 31)`` <-> ``"2026-01-31"``."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class PolicyAsDict(Transcoding):
    """A bank :class:`Policy` as a plain dict of numbers and codes."""

    type = Policy
    name = "timebank_policy"

    def encode(self, obj: Policy) -> dict[str, Any]:
        return obj.to_dict()

    def decode(self, data: dict[str, Any]) -> Policy:
        return Policy.from_dict(data)


def register_transcodings(transcoder: JSONTranscoder) -> None:
    transcoder.register(DateAsISO())
    transcoder.register(PolicyAsDict())


class FastJSONTranscoder(JSONTranscoder):
    """The library's JSON transcoder, decoding with orjson.

    Encoding is unchanged (the stored bytes stay the library's). Decoding
    parses with orjson, then applies the library's own ``_decode_obj`` to
    every object bottom-up, exactly as its ``object_hook`` would: the same
    values, about four times faster (measured on statements and snapshots).
    A test decodes the same stored events both ways and compares.
    """

    def decode(self, data: bytes) -> Any:
        return self._revive(orjson.loads(data))

    def _revive(self, value: Any) -> Any:
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, dict | list):
                    value[key] = self._revive(item)
            return self._decode_obj(value)
        if isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict | list):
                    value[index] = self._revive(item)
        return value
