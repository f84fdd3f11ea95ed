"""Bounded-memory duplicate detection for interactions that only feed aggregates and scores.

Substantive interactions are deduplicated exactly by the event-id hashes kept in their pair's state
(:mod:`streams.engagement.state`). Every other event id is remembered here as a 64-bit hash in a
bucket per UTC minute of its event time, until the whole minute is behind the partition's final
horizon (watermark − allowed lateness): from then on a redelivery is *late* and refused before it
gets here. So the horizon equals the allowed lateness, and the memory is that of one lateness period
of events (about 70–100 bytes per remembered id in CPython).

A hard cap (``max_entries``) bounds memory when a partition receives more than that in one lateness
period: the oldest minutes are forgotten first and counted in ``evicted``; a redelivery of a
forgotten event is then counted again (at-least-once for aggregates and scores, never for the
engaged rule itself).
"""

from __future__ import annotations

from typing import Final

MINUTE_MS: Final = 60_000


class MinuteDedup:
    """Event-id hashes bucketed by event-time minute."""

    __slots__ = ("_buckets", "_size", "evicted", "max_entries")

    def __init__(self, max_entries: int) -> None:
        self._buckets: dict[int, set[int]] = {}
        self._size = 0
        self.max_entries = max_entries
        self.evicted = 0

    def __len__(self) -> int:
        return self._size

    def seen(self, key: int, at_ms: int) -> bool:
        """True if ``key`` was already recorded for this minute; records it otherwise."""
        minute = at_ms - at_ms % MINUTE_MS
        bucket = self._buckets.get(minute)
        if bucket is None:
            bucket = self._buckets[minute] = set()
        elif key in bucket:
            return True
        bucket.add(key)
        self._size += 1
        if self._size > self.max_entries:
            self._evict_oldest()
        return False

    def expire(self, final_ms: int) -> None:
        """Forget minutes that end at or before ``final_ms`` (their events are late from now on)."""
        old = [minute for minute in self._buckets if minute + MINUTE_MS <= final_ms]
        for minute in old:
            self._size -= len(self._buckets.pop(minute))

    def _evict_oldest(self) -> None:
        for minute in sorted(self._buckets):
            if self._size <= self.max_entries:
                return
            dropped = len(self._buckets.pop(minute))
            self._size -= dropped
            self.evicted += dropped
