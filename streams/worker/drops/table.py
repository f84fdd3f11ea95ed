"""What the drop processor keeps in its table (``drop-state``), and the byte encodings.

One value per account, keyed by ``account_id`` (so it shares a changelog partition with the
account's records on ``engagement.account-hours``)::

    version (1 byte) | aux length (uint16 LE) | aux (JSON) | detector state (drops.encode_state, or empty)

``aux`` is what the wiring adds around the detector: the account's not-yet-closed hours
``[hour_ms, substantive, engaged_delta]``, its running engaged-followers total, and per source
partition the last applied flush ``(epoch, seq)`` for replay deduplication. Keeping both parts in one
value makes "hour folded into the detector" and "hour removed from the pending list" one changelog
write, so a crash can never apply an hour twice or lose it between the two.

One progress record per stage-2 partition (:class:`HoursProgress`, key :func:`hours_progress_key`):
the heartbeats heard from each source partition, the last closed hour, the hours known to have had
events anywhere, and a count of late partials.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import cache
from typing import Final

import orjson

from streams.partitioning import key_on_partition

# Account ids never start with NUL (see streams.worker.progress), so no collision with accounts.
HOURS_PROGRESS_PREFIX: Final = "\x00drops/"
_VERSION: Final = 1
_HEADER: Final = struct.Struct("<BH")


@cache
def hours_progress_key(partition: int, partitions: int) -> str:
    """A key the default partitioner sends to ``partition``, so the progress record shares its changelog
    partition."""
    return key_on_partition(f"{HOURS_PROGRESS_PREFIX}{partition}/", partition, partitions)


def is_internal_key(key: str) -> bool:
    return key.startswith("\x00")


@dataclass
class AccountHours:
    """The wiring's per-account bookkeeping (everything but the detector state)."""

    pending: dict[int, list[int]] = field(default_factory=dict)  # hour_ms -> [substantive, engaged_delta]
    engaged: int = 0  # engaged followers: the sum of every engaged_delta folded in so far
    applied: dict[int, tuple[str, int]] = field(default_factory=dict)  # source partition -> (epoch, seq)

    @property
    def empty(self) -> bool:
        return not self.pending and not self.engaged and not self.applied


def encode_account(aux: AccountHours, detector: bytes | memoryview) -> bytes:
    body: dict[str, object] = {}
    if aux.pending:
        body["h"] = [[hour, *aux.pending[hour]] for hour in sorted(aux.pending)]
    if aux.engaged:
        body["e"] = aux.engaged
    if aux.applied:
        body["a"] = {str(p): [epoch, seq] for p, (epoch, seq) in sorted(aux.applied.items())}
    encoded = orjson.dumps(body)
    return _HEADER.pack(_VERSION, len(encoded)) + encoded + detector


def detector_part(raw: bytes | None) -> bytes:
    """The detector state of an encoded value, without parsing the aux JSON (``b""`` if none)."""
    if not raw:
        return b""
    version, length = _HEADER.unpack_from(raw)
    if version != _VERSION:
        raise ValueError(f"unknown drop-state version {version}")
    return raw[_HEADER.size + length :]


def decode_account(raw: bytes | None) -> tuple[AccountHours, bytes]:
    """``(aux, detector bytes)``; a missing value is an empty account."""
    if not raw:
        return AccountHours(), b""
    version, length = _HEADER.unpack_from(raw)
    if version != _VERSION:
        raise ValueError(f"unknown drop-state version {version}")
    start = _HEADER.size
    body = orjson.loads(raw[start : start + length])
    aux = AccountHours(
        pending={int(h): [int(s), int(d)] for h, s, d in body.get("h", ())},
        engaged=int(body.get("e", 0)),
        applied={int(p): (str(e), int(s)) for p, (e, s) in body.get("a", {}).items()},
    )
    return aux, raw[start + length :]


@dataclass
class HoursProgress:
    """Per stage-2 partition: what the source partitions have promised, and how far hours are closed."""

    heartbeats: dict[int, int] = field(default_factory=dict)  # source partition -> complete_before_ms
    closed_through: int | None = None  # start of the last closed hour
    active: set[int] = field(default_factory=set)  # hours after closed_through with events somewhere
    late_partials: int = 0  # partial hours that arrived after their hour had closed

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "hb": {str(p): v for p, v in sorted(self.heartbeats.items())},
                "closed": self.closed_through,
                "active": sorted(self.active),
                "late": self.late_partials,
            }
        )

    @classmethod
    def decode(cls, raw: bytes | None) -> HoursProgress:
        if not raw:
            return cls()
        data = orjson.loads(raw)
        return cls(
            heartbeats={int(p): int(v) for p, v in data["hb"].items()},
            closed_through=data["closed"],
            active=set(data["active"]),
            late_partials=data["late"],
        )
