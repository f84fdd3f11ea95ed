"""High-water marks from fetch replies, for Faust's changelog recovery.

Faust decides that a table is recovered when it has read up to ``end_offsets − 1`` of each changelog
partition. The embedded Tansu broker answers ListOffsets with the base offset of the *last record
batch* + 1 (measured: 10 records produced in one batch → end offset 1), so Faust would stop early
and a restarted worker would silently lose state. Fetch replies carry the true high-water mark, so we
read one fetch per partition and use that. On a real Kafka both agree, so this costs one short-lived
consumer per rebalance and changes nothing else.

Replaces Faust's ``Consumer.highwaters`` (faust-streaming 0.15.3); guarded by
``tests/integration/worker/test_fast_recovery.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka_security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)


async def fetched_highwaters(
    bootstrap: str, partitions: Iterable[Any], timeout_s: float = 10.0, security: KafkaSecurity = PLAINTEXT
) -> dict[Any, int]:
    wanted = {TopicPartition(tp.topic, tp.partition): tp for tp in partitions}
    if not wanted:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, **security.aiokafka()
    )
    await consumer.start()
    try:
        consumer.assign(list(wanted))
        ends = await consumer.end_offsets(list(wanted))
        for tp, end in ends.items():
            consumer.seek(tp, max(0, end - 1))
        found: dict[TopicPartition, int] = {}
        deadline = time.monotonic() + timeout_s
        while len(found) < len(wanted) and time.monotonic() < deadline:
            await consumer.getmany(timeout_ms=200)
            for tp in wanted:
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    found[tp] = highwater
        for tp in wanted.keys() - found.keys():
            log.warning(
                "no fetch high-water for %s within %.0fs; using ListOffsets %d", tp, timeout_s, ends[tp]
            )
            found[tp] = ends[tp]
        return {wanted[tp]: value for tp, value in found.items()}
    finally:
        await consumer.stop()


def install(consumer: Any, bootstrap: str, security: KafkaSecurity = PLAINTEXT) -> None:
    """Make a Faust consumer's ``highwaters()`` (used by table recovery) read fetch high-waters."""

    async def highwaters(*partitions: Any) -> dict[Any, int]:
        return await fetched_highwaters(bootstrap, partitions, security=security)

    consumer.highwaters = highwaters
