"""Process-level wiring shared by the commands: where Kafka is, and making sure the topics exist."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from streams.embedded.broker import EmbeddedBroker, ensure_topics
from streams.settings import Settings


def create_topics(settings: Settings, bootstrap: str) -> list[str]:
    return ensure_topics(
        bootstrap,
        settings.topics.all,
        partitions=settings.topic_partitions,
        replication=settings.topic_replication,
        retention_ms=settings.topic_retention_ms,
    )


@contextlib.contextmanager
def kafka(settings: Settings, *, log_path: str | None = None) -> Iterator[str]:
    """Yield the bootstrap servers: the configured Kafka, or an embedded broker started for the block."""
    if not settings.embedded_kafka:
        create_topics(settings, settings.kafka_bootstrap_servers)
        yield settings.kafka_bootstrap_servers
        return
    with EmbeddedBroker(log_path=log_path) as broker:
        create_topics(settings, broker.bootstrap)
        yield broker.bootstrap
