"""The worker's Kafka output ports over Faust's producer, in aiokafka record batches.

Faust writes a table's changelog one message at a time through its producer buffer; a flush of a couple
of hundred thousand changed followers then cost more than the events that changed them (one event-loop
round trip per record; figures in the README's performance section). The runner merges updates per commit
interval and knows each record's partition, so the worker sends its changelog records, flags, dead letters
and per-account partials as record batches (``create_batch`` / ``send_batch``) and awaits their delivery.

Private internal used (faust-streaming 0.15.3, aiokafka 0.14.0): ``Producer._ensure_producer()`` (the
aiokafka producer under Faust's, which has no public accessor) and aiokafka's ``create_batch`` /
``send_batch``. Guarded by ``tests/integration/worker/test_worker_clickhouse.py``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import faust

from streams.partitioning import partition_for
from streams.settings import Settings
from streams.worker.changelog import ChangelogBuffer, Record


async def send_records(producer: Any, topic: str, records: Iterable[Record]) -> int:
    """Send ``records`` to ``topic`` in as few batches as fit; return once all are acknowledged."""
    by_partition: dict[int, list[tuple[bytes | None, bytes | None]]] = defaultdict(list)
    for partition, key, value in records:
        by_partition[partition].append((key, value))
    futures = []
    for partition, items in by_partition.items():
        batch = producer.create_batch()
        for key, value in items:
            if batch.append(timestamp=None, key=key, value=value) is None:
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                if batch.append(timestamp=None, key=key, value=value) is None:
                    raise ValueError(f"a record for {topic} is larger than the producer's batch size")
        if batch.record_count():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
    if futures:
        await asyncio.gather(*futures)
    return len(futures)


class FaustOutputs:
    """:class:`~streams.worker.flush.OutputPort` over Faust's aiokafka producer, in record batches.

    Flags are keyed (and partitioned) by account, per-account partials by account, dead letters stay on
    their source partition, heartbeats go to every partition.
    """

    def __init__(
        self, app: faust.App, settings: Settings, changelog_topic: str, changelog: ChangelogBuffer
    ) -> None:
        self._app = app
        self._topics = settings.topics
        self._partitions = settings.topic_partitions
        self._changelog_topic = changelog_topic
        self._changelog = changelog

    def _producer(self) -> Any:
        # The aiokafka producer under Faust's (no public accessor): batches need its create_batch().
        return self._app.producer._ensure_producer()  # type: ignore[attr-defined]

    def _keyed(self, records: list[tuple[bytes, bytes]]) -> list[Record]:
        return [(partition_for(key, self._partitions), key, value) for key, value in records]

    async def send_flags(self, records: list[tuple[bytes, bytes]]) -> None:
        await send_records(self._producer(), self._topics.flags, self._keyed(records))

    async def send_dlq(self, records: list[bytes], partition: int = 0) -> None:
        await send_records(self._producer(), self._topics.dlq, [(partition, None, r) for r in records])

    async def send_account_hours(self, records: list[tuple[bytes, bytes]], heartbeat: bytes | None) -> None:
        out = self._keyed(records)
        if heartbeat is not None:
            out += [(p, None, heartbeat) for p in range(self._partitions)]
        await send_records(self._producer(), self._topics.account_hours, out)

    async def sync_state(self, partition: int) -> None:
        await send_records(self._producer(), self._changelog_topic, self._changelog.take(partition))


class FaustAlertPort:
    """:class:`~streams.worker.drops.stage.AlertPort` over Faust's producer: alerts, and the ``drop-state``
    changelog in record batches."""

    def __init__(self, app: faust.App, topic: str, changelog_topic: str) -> None:
        self._app = app
        self._topic = topic
        self._changelog_topic = changelog_topic

    async def send_alerts(self, records: list[tuple[bytes, bytes]]) -> None:
        producer = self._app.producer
        futures = [await producer.send(self._topic, key, value, None, None, None) for key, value in records]
        await asyncio.gather(*futures)

    async def sync_state(self, records: list[Record]) -> None:
        # the aiokafka producer under Faust's, as FaustOutputs uses it (no public accessor)
        producer = self._app.producer._ensure_producer()  # type: ignore[attr-defined]
        await send_records(producer, self._changelog_topic, records)
