"""The Faust app: topics, the state table, one agent and one timer. Thin wiring only.

Drop detection (stage 2: the ``drops`` agent and its ``drop-state`` table on
``engagement.account-hours``) is added by :func:`streams.worker.drop_wiring.register_stage2`.

Why ``noack_take`` and explicit acks: Faust's ``take()`` acknowledges a batch in a ``finally`` as soon
as the loop body returns, so offsets could be committed before the ClickHouse write. With
``noack_take`` the runner acknowledges a message only after the flush that covers it completed
(intent → sink → flags → state → ack, see :mod:`streams.worker.meta`), and the flush then commits the
acknowledged offsets itself. A crash in between replays, and the replay is exact.

Messages are batch envelopes (a JSON array of events of one partition), so Faust's per-message
overhead (measured ~14k messages/s here) is paid once per few hundred events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import TP

from streams import topics
from streams.engagement import PartitionEngine, Rule
from streams.errors import WriteFenced
from streams.metrics import Metrics
from streams.partitioning import partition_for
from streams.settings import Settings
from streams.sinks.backoff import Backoff
from streams.sinks.base import Sink
from streams.worker import fast_recovery, group_lease, highwater, recovery_gate
from streams.worker.bulk import ChangelogBuffer, Record, send_records
from streams.worker.changelog_names import prefixed_table
from streams.worker.dedup_log import DEDUP_PREFIX
from streams.worker.drop_wiring import register_stage2
from streams.worker.lease import Lease
from streams.worker.rebalance import current_generation
from streams.worker.runner import PartitionRunner
from streams.worker.sink_retry import SinkWriter
from streams.worker.state import PartitionView, is_rocksdb_url

log = logging.getLogger(__name__)

TABLE_NAME = "engagement-state"
SESSION_TIMEOUT_S = 10.0
# The write lease ends well before the coordinator could have evicted this worker (streams.worker.lease).
LEASE_FRACTION = 0.7
# The longest a fetch waits for data that is not there yet (Faust's own setting is 1500 ms).
FETCH_MAX_WAIT_MS = 100


class FaustOutputs:
    """:class:`~streams.worker.runner.OutputPort` over Faust's aiokafka producer, in record batches.

    Flags are keyed (and partitioned) by account, per-account partials by account, dead letters stay on
    their source partition, heartbeats go to every partition.
    """

    def __init__(
        self, app: faust.App, settings: Settings, changelog_topic: str, changelog: ChangelogBuffer
    ) -> None:
        self._app = app
        self._topics = settings.topics
        self._partitions = settings.topic_partitions
        self._changelog_topic = changelog_topic
        self._changelog = changelog

    def _producer(self) -> Any:
        # The aiokafka producer under Faust's (no public accessor): batches need its create_batch().
        return self._app.producer._ensure_producer()  # type: ignore[attr-defined]

    def _keyed(self, records: list[tuple[bytes, bytes]]) -> list[Record]:
        return [(partition_for(key, self._partitions), key, value) for key, value in records]

    async def send_flags(self, records: list[tuple[bytes, bytes]]) -> None:
        await send_records(self._producer(), self._topics.flags, self._keyed(records))

    async def send_dlq(self, records: list[bytes], partition: int = 0) -> None:
        await send_records(self._producer(), self._topics.dlq, [(partition, None, r) for r in records])

    async def send_account_hours(self, records: list[tuple[bytes, bytes]], heartbeat: bytes | None) -> None:
        out = self._keyed(records)
        if heartbeat is not None:
            out += [(p, None, heartbeat) for p in range(self._partitions)]
        await send_records(self._producer(), self._topics.account_hours, out)

    async def sync_state(self, partition: int) -> None:
        await send_records(self._producer(), self._changelog_topic, self._changelog.take(partition))


@dataclass
class WorkerRuntime:
    """The mutable part of a worker: one runner per stream partition it currently owns."""

    settings: Settings
    metrics: Metrics
    sink: Sink
    table: Any = None
    outputs: Any = None
    changelog: ChangelogBuffer = field(default_factory=ChangelogBuffer)
    runners: dict[int, PartitionRunner] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_flush: float = field(default_factory=time.monotonic)
    lease: Lease = field(default_factory=Lease)
    writer: SinkWriter = field(init=False)
    commit_offsets: Callable[[], Awaitable[object]] | None = None
    # Asks the group for a new generation: after a flush abandoned because the lease lapsed, so the
    # partitions' positions go back to their committed offsets (set by the Faust wiring).
    request_rejoin: Callable[[], None] = lambda: None
    lag_series: set[tuple[str, str]] = field(default_factory=set)  # (topic, partition) on the lag gauge

    def __post_init__(self) -> None:
        self.writer = SinkWriter(self.sink, Backoff.from_settings(self.settings), self.metrics, self.lease)
        self.rule = Rule.from_settings(self.settings)

    def view(self, partition: int) -> MutableMapping[str, bytes]:
        return PartitionView(self.table.data, partition, self.settings.topic_partitions, self.changelog)

    def runner_for(self, partition: int) -> PartitionRunner:
        runner = self.runners.get(partition)
        if runner is None:
            view = PartitionView(self.table.data, partition, self.settings.topic_partitions, self.changelog)
            engine = PartitionEngine(self.rule, view, write_store=False, auto_watermark=False)
            runner = PartitionRunner.recover(
                partition,
                self.settings.topic_partitions,
                engine,
                view,
                self.settings.consumer_group,
                self.metrics,
                self.settings.allowed_lateness_ms,
                view.internal(DEDUP_PREFIX),
            )
            engine.restore()
            self.runners[partition] = runner
            log.info("recovered %s", runner.describe(), extra={"partition": partition})
        return runner

    def feed(self, events: list[Any], highwater: Callable[[TP], int | None]) -> None:
        """Hand a batch of Faust events to their partitions' runners, with fresh high-water marks."""
        touched: set[int] = set()
        for event in events:
            message = event.message
            runner = self.runner_for(message.partition)
            if message.partition not in touched:
                touched.add(message.partition)
                for topic in self.settings.topics.interactions:
                    runner.note_highwater(topic, highwater(TP(topic, message.partition)))
            runner.feed(message.topic, message.offset, event.value, event)

    def refresh_watermarks(self, highwater: Callable[[TP], int | None]) -> None:
        """Fresh high-waters for every owned partition, and watermarks re-derived from them."""
        for partition, runner in self.runners.items():
            for topic in self.settings.topics.interactions:
                runner.note_highwater(topic, highwater(TP(topic, partition)))
            runner.refresh_watermark()

    async def maybe_flush(self, *, force: bool = False, commit: bool = True) -> None:
        """Flush the partitions that are due, acknowledge what they covered, then commit it.

        The commit follows the acknowledgements at once (``commit_offsets``) instead of waiting for
        Faust's own commit timer, up to one interval later: a crash replays less, and "committed" is
        known when the flush returns. ``commit=False`` at shutdown, where the consumer is stopped.
        """
        due = force or time.monotonic() - self.last_flush >= self.settings.commit_interval_ms / 1000
        ready = [r for r in self.runners.values() if r.may_flush and (due or r.replay_ready)]
        # Partitions flush concurrently: each waits for Kafka acks of its own records only (its own
        # changelog partition, see ChangelogBuffer), so their round trips overlap instead of adding
        # up; the CPU parts still run one at a time on this loop, and the sink serialises its inserts.
        results = await asyncio.gather(
            *(runner.flush(self.view(runner.partition), self.outputs, self.writer) for runner in ready),
            return_exceptions=True,
        )
        acked = 0
        abandoned: set[int] = set()
        for runner, handles in zip(ready, results, strict=True):
            if isinstance(handles, WriteFenced):
                abandoned.add(runner.partition)
                log.warning(
                    "partition %d: flush abandoned, nothing acknowledged: %s", runner.partition, handles
                )
                continue
            if isinstance(handles, BaseException):
                raise handles
            for handle in handles:
                handle.ack()
            acked += len(handles)
        if acked and commit and self.commit_offsets is not None:
            await self.commit_offsets()
        if abandoned:
            # Unacknowledged and with their runners gone, these partitions must be read again from their
            # committed offsets: a revocation does that; after a lapsed lease, a new generation does.
            self.forget(abandoned)
            for partition in abandoned:
                self.changelog.take(partition)  # nothing of theirs may go out later
            if not self.lease.revoking:
                self.request_rejoin()
        if due:
            self.last_flush = time.monotonic()
            self.metrics.commits.inc()
            self.metrics.last_commit.set_to_current_time()
            self.metrics.tracked_pairs.set(sum(r.engine.tracked_pairs for r in self.runners.values()))
            self.metrics.engaged_followers.set(sum(r.engine.engaged_pairs for r in self.runners.values()))

    def adopt(self, partitions: set[int]) -> None:
        """Start a runner for every stream partition assigned to this worker, once its table is recovered.

        Without this a runner started at its partition's first message, and a partition with nothing
        new after a restart or a rebalance had none: its watermark was never re-derived, so the lapses
        and transitions that only wait for event time to pass (everything a quiet partition still owes)
        were never drained.
        """
        for partition in partitions:
            self.runner_for(partition)

    def forget(self, partitions: set[int]) -> None:
        """Drop runners of revoked partitions: their unacknowledged work is replayed by the new owner.

        Their watermark series go too: a gauge left behind would keep reporting a partition that
        another worker now owns (a partition kept in the new assignment is reported again at its next
        flush).
        """
        for partition in partitions:
            if self.runners.pop(partition, None) is not None:
                _remove_series(self.metrics.watermark, str(partition))


