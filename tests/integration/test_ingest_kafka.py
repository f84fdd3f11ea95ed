"""The ingest service on the real Tansu broker.

- Every example payload of every platform is posted over HTTP; what comes back out of Kafka is exactly
  the expected events, each on its type's topic, in the partition of its actor, under its actor's key.
- The broker is stopped: requests answer 503 with Retry-After within the ack deadline and /readyz says
  so; it is restarted on the same port: the same requests are accepted, and every accepted event is on
  Kafka exactly once (none lost, none duplicated by a late delivery of a timed-out attempt).

The broker of the restart test is our own (``EmbeddedBroker(port=...)``), on a fixed free port so it
comes back where the producer expects it. Tansu's storage is memory only, so what was on the topics
before the stop is gone after it; the test therefore checks the events accepted after the restart,
which include the ones that were refused while it was down.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from streams.embedded.broker import EmbeddedBroker, ensure_topics, free_port
from streams.errors import BrokerUnavailable
from streams.events import Interaction, Rejected, iter_message
from streams.ingest.app import create_app, running
from streams.ingest.publisher import CoalescingPublisher, KafkaPublisher
from streams.metrics import Metrics
from streams.partitioning import partition_for
from streams.settings import Settings
from tests.webhooks import NOW_MS, cases, signature_headers
from tests.webhooks import settings as make_settings

PARTITIONS = 4


def _settings(**overrides: Any) -> Settings:
    return make_settings(
        topic_prefix=f"ing-{uuid.uuid4().hex[:8]}.", topic_partitions=PARTITIONS, **overrides
    )


def _app(settings: Settings, publisher: KafkaPublisher) -> Any:
    """The production composition (as ``serve`` builds it), on a fixed clock and a fresh registry."""
    return create_app(
        settings,
        CoalescingPublisher(publisher),
        Metrics.create(CollectorRegistry()),
        lambda: NOW_MS,
        ready=publisher.ready,
    )


def _create_topics(bootstrap: str, settings: Settings) -> None:
    ensure_topics(bootstrap, settings.topics.all, partitions=PARTITIONS)


async def _read(bootstrap: str, topics: list[str], expected: int, quiet_s: float = 1.5) -> list[Any]:
    """Every record of ``topics`` from the start: until ``expected`` events, then ``quiet_s`` of silence
    (so a late duplicate would still be seen). Manual assignment: no group join."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(t, p) for t in topics for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        records: list[Any] = []
        count, deadline, last_new = 0, time.monotonic() + 60, time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for tp_records in batch.values():
                records.extend(tp_records)
                count += sum(len(list(iter_message(r.value))) for r in tp_records)
                last_new = time.monotonic()
            if count >= expected and time.monotonic() - last_new > quiet_s:
                break
        return records
    finally:
        await consumer.stop()


def _events(records: list[Any], settings: Settings) -> list[Interaction]:
    out: list[Interaction] = []
    for record in records:
        if record.topic == settings.topics.dlq:
            continue
        batch = list(iter_message(record.value))
        assert batch and not any(isinstance(e, Rejected) for e in batch)
        events = [e for e in batch if isinstance(e, Interaction)]
        assert record.key == events[0].actor_id.encode()
        for event in events:
            assert record.topic == settings.topics.for_type(event.type)
            assert record.partition == partition_for(event.actor_id.encode(), PARTITIONS)
        out.extend(events)
    return out


async def _post(
    session: aiohttp.ClientSession, url: str, platform: str, body: bytes
) -> tuple[int, dict[str, str]]:
    async with session.post(url, data=body, headers=dict(signature_headers(platform, body))) as response:
        await response.read()
        return response.status, dict(response.headers)


def test_every_platform_lands_on_the_right_topic_partition_and_key(broker: EmbeddedBroker) -> None:
    settings = _settings()
    _create_topics(broker.bootstrap, settings)
    all_cases = cases()

    async def scenario() -> list[Any]:
        publisher = await KafkaPublisher(
            broker.bootstrap, ack_timeout_ms=settings.ingest_ack_timeout_ms
        ).start()
        app = _app(settings, publisher)
        try:
            async with running(app, "127.0.0.1", 0) as base, aiohttp.ClientSession() as session:
                for case in all_cases:
                    path = "/v1/events" if case.platform == "generic" else f"/v1/webhooks/{case.platform}"
                    path += f"/{case.account}" if case.account else ""
                    status, _ = await _post(session, base + path, case.platform, case.body)
                    assert status == (202 if case.dead_lettered else 200), case.id
                async with session.get(base + "/readyz") as response:
                    assert response.status == 200
        finally:
            await publisher.stop()
        expected = sum(len(c.events) for c in all_cases)
        return await _read(broker.bootstrap, [*settings.topics.interactions, settings.topics.dlq], expected)

    records = asyncio.run(scenario())
    received = _events(records, settings)
    expected = [e for case in all_cases for e in case.events]
    assert Counter(received) == Counter(expected)
    dlq = [orjson.loads(r.value) for r in records if r.topic == settings.topics.dlq]
    assert len(dlq) == sum(c.dead_lettered for c in all_cases)
    assert {d["source"]["platform"] for d in dlq} == {c.platform for c in all_cases if c.dead_lettered}


