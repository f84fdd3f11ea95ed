"""What the demo reads while it runs: the two ``/metrics`` endpoints and the output topics.

:class:`MetricsProbe` scrapes a Prometheus endpoint over HTTP; :class:`TopicFollower` reads
``engagement.flags`` and ``engagement.alerts`` from the beginning with an aiokafka consumer that is in
no consumer group (assigned every partition, commits nothing), so it neither joins the workers'
group nor waits for a rebalance. Decoded records go to a callback, e.g. the
:class:`~streams.demo.board.Board`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.demo.board import Samples, parse_samples
from streams.kafka_security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)


class MetricsProbe:
    """GET ``url`` and parse it; ``None`` while the endpoint does not answer."""

    def __init__(self, session: aiohttp.ClientSession, url: str, *, timeout_s: float = 2.0) -> None:
        self._session = session
        self.url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def scrape(self) -> Samples | None:
        try:
            async with self._session.get(self.url, timeout=self._timeout) as response:
                if response.status != 200:
                    return None
                return parse_samples(await response.text())
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            return None

    async def ready(self, url: str | None = None) -> bool:
        """True when ``url`` (default: the probe's own URL) answers 200."""
        url = self.url if url is None else url
        try:
            async with self._session.get(url, timeout=self._timeout) as response:
                await response.read()
                return response.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False


Handler = Callable[[Mapping[str, Any]], None]


class TopicFollower:
    """Read ``handlers``' topics from the beginning, forever; call the topic's handler per record."""

    def __init__(
        self, bootstrap: str, handlers: Mapping[str, Handler], security: KafkaSecurity = PLAINTEXT
    ) -> None:
        self._bootstrap = bootstrap
        self._security = security
        self._handlers = dict(handlers)
        self.undecodable = 0

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=250,
            **self._security.aiokafka(),
        )
        await consumer.start()
        try:
            await consumer.topics()  # fetch metadata so partitions_for_topic knows every topic
            partitions: list[TopicPartition] = []
            for topic in self._handlers:
                numbers: Sequence[int] = sorted(consumer.partitions_for_topic(topic) or ())
                partitions += [TopicPartition(topic, p) for p in numbers]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=250, max_records=2000)
                for tp, records in batches.items():
                    handler = self._handlers[tp.topic]
                    for record in records:
                        try:
                            handler(orjson.loads(record.value))
                        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                            self.undecodable += 1
        finally:
            await consumer.stop()
