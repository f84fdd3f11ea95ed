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


# kafka-python's murmur2 is pure Python (~7 µs a key); actors recur, so a bounded cache pays off on
# hot paths (ingest computes one per event).
@functools.lru_cache(maxsize=1_048_576)
def partition_for(key: bytes, partitions: int) -> int:
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def key_on_partition(prefix: str, partition: int, partitions: int) -> str:
    """``prefix`` + the first counter that the default partitioner sends to ``partition``.

    Internal table records (progress, dedup hashes, stage-2 meta) must share the changelog partition of
    the stream partition they describe, so their keys are chosen to hash there (~``partitions`` tries).
    """
    n = 0
    while True:
        key = f"{prefix}{n}"
        if partition_for(key.encode(), partitions) == partition:
            return key
        n += 1


def group_for_envelopes(
    events: Iterable[Interaction], partitions: int, topic_for: dict[str, str]
) -> dict[tuple[str, int], list[Interaction]]:
    """Events grouped by (topic, partition), in arrival order within each group."""
    groups: dict[tuple[str, int], list[Interaction]] = defaultdict(list)
    for event in events:
        groups[(topic_for[event.type], partition_for(event.partition_key, partitions))].append(event)
    return groups
