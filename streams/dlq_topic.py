"""Reading a topic from the beginning to its end, and the newest event time on the interaction topics.

The I/O edge of ``engage dlq``. "The end" is the high-water mark of a fetch reply, not ListOffsets:
the embedded Tansu broker answers ListOffsets with the last record *batch*'s base offset + 1 (see
``streams/worker/highwater.py``), which would stop a reader early.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.errors import BrokerUnavailable, InvalidEvent
from streams.events import parse_timestamp_ms
from streams.kafka_security import PLAINTEXT, KafkaSecurity


@dataclass(frozen=True, slots=True)
class TopicMessage:
    partition: int
    offset: int
    timestamp_ms: int
    value: bytes


async def _read(
    bootstrap: str, topics: Iterable[str], timeout_s: float, last_only: bool, security: KafkaSecurity
) -> list[tuple[str, TopicMessage]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        max_partition_fetch_bytes=8 << 20,
        **security.aiokafka(),
    )
    try:
        await consumer.start()
    except Exception as exc:  # aiokafka raises its own KafkaConnectionError family
        raise BrokerUnavailable(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    out: list[tuple[str, TopicMessage]] = []
    try:
        partitions: list[TopicPartition] = []
        known = await consumer.topics()
        for topic in topics:
            if topic in known:
                ids = consumer.partitions_for_topic(topic) or set()
                partitions.extend(TopicPartition(topic, p) for p in sorted(ids))
        if not partitions:
            return out
        consumer.assign(partitions)
        if last_only:
            # ListOffsets may be short on Tansu (a batch's base offset): reading from there still
            # reaches the true last message, only a few more records.
            ends = await consumer.end_offsets(partitions)
            for tp in partitions:
                consumer.seek(tp, max(0, ends[tp] - 1))
        else:
            await consumer.seek_to_beginning(*partitions)
        pending = set(partitions)
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for tp, records in batch.items():
                out.extend(
                    (tp.topic, TopicMessage(tp.partition, r.offset, r.timestamp, r.value or b""))
                    for r in records
                )
            for tp in list(pending):
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    pending.discard(tp)
        if pending:
            raise BrokerUnavailable(
                f"could not read {sorted(map(str, pending))} to the end in {timeout_s:.0f}s"
            )
        return out
    finally:
        await consumer.stop()


def read_topic(
    bootstrap: str, topic: str, timeout_s: float = 60.0, security: KafkaSecurity = PLAINTEXT
) -> list[TopicMessage]:
    """Every message of ``topic`` now, in (partition, offset) order."""
    found = asyncio.run(_read(bootstrap, [topic], timeout_s, last_only=False, security=security))
    return sorted((m for _, m in found), key=lambda m: (m.partition, m.offset))


def newest_event_ms(
    bootstrap: str, topics: Iterable[str], timeout_s: float = 30.0, security: KafkaSecurity = PLAINTEXT
) -> int | None:
    """The newest ``occurred_at`` in the last message of each partition of ``topics`` (None: all empty).

    The worker's watermark never passes the newest event it has read, so this bounds it from above.
    Messages that do not decode are skipped: they carry no event time the worker would use.
    """
    newest: int | None = None
    for _, message in asyncio.run(_read(bootstrap, topics, timeout_s, last_only=True, security=security)):
        try:
            parsed = orjson.loads(message.value)
        except orjson.JSONDecodeError:
            continue
        for item in parsed if isinstance(parsed, list) else [parsed]:
            if not isinstance(item, dict):
                continue
            try:
                at = parse_timestamp_ms(item.get("occurred_at"))
            except InvalidEvent:
                continue
            newest = at if newest is None else max(newest, at)
    return newest