def _batch(tag: str, n: int) -> bytes:
    return orjson.dumps(
        [
            {
                "event_id": f"{tag}-{i}",
                "type": ("like", "comment", "share", "follow", "unfollow")[i % 5],
                "platform": "generic",
                "account_id": "brand",
                "actor_id": f"actor-{i % 13}",
                "post_id": f"p-{i % 3}",
                "text": "a real comment",
                "occurred_at": NOW_MS + i,
            }
            for i in range(n)
        ]
    )


def test_broker_stopped_503_restarted_accepted_nothing_lost_or_duplicated(tmp_path: Any) -> None:
    settings = _settings(ingest_ack_timeout_ms=1500)
    own = EmbeddedBroker(port=free_port(), log_path=str(tmp_path / "tansu.log")).start()
    try:
        _create_topics(own.bootstrap, settings)

        async def scenario() -> tuple[list[Any], dict[str, Any]]:
            seen: dict[str, Any] = {}
            publisher = await KafkaPublisher(
                own.bootstrap, ack_timeout_ms=settings.ingest_ack_timeout_ms
            ).start()
            app = _app(settings, publisher)
            try:
                async with running(app, "127.0.0.1", 0) as base, aiohttp.ClientSession() as session:
                    url = base + "/v1/events"
                    assert (await _post(session, url, "generic", _batch("before", 50)))[0] == 200

                    await asyncio.to_thread(own.stop)
                    refused = [_batch(f"down{k}", 40) for k in range(3)]

                    async def timed(body: bytes) -> tuple[int, dict[str, str], float]:
                        started = time.monotonic()
                        status, headers = await _post(session, url, "generic", body)
                        return status, headers, time.monotonic() - started

                    # Concurrent, so they share merged messages in the producer, and all fail.
                    answers = await asyncio.gather(*(timed(body) for body in refused))
                    for status, headers, _ in answers:
                        assert status == 503 and int(headers["Retry-After"]) >= 1
                    seen["down_latency"] = [latency for *_, latency in answers]
                    async with session.get(base + "/readyz") as response:
                        seen["readyz_down"] = response.status

                    await asyncio.to_thread(own.start)
                    await asyncio.to_thread(_create_topics, own.bootstrap, settings)

                    # The client retries each refused request until it is accepted, as a platform would.
                    async def retry(body: bytes) -> None:
                        deadline = time.monotonic() + 30
                        while (await _post(session, url, "generic", body))[0] != 200:
                            assert time.monotonic() < deadline, "not accepted after the restart"
                            await asyncio.sleep(0.5)

                    await asyncio.gather(*(retry(body) for body in refused))
                    assert (await _post(session, url, "generic", _batch("after", 60)))[0] == 200
                    async with session.get(base + "/readyz") as response:
                        seen["readyz_up"] = response.status
            finally:
                await publisher.stop()
            records = await _read(own.bootstrap, list(settings.topics.interactions), 3 * 40 + 60, quiet_s=3.0)
            return records, seen

        records, seen = asyncio.run(scenario())
    finally:
        own.stop()
    assert max(seen["down_latency"]) < 1.5  # within the ack deadline: the producer gave up first
    assert (seen["readyz_down"], seen["readyz_up"]) == (503, 200)
    ids = Counter(event.event_id for event in _events(records, settings))
    expected = {f"down{k}-{i}" for k in range(3) for i in range(40)} | {f"after-{i}" for i in range(60)}
    assert set(ids) - {i for i in ids if i.startswith("before-")} == expected  # nothing lost
    assert [i for i, n in ids.items() if n > 1] == []  # nothing duplicated


def test_the_producer_asks_for_idempotence_and_says_when_the_broker_refuses(
    broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """Against the real broker. Tansu answers InitProducerId with an error, so the default publisher
    falls back to acks=all without idempotence and says so; one that requires idempotence refuses to
    start. A broker that grants it (real Kafka) leaves ``idempotent`` True and logs nothing."""

    async def scenario() -> tuple[bool, str | None]:
        with caplog.at_level(logging.WARNING, logger="streams.ingest.publisher"):
            publisher = await KafkaPublisher(broker.bootstrap, ack_timeout_ms=5000).start()
            await publisher.stop()
        try:
            strict = await KafkaPublisher(broker.bootstrap, ack_timeout_ms=5000, idempotence=True).start()
        except BrokerUnavailable as exc:
            return publisher.idempotent, str(exc)
        await strict.stop()
        return publisher.idempotent, None

    idempotent, refused = asyncio.run(scenario())
    if idempotent:
        assert refused is None and "refused InitProducerId" not in caplog.text
    else:
        assert "refused InitProducerId" in caplog.text and "continuing without idempotence" in caplog.text
        assert refused is not None and "idempotent" in refused
