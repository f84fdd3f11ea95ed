"""Dead letters from a real worker on the real broker: invalid and too-late events reach
``interactions.dlq`` with the reason, the source topic/partition/offset and the original bytes."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streams.embedded.broker import EmbeddedBroker
from streams.events import Interaction
from streams.partitioning import partition_for
from streams.runtime import create_topics
from streams.settings import Settings
from tests.integration.worker.harness import WorkerEnv, WorkerProcess, read_topic, wait_for

T = 1_790_000_000_000  # event time of the valid events
HOUR = 3_600_000


def _watermark_s(worker: WorkerProcess, partition: int) -> float:
    for line in worker.metrics_text().splitlines():
        if line.startswith(f'engage_watermark_seconds{{partition="{partition}"}} '):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _produce(bootstrap: str, messages: list[tuple[str, int, bytes, bytes]]) -> list[Any]:
    """Send ``(topic, partition, key, value)`` one by one; the broker's metadata of each."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        return [
            await producer.send_and_wait(topic, value, key=key, partition=partition)
            for topic, partition, key, value in messages
        ]
    finally:
        await producer.stop()


def test_invalid_and_late_events_are_dead_lettered_with_their_source(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    cfg = WorkerEnv(broker.bootstrap, tmp_path / "data")
    settings = Settings.from_env(cfg.env(0))
    topics = settings.topics
    create_topics(settings, broker.bootstrap)
    actor = "dl-fan"
    key, p = actor.encode(), partition_for(actor.encode(), cfg.partitions)

    def valid(event_id: str, at: int, kind: str = "comment") -> Interaction:
        return Interaction(event_id, kind, "generic", "acc", actor, "p1", "a fine comment here", at)

    fresh = valid("fresh", T)
    invalid_element = {"event_id": "bad-element", "type": "comment", "platform": "generic"}
    # Not the canonical encoding: RFC 3339 time, other key order, spaces; the dead letter must keep it.
    an_hour_before = datetime.fromtimestamp((T - HOUR) / 1000, UTC).isoformat()
    late = (
        f'{{ "occurred_at": "{an_hour_before}", "type": "comment", "event_id": "too-late", '
        '"platform": "generic", "account_id": "acc", "actor_id": "dl-fan", "post_id": "p1", '
        '"text": "a fine comment here" }'
    ).encode()
    not_utf8 = b"\xff\xfe not JSON"
    schema = b'{"event_id": "no-account", "type": "like", "platform": "generic", "actor_id": "dl-fan"}'

    worker = WorkerProcess(cfg)
    try:
        asyncio.run(_produce(broker.bootstrap, [(topics.comment, p, key, fresh.to_json())]))
        # Once the other topics have been idle long enough, the watermark is the fresh event's time,
        # and anything older than it minus the allowed lateness (10 min) is late.
        wait_for(lambda: _watermark_s(worker, p) >= T / 1000, 60, what="the watermark to reach T")
        sent = asyncio.run(
            _produce(
                broker.bootstrap,
                [
                    (topics.like, p, key, not_utf8),
                    (topics.like, p, key, schema),
                    (
                        topics.share,
                        p,
                        key,
                        orjson.dumps([valid("ok-in-envelope", T + 1, "share").to_dict(), invalid_element]),
                    ),
                    (topics.comment, p, key, late),
                ],
            )
        )
        dead = read_topic(broker.bootstrap, topics.dlq, 60, until=lambda records: len(records) >= 4)
        # The valid event beside the invalid element was applied, not dead-lettered with it.
        wait_for(
            lambda: 'engage_events_consumed_total{type="share"} 1.0' in worker.metrics_text(),
            30,
            what="the envelope's valid share to be counted",
        )
    finally:
        assert worker.stop() in (0, -15), worker.log()[-3000:]

    assert len(dead) == 4, dead
    by_offset = {(d["source"]["topic"], d["source"]["partition"], d["source"]["offset"]): d for d in dead}
    expected = [
        ("malformed", not_utf8),
        ("schema", schema),
        ("schema", orjson.dumps(invalid_element)),
        ("late", late),
    ]
    for meta, (reason, original) in zip(sent, expected, strict=True):
        record = by_offset[(meta.topic, meta.partition, meta.offset)]
        assert record["reason"] == reason, record
        if record["original_encoding"] == "base64":
            assert base64.b64decode(record["original"]) == original
        else:
            assert record["original_encoding"] == "utf-8" and record["original"].encode() == original
    assert by_offset[(sent[1].topic, sent[1].partition, sent[1].offset)]["source"]["field"] == "account_id"
