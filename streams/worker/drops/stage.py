"""The drop stage: one ``engagement.account-hours`` message in, its alerts delivered, then its state
put in the ``drop-state`` table. Faust-free: the Faust agent around it is
:func:`streams.worker.faust_adapter.agents.register_drops`, which hands it an :class:`AlertPort` and a
:class:`StageHost`; tests drive :meth:`DropStage.process`.

Per message: decode → :class:`~streams.worker.drops.processor.AccountHoursProcessor` (pure, against a
:class:`~streams.worker.drops.store.StagedStore` over the ``drop-state`` table) → outputs → state → ack.
The outputs of each alert are ``engagement.alerts`` (key: account id; awaited until Kafka
acknowledged), the ``engagement_alerts`` ClickHouse table (token ``alerts/<alert_id>``, retried with
the sink's backoff while ClickHouse is unavailable), the ``engage_drop_alerts_*`` metrics and,
when ``ENGAGE_ALERTMANAGER_URL`` is set, Alertmanager (after every closed hour the open alerts are
re-posted too, see :mod:`streams.alerting`).

**Why a replay is harmless.** Only after a message's outputs are delivered are its staged writes put
into the table (accounts first, the partition's progress record last, all on that partition's changelog, so
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
  state and pending hours are one value, so consistently) and the progress record saying it is not closed: the
  replay closes it again, and the detector ignores an hour at or before an account's last hour.

Messages are processed one at a time (one record per account and flush, one heartbeat per source
partition and flush: a small stream compared with the events); only the changelog flush is batched,
as it is a broker round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from streams.alerting import AlertmanagerClient, AlertPoster
from streams.engagement.drops import RESOLVED, DropRule
from streams.engagement.model import HOUR_MS, Alert, stable_id
from streams.engagement.records import alert_to_json
from streams.errors import AlertmanagerRejected, AlertmanagerUnavailable
from streams.metrics import Metrics
from streams.settings import Settings
from streams.sinks.base import SinkBatch
from streams.worker.changelog import ChangelogBuffer, Record
from streams.worker.drops.processor import AccountHoursProcessor, Handled
from streams.worker.drops.store import StagedStore
from streams.worker.lease import Lease
from streams.worker.partition_view import PartitionView
from streams.worker.sink_retry import SinkWriter

log = logging.getLogger(__name__)

#: The state table of stage 2 (a Faust table; changelog ``<prefix><group>-drop-state-changelog``).
TABLE_NAME = "drop-state"

PartitionStore = Callable[[Any, int], MutableMapping[bytes, bytes]]


def whole_store(table: Any, partition: int) -> MutableMapping[bytes, bytes]:
    """The table's store as it is: one mapping for every partition (a dict, Faust's memory store)."""
    store: MutableMapping[bytes, bytes] = table
    return store


class AlertPort(Protocol):
    """Where alerts go on Kafka; each call returns once Kafka acknowledged."""

    async def send_alerts(self, records: list[tuple[bytes, bytes]]) -> None: ...

    async def sync_state(self, records: list[Record]) -> None:
        """Send the state table's changelog records (``(partition, key, value)``, in write order) and
        wait until they are durable."""
        ...


class StageHost(Protocol):
    """What :func:`~streams.worker.faust_adapter.agents.register_drops` uses of the worker it runs in
    (:class:`streams.worker.stage.EngagementStage`): its metrics, sink writer and write lease, and a way
    to ask the consumer group for a new generation. Declared here so that the wiring imports neither
    stage 1 nor the composition root that registers both stages.
    """

    @property
    def metrics(self) -> Metrics: ...

    @property
    def writer(self) -> SinkWriter: ...

    @property
    def lease(self) -> Lease: ...

    @property
    def request_rejoin(self) -> Callable[[], None]: ...


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
    # The mapping that holds one partition's keys of ``table``; the Faust wiring passes the adapter's
    # (:func:`streams.worker.faust_adapter.rocksdb.partition_store`: one RocksDB database per partition).
    partition_store: PartitionStore = whole_store

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        metrics: Metrics,
        writer: SinkWriter,
        table: Any,
        outputs: AlertPort,
        partition_store: PartitionStore = whole_store,
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
            partition_store=partition_store,
        )

    def abandon(self) -> None:
        """After the lease lapsed: nothing buffered may go out, processors are rebuilt from the table."""
        self.changelog.take()
        self.processors.clear()

    def processor_for(self, partition: int) -> tuple[AccountHoursProcessor, StagedStore]:
        found = self.processors.get(partition)
        if found is None:
            store = self.partition_store(self.table, partition)
            staged = StagedStore(PartitionView(store, partition, self.partitions, self.changelog))
            processor = AccountHoursProcessor(self.rule, staged, partition, self.partitions)
            found = self.processors[partition] = (processor, staged)
            progress = processor.progress()
            if progress.closed_through is not None:
                self.metrics.drop_hour_closed.labels(str(partition)).set(
                    (progress.closed_through + HOUR_MS) / 1000
                )
            self._count_open(partition, processor)
            log.info(
                "account-hours partition %d: hours closed through %s, waiting for sources %s",
                partition,
                progress.closed_through,
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
            staged.commit(last=processor.progress_key)
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
            closed_through = processor.progress().closed_through
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
