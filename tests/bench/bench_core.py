"""Micro-benchmark of the pure engagement core (not a test: run it, don't collect it).

    .venv/bin/python -m tests.bench.bench_core [--events 1000000] [--interval 100000]

Synthetic mix: 55 % likes, 25 % comments (half of them one word), 10 % shares (half with
commentary), 8 % follows, 2 % unfollows; 2,000 accounts drawn from a Zipf law, 200,000 followers;
event time advances ~1 ms per event with up to 2 s of disorder. Every ``--interval`` events the
engine drains and flushes (``drain()`` + ``dirty()``), as a worker does once per commit interval, and
that time is included. Events are built in batches of 5,000 (as a worker decodes them); building is
not timed. Reports events/s and bytes per tracked pair. ``--gc-freeze`` calls ``gc.freeze()`` first
and raises the young-generation threshold, as a worker process can (see the README).
"""

from __future__ import annotations

import argparse
import bisect
import gc
import random
import resource
import sys
import time
from collections.abc import Iterator
from itertools import accumulate

from streams.engagement import PartitionEngine, Rule
from streams.events import Interaction
from streams.runtime import WORKER_GC_THRESHOLDS

BATCH = 5_000  # events decoded per batch, as a worker's take() would hand them over
ACCOUNTS = 2_000
FOLLOWERS = 200_000
LONG = ["love this, thanks", "great point here", "this is so useful", "Ça marche très bien"]
SHORT = ["Nice!", "🔥🔥", "wow", "👏"]


def zipf_sampler(n: int, s: float, rng: random.Random) -> list[int]:
    weights = [1.0 / (k**s) for k in range(1, n + 1)]
    cumulative = list(accumulate(weights))
    total = cumulative[-1]
    return [bisect.bisect_left(cumulative, rng.random() * total) for _ in range(200_000)]


def events(count: int, seed: int) -> Iterator[list[Interaction]]:
    rng = random.Random(seed)
    accounts = zipf_sampler(ACCOUNTS, 1.1, rng)
    base = 1_760_000_000_000
    chunk: list[Interaction] = []
    for i in range(count):
        account = f"acct{accounts[i % len(accounts)]:05d}"
        actor = f"user{rng.randrange(FOLLOWERS):07d}"
        at = base + i - rng.randrange(2000)
        roll = rng.random()
        post = f"post{rng.randrange(50)}"
        if roll < 0.55:
            kind, text = "like", None
        elif roll < 0.80:
            kind, text = "comment", rng.choice(SHORT if roll < 0.675 else LONG)
        elif roll < 0.90:
            kind, text = "share", (None if roll < 0.85 else rng.choice(LONG))
        elif roll < 0.98:
            kind, text, post = "follow", None, None
        else:
            kind, text, post = "unfollow", None, None
        chunk.append(Interaction(f"evt{seed}-{i}", kind, "instagram", account, actor, post, text, at))
        if len(chunk) == BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--interval", type=int, default=100_000, help="events between drain()+dirty()")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", type=int, default=Rule().cache_max_actors, help="Rule.cache_max_actors")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() + the worker's thresholds (streams.runtime.WORKER_GC_THRESHOLDS)",
    )
    args = parser.parse_args(argv)

    engine = PartitionEngine(Rule(cache_max_actors=args.cache))
    processed = flushes = written = 0
    process_s = flush_s = 0.0
    since_flush = 0
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    gc.collect()
    if args.gc_freeze:
        gc.freeze()
        gc.set_threshold(*WORKER_GC_THRESHOLDS)
    for chunk in events(args.events, args.seed):
        start = 0
        while start < len(chunk):
            take = min(len(chunk) - start, args.interval - since_flush)
            part = chunk[start : start + take]
            if profiler:
                profiler.enable()
            t0 = time.process_time()
            engine.process_many(part)
            t1 = time.process_time()
            processed += len(part)
            since_flush += len(part)
            start += take
            if since_flush == args.interval:
                engine.drain()
                written += len(engine.dirty())
                flushes += 1
                since_flush = 0
            t2 = time.process_time()
            if profiler:
                profiler.disable()
            process_s += t1 - t0
            flush_s += t2 - t1
    t0 = time.process_time()
    engine.drain()
    written += len(engine.dirty())
    flush_s += time.process_time() - t0
    total = process_s + flush_s

    store = engine.store
    state_bytes = sum(len(v) for v in store.values())
    print(f"events                {processed:>12,}")
    print(f"events/s (total)      {processed / total:>12,.0f}   ({total:.2f} s of CPU time, one core)")
    print(f"  process_many        {process_s:>12.2f} s   ({processed / process_s:,.0f} events/s)")
    print(f"  drain+dirty         {flush_s:>12.2f} s   ({flushes + 1} flushes, {written:,} state writes)")
    print(f"tracked pairs         {engine.tracked_pairs:>12,}")
    print(f"stored actors         {len(store):>12,}")
    print(f"state bytes           {state_bytes:>12,}")
    print(
        f"bytes per pair        {state_bytes / max(1, engine.tracked_pairs):>12.1f}   (actor header included)"
    )
    print(f"dedup entries         {engine.dedup_entries:>12,}")
    print(f"max RSS               {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:>12,.0f} MiB")
    if profiler:
        import pstats

        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(18)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
