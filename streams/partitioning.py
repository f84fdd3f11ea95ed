"""Which partition an event belongs to: Kafka's default (murmur2) partitioner over ``actor_id``.

Per-(account, follower) state must live on one worker, so every event is keyed by its actor. Keying
by actor rather than account also spreads a hot brand account over all partitions. Producers that
batch events into envelopes compute the partition here, so an envelope lands exactly where single
keyed messages of the same actors would (Java, librdkafka-``murmur2_random`` and kafka-python agree).
"""

from __future__ import annotations

import functools
import struct
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Final

from streams.events import Interaction

_M: Final = 0x5BD1E995
_WORDS: Final[tuple[Callable[[bytes], tuple[int, ...]], ...]] = tuple(
    struct.Struct(f"<{n}I").unpack_from for n in range(65)
)


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's ``Utils.murmur2``), the same value as kafka-python's.

    Same arithmetic, with the 4-byte words read by one ``struct`` call and the masks folded: faster
    than ``kafka.partitioner.default.murmur2`` (README, "Performance"), and it is what a key the caches
    below have not seen yet costs. ``tests/unit/test_partitioning.py``
    checks it against kafka-python's on generated keys.
    """
    m = _M  # a local: read on every operation below
    length = len(data)
    h = 0x9747B28C ^ length
    words = length >> 2
    unpack = _WORDS[words] if words < 65 else struct.Struct(f"<{words}I").unpack_from
    for k in unpack(data):
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ (((k ^ (k >> 24)) * m) & 0xFFFFFFFF)
    tail = length & 3
    if tail:
        h = ((h ^ int.from_bytes(data[length - tail :], "little")) * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    return h ^ (h >> 15)


# Actors recur, so a bounded cache pays off on hot paths (ingest computes one per event).
@functools.lru_cache(maxsize=1_048_576)
def partition_for(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


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
