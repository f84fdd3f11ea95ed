"""The Faust worker against the real broker: exact flags, crash recovery, two workers in a group."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.embedded.broker import EmbeddedBroker
from streams.engagement import PartitionEngine, Rule
from streams.events import Interaction
from streams.producer import KafkaEventPublisher
from streams.runtime import create_topics
from streams.settings import Settings
from streams.worker.flags import transition_record
from tests.integration.worker.harness import WorkerEnv, WorkerProcess, caught_up, read_topic, wait_for
from tests.scenarios import DAY, scenario, sentinels


def _expected(events: list[Interaction], settings: Settings) -> dict[str, dict[str, Any]]:
    """What the pure core says, with one engine over everything (transitions are per pair)."""
    engine = PartitionEngine(Rule.from_settings(settings))
    for event in events:
        engine.process(event)
    out = engine.drain()
    return {
        orjson.loads(v)["transition_id"]: orjson.loads(v) for _, v in map(transition_record, out.transitions)
    }


def _setup(
    broker: EmbeddedBroker, tmp_path: Path, seed: int, store: str = "memory://"
) -> tuple[WorkerEnv, Settings, list[Interaction], list[Interaction]]:
    """(config, settings, the events, the sentinels that finalise everything once time passes)."""
    cfg = WorkerEnv(broker.bootstrap, tmp_path / "data", extra={"ENGAGE_STATE_STORE": store})
    settings = Settings.from_env(cfg.env(0))
    create_topics(settings, broker.bootstrap)
    events = scenario(seed)
    far = max(e.occurred_at_ms for e in events) + 3 * DAY
    return cfg, settings, events, sentinels(cfg.partitions, far)


def _then_time_passes(workers: list[WorkerProcess], settings: Settings, later: list[Interaction]) -> None:
    """Wait until the workers have read everything, then send the far-future sentinels.

    Sent together with the data, a sentinel could be read before another topic's older events and
    make them late, which is right for a stream but not what these tests are about.
    """
    topics, partitions = settings.topics.interactions, settings.topic_partitions
    wait_for(lambda: caught_up(workers, topics, partitions), 120, what="the workers to catch up")
    _publish(settings, later)


def _publish(settings: Settings, events: list[Interaction], batch: int = 40) -> None:
    with KafkaEventPublisher(
        settings.kafka_bootstrap_servers, settings.topics, settings.topic_partitions, max_batch=batch
    ) as publisher:
        publisher.send(events)


def _flags(settings: Settings, expected: int, seconds: float = 120) -> list[dict[str, Any]]:
    def done(records: list[dict[str, Any]]) -> bool:
        return len({r["transition_id"] for r in records}) >= expected

    read_topic(settings.kafka_bootstrap_servers, settings.topics.flags, seconds, until=done)
    # a little longer: anything extra (a wrong or duplicate flag) must show up too
    time.sleep(1.5)
    return read_topic(settings.kafka_bootstrap_servers, settings.topics.flags, 3, until=None)


def _check_exact(records: list[dict[str, Any]], expected: dict[str, dict[str, Any]]) -> None:
    by_id: dict[str, dict[str, Any]] = {}
    for record in records:
        assert by_id.setdefault(record["transition_id"], record) == record, (
            "re-emitted with different content"
        )
    assert set(by_id) == set(expected)
    assert by_id == expected


def test_flags_are_exactly_the_core_transitions(broker: EmbeddedBroker, tmp_path: Path) -> None:
    cfg, settings, events, later = _setup(broker, tmp_path, seed=1)
    expected = _expected(events + later, settings)
    assert len(expected) > 50 and {r["kind"] for r in expected.values()} == {"engaged", "lapsed"}
    worker = WorkerProcess(cfg)
    try:
        _publish(settings, events)
        _then_time_passes([worker], settings, later)
        records = _flags(settings, len(expected))
        _check_exact(records, expected)
        assert len(records) == len(expected), "no crash happened, so no flag may be emitted twice"
        metrics = worker.metrics_text()
        assert "engage_transitions_total" in metrics
    finally:
        assert worker.stop() in (0, -15), worker.log()[-3000:]


@pytest.mark.parametrize(
    ("store", "new_disk"),
    [("memory://", False), ("rocksdb://", False), ("rocksdb://", True)],
    ids=["memory", "rocksdb-same-disk", "rocksdb-new-disk"],
)
def test_sigkill_mid_stream_then_restart_is_exact(
    broker: EmbeddedBroker, tmp_path: Path, store: str, new_disk: bool
) -> None:
    """The memory store always restarts from the changelog. RocksDB on the same disk keeps what the killed
    process wrote locally, possibly beyond the changelog (its writes of an interrupted flush); on a new
    disk (a worker moved to another machine) it is rebuilt from the changelog alone."""
    cfg, settings, events, later = _setup(broker, tmp_path, seed=2, store=store)
    expected = _expected(events + later, settings)
    half = len(events) // 2
    worker = WorkerProcess(cfg, log_name="first")
    try:
        _publish(settings, events[:half])
        wait_for(
            lambda: (
                "engage_offset_commits_total" in worker.metrics_text()
                and _commits(worker.metrics_text()) >= 3
            ),
            90,
            what="first worker to flush",
        )
        _publish(settings, events[half : half + half // 2])
        worker.kill()
    finally:
        if worker.proc.poll() is None:
            worker.kill()
    _publish(settings, events[half + half // 2 :])
    if new_disk:
        cfg = dataclasses.replace(cfg, data_dir=tmp_path / "other-disk")
    restarted = WorkerProcess(cfg, log_name="second")
    try:
        _then_time_passes([restarted], settings, later)
        records = _flags(settings, len(expected))
        _check_exact(records, expected)
    finally:
        restarted.stop()


def _commits(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith("engage_offset_commits_total "):
            return float(line.split()[1])
    return 0.0


def _partitions_seen(metrics: str) -> set[str]:
    return {
        line.split('partition="')[1].split('"')[0]
        for line in metrics.splitlines()
        if line.startswith("engage_watermark_seconds{")
    }


def test_two_workers_split_partitions_and_union_is_exact(broker: EmbeddedBroker, tmp_path: Path) -> None:
    cfg, settings, events, later = _setup(broker, tmp_path, seed=3)
    expected = _expected(events + later, settings)
    first, second = WorkerProcess(cfg, log_name="a"), WorkerProcess(cfg, log_name="b")
    try:
        time.sleep(12)  # both join before data arrives, so the group splits the partitions
        _publish(settings, events)
        _then_time_passes([first, second], settings, later)
        records = _flags(settings, len(expected))
        _check_exact(records, expected)
        seen_a, seen_b = _partitions_seen(first.metrics_text()), _partitions_seen(second.metrics_text())
        assert seen_a and seen_b, (seen_a, seen_b)
        assert seen_a | seen_b == {str(p) for p in range(cfg.partitions)}
    finally:
        first.stop()
        second.stop()
