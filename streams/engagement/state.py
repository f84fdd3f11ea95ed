"""Per-follower state and its compact binary encoding (the value of the Faust table, keyed by actor).

The table is keyed by ``actor_id``, the Kafka key of every interaction, so a state's changelog
partition is the partition its events come from. One :class:`ActorState` holds that follower's
pairs, one :class:`PairState` per brand account they interacted with.

Encoding (little endian, version 1)::

    actor   u8 version | u64 seq | i64 watermark | i64 checked | u8 n_platforms | u32 n_pairs
            n_platforms × (u8 len, utf-8 platform)
    pair    u16 len, utf-8 account_id
            u8 platform index | u8 flags (bit 0: engaged) | u32 n_times | u32 n_hashes
            u32 interactions (saturating) | f64 score | i64 score_as_of
            n_times × i64 substantive event times (ascending)
            n_hashes × u64 event-id hashes of the *last* n_hashes times

Fixed-width fields instead of varints: decoding and encoding run for every touched follower once
per flush, and ``struct`` does a whole record in one C call where a Python varint loop costs a
microsecond per integer. A pair with three substantive times and no pending hashes takes
``2 + len(account_id) + 30 + 24`` bytes (66 for a 10-character account id); a like-only pair 42.
Hashes are only kept for times at or after the final horizon when the record was written (before it
every event would be late anyway, so no duplicate of them can be accepted any more): a settled pair
carries none.
"""

from __future__ import annotations

import hashlib
import struct
from bisect import bisect_left
from functools import lru_cache
from typing import Final

VERSION: Final = 1
NO_WATERMARK: Final = -(2**63)

_ACTOR: Final = struct.Struct("<BQqqBI")
_PAIR: Final = struct.Struct("<BBIIIdq")
_U8: Final = struct.Struct("<B")
_U16: Final = struct.Struct("<H")
_ENGAGED: Final = 1


def event_hash(event_id: str) -> int:
    """A stable, non-zero 64-bit hash of an event id (stored, so it must not vary by process)."""
    value = int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "little")
    return value or 1


