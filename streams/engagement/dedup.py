"""Bounded-memory duplicate detection for interactions that only feed aggregates and scores.

Substantive interactions are deduplicated exactly by the event-id hashes kept in their pair's state
(:mod:`streams.engagement.state`). Every other event id is remembered here as a 64-bit hash in a
bucket per UTC minute of its event time, until the whole minute is behind the partition's final
horizon (watermark − allowed lateness): from then on a redelivery is *late* and refused before it
gets here. So the horizon equals the allowed lateness, and the memory is that of one lateness period
of events (about 70–100 bytes per remembered id in CPython).

The hashes are stable across processes (CRC-32 and Adler-32 of the UTF-8 id side by side, 64 bits,
both in C; Python's ``hash`` is salted per process), because a worker persists the hashes learnt in
each flush interval (:meth:`MinuteDedup.take_fresh`) and a restarted worker reloads them
(:meth:`MinuteDedup.remember`): a redelivery straddling a crash is still recognised.

A hard cap (``max_entries``) bounds memory when a partition receives more than that in one lateness
period: the oldest minutes are forgotten first and counted in ``evicted``; a redelivery of a
forgotten event is then counted again (at-least-once for aggregates and scores, never for the
engaged rule itself).
"""

from __future__ import annotations

import zlib
from typing import Final

MINUTE_MS: Final = 60_000


def stable_hash64(event_id: str) -> int:
    raw = event_id.encode()
    return zlib.crc32(raw) | (zlib.adler32(raw) << 32)


class MinuteDedup:
    """Event-id hashes bucketed by event-time minute."""

    __slots__ = ("_size", "buckets", "evicted", "fresh", "max_entries")

    def __init__(self, max_entries: int) -> None:
        # Public for the engine's inlined hot loop, which adds to both and then calls grew().
        self.buckets: dict[int, set[int]] = {}
        self.fresh: dict[int, list[int]] = {}  # keys added since take_fresh(), by minute
        self._size = 0
        self.max_entries = max_entries
        self.evicted = 0

    def __len__(self) -> int:
        return self._size

    def seen(self, key: int, at_ms: int) -> bool:
        """True if ``key`` was already recorded for this minute; records it otherwise."""
        minute = at_ms - at_ms % MINUTE_MS
        bucket = self.buckets.get(minute)
        if bucket is None:
            bucket = self.buckets[minute] = set()
        elif key in bucket:
            return True
        bucket.add(key)
        self.fresh.setdefault(minute, []).append(key)
        self._size += 1
        if self._size > self.max_entries:
            self._evict_oldest()
        return False

    def take_fresh(self) -> dict[int, list[int]]:
        """Hashes recorded since the last call, by minute (what a flush must persist)."""
        fresh, self.fresh = self.fresh, {}
        return fresh

    def remember(self, minute: int, keys: list[int]) -> None:
        """Reload hashes persisted by an earlier process (not reported by :meth:`take_fresh`)."""
        bucket = self.buckets.setdefault(minute, set())
        before = len(bucket)
        bucket.update(keys)
        self._size += len(bucket) - before

    def grew(self, added: int) -> None:
        """``added`` keys were put into ``buckets`` directly; enforce the cap."""
        self._size += added
        if self._size > self.max_entries:
            self._evict_oldest()

    def expire(self, final_ms: int) -> None:
        """Forget minutes that end at or before ``final_ms`` (their events are late from now on)."""
        old = [minute for minute in self.buckets if minute + MINUTE_MS <= final_ms]
        for minute in old:
            self._size -= len(self.buckets.pop(minute))

    def _evict_oldest(self) -> None:
        for minute in sorted(self.buckets):
            if self._size <= self.max_entries:
                return
            dropped = len(self.buckets.pop(minute))
            self._size -= dropped
            self.evicted += dropped
