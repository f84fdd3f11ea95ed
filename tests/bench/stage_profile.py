"""Per-stage CPU of the worker's hot path, in process, without a broker (not a test: run it).

    .venv/bin/python -m tests.bench.stage_profile [--events 500000] [--interval 64000] [--cprofile FILE]

Encodes the benchmark mix into the envelopes the producer writes (per topic and partition, 500 events
at most), then feeds them to one :class:`PartitionRunner` per partition exactly as the worker's agent
does, flushing every partition after ``--interval`` events (the worker flushes once per commit
interval: 1 s at ~64k events/s) into a plain dict table and an output port that only counts. Prints
CPU µs per event of decoding + engine (``feed``) and of the flush, so a change to either can be
measured in seconds, A/B in the same session.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import logging
import pickle
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry

from streams.bench.workload import bench_events
from streams.engagement import PartitionEngine, Rule
from streams.events import encode_batch
from streams.metrics import Metrics
from streams.partitioning import group_for_envelopes
from streams.runtime import WORKER_GC_THRESHOLDS
from streams.settings import Settings
from streams.sinks.backoff import Backoff
from streams.sinks.base import CountingSink
from streams.worker.changelog import ChangelogBuffer
from streams.worker.flush import flush
from streams.worker.partition_view import PartitionView
from streams.worker.runner import PartitionRunner
from streams.worker.sink_retry import SinkWriter

PARTITIONS = 4  # as in make bench
T = TypeVar("T")


class CountingPort:
    def __init__(self, changelog: ChangelogBuffer) -> None:
        self.flags = self.hours = self.dlq = self.changelog = 0
        self._buffer = changelog

    async def send_flags(self, records: list[tuple[bytes, bytes]]) -> None:
        self.flags += len(records)

    async def send_dlq(self, records: list[bytes], partition: int = 0) -> None:
        self.dlq += len(records)

    async def send_account_hours(self, records: list[tuple[bytes, bytes]], heartbeat: bytes | None) -> None:
        self.hours += len(records)

    async def sync_state(self, partition: int) -> None:
        self.changelog += len(self._buffer.take(partition))


def envelopes(events: int, settings: Settings) -> list[tuple[int, str, bytes]]:
    """(partition, topic, value) as ``make bench`` produces them (the whole input grouped per topic and
    partition, 500 events per envelope), in the order of their first event time, which is about the
    order a catching-up consumer reads them in across topic-partitions."""
    kinds = ("like", "comment", "share", "follow", "unfollow")
    topic_for = {kind: settings.topics.for_type(kind) for kind in kinds}
    out: list[tuple[int, int, str, bytes]] = []
    groups = group_for_envelopes(bench_events(events, seed=1), PARTITIONS, topic_for)
    for (topic, partition), group in groups.items():
        for i in range(0, len(group), 500):
            chunk = group[i : i + 500]
            out.append((chunk[0].occurred_at_ms, partition, topic, encode_batch(chunk)))
    out.sort(key=lambda item: item[0])
    return [(partition, topic, value) for _, partition, topic, value in out]


def stage1(
    messages: list[tuple[int, str, bytes]], settings: Settings, metrics: Metrics
) -> tuple[list[PartitionRunner], list[PartitionView], ChangelogBuffer]:
    """One runner per partition as the worker wires them: one shared table seen through a view per
    partition, writes buffered for the changelog, the watermark driven by the runner; every topic's
    high-water mark known (the whole input is "in Kafka" already)."""
    rule = Rule.from_settings(settings)
    runners: list[PartitionRunner] = []
    views: list[PartitionView] = []
    shared: dict[bytes, bytes] = {}
    changelog = ChangelogBuffer()
    for partition in range(PARTITIONS):
        view = PartitionView(shared, partition, PARTITIONS, changelog)
        engine = PartitionEngine(rule, view, write_store=False, auto_watermark=False)
        runners.append(PartitionRunner.recover(partition, PARTITIONS, engine, view, "g", metrics))
        views.append(view)
    highwater: dict[tuple[int, str], int] = {}
    for partition, topic, _ in messages:
        highwater[partition, topic] = highwater.get((partition, topic), 0) + 1
    for (partition, topic), count in highwater.items():
        runners[partition].note_highwater(topic, count)
    return runners, views, changelog


async def run(messages: list[tuple[int, str, bytes]], interval: int, settings: Settings) -> dict[str, float]:
    metrics = Metrics.create(CollectorRegistry())
    runners, tables, changelog = stage1(messages, settings, metrics)
    port, sink, backoff = CountingPort(changelog), CountingSink(), Backoff()
    writer = SinkWriter(sink, backoff, metrics)
    feed_s = flush_s = 0.0
    offsets: dict[tuple[int, str], int] = {}
    since = events = 0
    process = time.process_time
    for partition, topic, value in messages:
        offset = offsets[partition, topic] = offsets.get((partition, topic), -1) + 1
        started = process()
        runners[partition].feed(topic, offset, value, None)
        feed_s += process() - started
        since += value.count(b'"event_id"')
        if since >= interval:
            events += since
            since = 0
            started = process()
            for runner, table in zip(runners, tables, strict=True):
                await flush(runner, table, port, writer)
            flush_s += process() - started
    events += since
    started = process()
    for runner, table in zip(runners, tables, strict=True):
        await flush(runner, table, port, writer)
    flush_s += process() - started
    return {
        "events": events,
        "feed_s": feed_s,
        "flush_s": flush_s,
        "flags": port.flags,
        "hours": port.hours,
        "changelog": port.changelog,
    }


def run_as_worker(work: Coroutine[Any, Any, T], cprofile: str | None = None) -> T:
    """Run ``work`` with the worker process's GC set-up (start-up objects frozen, its thresholds),
    under cProfile when ``cprofile`` names an output file."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*WORKER_GC_THRESHOLDS)
    profiler = cProfile.Profile() if cprofile else None
    if profiler:
        profiler.enable()
    result = asyncio.run(work)
    if profiler:
        profiler.disable()
        profiler.dump_stats(cprofile)
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--interval", type=int, default=64_000, help="events between flushes")
    parser.add_argument("--reuse", action="store_true", help="keep the encoded input in a temp file")
    parser.add_argument("--cprofile", help="write a cProfile of the run to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    settings = Settings.from_env({})
    cached = Path(tempfile.gettempdir()) / f"stage_profile_{args.events}.pickle"
    if args.reuse and cached.exists():
        messages = pickle.loads(cached.read_bytes())
    else:
        messages = envelopes(args.events, settings)
        if args.reuse:
            cached.write_bytes(pickle.dumps(messages))
    result = run_as_worker(run(messages, args.interval, settings), args.cprofile)
    n = result["events"]
    feed, flush = result["feed_s"] / n * 1e6, result["flush_s"] / n * 1e6
    print(
        f"{n:,.0f} events: feed {feed:.2f} µs/event, flush {flush:.2f} µs/event, total {feed + flush:.2f} "
        f"({1e6 / (feed + flush):,.0f} events/s); flags {result['flags']:,}, "
        f"account-hour records {result['hours']:,}, "
        f"changelog/event {result['changelog'] / n:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
