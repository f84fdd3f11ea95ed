"""Process-level wiring shared by the commands: where Kafka is, and making sure the topics exist."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

from streams.embedded.broker import EmbeddedBroker, ensure_topics
from streams.settings import Settings

#: ``gc.set_threshold`` of a worker process (``streams.commands.worker``, and the benchmarks that stand
#: for one). A young collection walks the interval's aggregate dicts (~0.9 rows per event in the bench
#: mix): at 50,000 allocations GC cost 2.5 µs per event, at 200,000 0.4–0.6 µs (engine over 300k bench
#: events, ``gc.callbacks`` timing, 13 vs 1 collections).
WORKER_GC_THRESHOLDS: Final = (200_000, 20, 100)

#: ``gc.set_threshold`` of an ingest process (``streams.ingest.app.serve``, after ``gc.freeze()`` of
#: what start-up built). A request's objects die by reference counting (the parsed body is dropped
#: before the Kafka wait), so collections find little; with the defaults the bench's ingest process
#: spent 40-58 µs per request in the collector (``gc.callbacks``; 3-5 full collections walking all
#: that the imports created, per 10 s run); with these, a run adds at most a few young collections.
INGEST_GC_THRESHOLDS: Final = (50_000, 20, 100)


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
