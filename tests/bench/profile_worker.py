"""Profile ``engage worker --sink memory`` over a pre-produced topic (not a test: run it).

    .venv/bin/python -m tests.bench.profile_worker --events 300000 --out /tmp/worker.prof [--env K=V ...]

Starts the embedded broker, produces ``--events`` events of the benchmark mix, runs the worker under
cProfile until every event is consumed and one more commit happened, stops it with SIGTERM (cProfile
writes its file on the clean exit) and prints the events/s and the top functions by own time.
"""

from __future__ import annotations

import argparse
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from streams.bench.procs import PROGRESS, bench_env, scrape
from streams.bench.workload import bench_events
from streams.embedded.broker import EmbeddedBroker, free_port
from streams.producer import KafkaEventPublisher
from streams.runtime import create_topics
from streams.settings import Settings


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds per thread of ``pid``, keyed by ``name/tid``."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            raw = (task / "stat").read_text()
        except OSError:
            continue
        name = raw.split("(", 1)[1].rsplit(")", 1)[0]
        fields = raw.rsplit(")", 1)[1].split()
        out[f"{name}/{task.name}"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--out", default="/tmp/worker.prof")
    parser.add_argument("--env", action="append", default=[], help="extra K=V for the worker")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--pyspy", help="sample the worker with py-spy (raw collapsed stacks) into this file")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        env = bench_env(broker.bootstrap, Path(tmp), "prof.")
        settings = Settings.from_env(env)
        create_topics(settings, broker.bootstrap)
        with KafkaEventPublisher(
            broker.bootstrap, settings.topics, settings.topic_partitions, max_batch=500
        ) as publisher:
            publisher.send(bench_events(args.events, seed=1))
        port = free_port()
        command = [sys.executable, "-m", "streams.cli", "worker", "--sink", "memory", "--loglevel", "warn"]
        if not args.no_profile and not args.pyspy:
            command[1:1] = ["-m", "cProfile", "-o", args.out]
        proc = subprocess.Popen(
            command,
            env={**os.environ, **env, **extra, "ENGAGE_WORKER_METRICS_PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started = None
        spy = None
        timeline: list[tuple[float, float]] = []
        try:
            while True:
                time.sleep(0.1)
                try:
                    last = scrape(port, PROGRESS)
                except OSError:
                    continue
                done = last.get("engage_events_consumed_total", 0) + last.get(
                    "engage_events_rejected_total", 0
                )
                if done and started is None:
                    started = time.perf_counter()
                    cpu_started = _cpu_s(proc.pid)
                    threads_started = _thread_cpu_s(proc.pid)
                    broker_started = _cpu_s(broker.pid) if broker.pid else 0.0
                    if args.pyspy:
                        spy_args = [
                            "-p",
                            str(proc.pid),
                            "-f",
                            "raw",
                            "-r",
                            "200",
                            "--idle",
                            "--nonblocking",
                            "-o",
                            args.pyspy,
                        ]
                        spy = subprocess.Popen(
                            ["py-spy", "record", *spy_args],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        )
                if started is not None:
                    timeline.append((time.perf_counter() - started, done))
                if done >= args.events:
                    break
            commits = last.get("engage_offset_commits_total", 0)
            while scrape(port, PROGRESS).get("engage_offset_commits_total", 0) <= commits:
                time.sleep(0.1)
            assert started is not None
            elapsed = time.perf_counter() - started
            cpu = _cpu_s(proc.pid) - cpu_started
            threads = _thread_cpu_s(proc.pid)
            broker_cpu = (_cpu_s(broker.pid) if broker.pid else 0.0) - broker_started
            per_thread = {name: spent - threads_started.get(name, 0.0) for name, spent in threads.items()}
            final = scrape(port)
            marks = [next(t for t, d in timeline if d >= args.events * q) for q in (0.1, 0.5, 0.9, 1.0)]
            print(
                "reached 10/50/90/100%:",
                " ".join(f"{m:.2f}" for m in marks),
                f"committed {elapsed:.2f} s; broker CPU {broker_cpu:.2f} s",
            )
            print(
                f"{args.events / elapsed:,.0f} events/s; {cpu / args.events * 1e6:.1f} CPU µs/event; "
                f"changelog/event {final.get('engage_changelog_writes_total', 0) / args.events:.3f}; "
                f"wall {elapsed:.2f} s, CPU by thread: "
                + ", ".join(f"{name} {s:.2f}" for name, s in sorted(per_thread.items()) if s >= 0.05)
            )
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    if not args.no_profile and not args.pyspy:
        stats = pstats.Stats(args.out)
        stats.sort_stats("tottime").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
