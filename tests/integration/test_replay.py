"""``engage replay`` against the real Tansu broker: the exact events land on their topics and
partitions, invalid lines land in the DLQ with their reason and line number, pacing holds."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.cli import main
from streams.demo.generator import GeneratorConfig, TrafficGenerator
from streams.embedded.broker import EmbeddedBroker, ensure_topics
from streams.events import Interaction, Rejected, iter_message
from streams.partitioning import partition_for
from streams.settings import Topics

PARTITIONS = 4


async def _read(bootstrap: str, topics: list[str], done: object) -> list[tuple[str, int, bytes]]:
    """Every record of ``topics`` (all partitions, assigned: no consumer group) until ``done(records)``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[tuple[str, int, bytes]] = []
    try:
        consumer.assign([TopicPartition(t, p) for t in topics for p in range(PARTITIONS)])
        async with asyncio.timeout(60):
            while not done(records):  # type: ignore[operator]
                for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                    records.extend((tp.topic, tp.partition, r.value) for r in batch)
    finally:
        await consumer.stop()
    return records


def test_replay_puts_the_exact_events_on_the_topics(
    broker: EmbeddedBroker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topics = Topics(prefix=f"rp{uuid.uuid4().hex[:6]}.")
    ensure_topics(broker.bootstrap, topics.all, partitions=PARTITIONS)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap)
    monkeypatch.setenv("ENGAGE_TOPIC_PREFIX", topics.prefix)
    monkeypatch.setenv("ENGAGE_TOPIC_PARTITIONS", str(PARTITIONS))

    events = TrafficGenerator(GeneratorConfig.demo(11, rate_events_per_s=50_000)).take(3000)
    lines = [e.to_json() for e in events]
    bad = {17: b'{"event_id": "x"}', 1500: b"not json at all", 2999: b'{"type": "like"'}
    for number in sorted(bad):  # 1-based line numbers in the final file
        lines.insert(number - 1, bad[number])
    path = tmp_path / "stream.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")

    rate = 6000.0
    started = time.monotonic()
    status = main(["replay", str(path), "--rate", str(rate), "--batch", "100"])
    elapsed = time.monotonic() - started
    out = capsys.readouterr()
    assert status == 1  # invalid lines, like `engage send`
    assert "replayed 3000 events" in out.out
    assert elapsed >= (3000 - rate / 10) / rate  # paced: the last step is due after (N - step) / R
    for number in bad:
        assert f"{path}:{number}:" in out.err

    def complete(records: list[tuple[str, int, bytes]]) -> bool:
        interactions = sum(sum(1 for _ in iter_message(v)) for t, _, v in records if t != topics.dlq)
        return interactions >= len(events) and sum(1 for t, _, _ in records if t == topics.dlq) >= len(bad)

    records = asyncio.run(_read(broker.bootstrap, [*topics.interactions, topics.dlq], complete))
    received: list[Interaction] = []
    dead: list[dict[str, object]] = []
    for topic, partition, value in records:
        if topic == topics.dlq:
            dead.append(orjson.loads(value))
            continue
        for item in iter_message(value):
            assert not isinstance(item, Rejected)
            assert topics.for_type(item.type) == topic
            assert partition_for(item.partition_key, PARTITIONS) == partition
            received.append(item)
    assert sorted(received, key=repr) == sorted(events, key=repr)  # exact, redeliveries included
    assert sorted(d["source"]["line"] for d in dead) == sorted(bad)  # type: ignore[index]
    assert {d["reason"] for d in dead} == {"schema", "malformed"}
    assert {d["original"] for d in dead} == {b.decode() for b in bad.values()}
