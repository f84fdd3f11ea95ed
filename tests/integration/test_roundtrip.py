"""Canonical events produced with kafka-python come back through an aiokafka consumer group intact."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer

from streams.embedded.broker import EmbeddedBroker, ensure_topics
from streams.events import Interaction, Rejected, iter_message
from streams.partitioning import partition_for
from streams.producer import KafkaEventPublisher
from streams.settings import Topics


def _events(n: int) -> list[Interaction]:
    types = ["like", "comment", "share", "follow", "unfollow"]
    return [
        Interaction(
            f"e{i}",
            types[i % 5],
            "generic",
            f"acc{i % 3}",
            f"actor{i % 17}",
            None if types[i % 5] in {"follow", "unfollow"} else f"p{i % 4}",
            "a real comment",
            1_700_000_000_000 + i,
        )
        for i in range(n)
    ]


async def _consume_all(bootstrap: str, topics: list[str], expected: int) -> list[tuple[str, int, bytes]]:
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id="roundtrip",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: list[tuple[str, int, bytes]] = []
    try:
        async with asyncio.timeout(60):
            count = 0
            while count < expected:
                batch = await consumer.getmany(timeout_ms=1000)
                for tp, records in batch.items():
                    for record in records:
                        seen.append((tp.topic, tp.partition, record.value))
                        count += sum(1 for _ in iter_message(record.value))
    finally:
        await consumer.stop()
    return seen


def test_produce_consume_decode(broker: EmbeddedBroker) -> None:
    topics = Topics(prefix="rt.")
    ensure_topics(broker.bootstrap, topics.all, partitions=4)
    events = _events(400)
    with KafkaEventPublisher(broker.bootstrap, topics, 4, max_batch=50) as publisher:
        messages = publisher.send(events)
    assert messages >= 16  # 4 topics x 4 partitions, at least one envelope each
    received = asyncio.run(_consume_all(broker.bootstrap, list(topics.interactions), len(events)))
    decoded: list[Interaction] = []
    for topic, partition, value in received:
        for item in iter_message(value):
            assert not isinstance(item, Rejected)
            assert topics.for_type(item.type) == topic
            assert partition_for(item.partition_key, 4) == partition
            decoded.append(item)
    assert sorted(decoded, key=lambda e: e.event_id) == sorted(events, key=lambda e: e.event_id)
