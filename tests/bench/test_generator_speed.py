"""How fast the generator makes events (the bench produces 1M-5M of them): target >= 300k events/s.

Measured in process CPU time as well as wall time: on a shared machine the wall figure mostly
measures the neighbours. Run with ``.venv/bin/python -m pytest tests/bench/test_generator_speed.py -s``.
"""

from __future__ import annotations

import itertools
import time

import pytest

from streams.demo.generator import GeneratorConfig, TrafficGenerator


@pytest.mark.parametrize("preset", ["bench", "demo"])
def test_generation_rate(preset: str) -> None:
    n = 1_000_000
    config = GeneratorConfig.bench() if preset == "bench" else GeneratorConfig.demo()
    wall, cpu = time.perf_counter(), time.process_time()
    generator = TrafficGenerator(config)
    count = sum(1 for _ in itertools.islice(generator, n))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"\n{preset}: {count:,} events, {count / cpu:,.0f} events/s CPU, {count / wall:,.0f} events/s wall")
    assert count == n
    if preset == "bench":
        assert count / cpu >= 300_000
