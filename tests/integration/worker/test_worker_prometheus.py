"""A real Prometheus scrapes a real worker: its counters moved by exactly the events sent."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from streams.embedded.broker import EmbeddedBroker
from streams.events import Interaction
from streams.producer import KafkaEventPublisher
from streams.runtime import create_topics
from streams.settings import Settings
from tests.integration.prom import PrometheusServer
from tests.integration.worker.harness import WorkerEnv, WorkerProcess, caught_up, wait_for


def _events(n: int) -> list[Interaction]:
    kinds = ["like", "like", "comment", "share", "follow", "unfollow"]
    texts = [None, None, "a thoughtful answer", "wow", None, None]
    return [
        Interaction(
            f"p{i}",
            kinds[i % 6],
            "generic",
            f"acc{i % 3}",
            f"actor{i % 41}",
            None if kinds[i % 6] in ("follow", "unfollow") else "post",
            texts[i % 6],
            1_790_000_000_000 + i * 1000,
        )
        for i in range(n)
    ]


def test_prometheus_sees_exactly_the_events_sent(
    broker: EmbeddedBroker, tmp_path: Path, prometheus: PrometheusServer
) -> None:
    cfg = WorkerEnv(broker.bootstrap, tmp_path / "data")
    settings = Settings.from_env(cfg.env(0))
    create_topics(settings, broker.bootstrap)
    events = _events(1200)
    invalid_sent = 0
    worker = WorkerProcess(cfg)
    try:
        with prometheus.scrape("engage-worker", f"http://127.0.0.1:{worker.metrics_port}/metrics") as target:
            target.wait_up(60)
            with KafkaEventPublisher(
                broker.bootstrap, settings.topics, settings.topic_partitions, max_batch=50
            ) as publisher:
                publisher.send(events)
                publisher._producer.send(settings.topics.comment, value=b'{"event_id": "broken"')
                publisher._producer.flush()
                invalid_sent = 1
            wait_for(
                lambda: caught_up([worker], settings.topics.interactions, settings.topic_partitions),
                120,
                what="the worker to catch up",
            )
            by_type = Counter(event.type for event in events)
            for event_type, count in by_type.items():
                prometheus.wait_for_value(
                    f'sum(engage_events_consumed_total{{{target.selector},type="{event_type}"}})',
                    count,
                    30,
                )
            prometheus.wait_for_value(
                f'sum(engage_events_rejected_total{{{target.selector},reason="malformed"}})',
                invalid_sent,
                30,
            )
            dlq = f"sum(engage_dlq_messages_total{{{target.selector}}})"
            prometheus.wait_for_value(dlq, invalid_sent, 30)
    finally:
        worker.stop()
