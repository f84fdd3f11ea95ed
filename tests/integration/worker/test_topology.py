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
from streams.partitioning import key_on_partition
from streams.producer import KafkaEventPublisher
from streams.runtime import create_topics
from streams.settings import Settings
from streams.worker.flags import transition_record
from streams.worker.stage import TABLE_NAME
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
    """Every store restarts from the changelog. RocksDB on the same disk finds what the killed process
    wrote locally, which may be ahead of the changelog (a flush writes the disk before Kafka acknowledges
    its changelog records); the test makes it so, and the restart must not trust it. On a new disk (a
    worker moved to another machine) there is nothing local to begin with."""
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
    if store == "rocksdb://" and not new_disk:
        assert _plant_followers_the_changelog_never_had(cfg.data_dir, settings, events) == cfg.partitions
    if new_disk:
        cfg = dataclasses.replace(cfg, data_dir=tmp_path / "other-disk")
    restarted = WorkerProcess(cfg, log_name="second")
    try:
        _then_time_passes([restarted], settings, later)
        records = _flags(settings, len(expected))
        _check_exact(records, expected)
    finally:
        restarted.stop()


def _plant_followers_the_changelog_never_had(
    data_dir: Path, settings: Settings, events: list[Interaction]
) -> int:
    """Write into the killed worker's local RocksDB what a flush interrupted before its changelog send
    leaves there: follower states that never reached the changelog. Each planted follower has the
    threshold's substantive comments, so a restart that trusted its disk would flag it engaged: a flag
    the stream never asked for. Returns how many partition databases were planted."""
    from rocksdict import Options, Rdict

    rule = Rule.from_settings(settings)
    start = min(e.occurred_at_ms for e in events)
    planted = 0
    for path in sorted(data_dir.glob(f"**/{TABLE_NAME}-*.db")):
        partition = int(path.name.removesuffix(".db").rsplit("-", 1)[1])
        actor = key_on_partition("ghost-", partition, settings.topic_partitions)
        engine = PartitionEngine(rule)
        for i in range(rule.threshold):
            engine.process(
                Interaction(
                    f"ghost-{partition}-{i}",
                    "comment",
                    events[0].platform,
                    "ghost-account",
                    actor,
                    "ghost-post",
                    "a real conversation, several words long",
                    start + i * 60_000,
                )
            )
        state = engine.dirty()[actor]
        assert state is not None
        db = Rdict(str(path), options=Options(raw_mode=True))
        try:
            db[actor.encode()] = state
        finally:
            db.close()
        planted += 1
    return planted


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


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"], ids=["memory", "rocksdb"])
def test_second_worker_joins_mid_stream_and_union_is_exact(
    broker: EmbeddedBroker, tmp_path: Path, store: str
) -> None:
    """A rebalance while data flows: the first worker's partitions are revoked (Faust closes a revoked
    partition's RocksDB database) and part of them assigned to the newcomer, which recovers their state
    from the changelog and carries on from the committed offsets. The newcomer has its own disk, as a
    worker on another machine would."""
    cfg, settings, events, later = _setup(broker, tmp_path, seed=4, store=store)
    expected = _expected(events + later, settings)
    third = len(events) // 3
    first = WorkerProcess(cfg, log_name="first")
    second: WorkerProcess | None = None
    try:
        _publish(settings, events[:third])
        wait_for(lambda: _commits(first.metrics_text()) >= 3, 90, what="the first worker to flush")
        second = WorkerProcess(dataclasses.replace(cfg, data_dir=tmp_path / "second-disk"), log_name="second")
        # The rest arrives in slices over ~10 s, so the group rebalances (~5 s to join) while the first
        # worker is consuming and flushing.
        rest = events[third:]
        step = len(rest) // 10 + 1
        for start in range(0, len(rest), step):
            _publish(settings, rest[start : start + step])
            time.sleep(1)
        wait_for(
            lambda: bool(_partitions_seen(second.metrics_text())), 60, what="the newcomer to own partitions"
        )
        _then_time_passes([first, second], settings, later)
        records = _flags(settings, len(expected))
        _check_exact(records, expected)
        owned_first, owned_second = (
            _partitions_seen(first.metrics_text()),
            _partitions_seen(second.metrics_text()),
        )
        assert owned_first and owned_second and not owned_first & owned_second, (owned_first, owned_second)
        assert owned_first | owned_second == {str(p) for p in range(cfg.partitions)}
        assert first.proc.poll() is None, first.log()[-3000:]
        assert second.proc.poll() is None, second.log()[-3000:]
    finally:
        for worker in (first, second):
            if worker is not None:
                assert worker.stop() in (0, -15), worker.log()[-3000:]
