"""Throughput over pre-produced events: the raw ceiling, a naive Faust worker, and ours.

(a) the raw ceiling: an aiokafka ``getmany`` + orjson loop over the very topics the worker reads;
(b) a naive Faust worker: one event per message, a Record per event, a tumbling windowed table;
(c) our worker end to end: consumed → state → flags produced → aggregates handed to the sink →
    acknowledged and committed (the flush commits what it acknowledged), with ``--sink memory``.

(c) also reports how long the worker took from process start to its first event consumed (empty
state): the baseline the recovery phase compares against.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from streams.bench.procs import ENGAGE, PROGRESS, Child, peak_rss_mb, scrape, wait_until
from streams.bench.workload import bench_events
from streams.embedded.broker import ensure_topics, free_port


async def raw_ceiling(bootstrap: str, topics: tuple[str, ...], expected: int) -> dict[str, float]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    loads = orjson.loads
    count = 0
    started = None
    try:
        while count < expected:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            if batch and started is None:
                started = time.perf_counter()
            for records in batch.values():
                for record in records:
                    parsed = loads(record.value)
                    count += len(parsed) if type(parsed) is list else 1
        elapsed = time.perf_counter() - (started or time.perf_counter())
    finally:
        await consumer.stop()
    return {"events": count, "seconds": elapsed, "events_per_s": count / elapsed}


def naive_faust(bootstrap: str, events: int) -> dict[str, float]:
    from kafka import KafkaProducer

    topic = f"bench.naive.{uuid.uuid4().hex[:6]}"
    ensure_topics(bootstrap, [topic], partitions=4)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5)
    for event in bench_events(events, seed=7):
        producer.send(topic, key=event.partition_key, value=event.to_json())
    producer.flush()
    producer.close()
    env = {**os.environ, "BENCH_BOOTSTRAP": bootstrap, "BENCH_TOPIC": topic, "BENCH_EVENTS": str(events)}
    with tempfile.TemporaryDirectory() as workdir:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "faust",
                "-A",
                "streams.bench.naive_faust",
                "worker",
                "-l",
                "warn",
                "--without-web",
            ],
            env=env,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=600,
        )
    # Faust routes the worker's stdout into its log, so the result line may be on either stream.
    found = [
        ln[ln.index('{"events"') :] for ln in (proc.stdout + proc.stderr).splitlines() if '{"events"' in ln
    ]
    if not found:
        raise RuntimeError(f"naive Faust baseline failed: {proc.stderr[-2000:]}")
    result = orjson.loads(found[0].strip())
    return {
        "events": result["events"],
        "seconds": result["seconds"],
        "events_per_s": result["events"] / result["seconds"],
    }


def our_worker(env: dict[str, str], expected: int, data_dir: Path) -> dict[str, Any]:
    """``engage worker --sink memory`` over ``expected`` pre-produced events, first consumed → committed."""
    port = free_port()
    child = Child(
        [*ENGAGE, "worker", "--sink", "memory", "--loglevel", "warn"],
        {**env, "ENGAGE_WORKER_METRICS_PORT": str(port)},
        data_dir / "worker.log",
    )
    try:
        started = finished = None
        deadline = time.monotonic() + 900
        last: dict[str, float] = {}
        while time.monotonic() < deadline:
            time.sleep(0.1)
            child.check()
            try:
                last = scrape(port, PROGRESS)
            except OSError:
                continue
            done = last.get("engage_events_consumed_total", 0) + last.get("engage_events_rejected_total", 0)
            if done > 0 and started is None:
                started = time.perf_counter()
            if done >= expected and last.get("engage_events_consumed_total", 0) > 0:
                finished = time.perf_counter()
                break
        if started is None or finished is None:
            raise RuntimeError(f"worker did not finish: {last}")
        # Every event has been fed; the next flush covers them and commits their offsets before the
        # commit counter moves (EngagementStage.maybe_flush).
        commits = last.get("engage_offset_commits_total", 0)
        committed = wait_until(
            lambda: scrape(port, PROGRESS).get("engage_offset_commits_total", 0) > commits,
            60,
            "the last commit",
        )
        final = scrape(port)
        return {
            "events": expected,
            "seconds": committed - started,
            "events_per_s": expected / (committed - started),
            "events_per_s_processed": expected / (finished - started),
            "start_to_first_event_s": started - child.started,
            "peak_rss_mb": peak_rss_mb(child.pid),
            "changelog_messages_per_event": final.get("engage_changelog_writes_total", 0) / expected,
            "transitions": final.get("engage_transitions_total", 0),
            "tracked_pairs": final.get("engage_tracked_pairs", 0),
        }
    finally:
        child.stop()
