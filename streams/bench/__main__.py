"""``make bench``: every figure of the benchmark table, measured in one run on one embedded broker.

Phases, in order (each module's docstring says exactly what it measures):

1. :mod:`streams.bench.throughput` — pre-produced events: (a) raw aiokafka ceiling, (b) naive Faust,
   (c) our worker with ``--sink memory`` (events/s, peak RSS, changelog messages per event);
2. :mod:`streams.bench.latency` — the live pipeline (signed webhooks → ``engage ingest`` → worker with
   the ClickHouse sink on chDB): its max, latency p50/p99 at half of it, ClickHouse rows per event;
3. :mod:`streams.bench.recovery` / :mod:`streams.bench.pairs` — bytes per pair and peak RSS at 1M and
   5M pairs, recovery time of a restarted worker with 1M pairs.

The embedded broker keeps every message in memory, so the event counts are bounded by flags. Results go
to ``bench/results/latest.json`` and ``latest.md`` (:mod:`streams.bench.report`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from streams.bench import latency, recovery, throughput
from streams.bench.procs import bench_env
from streams.bench.report import render_markdown
from streams.bench.workload import bench_events
from streams.embedded.broker import EmbeddedBroker
from streams.producer import KafkaEventPublisher
from streams.runtime import create_topics
from streams.settings import Settings

RESULTS = Path("bench/results")
PHASES = ("raw", "worker", "ingest", "naive", "latency", "pairs", "recovery")


def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.bench")
    parser.add_argument(
        "--events",
        type=int,
        default=int(os.environ.get("BENCH_EVENTS", "1000000")),
        help="pre-produced events for (a) and (c), issue 4's 1M by default",
    )
    parser.add_argument(
        "--naive-events",
        type=int,
        default=30_000,
        help="the naive baseline runs ~2-4k/s, so it gets a smaller slice",
    )
    parser.add_argument(
        "--pairs", type=_sizes, default=[1_000_000, 5_000_000], help="state sizes, e.g. 1000,4000"
    )
    parser.add_argument("--recovery-pairs", type=int, default=1_000_000)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--skip", action="append", default=[], choices=PHASES)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    skip = set(args.skip)

    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "events": args.events,
    }
    run_started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        data_dir = Path(tmp)
        env = bench_env(broker.bootstrap, data_dir, f"bench{uuid.uuid4().hex[:4]}.")
        settings = Settings.from_env(env)
        if {"raw", "worker"} - skip:
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
        if "raw" not in skip:
            results["raw"] = asyncio.run(
                throughput.raw_ceiling(broker.bootstrap, settings.topics.interactions, args.events)
            )
            print(f"raw ceiling: {results['raw']['events_per_s']:,.0f} events/s", flush=True)
        if "worker" not in skip:
            results["worker"] = throughput.our_worker(env, args.events, data_dir)
            print(f"worker: {results['worker']['events_per_s']:,.0f} events/s", flush=True)
        if "ingest" not in skip:
            from streams.bench.ingest import measure_ingest

            results["ingest"] = measure_ingest(
                broker.bootstrap, topic_prefix=f"{settings.topic_prefix}ingest.", partitions=4
            )
            print(f"ingest: {results['ingest']['requests_per_s']:,.0f} signed requests/s", flush=True)
        if "naive" not in skip:
            results["naive"] = throughput.naive_faust(broker.bootstrap, args.naive_events)
            print(f"naive Faust: {results['naive']['events_per_s']:,.0f} events/s", flush=True)
        if "latency" not in skip:
            # The burst that finds the live pipeline's max must outrun it: (c) is its upper bound.
            burst = results.get("worker", {}).get("events_per_s", 20_000.0)
            found = latency.measure(
                broker.bootstrap, data_dir / "latency", burst, seconds=args.latency_seconds
            )
            results.update(found)
            lat = found["latency"]
            print(
                f"latency at {lat['target_events_per_s']:,.0f} events/s: p50 {lat['p50_s']:.3f}s "
                f"p99 {lat['p99_s']:.3f}s; {found['clickhouse']['rows_per_event']:.3f} ClickHouse rows/event",
                flush=True,
            )
        state: dict[str, Any] = {}
        if "recovery" not in skip:
            state[str(args.recovery_pairs)], results["recovery"] = recovery.measure(
                broker.bootstrap, data_dir / "recovery", args.recovery_pairs
            )
            print(f"recovery: {results['recovery']['first_event_s']:.1f}s to the first event", flush=True)
        if "pairs" not in skip:
            for size in args.pairs:
                if str(size) not in state:
                    state[str(size)] = recovery.pairs_subprocess(size)
                print(f"{size:,} pairs: {state[str(size)]['bytes_per_pair']:.1f} bytes/pair", flush=True)
        if state:
            results["state"] = state
    if "worker" in results:
        if "raw" in results:
            results["worker_vs_raw"] = results["worker"]["events_per_s"] / results["raw"]["events_per_s"]
        if "naive" in results:
            results["worker_vs_naive"] = results["worker"]["events_per_s"] / results["naive"]["events_per_s"]
    results["bench_seconds"] = time.perf_counter() - run_started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    table = render_markdown(results)
    (args.out / "latest.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
