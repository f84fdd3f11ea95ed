"""The worker writing to a real chDB: exact totals after a SIGKILL, and across a ClickHouse outage.

chDB lets one process open a data directory, so the worker owns it while it runs and the totals are
read afterwards by a separate small process. The outage is real too: another process holds the data
directory, so the worker's sink cannot open it until that process lets go.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson

from streams.embedded.broker import EmbeddedBroker
from streams.engagement import PartitionEngine, Rule
from streams.events import Interaction
from streams.producer import KafkaEventPublisher
from streams.runtime import create_topics
from streams.settings import Settings
from tests.integration.worker.harness import WorkerEnv, WorkerProcess, caught_up, wait_for
from tests.scenarios import DAY, scenario, sentinels

FIELDS = ("likes", "comments", "shares", "follows", "unfollows", "substantive", "engaged_new", "lapsed")

_READ_TOTALS = """
import sys, orjson, clickhouse_connect
client = clickhouse_connect.get_client(dsn="chdb://" + sys.argv[1] + "?database=engagement")
fields = sys.argv[2].split(",")
sums = ", ".join(f"sum({f})" for f in fields)
row = client.query(f"SELECT {sums} FROM v_account_activity_1m").result_rows[0]
totals = dict(zip(fields, map(int, row)))
totals["transitions"] = client.query("SELECT count() FROM v_engagement_transitions").result_rows[0][0]
totals["engaged_now"] = client.query("SELECT count() FROM v_engaged_followers").result_rows[0][0]
print(orjson.dumps(totals).decode())
"""

_HOLD = """
import sys, time, pathlib, clickhouse_connect
client = clickhouse_connect.get_client(dsn="chdb://" + sys.argv[1])
client.query("SELECT 1")
print("holding", flush=True)
while pathlib.Path(sys.argv[2]).exists():
    time.sleep(0.2)
"""


def _expected(events: list[Interaction], settings: Settings) -> dict[str, int]:
    engine = PartitionEngine(Rule.from_settings(settings))
    for event in events:
        engine.process(event)
    out = engine.drain()
    totals: Counter[str] = Counter()
    for row in out.account_minutes:
        for name in FIELDS:
            totals[name] += getattr(row, name)
    totals["transitions"] = len(out.transitions)
    state: dict[tuple[str, str], str] = {}
    for transition in out.transitions:
        state[(transition.account_id, transition.actor_id)] = transition.kind
    totals["engaged_now"] = sum(1 for kind in state.values() if kind == "engaged")
    return dict(totals)


def _read_totals(chdb_path: Path) -> dict[str, int]:
    result = subprocess.run(
        [sys.executable, "-c", _READ_TOTALS, str(chdb_path), ",".join(FIELDS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    totals: dict[str, int] = orjson.loads(result.stdout.strip().splitlines()[-1])
    return totals


def _publish(settings: Settings, events: list[Interaction]) -> None:
    with KafkaEventPublisher(
        settings.kafka_bootstrap_servers, settings.topics, settings.topic_partitions, max_batch=40
    ) as publisher:
        publisher.send(events)


def _metric(worker: WorkerProcess, name: str) -> float:
    """The metric summed over its label sets."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in worker.metrics_text().splitlines()
        if line.startswith((name + " ", name + "{"))
    )


def _setup(
    broker: EmbeddedBroker, tmp_path: Path, seed: int
) -> tuple[WorkerEnv, Settings, list[Interaction], list[Interaction]]:
    cfg = WorkerEnv(broker.bootstrap, tmp_path / "data")
    settings = Settings.from_env(cfg.env(0))
    create_topics(settings, broker.bootstrap)
    events = scenario(seed, actors=40, days=4)
    return cfg, settings, events, sentinels(cfg.partitions, max(e.occurred_at_ms for e in events) + 3 * DAY)


def _watermarks(worker: WorkerProcess) -> list[float]:
    return [
        float(line.rsplit(" ", 1)[1])
        for line in worker.metrics_text().splitlines()
        if line.startswith("engage_watermark_seconds{")
    ]


def _finish(worker: WorkerProcess, settings: Settings, later: list[Interaction]) -> None:
    """Let time pass (the sentinels), wait until every partition flushed at their time, stop (SIGTERM)."""
    topics, partitions = settings.topics.interactions, settings.topic_partitions
    wait_for(lambda: caught_up([worker], topics, partitions), 180, what="the worker to catch up")
    _publish(settings, later)
    sentinel_s = later[0].occurred_at_ms / 1000
    wait_for(
        lambda: len(marks := _watermarks(worker)) == partitions and min(marks) >= sentinel_s,
        120,
        what="every partition to flush at the sentinels' event time",
    )
    assert worker.stop() == 0, worker.log()[-3000:]


def test_sigkill_then_restart_totals_in_clickhouse_are_exact(broker: EmbeddedBroker, tmp_path: Path) -> None:
    cfg, settings, events, later = _setup(broker, tmp_path, seed=21)
    expected = _expected(events + later, settings)
    assert expected["transitions"] > 20
    first = WorkerProcess(cfg, sink="clickhouse", log_name="first")
    try:
        _publish(settings, events[: len(events) // 2])
        wait_for(
            lambda: (
                _metric(first, "engage_sink_batches_written_total") > 0
                or _metric(first, "engage_offset_commits_total") > 5
            ),
            120,
            what="a first flush",
        )
        _publish(settings, events[len(events) // 2 : 3 * len(events) // 4])
        time.sleep(0.7)
    finally:
        first.kill()
    _publish(settings, events[3 * len(events) // 4 :])
    second = WorkerProcess(cfg, sink="clickhouse", log_name="second")
    _finish(second, settings, later)
    assert _read_totals(cfg.data_dir / "clickhouse") == expected


def test_clickhouse_outage_pauses_then_totals_are_exact(broker: EmbeddedBroker, tmp_path: Path) -> None:
    cfg, settings, events, later = _setup(broker, tmp_path, seed=22)
    expected = _expected(events + later, settings)
    chdb_path = cfg.data_dir / "clickhouse"
    chdb_path.parent.mkdir(parents=True, exist_ok=True)
    flag = tmp_path / "hold"
    flag.touch()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(chdb_path), str(flag)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    worker = WorkerProcess(cfg, sink="clickhouse", log_name="outage")
    try:
        _publish(settings, events)
        wait_for(lambda: _metric(worker, "engage_sink_paused") == 1, 120, what="the worker to pause")
        commits_while_paused = _metric(worker, "engage_offset_commits_total")
        time.sleep(3)
        # paused: the flush waits for ClickHouse, so no interval completes and nothing is committed
        assert _metric(worker, "engage_sink_paused") == 1
        assert _metric(worker, "engage_offset_commits_total") == commits_while_paused
        assert _metric(worker, "engage_sink_insert_retries_total") >= 1
        flag.unlink()
        holder.wait(30)
        wait_for(lambda: _metric(worker, "engage_sink_paused") == 0, 120, what="the worker to resume")
        _finish(worker, settings, later)
    finally:
        if holder.poll() is None:
            holder.kill()
        if worker.proc.poll() is None:
            worker.kill()
    assert _read_totals(chdb_path) == expected
