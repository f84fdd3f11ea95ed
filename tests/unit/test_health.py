"""Liveness and readiness from the loop's heartbeat, on an injected clock."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from streams.health import Health
from streams.metrics import Metrics


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_alive_while_the_loop_beats_within_the_bound() -> None:
    clock = Clock()
    health = Health(5.0, clock=clock)
    assert health.live()[0]  # starting: alive for the bound
    clock.now += 5.1
    ok, detail = health.live()
    assert not ok and detail["started"] is False  # never beat: the loop never ran
    health.beat(frozenset(), False)
    assert health.live()[0]
    clock.now += 5.0
    assert health.live()[0]  # exactly the bound still counts
    clock.now += 0.01
    ok, detail = health.live()
    assert not ok and detail["loop_heartbeat_age_s"] == 5.01


def test_ready_needs_partitions_recovery_and_life() -> None:
    clock = Clock()
    health = Health(5.0, clock=clock)
    health.beat(frozenset(), True)
    assert not health.ready()[0]  # owns nothing
    health.beat(frozenset({1, 3}), False)
    assert not health.ready()[0]  # still recovering
    health.beat(frozenset({3, 1}), True)
    ok, detail = health.ready()
    assert ok and detail["partitions"] == [1, 3]
    clock.now += 6
    assert not health.ready()[0]  # the loop stopped: not ready either


def test_beat_updates_the_heartbeat_and_partition_gauges() -> None:
    metrics = Metrics.create(CollectorRegistry())
    health = Health(5.0, clock=Clock(), wall_clock=lambda: 1234.5, metrics=metrics)
    health.beat(frozenset({0, 2, 5}), True)
    registry = metrics.registry
    assert registry.get_sample_value("engage_event_loop_heartbeat_timestamp_seconds") == 1234.5
    assert registry.get_sample_value("engage_assigned_partitions") == 3
