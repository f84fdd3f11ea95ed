"""Which partition an event belongs to: Kafka's default (murmur2) partitioner over ``actor_id``.

Per-(account, follower) state must live on one worker, so every event is keyed by its actor. Keying
by actor rather than account also spreads a hot brand account over all partitions. Producers that
batch events into envelopes compute the partition here, so an envelope lands exactly where single
keyed messages of the same actors would (Java, librdkafka-``murmur2_random`` and kafka-python agree).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable

from kafka.partitioner.default import murmur2

from streams.events import Interaction


# kafka-python's murmur2 is pure Python (~2 µs a key); actors recur, so a bounded cache pays off on
# hot paths (ingest computes one per event).
@functools.lru_cache(maxsize=65_536)
def partition_for(key: bytes, partitions: int) -> int:
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


class PartitionCache:
    """``partition_for`` memoised per actor: murmur2 in pure Python costs ~8 µs, and actors repeat."""

    def __init__(self, partitions: int, max_entries: int = 1_000_000) -> None:
        self.partitions = partitions
        self._max = max_entries
        self._cache: dict[str, int] = {}

    def __call__(self, actor_id: str) -> int:
        partition = self._cache.get(actor_id)
        if partition is None:
            if len(self._cache) >= self._max:
                self._cache.clear()
            partition = self._cache[actor_id] = partition_for(actor_id.encode(), self.partitions)
        return partition


def group_for_envelopes(
    events: Iterable[Interaction], partitions: int | PartitionCache, topic_for: dict[str, str]
) -> dict[tuple[str, int], list[Interaction]]:
    """Events grouped by (topic, partition), in arrival order within each group."""
    cache = partitions if isinstance(partitions, PartitionCache) else PartitionCache(partitions)
    groups: dict[tuple[str, int], list[Interaction]] = defaultdict(list)
    for event in events:
        groups[(topic_for[event.type], cache(event.actor_id))].append(event)
    return groups
