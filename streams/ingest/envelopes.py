"""From canonical events to Kafka messages: batch envelopes per (topic, partition), and DLQ records.

Pure: no Kafka import. An envelope is the JSON array of events that share a topic and a partition
(``streams.partitioning``: murmur2 of ``actor_id``, like Kafka's default partitioner), keyed by its
first event's ``actor_id``. An envelope is cut at ``max_bytes`` so that a 1 MiB request never makes a
message larger than a broker's default ``message.max.bytes``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import orjson

from streams.deadletters import dlq_record
from streams.events import EVENT_TYPES, Interaction
from streams.partitioning import group_for_envelopes, murmur2
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


# What a truncated record spends besides the kept bytes (reason, 1000-character detail, source, hash).
_RECORD_OVERHEAD = 8 * 1024


def bounded_dlq_record(
    reason: str, detail: str, raw: bytes, source: dict[str, Any], max_bytes: int = DEFAULT_MAX_BYTES
) -> bytes:
    """:func:`streams.deadletters.dlq_record`, but never over ``max_bytes``.

    JSON-escaping control bytes can make a record six times its original (``\\u0000``), which once
    made a record over the producer's message limit: every attempt failed and the request was answered
    503 forever. A record that would be too large keeps only a base64 prefix of the original (base64
    grows by a fixed 4/3, so the prefix length is computed, not searched for) and says so:
    ``original_truncated``, the full ``original_length`` and the ``original_sha256`` of all of it.
    """
    record = dlq_record(reason, detail, raw, source)
    if len(record) <= max_bytes:
        return record
    keep = max(0, (max_bytes - _RECORD_OVERHEAD) * 3 // 4)
    return orjson.dumps(
        {
            "reason": reason,
            "detail": detail[:1000],
            "source": source,
            "original": base64.b64encode(raw[:keep]).decode(),
            "original_encoding": "base64",
            "original_truncated": True,
            "original_length": len(raw),
            "original_sha256": hashlib.sha256(raw).hexdigest(),
        }
    )


def dlq_envelopes(
    topics: Topics,
    entries: Iterable[tuple[str, str, bytes]],
    source: dict[str, Any],
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[Envelope]:
    """``(reason, detail, original bytes)`` → records in the ``streams.deadletters.dlq_record`` format,
    each at most ``max_bytes`` (:func:`bounded_dlq_record`)."""
    key = str(source.get("platform", "")).encode() or None
    return [
        Envelope(topics.dlq, None, key, bounded_dlq_record(reason, detail, raw, source, max_bytes))
        for reason, detail, raw in entries
    ]
