"""The worker's Faust agents, timers and rebalance signals: thin wiring around the Faust-free stages.

Why ``noack_take`` and explicit acks: Faust's ``take()`` acknowledges a batch in a ``finally`` as soon
as the loop body returns, so offsets could be committed before the ClickHouse write. With ``noack_take``
a message is acknowledged only by step 4 of the flush that covers it (:mod:`streams.worker.flush`).
A crash in between replays, and the replay is exact.

Messages are batch envelopes (a JSON array of events of one partition), so Faust's per-message overhead
is paid once per few hundred events.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.types import TP

from streams.settings import Settings
from streams.worker.faust_adapter.app import commit_acknowledged
from streams.worker.faust_adapter.lag import update_lag
from streams.worker.faust_adapter.outputs import FaustOutputs
from streams.worker.faust_adapter.rebalance import current_generation
from streams.worker.faust_adapter.rocksdb import partition_store
from streams.worker.stage import TABLE_NAME, EngagementStage, Message

log = logging.getLogger(__name__)

#: Envelopes per ``noack_take`` batch of the engagement agent.
TAKE_MAX = 200


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