def create_app(settings: Settings, bootstrap: str, runtime: WorkerRuntime, **overrides: Any) -> faust.App:
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
        # Faust's defaults (60 s) make a group join take ~30 s on Tansu; 10 s measured ~5 s.
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
        # Changelog and outputs go out as record batches (streams.worker.bulk): let them be large.
        producer_max_batch_size=512 * 1024,
        # Compressed, as the ingest's (streams.ingest.publisher): the embedded broker keeps it all.
        producer_compression_type="zstd",
        # Fetch up to 4 MiB per partition (Faust's default 1 MiB): the agent works through a take batch
        # without yielding, so what was prefetched meanwhile is all it has next; with 1 MiB it waited for
        # data between batches. 1M bench events, same session: 56.6k/47.4k → 64.3k/64.9k events/s
        # (8 MiB: 64.4k/59.9k, no better). Bounded: 4 MiB × the partitions this worker is assigned.
        consumer_max_fetch_size=4 * 1024 * 1024,
        producer_max_request_size=4 * 1024 * 1024,
        **overrides,
    )
    _start_from_changelog(app, settings)
    runtime.lease.limit_s = SESSION_TIMEOUT_S * LEASE_FRACTION
    group_lease.install(app, runtime.lease)
    runtime.request_rejoin = lambda: group_lease.request_rejoin(app)
    highwater.install(app.consumer, bootstrap, settings.kafka_security)
    _shorten_fetch_wait(app.consumer, FETCH_MAX_WAIT_MS)
    fast_recovery.install(
        app, bootstrap, settings.kafka_security
    )  # changelogs read by a plain consumer, not record by record
    recovery_gate.install(app)  # a backlog delivered while Faust finishes recovery is not dropped
    source = app.topic(*settings.topics.interactions, key_type=bytes, value_type=bytes)
    table = app.Table(
        TABLE_NAME, partitions=partitions, use_partitioner=True, key_type=bytes, value_type=bytes
    )
    runtime.table = table
    runtime.commit_offsets = lambda: _commit_acknowledged(app)
    runtime.outputs = FaustOutputs(app, settings, table.changelog_topic.get_topic_name(), runtime.changelog)
    register_stage2(app, settings, runtime)  # drop detection on engagement.account-hours
    interval = settings.commit_interval_ms / 1000

    @app.agent(source, name="engagement", concurrency=1)
    async def engagement(stream: Any) -> None:
        async for events in stream.noack_take(200, within=min(interval, 0.2)):
            async with runtime.lock:
                runtime.feed(current_generation(app, events), app.consumer.highwater)
                await runtime.maybe_flush()

    @app.timer(interval)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        async with runtime.lock:
            runtime.refresh_watermarks(app.consumer.highwater)
            await runtime.maybe_flush(force=True)
            runtime.lag_series = _update_lag(app, runtime.metrics, runtime.lag_series)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # mode types the sender param as positional-only
    async def flush_on_shutdown(app_: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        # The consumer has stopped, so these acks are not committed: the next start skips the
        # flushed offsets by the progress record instead. What matters here is the sink write.
        async with runtime.lock:
            await runtime.maybe_flush(force=True, commit=False)
            for runner in runtime.runners.values():
                log.info("stopping: %s", runner.describe(), extra={"partition": runner.partition})

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(app_: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        revoked: set[Any] = args[0] if args else kwargs.get("revoked", set())
        # The lock waits for a flush in progress (Faust does not, with stream_wait_empty off): the
        # group goes on only after this returns, and a flush finishing later would write the changelog
        # of a partition whose new owner may already have recovered it. The lease makes that wait
        # short: a flush retrying a ClickHouse insert gives up at once, unacknowledged, instead of
        # holding the rebalance until ClickHouse is back. (A commit during the rebalance fails at once,
        # and Faust logs it.)
        runtime.lease.revoking = True  # until the group assigns partitions again (on_recovered)
        async with runtime.lock:
            runtime.forget({tp.partition for tp in revoked if tp.topic in settings.topics.interactions})

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def on_recovered(app_: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        # Sent once the assigned partitions' tables are recovered, before their streams resume.
        assigned = app.assignor.assigned_actives()
        runtime.lease.readmitted()
        async with runtime.lock:
            runtime.adopt({tp.partition for tp in assigned if tp.topic in settings.topics.interactions})

    return app


def _start_from_changelog(app: faust.App, settings: Settings) -> None:
    """A RocksDB table starts from its changelog, never from what an earlier process left on disk.

    A flush writes the local database before Kafka acknowledges the changelog records (as it writes
    the memory store's dict). A process killed in between leaves the disk ahead of the changelog; a
    restart trusting the disk would find those followers stamped with the interrupted interval, skip
    re-applying its events (see :meth:`PartitionEngine.restore`) and never send their states to the
    changelog, so the partition's next owner on another disk would miss them. Kafka Streams wipes a
    store after an unclean shutdown for the same reason. The price is a full changelog read at each
    start, as with the memory store (streams.worker.fast_recovery: 250k records in ~1 s here).
    """
    if is_rocksdb_url(settings.state_store):
        tables = app.conf.tabledir
        if tables.exists():
            log.info("RocksDB tables are rebuilt from their changelogs: removing %s", tables)
            shutil.rmtree(tables)


async def _commit_acknowledged(app: faust.App) -> None:
    """Commit every acknowledged offset now.

    Faust lets one commit run at a time: a call made while its timer's commit is in flight waits for
    that one and returns without committing, and that one may have read the acknowledgements before
    ours. The second call commits whatever is still pending (nothing, if the first one had it).
    """
    consumer = app.consumer
    if not await consumer.commit():
        await consumer.commit()


def _shorten_fetch_wait(consumer: Any, max_wait_ms: int) -> None:
    """Have Faust build its aiokafka consumer with ``fetch_max_wait_ms=max_wait_ms`` (it hard-codes 1500).

    aiokafka sends one fetch at a time per broker, for the partitions that have nothing buffered. When
    those have reached the end of their log, the broker holds the fetch for the whole wait, and the
    partitions that do have data, whose buffers were consumed meanwhile, wait behind it: with 1.5 s the
    agent sat idle for up to a second at a time near the end of a backlog (getmany calls measured
    returning nothing after 1.0-1.5 s while other partitions still had data). The embedded Tansu broker
    also holds a parked fetch when new data arrives (Kafka answers at once): a message produced 0.3 s
    into a 1.5 s wait reached an aiokafka consumer 0.45 s after its producer's ack, 4 ms with 100 ms.
    The price is an idle consumer's empty fetch every ``max_wait_ms``.
    """
    thread = consumer._thread  # Faust's AIOKafkaConsumerThread; no public hook for consumer settings
    create = thread._create_worker_consumer

    def create_worker_consumer(transport: Any) -> Any:
        client = create(transport)
        client._fetch_max_wait_ms = max_wait_ms  # read by AIOKafkaConsumer.start() for its Fetcher
        return client

    thread._create_worker_consumer = create_worker_consumer


def _update_lag(app: faust.App, metrics: Metrics, reported: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Lag = high-water mark from fetch replies − committed offset; returns the series now reported.

    Tansu's ListOffsets answer is lower than the truth, so ``end_offsets`` is never used here.
    ``_committed_offset`` is Faust's own record of what it committed (no public accessor exists).
    A changelog partition has no committed offset (nothing consumes it but recovery), so its series is
    Faust's count of records left to apply while it recovers, and there is none once it is recovered: a
    value kept from recovery time stayed forever with nothing left to read (issue 17).
    The series of a topic-partition this worker no longer owns (``reported`` last time) is removed:
    its last value would otherwise stay, e.g. a stale 0 while the new owner works through a backlog.
    """
    consumer = app.consumer
    committed_offsets = getattr(consumer, "_committed_offset", {})
    tables: Any = app.tables  # TableManagerT does not declare the ``recovery`` the TableManager has
    changelogs = tables.changelog_topics
    recovery = tables.recovery
    recovering = recovery.active_remaining() if recovery.in_recovery else {}
    now: set[tuple[str, str]] = set()
    for tp in consumer.assignment():
        if tp.topic in changelogs:
            if tp not in recovering:
                continue
            lag = recovering[tp]
        else:
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            lag = highwater - (committed_offsets.get(tp) or 0)
        labels = (tp.topic, str(tp.partition))
        metrics.consumer_lag.labels(*labels).set(max(0, lag))
        now.add(labels)
    for labels in reported - now:
        _remove_series(metrics.consumer_lag, *labels)
    return now


def _remove_series(metric: Any, *labels: str) -> None:
    """Remove one labelled series; one never set is fine (older prometheus-client releases raise KeyError)."""
    with contextlib.suppress(KeyError):
        metric.remove(*labels)
