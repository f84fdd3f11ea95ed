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
Hashes are only kept for times at or after ``checked`` (the horizon before which every event would be
late anyway, so no duplicate of them can be accepted any more): a settled pair carries none.
"""

from __future__ import annotations

import hashlib
import struct
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
    ``engaged`` is the rule's verdict just before the owning actor's ``checked`` horizon.
    """

    __slots__ = (
        "account_id",
        "engaged",
        "hashes",
        "interactions",
        "platform",
        "score",
        "score_as_of",
        "times",
    )

    def __init__(
        self,
        account_id: str,
        platform: str,
        *,
        engaged: bool = False,
        times: list[int] | None = None,
        hashes: list[int] | None = None,
        score: float = 0.0,
        score_as_of: int = 0,
        interactions: int = 0,
    ) -> None:
        self.account_id = account_id
        self.platform = platform
        self.engaged = engaged
        self.times: list[int] = times if times is not None else []
        self.hashes: list[int] = hashes if hashes is not None else []
        self.score = score
        self.score_as_of = score_as_of
        self.interactions = interactions

    def __repr__(self) -> str:
        return (
            f"PairState({self.account_id!r}, {self.platform!r}, engaged={self.engaged}, "
            f"times={self.times}, score={self.score:.4g}@{self.score_as_of}, n={self.interactions})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PairState):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in PairState.__slots__)

    __hash__ = None  # type: ignore[assignment]


class ActorState:
    """All pairs of one follower, plus the bookkeeping the engine stamps on every write.

    ``checked``: every event time before it has been evaluated for all pairs (transitions emitted).
    ``seq`` / ``watermark``: the engine's ``flush_seq`` and watermark when this value was written.
    """

    __slots__ = ("checked", "pairs", "seq", "watermark")

    def __init__(self, checked: int, seq: int = 0, watermark: int | None = None) -> None:
        self.checked = checked
        self.seq = seq
        self.watermark = watermark
        self.pairs: dict[str, PairState] = {}

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


def encode(state: ActorState) -> bytes:
    """The table value of ``state`` (see the module docstring for the layout)."""
    platforms: dict[str, int] = {}
    body: list[bytes] = []
    pair_struct = _PAIR.pack
    for account_id, pair in state.pairs.items():
        index = platforms.setdefault(pair.platform, len(platforms))
        times = pair.times
        hashes = pair.hashes
        kept = len(hashes)
        while kept and hashes[len(hashes) - kept] == 0:
            kept -= 1
        account = account_id.encode()
        body.append(_U16.pack(len(account)))
        body.append(account)
        body.append(
            pair_struct(
                index,
                _ENGAGED if pair.engaged else 0,
                len(times),
                kept,
                min(pair.interactions, 0xFFFFFFFF),
                pair.score,
                pair.score_as_of,
            )
        )
        if times:
            body.append(_ints(len(times), True).pack(*times))
        if kept:
            body.append(_ints(kept, False).pack(*hashes[len(hashes) - kept :]))
    if len(platforms) > 255:
        raise ValueError("an actor state holds at most 255 platforms")
    head = [
        _ACTOR.pack(
            VERSION,
            state.seq,
            NO_WATERMARK if state.watermark is None else state.watermark,
            state.checked,
            len(platforms),
            len(state.pairs),
        )
    ]
    for name in platforms:
        raw = name.encode()
        head.append(_U8.pack(len(raw)))
        head.append(raw)
    return b"".join(head + body)


def decode(data: bytes) -> ActorState:
    """Inverse of :func:`encode`."""
    version, seq, watermark, checked, n_platforms, n_pairs = _ACTOR.unpack_from(data, 0)
    if version != VERSION:
        raise ValueError(f"unknown actor state version {version}")
    offset = _ACTOR.size
    platforms: list[str] = []
    for _ in range(n_platforms):
        size = data[offset]
        platforms.append(data[offset + 1 : offset + 1 + size].decode())
        offset += 1 + size
    state = ActorState(checked, seq, None if watermark == NO_WATERMARK else watermark)
    pairs = state.pairs
    unpack_pair = _PAIR.unpack_from
    pair_size = _PAIR.size
    for _ in range(n_pairs):
        size = data[offset] | (data[offset + 1] << 8)
        account_id = data[offset + 2 : offset + 2 + size].decode()
        offset += 2 + size
        index, flags, n_times, n_hashes, interactions, score, as_of = unpack_pair(data, offset)
        offset += pair_size
        times: list[int] = []
        hashes: list[int] = []
        if n_times:
            times = list(_ints(n_times, True).unpack_from(data, offset))
            offset += 8 * n_times
            hashes = [0] * (n_times - n_hashes)
            if n_hashes:
                hashes.extend(_ints(n_hashes, False).unpack_from(data, offset))
                offset += 8 * n_hashes
        pairs[account_id] = PairState(
            account_id,
            platforms[index],
            engaged=bool(flags & _ENGAGED),
            times=times,
            hashes=hashes,
            score=score,
            score_as_of=as_of,
            interactions=interactions,
        )
    if offset != len(data):
        raise ValueError(f"actor state has {len(data) - offset} trailing bytes")
    return state
