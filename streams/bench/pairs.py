"""Bytes per tracked pair and peak RSS of a process holding N (account, follower) pairs of state.

Run once per size in a fresh process (``python -m streams.bench.pairs N``, one JSON line out), so the
peak RSS (VmHWM) is this state's alone; ``rss_at_start_mb`` is the interpreter with its imports.

How the state is built:

1. A :class:`~streams.engagement.PartitionEngine` (the worker's, with the default rule) processes
   events designed so that each pair is new: ``PAIRS_PER_ACTOR`` accounts per follower; 75% of the pairs
   get one one-word comment (scored, not substantive: the smallest state, as a scored like with
   ``ENGAGE_LIKE_WEIGHT`` > 0 would be; likes weigh 0 by default and keep no state), 15% one
   substantive comment, 10% three (engaged). Event time advances evenly over
   ``SPAN_MS`` (20 days), so the engine's lateness horizon, dedup expiry and timers run as live, and it
   drains and flushes (``drain()`` + ``dirty()``) every 20k events like a worker's commit interval.
   The result is the engine's store: actor id → encoded state, exactly what the worker's table holds.
2. Running the engine costs ~20-35 µs per event here, too slow for 5M pairs in a 5-minute benchmark,
   so at most ``TEMPLATE_PAIRS`` pairs go through it; larger sizes copy those encoded states under
   fresh actor ids (a state does not contain its actor id), each copy a distinct ``bytes`` object.
3. A fresh engine restores that store, as a recovering worker does (decodes every state, counts pairs,
   rebuilds the timer index): ``pairs_counted`` is its count and must equal N.

``bytes_per_pair`` = (UTF-8 keys + encoded values) / pairs, the table's payload, without the dict's own
overhead; the RSS includes everything (store dict, engine, timers, the interpreter).

With ``--changelog TOPIC --bootstrap HOST:PORT --partitions P`` the store is then written to ``TOPIC``
as a worker writes its table's changelog (key = actor id on its murmur2 partition, plus one progress
record per partition), for the recovery phase (:mod:`streams.bench.recovery`).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Iterator
from typing import Any

import orjson

from streams.bench.procs import peak_rss_mb
from streams.engagement import PartitionEngine, Rule
from streams.events import Interaction
from streams.partitioning import partition_for
from streams.runtime import WORKER_GC_THRESHOLDS
from streams.settings import Settings
from streams.worker.progress import PartitionProgress, progress_key

PAIRS_PER_ACTOR = 4
TEMPLATE_PAIRS = 250_000
START_MS = 1_760_000_000_000
SPAN_MS = 20 * 86_400_000
END_MS = START_MS + SPAN_MS
FLUSH_EVERY = 20_000
TEXT = "great point here"


def rule() -> Rule:
    return Rule.from_settings(Settings.from_env({}))


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pair_events(pairs: int) -> Iterator[list[Interaction]]:
    """Events that create exactly ``pairs`` new pairs, in batches of about ``FLUSH_EVERY``."""
    step = SPAN_MS // max(pairs, 1)
    batch: list[Interaction] = []
    for i in range(pairs):
        actor = f"fan{i // PAIRS_PER_ACTOR:09d}"
        account = f"acct{(i % PAIRS_PER_ACTOR) * 13 + (i // PAIRS_PER_ACTOR) % 11:05d}"
        at = START_MS + i * step
        kind = i % 20  # 0-14 one-word comment, 15-17 one substantive comment, 18-19 three (engaged)
        if kind < 15:
            batch.append(Interaction(f"p{i}", "comment", "generic", account, actor, "post1", "Nice!", at))
        else:
            for n in range(1 if kind < 18 else 3):
                batch.append(
                    Interaction(f"p{i}.{n}", "comment", "generic", account, actor, "post1", TEXT, at)
                )
        if len(batch) >= FLUSH_EVERY:
            yield batch
            batch = []
    if batch:
        yield batch


def run_engine(pairs: int) -> PartitionEngine:
    """The engine after processing :func:`pair_events` (its ``store`` holds the states)."""
    engine = PartitionEngine(rule())
    for batch in pair_events(pairs):
        engine.process_many(batch)
        engine.drain()
        engine.dirty()
    engine.advance_watermark(END_MS)
    engine.drain()
    engine.dirty()
    return engine


def build_store(pairs: int, template_pairs: int = TEMPLATE_PAIRS) -> tuple[dict[str, bytes], int, int]:
    """``pairs`` pairs of state: (store, flush_seq, watermark) — see the module docstring."""
    if pairs % PAIRS_PER_ACTOR or template_pairs % PAIRS_PER_ACTOR:
        raise ValueError(f"pairs must be a multiple of {PAIRS_PER_ACTOR}")
    engine = run_engine(min(pairs, template_pairs))
    template = engine.store
    seq, watermark = engine.flush_seq, engine.watermark_ms or END_MS
    del engine
    store: dict[str, bytes] = dict(template)
    actors_left = pairs // PAIRS_PER_ACTOR - len(template)
    copy = 0
    while actors_left > 0:
        copy += 1
        for actor, value in template.items():
            if actors_left == 0:
                break
            store[f"c{copy:03d}{actor}"] = bytes(memoryview(value))  # a distinct object per copy
            actors_left -= 1
    return store, seq, watermark


def measure(
    pairs: int, template_pairs: int = TEMPLATE_PAIRS
) -> tuple[dict[str, Any], dict[str, bytes], int, int]:
    """Build, restore and measure; returns (result, store, flush_seq, watermark)."""
    gc.set_threshold(*WORKER_GC_THRESHOLDS)  # as the worker process does
    at_start = _rss_mb()
    started = time.perf_counter()
    store, seq, watermark = build_store(pairs, template_pairs)
    built = time.perf_counter()
    engine = PartitionEngine(rule(), store, flush_seq=seq)
    engine.restore()
    restored = time.perf_counter()
    state_bytes = sum(len(actor.encode()) + len(value) for actor, value in store.items())
    result = {
        "pairs": pairs,
        "pairs_counted": engine.tracked_pairs,
        "engaged_pairs": engine.engaged_pairs,
        "actors": len(store),
        "state_bytes": state_bytes,
        "bytes_per_pair": state_bytes / max(engine.tracked_pairs, 1),
        "peak_rss_mb": peak_rss_mb(),
        "rss_at_start_mb": at_start,
        "build_s": built - started,
        "restore_s": restored - built,
    }
    return result, store, seq, watermark


def write_changelog(
    store: dict[str, bytes], seq: int, watermark: int, bootstrap: str, topic: str, partitions: int
) -> int:
    """Write ``store`` to the state table's changelog topic the way a worker's flushes leave it
    (record batches through :func:`streams.worker.faust_adapter.outputs.send_records`, progress records
    last)."""
    import asyncio

    from aiokafka import AIOKafkaProducer

    from streams.worker.changelog import Record
    from streams.worker.faust_adapter.outputs import send_records

    records: list[Record] = []
    for actor, value in store.items():
        key = actor.encode()
        records.append((partition_for(key, partitions), key, value))
    for partition in range(partitions):
        meta = PartitionProgress(flush_seq=seq, watermark_ms=watermark)
        records.append((partition, progress_key(partition, partitions).encode(), meta.encode()))

    async def send() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks=-1, max_batch_size=512 * 1024, max_request_size=4 << 20
        )
        await producer.start()
        try:
            for start in range(0, len(records), 20_000):
                await send_records(producer, topic, records[start : start + 20_000])
        finally:
            await producer.stop()

    asyncio.run(send())
    return len(store)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.bench.pairs")
    parser.add_argument("pairs", type=int)
    parser.add_argument("--template", type=int, default=TEMPLATE_PAIRS)
    parser.add_argument("--changelog", help="also write the state to this changelog topic")
    parser.add_argument("--bootstrap")
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args(argv)
    result, store, seq, watermark = measure(args.pairs, args.template)
    if args.changelog:
        started = time.perf_counter()
        result["changelog_records"] = write_changelog(
            store, seq, watermark, args.bootstrap, args.changelog, args.partitions
        )
        result["changelog_write_s"] = time.perf_counter() - started
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
