"""``make bench``: throughput of the worker against two baselines measured in the same run.

(a) the raw ceiling: an aiokafka ``getmany`` + orjson loop over the very topics the worker reads;
(b) a naive Faust worker: one event per message, a Record per event, a tumbling windowed table;
(c) our worker end to end: consumed → state → flags produced → aggregates handed to the sink →
    acknowledged (and committed on Faust's commit interval).

Everything runs on the embedded broker, which keeps every message in memory, so the event counts
are bounded by flags. Results go to ``bench/results/latest.json`` and ``latest.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson

from streams.bench.report import render_markdown
from streams.bench.workload import bench_events
from streams.embedded.broker import EmbeddedBroker, ensure_topics, free_port
from streams.producer import KafkaEventPublisher
from streams.runtime import create_topics
from streams.settings import Settings

RESULTS = Path("bench/results")


def _settings(bootstrap: str, data_dir: Path, prefix: str) -> tuple[Settings, dict[str, str]]:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "ENGAGE_TOPIC_PREFIX": prefix,
        "ENGAGE_TOPIC_PARTITIONS": "4",
        "ENGAGE_DATA_DIR": str(data_dir),
        "ENGAGE_CONSUMER_GROUP": f"bench-{uuid.uuid4().hex[:6]}",
        "ENGAGE_COMMIT_INTERVAL": "1s",
    }
    return Settings.from_env(env), env


async def _raw_ceiling(bootstrap: str, topics: tuple[str, ...], expected: int) -> dict[str, float]:
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


def _naive_faust(bootstrap: str, events: int) -> dict[str, float]:
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


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{")[0]
        totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _our_worker(env: dict[str, str], expected: int, data_dir: Path) -> dict[str, float]:
    port = free_port()
    log = (data_dir / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker", "--sink", "memory", "--loglevel", "warn"],
        env={**os.environ, **env, "ENGAGE_WORKER_METRICS_PORT": str(port)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        started = finished = None
        deadline = time.monotonic() + 900
        last: dict[str, float] = {}
        while time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                last = _scrape(port)
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
        # wait for the last flush to be acknowledged (commit counter moves after it)
        commits = last.get("engage_offset_commits_total", 0)
        while _scrape(port).get("engage_offset_commits_total", 0) <= commits + 1:
            time.sleep(0.1)
        committed = time.perf_counter()
        final = _scrape(port)
        return {
            "events": expected,
            "seconds": committed - started,
            "events_per_s": expected / (committed - started),
            "events_per_s_processed": expected / (finished - started),
            "peak_rss_mb": _peak_rss_mb(proc.pid),
            "changelog_messages_per_event": final.get("engage_changelog_writes_total", 0) / expected,
            "transitions": final.get("engage_transitions_total", 0),
        }
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.bench")
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS", "1000000")))
    parser.add_argument(
        "--naive-events",
        type=int,
        default=30_000,
        help="the naive baseline runs ~4k/s, so it gets a smaller slice",
    )
    parser.add_argument("--skip", action="append", default=[], choices=("raw", "naive", "worker", "ingest"))
    args = parser.parse_args(argv)

    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "events": args.events,
    }
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        data_dir = Path(tmp)
        settings, env = _settings(broker.bootstrap, data_dir, f"bench{uuid.uuid4().hex[:4]}.")
        create_topics(settings, broker.bootstrap)
        started = time.perf_counter()
        events = bench_events(args.events, seed=1)
        generated = time.perf_counter()
        with KafkaEventPublisher(
            broker.bootstrap, settings.topics, settings.topic_partitions, max_batch=500
        ) as publisher:
            messages = publisher.send(events)
        produced = time.perf_counter()
        results["produce"] = {
            "messages": messages,
            "generate_s": generated - started,
            "produce_events_per_s": args.events / (produced - generated),
        }
        del events
        print(f"produced {args.events:,} events in {messages:,} envelopes", flush=True)
        if "raw" not in args.skip:
            results["raw"] = asyncio.run(
                _raw_ceiling(broker.bootstrap, settings.topics.interactions, args.events)
            )
            print(f"raw ceiling: {results['raw']['events_per_s']:,.0f} events/s", flush=True)
        if "worker" not in args.skip:
            results["worker"] = _our_worker(env, args.events, data_dir)
            print(f"worker: {results['worker']['events_per_s']:,.0f} events/s", flush=True)
        if "ingest" not in args.skip:
            from streams.bench.ingest import measure_ingest

            results["ingest"] = measure_ingest(
                broker.bootstrap, topic_prefix=f"{settings.topic_prefix}ingest.", partitions=4
            )
            print(f"ingest: {results['ingest']['requests_per_s']:,.0f} signed requests/s", flush=True)
        if "naive" not in args.skip:
            results["naive"] = _naive_faust(broker.bootstrap, args.naive_events)
            print(f"naive Faust: {results['naive']['events_per_s']:,.0f} events/s", flush=True)
    if "worker" in results:
        if "raw" in results:
            results["worker_vs_raw"] = results["worker"]["events_per_s"] / results["raw"]["events_per_s"]
        if "naive" in results:
            results["worker_vs_naive"] = results["worker"]["events_per_s"] / results["naive"]["events_per_s"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    table = render_markdown(results)
    (RESULTS / "latest.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
