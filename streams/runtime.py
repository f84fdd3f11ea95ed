"""Process-level wiring shared by the commands: where Kafka is, and making sure the topics exist."""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator
from typing import Final

from streams import topics
from streams.embedded.broker import EmbeddedBroker
from streams.settings import Settings

#: ``gc.set_threshold`` of a worker process (``streams.commands.worker``, and the benchmarks that stand
#: for one). The young-generation count is allocations minus deallocations of tracked objects, so what
#: triggers a collection is what survives: an interval's aggregate rows, score rows and tuples (freed at
#: the flush), and state growth. A young collection visits every live young object, each a cache miss.
#: With a lower threshold an interval's transient objects set collections off many times per interval;
#: at 1,000,000 only lasting growth does, at no cost in peak memory (README, "Performance", has the
#: figures; ``tests/bench/stage_profile.py`` measures it). gc.freeze() at start-up keeps the imported
#: modules out of every collection.
WORKER_GC_THRESHOLDS: Final = (1_000_000, 20, 100)

#: ``sys.setswitchinterval`` of a worker process (CPython's default: 5 ms). Faust runs the Kafka consumer
#: in a thread with its own event loop, whose timers and fetches ask for the GIL all the time; every 5 ms
#: the agent thread, busy with a batch, had to hand the GIL over and take it back. With 50 ms it does so
#: only when it waits anyway (a thread waiting for I/O releases the GIL at once), and its CPU per event
#: drops (README, "Performance": ``tests.bench.profile_worker`` with the interval varied). The cost: the
#: consumer thread may wait up to 50 ms for a busy agent, which has a batch to work through meanwhile;
#: group heartbeats (1 s) and session timeouts (10 s) are far.
WORKER_SWITCH_INTERVAL_S: Final = 0.05

#: ``gc.set_threshold`` of an ingest process (``streams.ingest.app.serve``, after ``gc.freeze()`` of
#: what start-up built). A request's objects die by reference counting (the parsed body is dropped
#: before the Kafka wait), so collections find little; with the defaults the collector's full passes
#: walked everything the imports created, several times a run, a cost per request the bench's ingest
#: row shows (README, "Performance"); with these, a run adds at most a few young collections.
INGEST_GC_THRESHOLDS: Final = (50_000, 20, 100)


def tune_worker_process() -> None:
    """The interpreter settings of a worker process: its GC thresholds and GIL switch interval."""
    gc.set_threshold(*WORKER_GC_THRESHOLDS)
    sys.setswitchinterval(WORKER_SWITCH_INTERVAL_S)


def create_topics(settings: Settings, bootstrap: str) -> list[str]:
    """Connect to Kafka, create the missing topics if allowed and check them (see :mod:`streams.topics`)."""
    return topics.prepare(settings, bootstrap)


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
