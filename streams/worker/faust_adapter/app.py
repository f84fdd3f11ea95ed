"""The Faust app of a worker, and the Faust-internal helpers its wiring installs.

Written against faust-streaming 0.15.3 and aiokafka 0.14.0 (every private internal touched is listed in
:mod:`streams.worker.faust_adapter`).
"""

from __future__ import annotations

import logging
import shutil
from typing import Any

import faust

from streams import topics
from streams.settings import Settings
from streams.worker.faust_adapter.changelog_names import prefixed_table
from streams.worker.faust_adapter.rocksdb import is_rocksdb_url

log = logging.getLogger(__name__)

SESSION_TIMEOUT_S = 10.0


def create_app(settings: Settings, bootstrap: str, **overrides: Any) -> faust.App:
    """The Faust app with the worker's settings; nothing registered on it yet (see ``agents``)."""
    partitions = settings.topic_partitions
    app = faust.App(
        settings.consumer_group,
        broker=[f"kafka://{host.strip()}" for host in bootstrap.split(",")],
        broker_credentials=settings.kafka_security.faust_credentials(),
        # Changelog topics are named with ENGAGE_TOPIC_PREFIX first, like every topic of the application.
        Table=prefixed_table(settings.topic_prefix),
        # Faust's leader-election topic (`<app id>-__assignor-__leader`, unprefixed) serves only leader-only
        # timers, which the worker has none of: without it, every topic the worker uses is one of ours.
        topic_disable_leader=True,
        store=settings.state_store,
        datadir=str(settings.data_dir / "faust"),
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=partitions,
        topic_replication_factor=max(topics.replication(settings), 1),  # streams.topics creates them first
        producer_acks=-1,
        # Faust's defaults (60 s) make a group join on Tansu several times slower (README: Tansu quirks).
        broker_session_timeout=SESSION_TIMEOUT_S,
        broker_rebalance_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_commit_interval=settings.commit_interval_ms / 1000,
        # Bound what sits in memory while the sink is paused: ~200 envelopes per partition.
        stream_buffer_maxsize=200,
        # On shutdown Faust would wait for every delivered message to be acknowledged; ours are
        # acknowledged only by a flush, so it would wait forever and be killed unflushed. The
        # shutdown hook below flushes instead, and anything unflushed is replayed exactly.
        stream_wait_empty=False,
        # Changelog and outputs go out as record batches (faust_adapter.outputs): let them be large.
        producer_max_batch_size=512 * 1024,
        # Compressed, as the ingest's (streams.ingest.publisher): the embedded broker keeps it all.
        producer_compression_type="zstd",
        # Fetch up to 4 MiB per partition (Faust's default 1 MiB): the agent works through a take batch
        # without yielding, so what was prefetched meanwhile is all it has next; with 1 MiB it waited for
        # data between batches (README, Performance: 8 MiB was no better). Bounded: 4 MiB × the partitions
        # this worker is assigned.
        consumer_max_fetch_size=4 * 1024 * 1024,
        producer_max_request_size=4 * 1024 * 1024,
        **overrides,
    )
    return app


def start_from_changelog(app: faust.App, settings: Settings) -> None:
    """A RocksDB table starts from its changelog, never from what an earlier process left on disk.

    A flush writes the local database before Kafka acknowledges the changelog records (as it writes
    the memory store's dict). A process killed in between leaves the disk ahead of the changelog; a
    restart trusting the disk would find those followers stamped with the interrupted interval, skip
    re-applying its events (see :meth:`PartitionEngine.restore`) and never send their states to the
    changelog, so the partition's next owner on another disk would miss them. Kafka Streams wipes a
    store after an unclean shutdown for the same reason. The price is a full changelog read at each
    start, as with the memory store (read fast by :mod:`~streams.worker.faust_adapter.fast_recovery`).
    """
    if is_rocksdb_url(settings.state_store):
        tables = app.conf.tabledir
        if tables.exists():
            log.info("RocksDB tables are rebuilt from their changelogs: removing %s", tables)
            shutil.rmtree(tables)


async def commit_acknowledged(app: faust.App) -> None:
    """Commit every acknowledged offset now.

    Faust lets one commit run at a time: a call made while its timer's commit is in flight waits for
    that one and returns without committing, and that one may have read the acknowledgements before
    ours. The second call commits whatever is still pending (nothing, if the first one had it).
    """
    consumer = app.consumer
    if not await consumer.commit():
        await consumer.commit()


def shorten_fetch_wait(consumer: Any, max_wait_ms: int) -> None:
    """Have Faust build its aiokafka consumer with ``fetch_max_wait_ms=max_wait_ms`` (it hard-codes 1500).

    ``max_wait_ms`` is ``ENGAGE_FETCH_MAX_WAIT``. aiokafka sends one fetch at a time per broker, for the
    partitions that have nothing buffered. When those have reached the end of their log, the broker holds
    the fetch for the whole wait, and the partitions that do have data, whose buffers were consumed
    meanwhile, wait behind it: with 1.5 s the agent sat idle for up to a second at a time near the end of
    a backlog. The embedded Tansu broker also holds a fetch that found data (Kafka answers at once): for
    the whole wait under 250 ms, for about half of it otherwise, so with 1.5 s a live message could wait
    much of that for its consumer (figures in the README: Tansu quirk handled).
    The price is a fetch every ``max_wait_ms``; on the embedded broker each one that finds data lists
    every record batch the partition has ever stored, which is why the demo, left running for long, sets
    a longer wait (``streams.commands.demo``).
    """
    thread = consumer._thread  # Faust's AIOKafkaConsumerThread; no public hook for consumer settings
    create = thread._create_worker_consumer

    def create_worker_consumer(transport: Any) -> Any:
        client = create(transport)
        client._fetch_max_wait_ms = max_wait_ms  # read by AIOKafkaConsumer.start() for its Fetcher
        return client

    thread._create_worker_consumer = create_worker_consumer
