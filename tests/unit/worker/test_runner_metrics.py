"""What a partition runner reports to Prometheus: the series the alert rules and dashboards read."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from streams.engagement import PartitionEngine, Rule
from streams.events import Interaction, encode_batch
from streams.metrics import Metrics
from streams.sinks.backoff import Backoff
from streams.sinks.base import MemorySink
from streams.worker.flush import flush
from streams.worker.progress import PartitionProgress
from streams.worker.runner import PartitionRunner
from streams.worker.sink_retry import SinkWriter

T0 = 1_700_000_000_000
LONG = "this comment has plenty of words in it to count"


class _Out:
    async def send_flags(self, records: list[tuple[bytes, bytes]]) -> None:
        pass

    async def send_dlq(self, records: list[bytes], partition: int = 0) -> None:
        pass

    async def send_account_hours(self, records: list[tuple[bytes, bytes]], heartbeat: bytes | None) -> None:
        pass

    async def sync_state(self, partition: int) -> None:
        pass


def _event(n: int, kind: str, text: str | None, at_ms: int) -> Interaction:
    return Interaction(f"e{n}", kind, "instagram", "acme", f"fan{n}", "p1", text, at_ms)


def _runner(registry: CollectorRegistry, now_s: float) -> PartitionRunner:
    runner = PartitionRunner(
        0,
        1,
        PartitionEngine(Rule(), auto_watermark=False),
        PartitionProgress(),
        "g",
        Metrics.create(registry),
    )
    runner.wall_clock = lambda: now_s
    return runner


def _flush(runner: PartitionRunner) -> None:
    asyncio.run(
        flush(runner, {}, _Out(), SinkWriter(MemorySink(), Backoff(rand=lambda: 0.0), runner.metrics))
    )


def test_substantive_interactions_count_the_accepted_substantive_events_once() -> None:
    """The global engagement-drop alert and two pipeline-health panels read this counter."""
    registry = CollectorRegistry()
    runner = _runner(registry, T0 / 1000)
    events = [
        _event(1, "comment", LONG, T0),
        _event(2, "share", LONG, T0 + 1),
        _event(3, "comment", "Nice!", T0 + 2),  # not substantive
        _event(4, "like", None, T0 + 3),
    ]
    runner.feed("comment", 0, encode_batch(events), "h0")
    runner.feed("comment", 1, encode_batch([events[0]]), "h1")  # a redelivery: a duplicate
    _flush(runner)
    assert registry.get_sample_value("engage_substantive_interactions_total") == 2
    _flush(runner)  # nothing new
    assert registry.get_sample_value("engage_substantive_interactions_total") == 2


def test_event_lag_is_observed_from_event_time_to_processing() -> None:
    """The end-to-end event lag panel reads this histogram; one observation per message, its oldest event."""
    registry = CollectorRegistry()
    runner = _runner(registry, T0 / 1000 + 90.0)
    runner.feed(
        "like", 0, encode_batch([_event(1, "like", None, T0), _event(2, "like", None, T0 + 60_000)]), "h"
    )
    runner.feed("like", 1, encode_batch([_event(3, "like", None, T0 + 89_000)]), "h")
    assert registry.get_sample_value("engage_event_lag_seconds_count") == 2
    assert registry.get_sample_value("engage_event_lag_seconds_sum") == 90.0 + 1.0
    assert registry.get_sample_value("engage_event_lag_seconds_bucket", {"le": "60.0"}) == 1
