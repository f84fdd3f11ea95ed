"""The worker's wiring around Faust, on real Faust objects without a broker: the fetch wait its aiokafka
consumer is built with, the offset commit that follows a flush's acknowledgements, the lag gauges."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
from faust.types import TP
from prometheus_client import CollectorRegistry

from streams.metrics import Metrics
from streams.settings import Settings
from streams.sinks.base import MemorySink
from streams.worker import flush, topology
from streams.worker.faust_adapter.lag import update_lag
from streams.worker.faust_adapter.rebalance import current_generation
from streams.worker.stage import EngagementStage


def _settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"ENGAGE_DATA_DIR": str(tmp_path)})


def _app(settings: Settings) -> Any:
    return topology.build(settings, "localhost:1", MemorySink(), Metrics.create(CollectorRegistry())).app


def test_the_worker_consumer_is_built_with_the_configured_fetch_wait(tmp_path: Path) -> None:
    async def build(settings: Settings) -> tuple[int, int]:
        app = _app(settings)
        ours = app.consumer._thread._create_worker_consumer(app.transport)  # what start() would build
        plain = faust.App("plain", broker="kafka://localhost:1", web_enabled=False)
        theirs = plain.consumer._thread._create_worker_consumer(plain.transport)
        return ours._fetch_max_wait_ms, theirs._fetch_max_wait_ms

    default = _settings(tmp_path)
    assert asyncio.run(build(default)) == (default.fetch_max_wait_ms, 1500)
    assert default.fetch_max_wait_ms == 100
    longer = Settings.from_env({"ENGAGE_DATA_DIR": str(tmp_path), "ENGAGE_FETCH_MAX_WAIT": "500ms"})
    assert asyncio.run(build(longer)) == (500, 1500)


class _Runner:
    """Stands in for a PartitionRunner: its flush hands back message handles that log their ack."""

    def __init__(self, partition: int, log: list[str], handles: int) -> None:
        self.partition = partition
        self.log = log
        self.handles = handles
        self.may_flush = True
        self.replay_ready = False
        self.engine = SimpleNamespace(tracked_pairs=0, engaged_pairs=0)

    async def flush(self, *args: Any) -> list[Any]:
        self.may_flush = False
        handles = [
            SimpleNamespace(ack=lambda name=f"{self.partition}.{i}": self.log.append(f"ack {name}"))
            for i in range(self.handles)
        ]
        self.handles = 0
        return handles


def _flush_by_runner(runner: Any, *args: Any) -> Any:
    return runner.flush(*args)


async def _flush(tmp_path: Path, handles: list[int], **kwargs: Any) -> list[str]:
    log: list[str] = []
    runtime = EngagementStage(_settings(tmp_path), Metrics.create(CollectorRegistry()), MemorySink())
    runtime.partition_store = lambda partition: {}

    async def commit() -> None:
        log.append("commit")

    runtime.commit_offsets = commit
    runtime.runners = {p: _Runner(p, log, n) for p, n in enumerate(handles)}  # type: ignore[misc]
    await runtime.maybe_flush(force=True, **kwargs)
    return log


def test_a_flush_commits_once_after_every_acknowledgement(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(flush, "flush", _flush_by_runner)  # the fake runners stand for steps 0-3
    log = asyncio.run(_flush(tmp_path, [2, 1]))
    assert log == ["ack 0.0", "ack 0.1", "ack 1.0", "commit"]


def test_nothing_acknowledged_nothing_committed(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(flush, "flush", _flush_by_runner)  # the fake runners stand for steps 0-3
    assert asyncio.run(_flush(tmp_path, [0, 0])) == []


def test_no_commit_at_shutdown_where_the_consumer_has_stopped(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(flush, "flush", _flush_by_runner)  # the fake runners stand for steps 0-3
    assert asyncio.run(_flush(tmp_path, [1], commit=False)) == ["ack 0.0"]


def test_a_revoked_partition_leaves_the_watermark_and_lag_gauges(tmp_path: Path) -> None:
    """A worker reports only what it owns: a stale series would show a moved partition twice (and a
    stale lag of 0 while its new owner works through a backlog)."""
    registry = CollectorRegistry()
    settings = Settings.from_env({"ENGAGE_DATA_DIR": str(tmp_path)})
    runtime = EngagementStage(settings, Metrics.create(registry), MemorySink())
    runtime.runners = {p: _Runner(p, [], 0) for p in (0, 1)}  # type: ignore[misc]
    for p in ("0", "1"):
        runtime.metrics.watermark.labels(p).set(1.0)
    runtime.forget({1})
    assert registry.get_sample_value("engage_watermark_seconds", {"partition": "0"}) == 1.0
    assert registry.get_sample_value("engage_watermark_seconds", {"partition": "1"}) is None

    assignment = {TP("like", 0), TP("like", 1)}
    consumer = SimpleNamespace(
        assignment=lambda: set(assignment), highwater=lambda tp: 10, _committed_offset={TP("like", 0): 4}
    )
    recovery = SimpleNamespace(in_recovery=False, active_remaining=dict)
    app: Any = SimpleNamespace(
        consumer=consumer, tables=SimpleNamespace(changelog_topics=set(), recovery=recovery)
    )
    reported = update_lag(app, runtime.metrics, set())
    lag = {"topic": "like", "partition": "1"}
    assert registry.get_sample_value("engage_consumer_lag_messages", lag) == 10
    assignment.discard(TP("like", 1))
    assert update_lag(app, runtime.metrics, reported) == {("like", "0")}
    assert registry.get_sample_value("engage_consumer_lag_messages", lag) is None
    assert registry.get_sample_value("engage_consumer_lag_messages", {"topic": "like", "partition": "0"}) == 6


def test_a_batch_taken_before_a_rebalance_is_not_processed_after_it() -> None:
    def event(generation: int) -> Any:
        return SimpleNamespace(message=SimpleNamespace(generation_id=generation))

    app: Any = SimpleNamespace(consumer_generation_id=3)
    same = [event(3), event(3)]
    assert current_generation(app, same) is same
    mixed = [event(2), event(3), event(2)]
    assert current_generation(app, mixed) == [mixed[1]]


def test_drop_stage_takes_over_its_partitions_once_their_tables_are_recovered(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """Faust's on_rebalance_complete (sent after the active tables' recovery) hands the assigned
    account-hours partitions to the drops stage, so their open alerts are counted without a message.

    No broker here, so the assignment is set by hand (the assignor's answer) and ``assigned`` is
    recorded instead of run: the app, its handler and the signal are Faust's own. What ``assigned``
    then counts is tested on a recovered table in ``drops/test_stage.py``; a real rebalance would add a
    ~30 s group join on the embedded broker to check the same wiring.
    """
    from streams.worker.drops.stage import DropStage

    taken: list[set[int]] = []
    monkeypatch.setattr(DropStage, "assigned", lambda self, partitions: taken.append(partitions))

    async def rebalance() -> None:
        settings = _settings(tmp_path)
        app = _app(settings)
        topic = settings.topics.account_hours
        assigned = {TP(topic, 0), TP(topic, 2), TP("like", 1)}
        monkeypatch.setattr(app.assignor, "assigned_actives", lambda: set(assigned))
        await app.on_rebalance_complete.send()

    asyncio.run(rebalance())
    assert taken == [{0, 2}]


def test_faust_changelog_topics_carry_the_topic_prefix(tmp_path: Path) -> None:
    """Before: Faust named changelogs ``<app id>-<table>-changelog``, outside a prefix-scoped ACL."""
    from streams.topics import changelog_topics

    settings = Settings.from_env({"ENGAGE_DATA_DIR": str(tmp_path), "ENGAGE_TOPIC_PREFIX": "prod."})

    async def build() -> set[str]:
        app = _app(settings)
        return {table.changelog_topic.get_topic_name() for table in app.tables.values()}

    names = asyncio.run(build())
    assert names == set(changelog_topics(settings))
    # and no unprefixed leader-election topic either
    assert _app(settings).conf.topic_disable_leader
    assert names == {
        "prod.engagement-streams-engagement-state-changelog",
        "prod.engagement-streams-drop-state-changelog",
    }


def test_changelog_lag_is_reported_only_while_recovering(tmp_path: Path) -> None:
    """Issue 17: a changelog partition's lag kept its recovery-time value forever (9-15 with nothing
    left to read), since nothing commits a changelog offset. It is Faust's own count of records left
    to apply while the partition is recovering, and no series once it is recovered."""
    registry = CollectorRegistry()
    settings = Settings.from_env({"ENGAGE_DATA_DIR": str(tmp_path)})
    runtime = EngagementStage(settings, Metrics.create(registry), MemorySink())
    changelog, source = TP("engage-engagement-state-changelog", 0), TP("like", 0)
    consumer = SimpleNamespace(
        assignment=lambda: {changelog, source}, highwater=lambda tp: 12, _committed_offset={source: 12}
    )
    recovery = SimpleNamespace(in_recovery=True, active_remaining=lambda: {changelog: 5})
    tables = SimpleNamespace(changelog_topics={changelog.topic}, recovery=recovery)
    app: Any = SimpleNamespace(consumer=consumer, tables=tables)
    series = {"topic": changelog.topic, "partition": "0"}

    reported = update_lag(app, runtime.metrics, set())
    assert registry.get_sample_value("engage_consumer_lag_messages", series) == 5
    recovery.in_recovery = False
    update_lag(app, runtime.metrics, reported)
    assert registry.get_sample_value("engage_consumer_lag_messages", series) is None
    assert registry.get_sample_value("engage_consumer_lag_messages", {"topic": "like", "partition": "0"}) == 0
