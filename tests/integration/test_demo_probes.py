"""The demo's readers on real components: the Tansu broker (flags, alerts) and a real /metrics server."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import aiohttp
import orjson
import pytest
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry, start_http_server

from streams.demo.board import Board, pipeline_numbers
from streams.demo.probes import MetricsProbe, TopicFollower
from streams.embedded.broker import EmbeddedBroker, ensure_topics, free_port
from streams.metrics import Metrics


def test_topic_follower_reads_every_partition_from_the_beginning(broker: EmbeddedBroker) -> None:
    flags, alerts = f"flags-{uuid.uuid4().hex[:8]}", f"alerts-{uuid.uuid4().hex[:8]}"
    ensure_topics(broker.bootstrap, [flags, alerts], partitions=4)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    accounts = [f"acct-{n}" for n in range(6)]  # keyed by account: spread over the partitions
    for n, account in enumerate(accounts):
        for actor in ("a", "b"):
            record = {"account_id": account, "actor_id": actor, "kind": "engaged", "at": 1000 + n, "count": 3}
            producer.send(flags, key=account.encode(), value=orjson.dumps(record))
    producer.send(
        flags,
        key=b"acct-0",
        value=orjson.dumps(
            {"account_id": "acct-0", "actor_id": "a", "kind": "lapsed", "at": 5000, "count": 2}
        ),
    )
    producer.send(flags, key=b"junk", value=b"not json")
    alert = {"alert_id": "f" * 32, "account_id": "acct-1", "kind": "drop", "state": "opened", "at": 7200000,
             "opened_at": 7200000, "observed": 3.0, "baseline": 30.0}  # fmt: skip
    producer.send(alerts, key=b"acct-1", value=orjson.dumps(alert))
    producer.flush()
    producer.close()

    board = Board([(account, "generic", 10) for account in accounts])
    follower = TopicFollower(broker.bootstrap, {flags: board.add_flag, alerts: board.add_alert})

    async def follow() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(follower.run(stop))
        deadline = time.monotonic() + 30
        while (board.flags_read < 13 or board.alerts_read < 1) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(follow())
    assert board.flags_read == 13 and follower.undecodable == 1
    assert board.engaged("acct-0") == 1 and board.engaged_total == 11
    assert list(board.open_alerts) == [("acct-1", "drop")]


@pytest.fixture
def metrics_server() -> Iterator[tuple[str, Metrics]]:
    metrics = Metrics.create(CollectorRegistry())
    server, thread = start_http_server(0, "127.0.0.1", registry=metrics.registry)
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics", metrics
    finally:
        server.shutdown()
        thread.join(5)


def test_metrics_probe_scrapes_a_real_endpoint(metrics_server: tuple[str, Metrics]) -> None:
    url, metrics = metrics_server
    metrics.events_consumed.labels("comment").inc(12)
    metrics.transitions.labels("engaged").inc(2)

    async def scrape() -> tuple[object, object, bool, bool]:
        async with aiohttp.ClientSession() as session:
            probe = MetricsProbe(session, url)
            down = MetricsProbe(session, f"http://127.0.0.1:{free_port()}/metrics", timeout_s=1.0)
            return await probe.scrape(), await down.scrape(), await probe.ready(), await down.ready()

    samples, missing, ready, down_ready = asyncio.run(scrape())
    assert missing is None and ready and not down_ready
    numbers = pipeline_numbers(samples, None)  # type: ignore[arg-type]
    assert numbers.processed == 12 and numbers.engaged == 2 and numbers.worker_up and not numbers.ingest_up
