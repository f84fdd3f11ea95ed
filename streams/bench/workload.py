"""The benchmark workload: issue 4's mix, from the traffic generator's ``bench`` preset."""

from __future__ import annotations

from streams.demo.generator import GeneratorConfig, TrafficGenerator
from streams.events import Interaction


def bench_events(n: int, seed: int = 1) -> list[Interaction]:
    return TrafficGenerator(GeneratorConfig.bench(seed)).take(n)