class PairState:
    """One (account, actor) pair.

    ``times`` are the substantive event times still needed (ascending, duplicates allowed: two events
    in the same millisecond both count); ``hashes`` is parallel to it, 0 where the hash was dropped.
    Both are tuples, replaced on change: a tuple of ints is not tracked by the cyclic garbage collector,
    and with hundreds of thousands of cached pairs the collector's full passes are what costs.
    ``engaged`` is the rule's verdict just before the owning actor's ``checked`` horizon.
    ``raw`` caches this pair's encoded record; whoever changes a field sets it to ``None``.
    ``due`` (memory only, never encoded) is the event time before which the pair needs no evaluation,
    as planned by the engine's timer at its last evaluation; ``None``: unknown, evaluate at the next
    timer of its actor.
    """

    __slots__ = (
        "account_id",
        "due",
        "engaged",
        "hashes",
        "interactions",
        "platform",
        "raw",
        "score",
        "score_as_of",
        "times",
    )

    def __init__(
        self,
        account_id: str,
        platform: str,
        engaged: bool = False,
        times: tuple[int, ...] = (),
        hashes: tuple[int, ...] = (),
        score: float = 0.0,
        score_as_of: int = 0,
        interactions: int = 0,
    ) -> None:
        self.account_id = account_id
        self.platform = platform
        self.engaged = engaged
        self.times = times
        self.hashes = hashes
        self.score = score
        self.score_as_of = score_as_of
        self.interactions = interactions
        self.raw: bytes | None = None
        self.due: int | None = None

    def __repr__(self) -> str:
        return (
            f"PairState({self.account_id!r}, {self.platform!r}, engaged={self.engaged}, "
            f"times={self.times}, score={self.score:.4g}@{self.score_as_of}, n={self.interactions})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PairState):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _PAIR_FIELDS)

    __hash__ = None  # type: ignore[assignment]


class ActorState:
    """All pairs of one follower, plus the bookkeeping the engine stamps on every write.

    ``checked``: every event time before it has been evaluated for all pairs (transitions emitted).
    ``seq`` / ``watermark``: the engine's ``flush_seq`` and watermark when this value was written.
    """

    __slots__ = ("checked", "pairs", "platforms", "seq", "watermark")

    def __init__(self, checked: int, seq: int = 0, watermark: int | None = None) -> None:
        self.checked = checked
        self.seq = seq
        self.watermark = watermark
        self.pairs: dict[str, PairState] = {}
        # Append-only while the state lives, so a cached pair record's platform index stays valid.
        self.platforms: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"ActorState(checked={self.checked}, seq={self.seq}, pairs={list(self.pairs.values())})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ActorState):
            return NotImplemented
        return (self.checked, self.seq, self.watermark, self.pairs) == (
            other.checked,
            other.seq,
            other.watermark,
            other.pairs,
        )

    __hash__ = None  # type: ignore[assignment]


@lru_cache(maxsize=64)
def _ints(count: int, signed: bool) -> struct.Struct:
    return struct.Struct(f"<{count}{'q' if signed else 'Q'}")


@lru_cache(maxsize=4096)
def _record(account_size: int, n_times: int, n_hashes: int) -> struct.Struct:
    """The whole pair record as one struct, so encoding a pair is a single C call."""
    return struct.Struct(f"<H{account_size}s{_PAIR.format[1:]}{n_times}q{n_hashes}Q")


@lru_cache(maxsize=256)
def _platform_table(platforms: tuple[str, ...]) -> bytes:
    if len(platforms) > 255:
        raise ValueError("an actor state holds at most 255 platforms")
    return b"".join(_U8.pack(len(raw)) + raw for raw in (name.encode() for name in platforms))


def _encode_pair(state: ActorState, pair: PairState, horizon: int | None) -> bytes:
    platforms = state.platforms
    try:
        index = platforms.index(pair.platform)
    except ValueError:
        index = len(platforms)
        state.platforms = (*platforms, pair.platform)
    times = pair.times
    hashes = pair.hashes
    kept = len(hashes)
    while kept and hashes[len(hashes) - kept] == 0:
        kept -= 1
    if horizon is not None:
        # Hashes of times before the final horizon are never needed again (a redelivery of those
        # events would be late), whether or not a timer has dropped them from memory yet.
        kept = min(kept, len(times) - bisect_left(times, horizon))
    account = pair.account_id.encode()
    return _record(len(account), len(times), kept).pack(
        len(account),
        account,
        index,
        _ENGAGED if pair.engaged else 0,
        len(times),
        kept,
        min(pair.interactions, 0xFFFFFFFF),
        pair.score,
        pair.score_as_of,
        *times,
        *hashes[len(hashes) - kept :],
    )


def encode(state: ActorState, horizon: int | None = None) -> bytes:
    """The table value of ``state`` (see the module docstring for the layout).

    Unchanged pairs reuse their cached record, so the cost follows the pairs that changed. With a
    ``horizon`` (the engine's final time), a changed pair's record leaves out the hashes of its times
    before it; a cached record may still carry some, which is only a few bytes more.
    """
    records = []
    for pair in state.pairs.values():
        raw = pair.raw
        if raw is None:
            raw = pair.raw = _encode_pair(state, pair, horizon)
        records.append(raw)
    head = _ACTOR.pack(
        VERSION,
        state.seq,
        NO_WATERMARK if state.watermark is None else state.watermark,
        state.checked,
        len(state.platforms),
        len(records),
    )
    return b"".join((head, _platform_table(state.platforms), *records))


def decode(data: bytes) -> ActorState:
    """Inverse of :func:`encode`."""
    version, seq, watermark, checked, n_platforms, n_pairs = _ACTOR.unpack_from(data, 0)
    if version != VERSION:
        raise ValueError(f"unknown actor state version {version}")
    offset = _ACTOR.size
    state = ActorState(checked, seq, None if watermark == NO_WATERMARK else watermark)
    platforms: list[str] = []
    for _ in range(n_platforms):
        size = data[offset]
        platforms.append(data[offset + 1 : offset + 1 + size].decode())
        offset += 1 + size
    state.platforms = tuple(platforms)
    pairs = state.pairs
    unpack_pair = _PAIR.unpack_from
    pair_size = _PAIR.size
    for _ in range(n_pairs):
        start = offset
        size = data[offset] | (data[offset + 1] << 8)
        account_id = data[offset + 2 : offset + 2 + size].decode()
        offset += 2 + size
        index, flags, n_times, n_hashes, interactions, score, as_of = unpack_pair(data, offset)
        offset += pair_size
        times: tuple[int, ...] = ()
        hashes: tuple[int, ...] = ()
        if n_times:
            times = _ints(n_times, True).unpack_from(data, offset)
            offset += 8 * n_times
            hashes = (0,) * (n_times - n_hashes)
            if n_hashes:
                hashes += _ints(n_hashes, False).unpack_from(data, offset)
                offset += 8 * n_hashes
        pair = pairs[account_id] = PairState(
            account_id, platforms[index], bool(flags & _ENGAGED), times, hashes, score, as_of, interactions
        )
        pair.raw = data[start:offset]
    if offset != len(data):
        raise ValueError(f"actor state has {len(data) - offset} trailing bytes")
    return state


_PAIR_FIELDS: Final = tuple(name for name in PairState.__slots__ if name not in ("raw", "due"))
