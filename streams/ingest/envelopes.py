"""From canonical events to Kafka messages: batch envelopes per (topic, partition), and DLQ records.

Pure: no Kafka import. An envelope is the JSON array of events that share a topic and a partition
(``streams.partitioning``: murmur2 of ``actor_id``, like Kafka's default partitioner), keyed by its
first event's ``actor_id``. An envelope is cut at ``max_bytes`` so that a 1 MiB request never makes a
message larger than a broker's default ``message.max.bytes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import orjson

from streams.events import EVENT_TYPES, Interaction
from streams.partitioning import group_for_envelopes, murmur2
from streams.producer import dlq_record
from streams.settings import Topics

DEFAULT_MAX_BYTES = 512 * 1024


class Envelope(NamedTuple):
    """One Kafka message. ``partition`` ``None`` lets the producer choose (DLQ records).

    A named tuple rather than a frozen dataclass: immutable all the same, and built several times per
    request on the hot path, where a frozen dataclass's ``__init__`` costs a few times more.
    """

    topic: str
    partition: int | None
    key: bytes | None
    value: bytes


def topic_map(topics: Topics) -> dict[str, str]:
    return {event_type: topics.for_type(event_type) for event_type in EVENT_TYPES}


def event_envelopes(
    events: Sequence[Interaction],
    topic_for: dict[str, str],
    partitions: int,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[Envelope]:
    """Events grouped per (topic, partition) in arrival order, each group cut into envelopes.

    The value is byte-for-byte :func:`streams.events.encode_batch` of the envelope's events; each
    event is encoded once and the array assembled from the parts so the cut needs no re-encoding.
    """
    out: list[Envelope] = []
    for (topic, partition), group in group_for_envelopes(events, partitions, topic_for).items():
        parts: list[bytes] = []
        first: Interaction | None = None
        size = 1  # "["; each part adds its bytes and one more (a comma, or the closing "]")
        for event in group:
            part = orjson.dumps(event.to_dict())
            if parts and size + len(part) + 1 > max_bytes:
                assert first is not None
                out.append(Envelope(topic, partition, first.partition_key, b"[" + b",".join(parts) + b"]"))
                parts, size = [], 1
            if not parts:
                first = event
            parts.append(part)
            size += len(part) + 1
        assert first is not None
        out.append(Envelope(topic, partition, first.partition_key, b"[" + b",".join(parts) + b"]"))
    return out


class ActorPartitions:
    """``actor_id`` → partition, memoised per string (no encode, no hash of a key tuple on a hit).

    Same answer as :func:`streams.partitioning.partition_for` of the UTF-8 actor; forgets everything
    once ``max_entries`` actors were seen, so memory stays bounded whatever the traffic.
    """

    def __init__(self, partitions: int, max_entries: int = 1_000_000) -> None:
        self.partitions = partitions
        self._max = max_entries
        self.cached: dict[str, int] = {}  # read directly on the hot path; filled by __call__

    def __call__(self, actor_id: str) -> int:
        partition = self.cached.get(actor_id)
        if partition is None:
            if len(self.cached) >= self._max:
                self.cached.clear()
            # murmur2 directly: partition_for's own LRU would only keep a second copy of every actor.
            partition = (murmur2(actor_id.encode()) & 0x7FFFFFFF) % self.partitions
            self.cached[actor_id] = partition
        return partition


def canonical_envelopes(
    events: Sequence[dict[str, Any]],
    topic_for: dict[str, str],
    partition_of: ActorPartitions,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[Envelope]:
    """:func:`event_envelopes` for events already in canonical object form (validated dicts).

    Same grouping, order, keys and cuts; a group's value is one ``orjson.dumps`` of its objects
    (a group over ``max_bytes`` is encoded per event and cut like :func:`event_envelopes` does).
    """
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    cached = partition_of.cached
    for event in events:
        actor = event["actor_id"]
        partition = cached.get(actor)
        if partition is None:
            partition = partition_of(actor)
        group_key = (topic_for[event["type"]], partition)
        group = groups.get(group_key)
        if group is None:
            groups[group_key] = [event]
        else:
            group.append(event)
    out: list[Envelope] = []
    dumps = orjson.dumps
    for (topic, partition), group in groups.items():
        value = dumps(group)
        if len(value) <= max_bytes:
            out.append(Envelope(topic, partition, group[0]["actor_id"].encode(), value))
            continue
        parts: list[bytes] = []
        first: dict[str, Any] = group[0]
        size = 1  # "["; each part adds its bytes and one more (a comma, or the closing "]")
        for event in group:
            part = dumps(event)
            if parts and size + len(part) + 1 > max_bytes:
                out.append(
                    Envelope(topic, partition, first["actor_id"].encode(), b"[" + b",".join(parts) + b"]")
                )
                parts, size = [], 1
            if not parts:
                first = event
            parts.append(part)
            size += len(part) + 1
        out.append(Envelope(topic, partition, first["actor_id"].encode(), b"[" + b",".join(parts) + b"]"))
    return out


def dlq_envelopes(
    topics: Topics,
    entries: Iterable[tuple[str, str, bytes]],
    source: dict[str, Any],
) -> list[Envelope]:
    """``(reason, detail, original bytes)`` → records in the ``streams.producer.dlq_record`` format."""
    key = str(source.get("platform", "")).encode() or None
    return [
        Envelope(topics.dlq, None, key, dlq_record(reason, detail, raw, source))
        for reason, detail, raw in entries
    ]
