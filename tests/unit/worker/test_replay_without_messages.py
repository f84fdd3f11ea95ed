"""An interrupted flush that carried no message (time passing, not traffic) is re-formed all the same.

Found by the chaos harness (schedule seed 1015: two ClickHouse outages and a worker joining). A flush
may have nothing to acknowledge: the commit tick re-derives the watermark and a quiet partition drains
the lapses that time made due. Interrupted after its intent (here: a revocation while ClickHouse was
down), its replay waited for a message to arrive, but every message was already committed; and the next
message that did arrive, being past the interval, was held back until the replay: neither ever came,
the partition stalled for good and its outputs (lapses, the far-future sentinels) never reached
ClickHouse.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from prometheus_client import CollectorRegistry

from streams.engagement import PartitionEngine, Rule
from streams.events import Interaction, encode_batch
from streams.metrics import Metrics
from streams.settings import Settings
from streams.sinks.backoff import Backoff
from streams.sinks.base import MemorySink
from streams.worker.flush import flush
from streams.worker.progress import PartitionProgress, progress_key
from streams.worker.runner import PartitionRunner
from streams.worker.sink_retry import SinkWriter

SETTINGS = Settings.from_env({"ENGAGE_WINDOW": "1d", "ENGAGE_ALLOWED_LATENESS": "0s"})
TOPIC = "interactions.comment"


class _Table(dict[str, bytes]):
    """The state table as the engine sees it through the worker's view: internal keys (progress and
    dedup records, ``\\x00``-prefixed) are not actors."""

    def items(self) -> Any:
        return [(k, v) for k, v in super().items() if not k.startswith("\x00")]


class _Out:
    def __init__(self) -> None:
        self.flags: list[tuple[bytes, bytes]] = []

    async def send_flags(self, records: list[tuple[bytes, bytes]]) -> None:
        self.flags += records

    async def send_dlq(self, records: list[bytes], partition: int = 0) -> None:
        pass

    async def send_account_hours(self, records: list[tuple[bytes, bytes]], heartbeat: bytes | None) -> None:
        pass

    async def sync_state(self, partition: int) -> None:
        pass


def _runner(table: _Table, metrics: Metrics) -> PartitionRunner:
    engine = PartitionEngine(Rule.from_settings(SETTINGS), table, write_store=False, auto_watermark=False)
    runner = PartitionRunner.recover(0, 1, engine, table, "g", metrics)
    engine.restore()
    runner.idle_after_s = 0.0
    return runner


def test_an_interrupted_flush_without_messages_is_re_formed_and_the_partition_goes_on() -> None:
    metrics = Metrics.create(CollectorRegistry())
    sink, out, table = MemorySink(), _Out(), _Table()
    writer = SinkWriter(sink, Backoff(rand=lambda: 0.0), metrics)
    day = 86_400_000
    comments = [
        Interaction(f"c{i}", "comment", "generic", "acc", "fan", "p", "a real conversation", i * 60_000)
        for i in range(3)
    ]

    async def scenario() -> list[Any]:
        first = _runner(table, metrics)
        first.note_highwater(TOPIC, 1)
        first.feed(TOPIC, 0, encode_batch(comments), "m0")
        await flush(first, table, out, writer)  # engaged; everything acknowledged and committed
        # Time passes with no traffic: the tick moves the watermark past the window, and the flush
        # that drains the lapse carries no message. It is interrupted after its intent.
        first.topic_watermark[TOPIC] = 2 * day
        assert first.refresh_watermark() and first.may_flush and not first.has_work
        meta_before = PartitionProgress.decode(table[progress_key(0, 1)])

        class Interrupted(Exception):
            pass

        async def interrupted_write(batch: Any, label: str) -> None:
            raise Interrupted

        writer_write, writer.write = writer.write, interrupted_write  # type: ignore[method-assign]
        with contextlib.suppress(Interrupted):
            await flush(first, table, out, writer)
        writer.write = writer_write  # type: ignore[method-assign]
        assert PartitionProgress.decode(table[progress_key(0, 1)]).pending == meta_before.flushed

        # The partition's next owner: nothing is re-delivered (all committed); then new traffic.
        second = _runner(table, metrics)
        second.note_highwater(TOPIC, 2)
        assert second.replay_target is not None and second.may_flush, "the replay must not wait for traffic"
        await flush(second, table, out, writer)
        later = Interaction("c9", "comment", "generic", "acc", "fan2", "p", "another conversation", 3 * day)
        second.feed(TOPIC, 1, encode_batch([later]), "m1")
        return await flush(second, table, out, writer)

    acknowledged = asyncio.run(scenario())
    assert acknowledged == ["m1"], "the message after the replayed interval is processed, not held back"
    kinds = [t.kind for batch in sink.batches for t in batch.transitions]
    assert kinds == ["engaged", "lapsed"]
