"""Stage 2 in the worker: the ``drops`` agent on ``engagement.account-hours``. Thin wiring.

Per message: decode → :class:`~streams.worker.stage2.AccountHoursProcessor` (pure, against a
:class:`~streams.worker.staged.StagedStore` over the ``drop-state`` table) → outputs → state → ack.
The outputs of each alert are ``engagement.alerts`` (key: account id; awaited until Kafka
acknowledged), the ``engagement_alerts`` ClickHouse table (token ``alerts/<alert_id>``, retried with
the sink's backoff while ClickHouse is unavailable), the ``engage_drop_alerts_*`` metrics and,
when ``ENGAGE_ALERTMANAGER_URL`` is set, Alertmanager (after every closed hour the open alerts are
re-posted too, see :mod:`streams.alerting`).

**Why a replay is harmless.** Only after a message's outputs are delivered are its staged writes put
into the table (accounts first, the partition's meta last, all on that partition's changelog, so
what survives a crash is a prefix of the writes in order). As stage 1 does (:mod:`streams.worker.changelog`),
the writes go to the table's local store and to a :class:`~streams.worker.changelog.ChangelogBuffer`, not
through Faust's per-key changelog send. The agent takes messages in small batches without
acknowledging them (``noack_take``), sends the batch's changelog records as record batches and awaits
their delivery (:meth:`DropStage.sync`), and only then acknowledges the batch, so Faust never commits
an offset whose state is not durable. So:

- a crash before the table writes replays the message against the old state: the same alerts are
  computed again, with the same ``alert_id`` (a hash of account, kind, opening hour and state): the
  topic carries a duplicate its consumers recognise by ``alert_id``, ClickHouse drops the insert by
  its token (and ``ReplacingMergeTree`` by ``alert_id``), Alertmanager merges equal label sets;
- a crash after them replays a message whose effects are in the table: partials are ignored by
  their ``(epoch, seq)``, a heartbeat's watermark is a maximum and its hours are already closed;
- a crash half-way through the writes leaves some accounts with the hour folded in (their detector
  state and pending hours are one value, so consistently) and the meta saying it is not closed: the
  replay closes it again, and the detector ignores an hour at or before an account's last hour.

Messages are processed one at a time (one record per account and flush, one heartbeat per source
partition and flush: a small stream compared with the events); only the changelog flush is batched,
as it is a broker round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from streams.alerting import AlertmanagerClient, AlertPoster
from streams.engagement.drops import RESOLVED, DropRule
from streams.engagement.model import HOUR_MS, Alert, stable_id
from streams.engagement.records import alert_to_json
from streams.errors import AlertmanagerRejected, AlertmanagerUnavailable, WriteFenced
from streams.metrics import Metrics
from streams.settings import Settings
from streams.sinks.base import SinkBatch
from streams.worker.changelog import ChangelogBuffer, Record
from streams.worker.faust_adapter.outputs import send_records
from streams.worker.faust_adapter.rebalance import current_generation
from streams.worker.faust_adapter.rocksdb import partition_store
from streams.worker.partition_view import PartitionView
from streams.worker.sink_retry import SinkWriter
from streams.worker.stage2 import AccountHoursProcessor, Handled
from streams.worker.staged import StagedStore

if TYPE_CHECKING:
    import faust

    from streams.worker.stage import EngagementStage as WorkerRuntime

log = logging.getLogger(__name__)

TABLE_NAME = "drop-state"


class AlertPort(Protocol):
    """Where alerts go on Kafka; each call returns once Kafka acknowledged."""

    async def send_alerts(self, records: list[tuple[bytes, bytes]]) -> None: ...

    async def sync_state(self, records: list[Record]) -> None:
        """Send the state table's changelog records (``(partition, key, value)``, in write order) and
        wait until they are durable."""
        ...


class FaustAlertPort:
    def __init__(self, app: faust.App, topic: str, changelog_topic: str) -> None:
        self._app = app
        self._topic = topic
        self._changelog_topic = changelog_topic

    async def send_alerts(self, records: list[tuple[bytes, bytes]]) -> None:
        producer = self._app.producer
        futures = [await producer.send(self._topic, key, value, None, None, None) for key, value in records]
        await asyncio.gather(*futures)

    async def sync_state(self, records: list[Record]) -> None:
        # the aiokafka producer under Faust's, as FaustOutputs uses it (no public accessor)
        producer = self._app.producer._ensure_producer()  # type: ignore[attr-defined]
        await send_records(producer, self._changelog_topic, records)


@dataclass
class DropStage:
    """Everything the ``drops`` agent needs, Faust-free: tests drive :meth:`process` directly."""

    rule: DropRule
    partitions: int
    table: MutableMapping[bytes, bytes]
    outputs: AlertPort
    writer: SinkWriter
    metrics: Metrics
    poster: AlertPoster | None = None
    processors: dict[int, tuple[AccountHoursProcessor, StagedStore]] = field(default_factory=dict)
    changelog: ChangelogBuffer = field(default_factory=ChangelogBuffer)  # table writes not yet sent
    open_counts: dict[int, int] = field(default_factory=dict)  # per partition, for the gauge

    @classmethod
    def from_settings(
        cls, settings: Settings, metrics: Metrics, writer: SinkWriter, table: Any, outputs: AlertPort
    ) -> DropStage:
        poster = AlertmanagerClient(settings.alertmanager_url) if settings.alertmanager_url else None
        return cls(
            DropRule.from_settings(settings),
            settings.topic_partitions,
            table,
            outputs,
            writer,
            metrics,
            poster,
        )

    def abandon(self) -> None:
        """After the lease lapsed: nothing buffered may go out, processors are rebuilt from the table."""
        self.changelog.take()
        self.processors.clear()

    def processor_for(self, partition: int) -> tuple[AccountHoursProcessor, StagedStore]:
        found = self.processors.get(partition)
        if found is None:
            staged = StagedStore(
                PartitionView(
                    partition_store(self.table, partition), partition, self.partitions, self.changelog
                )
            )
            processor = AccountHoursProcessor(self.rule, staged, partition, self.partitions)
            found = self.processors[partition] = (processor, staged)
            meta = processor.meta()
            if meta.closed_through is not None:
                self.metrics.drop_hour_closed.labels(str(partition)).set(
                    (meta.closed_through + HOUR_MS) / 1000
                )
            self._count_open(partition, processor)
            log.info(
                "account-hours partition %d: hours closed through %s, waiting for sources %s",
                partition,
                meta.closed_through,
                processor.waiting_for(),
            )
        return found

    def assigned(self, partitions: set[int]) -> None:
        """Partitions now owned, their table recovered: report their open alerts and closed hours now.

        Not at their first message: while the whole stream is idle none comes, and the gauge would say
        no alert is open.
        """
        for partition in partitions:
            self.processor_for(partition)

    def forget(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.processors.pop(partition, None)
            self.open_counts.pop(partition, None)
            # a worker reports only the partitions it owns (as stage 1's watermark gauge)
            with contextlib.suppress(KeyError):  # never set; older prometheus-client releases raise
                self.metrics.drop_hour_closed.remove(str(partition))
        self.metrics.open_drop_alerts.set(sum(self.open_counts.values()))

    async def process(self, partition: int, value: bytes) -> Handled | None:
        """Handle one message of ``partition``: outputs delivered, then its state put in the table.

        The state is not durable yet: :meth:`sync` before acknowledging the message.
        """
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError:
            log.error("account-hours partition %d: undecodable record skipped: %r", partition, value[:200])
            return None
        processor, staged = self.processor_for(partition)
        try:
            handled = processor.handle(record)
            await self._deliver(processor, handled)
        except BaseException:
            staged.discard()
            processor.reset()  # its cache may hold what was just discarded
            raise
        if staged.staged:
            staged.commit(last=processor.meta_key)
        return handled

    @property
    def unsynced(self) -> bool:
        """Whether table writes are waiting for :meth:`sync`."""
        return bool(self.changelog)

    async def sync(self) -> None:
        """Wait until every table write of the messages processed so far is durable."""
        records = self.changelog.take()
        if records:
            try:
                await self.outputs.sync_state(records)
            except BaseException:
                self.changelog.put_back(records)  # not durable: kept for the next sync
                raise
            self.metrics.changelog_writes.inc(len(records))

    async def _deliver(self, processor: AccountHoursProcessor, handled: Handled) -> None:
        alerts = handled.alerts
        if alerts:
            await self.outputs.send_alerts([(a.account_id.encode(), alert_to_json(a)) for a in alerts])
            await self._write_sink(alerts)
            for alert in alerts:
                self.metrics.drop_alerts.labels(alert.state, alert.kind).inc()
        if handled.late:
            self.metrics.drop_late_partials.inc(handled.late)
        if handled.closed_hours:
            closed_through = processor.meta().closed_through
            if closed_through is not None:
                self.metrics.drop_hour_closed.labels(str(processor.partition)).set(
                    (closed_through + HOUR_MS) / 1000
                )
            still_open = self._count_open(processor.partition, processor)
            if self.poster is not None:
                await self._post([a for a in alerts if a.state == RESOLVED] + still_open)

    async def _write_sink(self, alerts: list[Alert]) -> None:
        ids = sorted(a.alert_id for a in alerts)
        # One insert per message; the token names its alerts, so a replay of the message (same alerts,
        # see the module docstring) is dropped. Several alerts at once (one hour's silences) share one;
        # a replay after a half-durable crash may re-insert a subset under another token, which the
        # table's ReplacingMergeTree (ORDER BY ... alert_id) collapses.
        token = f"alerts/{ids[0]}" if len(ids) == 1 else f"alerts/{len(ids)}/{stable_id(*ids)[:16]}"
        await self.writer.write(SinkBatch(token, alerts=alerts), "alerts")

    async def _post(self, alerts: list[Alert]) -> None:
        """Best effort: Alertmanager is a convenience beside the topic and ClickHouse, never a reason to
        stop the stream. A failed post is logged; open alerts are re-posted after the next closed hour,
        a lost ``resolved`` lets the alert expire after its TTL (``streams.alerting``)."""
        if not alerts or self.poster is None:
            return
        try:
            await asyncio.to_thread(self.poster.post, alerts)
        except AlertmanagerUnavailable as exc:
            log.warning("Alertmanager unavailable, %d alert(s) not posted: %s", len(alerts), exc)
        except AlertmanagerRejected as exc:
            log.error("Alertmanager rejected %d alert(s): %s", len(alerts), exc)

    def _count_open(self, partition: int, processor: AccountHoursProcessor) -> list[Alert]:
        """The partition's open alerts; the gauge is their number summed over this worker's partitions."""
        still_open = list(processor.detector.open_alerts())
        self.open_counts[partition] = len(still_open)
        self.metrics.open_drop_alerts.set(sum(self.open_counts.values()))
        return still_open


def register_stage2(app: faust.App, settings: Settings, runtime: WorkerRuntime) -> DropStage:
    """Add the ``drop-state`` table and the ``drops`` agent to the worker's Faust app."""
    topic_name = settings.topics.account_hours
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes)
    table = app.Table(
        TABLE_NAME,
        partitions=settings.topic_partitions,
        use_partitioner=True,
        key_type=bytes,
        value_type=bytes,
    )
    port = FaustAlertPort(app, settings.topics.alerts, table.changelog_topic.get_topic_name())
    stage = DropStage.from_settings(settings, runtime.metrics, runtime.writer, table, port)
    busy = asyncio.Lock()

    @app.agent(topic, name="drops", concurrency=1)
    async def drops(stream: Any) -> None:
        # Not the table but its local store (it exists once the app runs): the changelog records are
        # sent by sync() in record batches, not one by one by Faust's table.
        stage.table = table.data
        async for events in stream.noack_take(100, within=0.2):
            async with busy:
                done = []
                try:
                    for event in current_generation(app, events):
                        await stage.process(event.message.partition, event.value)
                        done.append(event)
                except WriteFenced as exc:
                    # The rest stays unacknowledged and is read again from the committed offsets.
                    log.warning("account-hours: batch cut short, rest unacknowledged: %s", exc)
                    if runtime.lease.lapsed:
                        stage.abandon()
                        runtime.request_rejoin()
                        continue
                await stage.sync()
                for event in done:
                    event.ack()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(app_: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        revoked: set[Any] = args[0] if args else kwargs.get("revoked", set())
        # As in stage 1 (streams.worker.app): a batch in progress finishes its writes before the
        # partitions go, and an alert insert waiting for ClickHouse gives up at once.
        runtime.lease.revoking = True
        async with busy:
            stage.forget({tp.partition for tp in revoked if tp.topic == topic_name})

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def on_recovered(app_: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        # Sent once the assigned partitions' tables are recovered, before their streams resume.
        async with busy:
            stage.table = table.data
            stage.assigned({tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic_name})

    return stage
