"""Process-level wiring shared by the commands: where Kafka is, and making sure the topics exist."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

from streams.embedded.broker import EmbeddedBroker, ensure_topics
from streams.settings import Settings

#: ``gc.set_threshold`` of a worker process (``streams.commands.worker``, and the benchmarks that stand
#: for one). The young-generation count is allocations minus deallocations of tracked objects, so what
#: triggers a collection is what survives: an interval's aggregate rows, score rows and tuples (up to
#: ~250k live objects per commit interval in the bench mix, freed at the flush), and state growth. A
#: young collection costs ~0.4–1 µs per live young object here (each referent's header is a cache
#: miss). At 200,000 the intervals' transient objects set one off every ~100k events (1M bench events
#: in process, ``tests/bench/stage_profile.py`` with ``gc.callbacks`` timing: 10 collections, 1.3–2.1 s,
#: 1.3–2.1 µs per event); at 1,000,000 only lasting growth does (0 collections over the same 1M events;
#: 12.2 → 10.4 µs per event in one session; peak RSS unchanged, 389 MiB). gc.freeze() at start-up keeps
#: the imported modules out of every collection.
WORKER_GC_THRESHOLDS: Final = (1_000_000, 20, 100)

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
