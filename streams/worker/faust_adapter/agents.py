"""The worker's Faust agents, timers and rebalance signals: thin wiring around the Faust-free stages
(:func:`register_engagement`: stage 1, :func:`register_drops`: stage 2, drop detection).

Why ``noack_take`` and explicit acks: Faust's ``take()`` acknowledges a batch in a ``finally`` as soon
as the loop body returns, so offsets could be committed before the ClickHouse write. With ``noack_take``
a message is acknowledged only by step 4 of the flush that covers it (:mod:`streams.worker.flush`).
A crash in between replays, and the replay is exact.

Messages are batch envelopes (a JSON array of events of one partition), so Faust's per-message overhead
is paid once per few hundred events.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from faust.types import TP

from streams.errors import WriteFenced
from streams.settings import Settings
from streams.worker.drops.stage import TABLE_NAME as DROPS_TABLE
from streams.worker.drops.stage import DropStage, StageHost
from streams.worker.faust_adapter.app import commit_acknowledged
from streams.worker.faust_adapter.lag import update_lag
from streams.worker.faust_adapter.outputs import FaustAlertPort, FaustOutputs
from streams.worker.faust_adapter.rebalance import current_generation
from streams.worker.faust_adapter.rocksdb import partition_store
from streams.worker.stage import TABLE_NAME, EngagementStage, Message

log = logging.getLogger(__name__)

#: Envelopes per ``noack_take`` batch of the engagement agent.
TAKE_MAX = 200


def _table(app: faust.App, settings: Settings, name: str) -> Any:
    """A state table partitioned like the topics, raw bytes in and out (the stages encode their values)."""
    return app.Table(
        name, partitions=settings.topic_partitions, use_partitioner=True, key_type=bytes, value_type=bytes
    )


def register_engagement(app: faust.App, settings: Settings, stage: EngagementStage) -> None:
    """Add the ``engagement-state`` table, the ``engagement`` agent and its commit timer to ``app``."""
    source = app.topic(*settings.topics.interactions, key_type=bytes, value_type=bytes)
    table = app.Table(
        TABLE_NAME,
        partitions=settings.topic_partitions,
        use_partitioner=True,
        key_type=bytes,
        value_type=bytes,
    )
    stage.partition_store = lambda partition: partition_store(table.data, partition)
    stage.commit_offsets = lambda: commit_acknowledged(app)
    stage.outputs = FaustOutputs(app, settings, table.changelog_topic.get_topic_name(), stage.changelog)
    interactions = settings.topics.interactions
    interval = settings.commit_interval_ms / 1000
    lag_series: set[tuple[str, str]] = set()

    def highwater(topic: str, partition: int) -> int | None:
        return app.consumer.highwater(TP(topic, partition))

    def messages(events: list[Any]) -> list[Message]:
        return [
            (event.message.topic, event.message.partition, event.message.offset, event.value, event)
            for event in current_generation(app, events)
        ]

    @app.agent(source, name="engagement", concurrency=1)
    async def engagement(stream: Any) -> None:
        async for events in stream.noack_take(TAKE_MAX, within=min(interval, 0.2)):
            async with stage.lock:
                stage.feed(messages(events), highwater)
                await stage.maybe_flush()

    @app.timer(interval)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        nonlocal lag_series
        async with stage.lock:
            stage.refresh_watermarks(highwater)
            await stage.maybe_flush(force=True)
            lag_series = update_lag(app, stage.metrics, lag_series)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # mode types the sender param as positional-only
    async def flush_on_shutdown(app_: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        # The consumer has stopped, so these acks are not committed: the next start skips the
        # flushed offsets by the progress record instead. What matters here is the sink write.
        async with stage.lock:
            await stage.maybe_flush(force=True, commit=False)
            for runner in stage.runners.values():
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
        stage.lease.revoking = True  # until the group assigns partitions again (on_recovered)
        async with stage.lock:
            stage.forget({tp.partition for tp in revoked if tp.topic in interactions})

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def on_recovered(app_: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        # Sent once the assigned partitions' tables are recovered, before their streams resume.
        assigned = app.assignor.assigned_actives()
        stage.lease.readmitted()
        async with stage.lock:
            stage.adopt({tp.partition for tp in assigned if tp.topic in interactions})


def register_drops(app: faust.App, settings: Settings, host: StageHost) -> DropStage:
    """Add the ``drop-state`` table and the ``drops`` agent (stage 2, drop detection) to ``app``.

    The stage it drives, the order of its writes, acknowledgements and commits, and why a replay is
    harmless are :mod:`streams.worker.drops.stage`; ``host`` is the worker's stage 1, whose sink writer
    and write lease stage 2 shares.
    """
    topic_name = settings.topics.account_hours
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes)
    table = _table(app, settings, DROPS_TABLE)
    port = FaustAlertPort(app, settings.topics.alerts, table.changelog_topic.get_topic_name())
    stage = DropStage.from_settings(settings, host.metrics, host.writer, table, port, partition_store)
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
                    if host.lease.lapsed:
                        stage.abandon()
                        host.request_rejoin()
                        continue
                await stage.sync()
                for event in done:
                    event.ack()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(app_: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        revoked: set[Any] = args[0] if args else kwargs.get("revoked", set())
        # As in stage 1 (streams.worker.faust_adapter.agents): a batch in progress finishes its writes
        # before the partitions go, and an alert insert waiting for ClickHouse gives up at once.
        host.lease.revoking = True
        async with busy:
            stage.forget({tp.partition for tp in revoked if tp.topic == topic_name})

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def on_recovered(app_: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        # Sent once the assigned partitions' tables are recovered, before their streams resume.
        async with busy:
            stage.table = table.data
            stage.assigned({tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic_name})

    return stage
