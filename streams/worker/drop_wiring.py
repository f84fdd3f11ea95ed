"""The Faust wiring of drop detection: the ``drop-state`` table, the ``drops`` agent on
``engagement.account-hours`` and :class:`FaustAlertPort`. Thin: the stage it drives, the order of its
writes, acknowledgements and commits, and why a replay is harmless are :mod:`streams.worker.drops.stage`;
drop detection as a whole is :mod:`streams.worker.drops`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from streams.errors import WriteFenced
from streams.settings import Settings
from streams.worker.changelog import Record
from streams.worker.drops.stage import DropStage, StageHost
from streams.worker.faust_adapter.outputs import send_records
from streams.worker.faust_adapter.rebalance import current_generation
from streams.worker.faust_adapter.rocksdb import partition_store

if TYPE_CHECKING:
    import faust

log = logging.getLogger(__name__)

TABLE_NAME = "drop-state"


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


def register_stage2(app: faust.App, settings: Settings, runtime: StageHost) -> DropStage:
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
    stage = DropStage.from_settings(settings, runtime.metrics, runtime.writer, table, port, partition_store)
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
        # As in stage 1 (streams.worker.faust_adapter.agents): a batch in progress finishes its writes
        # before the partitions go, and an alert insert waiting for ClickHouse gives up at once.
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
