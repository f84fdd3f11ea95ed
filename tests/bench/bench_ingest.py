"""Ingest throughput on an embedded broker: ``streams.bench.ingest.measure_ingest`` from the command line.

One ``engage ingest`` process, one load-generator process (see ``streams/bench/ingest.py``), a fresh
embedded Tansu broker. Bounded by ``--events`` (total) and ``--seconds``.

    .venv/bin/python tests/bench/bench_ingest.py [--events 1000000] [--seconds 10] [--concurrency 64]

Prints a summary and one JSON line (``{"bench": "ingest", ...}``).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import orjson

from streams.bench.ingest import measure_ingest
from streams.embedded.broker import EmbeddedBroker


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000, help="at most this many events in all")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--per-request", type=int, default=100, help="events per request")
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args(argv)
    with EmbeddedBroker() as broker:
        result = measure_ingest(
            broker.bootstrap,
            topic_prefix="bench.",
            partitions=args.partitions,
            seconds=args.seconds,
            max_events=args.events,
            events_per_request=args.per_request,
            concurrency=args.concurrency,
        )
    print(
        f"ingest: {result['requests_per_s']:.0f} signed requests/s, {result['events_per_s']:.0f} events/s "
        f"({result['events_per_request']} events/request, {result['concurrency']} in flight), "
        f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, statuses {result['statuses']}; "
        f"ingest {result['ingest_cpu_us_per_request']:.0f} CPU-µs/request "
        f"on {result['ingest_cores']:.2f} cores, "
        f"load generator {result['loadgen_cpu_us_per_request']:.0f} CPU-µs/request on "
        f"{result['loadgen_cores']:.2f} cores; load avg {os.getloadavg()[0]:.2f} on {result['cpus']} cpus"
    )
    print(orjson.dumps({"bench": "ingest", **result}).decode())
    return result


if __name__ == "__main__":
    main()
