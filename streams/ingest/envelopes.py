"""From canonical events to Kafka messages: batch envelopes per (topic, partition), and DLQ records.

Pure: no Kafka import. An envelope is the JSON array of events that share a topic and a partition
(``streams.partitioning``: murmur2 of ``actor_id``, like Kafka's default partitioner), keyed by its
first event's ``actor_id``. An envelope is cut at ``max_bytes`` so that a 1 MiB request never makes a
message larger than a broker's default ``message.max.bytes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from streams.events import EVENT_TYPES, Interaction
from streams.partitioning import group_for_envelopes
from streams.producer import dlq_record
from streams.settings import Topics

DEFAULT_MAX_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class Envelope:
    """One Kafka message. ``partition`` ``None`` lets the producer choose (DLQ records)."""

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
        size = 2
        for event in group:
            part = orjson.dumps(event.to_dict())
            if parts and size + len(part) + 1 > max_bytes:
                assert first is not None
                out.append(Envelope(topic, partition, first.partition_key, b"[" + b",".join(parts) + b"]"))
                parts, size = [], 2
            if not parts:
                first = event
            parts.append(part)
            size += len(part) + 1
        assert first is not None
        out.append(Envelope(topic, partition, first.partition_key, b"[" + b",".join(parts) + b"]"))
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
