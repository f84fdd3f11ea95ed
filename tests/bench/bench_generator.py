"""How fast the traffic generator makes events (not a test: run it, it asserts nothing).

    .venv/bin/python -m tests.bench.bench_generator [--events 1000000]

The bench produces 1M-5M events, so generation must stay far below the time it measures. Reported in
process CPU time as well as wall time: on a shared machine the wall figure mostly measures the
neighbours.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

from streams.demo.generator import GeneratorConfig, TrafficGenerator


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    for preset, config in (("bench", GeneratorConfig.bench()), ("demo", GeneratorConfig.demo())):
        wall, cpu = time.perf_counter(), time.process_time()
        count = sum(1 for _ in itertools.islice(TrafficGenerator(config), args.events))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rates = f"{count / cpu:,.0f} events/s CPU, {count / wall:,.0f} events/s wall"
        print(f"{preset}: {count:,} events, {rates}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
