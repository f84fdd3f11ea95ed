"""The benchmark workload (issue 4's mix), from the traffic generator's ``bench`` preset."""

from __future__ import annotations

from streams.events import Interaction


def bench_events(n: int, seed: int = 1) -> list[Interaction]:
    from streams.demo.generator import bench_preset_events

    return bench_preset_events(n, seed=seed)
