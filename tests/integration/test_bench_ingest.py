"""``make bench``'s ingest figure at a tiny size on the real broker: its counts agree with the topics.

``measure_ingest`` starts a real ``engage ingest`` process and a separate load-generator process; the
events it reports accepted (plus its warm-up) must be exactly the events on the interaction topics,
each once, and its rates must follow from its own counts.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections import Counter

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.bench.ingest import measure_ingest
from streams.embedded.broker import EmbeddedBroker
from streams.events import Interaction, iter_message
from streams.settings import Topics

PARTITIONS = 2


async def _event_ids(bootstrap: str, topics: tuple[str, ...], expected: int) -> Counter[str]:
    """Every event on ``topics`` from the start: until ``expected``, then 1.5 s of silence (so an extra
    one would still be seen). Manual assignment: no group join."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    ids: Counter[str] = Counter()
    try:
        consumer.assign([TopicPartition(t, p) for t in topics for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        deadline, last_new = time.monotonic() + 60, time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                for record in records:
                    for event in iter_message(record.value):
                        assert isinstance(event, Interaction)
                        ids[event.event_id] += 1
                last_new = time.monotonic()
            if sum(ids.values()) >= expected and time.monotonic() - last_new > 1.5:
                break
    finally:
        await consumer.stop()
    return ids


def test_tiny_ingest_bench_counts_match_the_topics(broker: EmbeddedBroker) -> None:
    prefix = f"bi-{uuid.uuid4().hex[:6]}."
    result = measure_ingest(
        broker.bootstrap,
        topic_prefix=prefix,
        partitions=PARTITIONS,
        seconds=20,
        max_events=300,
        events_per_request=20,
        concurrency=4,
    )
    assert result["statuses"] == {"200": 15}
    assert result["requests"] == 15 and result["events"] == 300
    assert result["events_per_request"] == 20
    assert result["events_per_s"] == pytest.approx(result["requests_per_s"] * 20)
    assert result["events_per_s"] > 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    assert result["ingest_cpu_us_per_request"] > 0 and result["loadgen_cpu_us_per_request"] > 0

    expected = result["events"] + result["warmup_events"]
    ids = asyncio.run(_event_ids(broker.bootstrap, Topics(prefix).interactions, expected))
    assert sum(ids.values()) == expected
    assert set(ids.values()) == {1}  # each accepted event once: none lost, none duplicated


def test_floor_server_runs_under_the_same_load_and_produces_each_request_once(broker: EmbeddedBroker) -> None:
    """``tests/bench/ingest_floor.py``'s ``kafka`` level through ``measure_ingest(command=...)``: every 2xx
    is one Kafka message holding the request's body, as the floor figure assumes."""
    prefix = f"bf-{uuid.uuid4().hex[:6]}."
    result = measure_ingest(
        broker.bootstrap,
        topic_prefix=prefix,
        partitions=PARTITIONS,
        seconds=20,
        max_events=200,
        events_per_request=20,
        concurrency=4,
        command=[sys.executable, "-m", "tests.bench.ingest_floor", "serve"],
        extra_env={"FLOOR_LEVEL": "kafka"},
    )
    assert result["statuses"] == {"200": 10}
    expected = result["events"] + result["warmup_events"]  # 10 measured + 5 warm-up requests of 20
    ids = asyncio.run(_event_ids(broker.bootstrap, (Topics(prefix).like,), expected))
    assert sum(ids.values()) == expected
    assert set(ids.values()) == {1}
