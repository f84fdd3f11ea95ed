"""Stage 1, the engagement stage: one :class:`~streams.worker.runner.PartitionRunner` per owned partition.

Faust-free. The Faust adapter (:mod:`streams.worker.faust_adapter.agents`) feeds it messages and calls
:meth:`EngagementStage.maybe_flush` from its agent and commit timer, :meth:`adopt` once a rebalance has
recovered the assigned partitions and :meth:`forget` when partitions are revoked; tests drive it directly.
Each flush runs the protocol of :mod:`streams.worker.flush`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from streams.engagement import PartitionEngine, Rule
from streams.errors import WriteFenced
from streams.metrics import Metrics, remove_series
from streams.settings import Settings
from streams.sinks.backoff import Backoff
from streams.sinks.base import Sink
from streams.worker import flush
from streams.worker.changelog import ChangelogBuffer
from streams.worker.dedup_log import DEDUP_PREFIX
from streams.worker.lease import Lease
from streams.worker.partition_view import PartitionView
from streams.worker.runner import PartitionRunner
from streams.worker.sink_retry import SinkWriter

log = logging.getLogger(__name__)

#: The state table of stage 1 (a Faust table; changelog ``<prefix><group>-engagement-state-changelog``).
TABLE_NAME = "engagement-state"

#: A delivered message: ``(topic, partition, offset, value, handle)``; the handle is acknowledged at step 4.
Message = tuple[str, int, int, bytes, Any]
#: The latest fetch high-water mark of ``(topic, partition)``; None when not fetched yet.
Highwater = Callable[[str, int], "int | None"]


@dataclass
class EngagementStage:
    """The mutable part of a worker's stage 1: one runner per stream partition it currently owns."""

    settings: Settings
    metrics: Metrics
    sink: Sink
    #: The state table's local store of one partition (set by the Faust adapter once the table exists).
    partition_store: Callable[[int], MutableMapping[bytes, bytes]] | None = None
    outputs: flush.OutputPort | None = None
    changelog: ChangelogBuffer = field(default_factory=ChangelogBuffer)
    runners: dict[int, PartitionRunner] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_flush: float = field(default_factory=time.monotonic)
    lease: Lease = field(default_factory=Lease)
    writer: SinkWriter = field(init=False)
    commit_offsets: Callable[[], Awaitable[object]] | None = None
    # Asks the group for a new generation: after a flush abandoned because the lease lapsed, so the
    # partitions' positions go back to their committed offsets (set by the Faust adapter).
    request_rejoin: Callable[[], None] = lambda: None

    def __post_init__(self) -> None:
        self.writer = SinkWriter(self.sink, Backoff.from_settings(self.settings), self.metrics, self.lease)
        self.rule = Rule.from_settings(self.settings)

    def view(self, partition: int) -> PartitionView:
        assert self.partition_store is not None, "the Faust adapter sets partition_store"
        return PartitionView(
            self.partition_store(partition), partition, self.settings.topic_partitions, self.changelog
        )

    def runner_for(self, partition: int) -> PartitionRunner:
        runner = self.runners.get(partition)
        if runner is None:
            view = self.view(partition)
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

    def feed(self, messages: Iterable[Message], highwater: Highwater) -> None:
        """Hand delivered messages to their partitions' runners, with fresh high-water marks."""
        touched: set[int] = set()
        for topic, partition, offset, value, handle in messages:
            runner = self.runner_for(partition)
            if partition not in touched:
                touched.add(partition)
                for each in self.settings.topics.interactions:
                    runner.note_highwater(each, highwater(each, partition))
            runner.feed(topic, offset, value, handle)

    def refresh_watermarks(self, highwater: Highwater) -> None:
        """Fresh high-waters for every owned partition, and watermarks re-derived from them."""
        for partition, runner in self.runners.items():
            for topic in self.settings.topics.interactions:
                runner.note_highwater(topic, highwater(topic, partition))
            runner.refresh_watermark()

    async def maybe_flush(self, *, force: bool = False, commit: bool = True) -> None:
        """Flush the partitions that are due (steps 0–3 each), then acknowledge and commit (step 4).

        ``commit=False`` at shutdown, where the consumer is stopped.
        """
        due = force or time.monotonic() - self.last_flush >= self.settings.commit_interval_ms / 1000
        ready = [r for r in self.runners.values() if r.may_flush and (due or r.replay_ready)]
        results = await asyncio.gather(
            *(flush.flush(r, self.view(r.partition), self.outputs, self.writer) for r in ready),  # type: ignore[arg-type]
            return_exceptions=True,
        )
        durable: list[list[Any]] = []
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
            durable.append(handles)
        await flush.acknowledge(durable, self.commit_offsets if commit else None)
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
                remove_series(self.metrics.watermark, str(partition))
