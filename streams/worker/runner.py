"""One stream partition's processing: decode → engagement core → outputs, and its flush protocol.

No Faust here: the runner is fed ``(topic, offset, value, handle)`` tuples and flushes through the
small ports below, so the whole commit protocol (see :mod:`streams.worker.meta`) runs in tests with
in-process twins as well as under Faust.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Final, Protocol

from streams.engagement import LATE, PartitionEngine
from streams.engagement.model import Outputs
from streams.events import Interaction, Rejected, decode_message
from streams.metrics import Metrics
from streams.producer import dlq_record
from streams.sinks.base import SinkBatch
from streams.worker.dedup_log import DedupLog, dedup_key
from streams.worker.drops.hours import account_hour_records
from streams.worker.flags import transition_record
from streams.worker.meta import PartitionMeta, batch_token, meta_key
from streams.worker.sink_retry import SinkWriter

log = logging.getLogger(__name__)
_TYPE: Final = attrgetter("type")
_OCCURRED_AT: Final = attrgetter("occurred_at_ms")


class OutputPort(Protocol):
    """Where a flush sends its Kafka outputs; each call returns once Kafka acknowledged."""

    async def send_flags(self, records: list[tuple[bytes, bytes]]) -> None: ...

    async def send_dlq(self, records: list[bytes], partition: int = 0) -> None: ...

    async def send_account_hours(self, records: list[tuple[bytes, bytes]], heartbeat: bytes | None) -> None:
        """Per-account partials keyed by account; the heartbeat goes to every partition."""
        ...

    async def sync_state(self, partition: int) -> None:
        """Wait until every state-table write of ``partition`` so far is durable in its changelog."""
        ...


@dataclass
class PartitionRunner:
    partition: int
    partitions: int
    engine: PartitionEngine
    meta: PartitionMeta
    group: str
    metrics: Metrics
    lateness_ms: int = 0
    position: dict[str, int] = field(default_factory=dict)
    topic_watermark: dict[str, int] = field(default_factory=dict)
    highwater: dict[str, int | None] = field(default_factory=dict)
    handles: list[Any] = field(default_factory=list)
    dlq: list[tuple[str, bytes]] = field(default_factory=list)  # (reason, record)
    holdback: list[tuple[str, int, bytes, Any]] = field(default_factory=list)
    replay_target: dict[str, int] | None = None
    dedup_log: DedupLog = field(default_factory=DedupLog)
    late_in_interval: int = 0
    watermark_moved: bool = False
    idle_after_s: float = 5.0
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time  # event lag: unix seconds, compared with event time
    caught_up_since: dict[str, float] = field(default_factory=dict)

    @classmethod
    def recover(
        cls,
        partition: int,
        partitions: int,
        engine: PartitionEngine,
        table: MutableMapping[str, bytes],
        group: str,
        metrics: Metrics,
        lateness_ms: int = 0,
        dedup_records: Iterable[tuple[str, bytes]] = (),
    ) -> PartitionRunner:
        """Resume from the progress record and dedup records found in the (recovered) state table."""
        meta = PartitionMeta.decode(table.get(meta_key(partition, partitions)))
        runner = cls(partition, partitions, engine, meta, group, metrics, lateness_ms)
        # Offsets up to `flushed` are done; topics with nothing new are not re-delivered at all, so
        # without this an interrupted interval naming them could never be re-formed.
        runner.position = dict(meta.flushed)
        # Messages up to `flushed` are skipped, so they no longer tell each topic's event time: without
        # these, a topic with no new traffic would hold the watermark where the last flush left it.
        runner.topic_watermark = dict(meta.topic_watermarks)
        if meta.watermark_ms is not None:
            engine.advance_watermark(meta.watermark_ms)
        runner.dedup_log.load(dedup_records, engine.remember_dedup)
        if meta.pending is not None and meta.pending_seq is not None:
            runner.replay_target = dict(meta.pending)
            engine.flush_seq = meta.pending_seq
            log.warning(
                "partition %d: re-forming interrupted flush k=%d %s",
                partition,
                meta.pending_seq,
                meta.pending,
                extra={"partition": partition},
            )
        else:
            engine.flush_seq = meta.flush_seq
        return runner

    # --- processing -------------------------------------------------------------------------------

    def note_highwater(self, topic: str, highwater: int | None) -> None:
        """The topic-partition's high-water mark from the latest fetch reply (None: not fetched yet,
        which holds the watermark back like a topic that is behind)."""
        if highwater is not None or topic not in self.highwater:
            self.highwater[topic] = highwater

    def effective_watermark(self) -> int | None:
        """Min event time over the topics that hold event time back; max when none does.

        A stream partition is four topic-partitions consumed independently. While catching up, a
        topic of small events (likes) moves through event time more slowly than one of large events,
        so a single max-based watermark would declare the slower topic's events late. A topic holds
        the watermark back while it is behind its fetch high-water mark, while that is unknown, and
        until it has stayed caught up for ``idle_after_s`` of wall time: a high-water mark is a
        snapshot, so "caught up" flickers while producers are still writing. Wall time decides only
        when an idle topic stops holding event time back, never what is in a window.
        """
        now = self.clock()
        holding: list[int | None] = []
        for topic, highwater in self.highwater.items():
            behind = highwater is None or self.position.get(topic, -1) + 1 < highwater
            if behind:
                self.caught_up_since.pop(topic, None)
                holding.append(self.topic_watermark.get(topic))
            elif now - self.caught_up_since.setdefault(topic, now) < self.idle_after_s:
                holding.append(self.topic_watermark.get(topic))
        if holding:
            known = [w for w in holding if w is not None]
            return None if len(known) < len(holding) or not known else min(known)
        return max(self.topic_watermark.values()) if self.topic_watermark else None

    def refresh_watermark(self) -> bool:
        """Re-derive the watermark from the current high-waters (called on every commit tick).

        It is otherwise computed only when a message arrives, so a partition whose last message came
        while another topic still looked behind would keep a stale watermark until more traffic
        arrived. Returns True if it moved (the partition then has transitions to flush)."""
        if self.replay_target is not None:
            return False  # a re-formed interval is drained at the watermark it was first drained at
        effective = self.effective_watermark()
        before = self.engine.watermark_ms
        if effective is not None and (before is None or effective > before):
            self.engine.advance_watermark(effective)
            self.watermark_moved = True
            return True
        return False

    def feed(self, topic: str, offset: int, value: bytes, handle: Any) -> None:
        target = self.replay_target
        if target is not None and offset > target.get(topic, -1):
            self.holdback.append((topic, offset, value, handle))
            return
        self.handles.append(handle)
        self.position[topic] = offset
        if offset <= self.meta.flushed.get(topic, -1):
            return  # already in the table and the sink: a replay of a flushed interval
        batch, rejected = decode_message(value)
        for item in rejected:
            self._dead_letter(item.error.reason, str(item.error), item.raw, topic, offset, item)
        if not batch:
            return
        # map + attrgetter + Counter stay in C: a Python loop over the batch cost ~0.3 µs per event.
        by_type = Counter(map(_TYPE, batch))
        times = list(map(_OCCURRED_AT, batch))
        newest = max(self.topic_watermark.get(topic, -1), max(times))
        # One observation per message, of its oldest event: an observe per event costs ~1.5 µs.
        self.metrics.event_lag.observe(max(0.0, self.wall_clock() - min(times) / 1000))
        self.topic_watermark[topic] = newest
        counts = self.engine.process_many(batch)
        # events_consumed counts every valid event read; duplicates and late ones are also counted
        # under their own metrics. Incremented per envelope: a labelled inc per event costs ~1 µs.
        for event_type, count in by_type.items():
            self.metrics.events_consumed.labels(event_type).inc(count)
        if counts.duplicate:
            self.metrics.events_deduplicated.inc(counts.duplicate)
        for late in counts.late:
            self.late_in_interval += 1
            self._dead_letter(
                LATE,
                f"occurred_at {late.occurred_at_ms} is older than the watermark {self.engine.watermark_ms} "
                "minus the allowed lateness",
                _late_original(value, late),
                topic,
                offset,
            )
        # The engine's watermark moves only at a flush (see flush), so every event of an interval is
        # judged late against the previous flush's watermark, which a replay of the interval restores.
        # Derived here all the same: it starts the idle clock of a topic that has just caught up.
        self.effective_watermark()

    def _dead_letter(
        self, reason: str, detail: str, raw: bytes, topic: str, offset: int, rejected: Rejected | None = None
    ) -> None:
        source = {"topic": topic, "partition": self.partition, "offset": offset}
        if rejected is not None and rejected.error.field:
            source["field"] = rejected.error.field
        self.dlq.append((reason, dlq_record(reason, detail, raw, source)))
        self.metrics.events_rejected.labels(reason).inc()

    def describe(self) -> str:
        """One line of where this partition stands (logged at recovery and at shutdown)."""
        engine = self.engine
        return (
            f"partition {self.partition}: watermark {engine.watermark_ms}, final {engine.final_ms}, "
            f"flush {engine.flush_seq}, per topic {self.topic_watermark}, positions {self.position}, "
            f"high-waters {self.highwater}, pairs {engine.tracked_pairs}, replaying {self.replay_target}"
        )

    @property
    def has_work(self) -> bool:
        return bool(self.handles)

    @property
    def replay_ready(self) -> bool:
        target = self.replay_target
        return target is not None and all(self.position.get(t, -1) >= off for t, off in target.items())

    @property
    def may_flush(self) -> bool:
        if self.replay_target is not None:
            # Not "and has_work": the interrupted interval may have carried no message at all (a tick
            # that only moved the watermark), and then none comes back to trigger its replay, while
            # every newer one is held back behind it (tests/unit/worker/test_replay_without_messages).
            return self.replay_ready
        return self.has_work or self.watermark_moved

    # --- flushing ---------------------------------------------------------------------------------

    async def flush(
        self, table: MutableMapping[str, bytes], out: OutputPort, writer: SinkWriter
    ) -> list[Any]:
        """Run the five steps of :mod:`streams.worker.meta`; return the message handles to acknowledge.

        Raises :class:`~streams.errors.WriteFenced` before any write the worker's lease no longer
        allows: checked before the first write, nothing has changed; later, the runner is abandoned
        (its caller drops it) and the partition's next owner re-forms the interval from its intent.
        """
        lease = writer.lease
        lease.check(f"flush of partition {self.partition}")
        key = meta_key(self.partition, self.partitions)
        meta = self.meta
        seq = self.engine.flush_seq
        if self.replay_target is not None:
            end = dict(self.replay_target)
            token = meta.pending_token or batch_token(meta, self.group, self.partition, seq, end)
            # Drained at the watermark of the interrupted attempt, not at what the high-waters and the
            # wall clock give after the restart: the sink drops this batch if that attempt wrote it,
            # so anything finalised here and not there (or there and not here) would be counted twice
            # by a later interval (or never).
            watermark = meta.pending_watermark
        else:
            end = {**meta.flushed, **self.position}
            token = batch_token(meta, self.group, self.partition, seq, end)
            watermark = self.effective_watermark()
        if watermark is not None:
            self.engine.advance_watermark(watermark)
        outputs: Outputs = self.engine.drain()
        # 0. intent
        meta.pending, meta.pending_seq, meta.pending_token = end, seq, token
        meta.pending_watermark = self.engine.watermark_ms
        table[key] = meta.encode()
        await out.sync_state(self.partition)
        # 1. sink, retried with backoff while ClickHouse cannot take it (consumption waits meanwhile)
        batch = SinkBatch(
            token,
            outputs.transitions,
            outputs.account_minutes,
            outputs.post_minutes,
            outputs.scores,
            outputs.alerts,
            follower_days=outputs.follower_days,
        )
        await writer.write(batch, "batch")
        # 2. flags, per-account partials and dead letters, sent together (one round trip, not three)
        lease.check(f"outputs of partition {self.partition}")
        sends = []
        if outputs.transitions:
            sends.append(out.send_flags([transition_record(t) for t in outputs.transitions]))
        records, heartbeat = account_hour_records(
            outputs,
            partition=self.partition,
            epoch=meta.epoch,
            seq=seq,
            watermark_ms=self.engine.watermark_ms,
            lateness_ms=self.lateness_ms,
        )
        if records or heartbeat:
            sends.append(out.send_account_hours(records, heartbeat))
        dead, self.dlq = self.dlq, []
        if dead:
            sends.append(out.send_dlq([record for _, record in dead], self.partition))
        try:
            await asyncio.gather(*sends)
        except BaseException:
            self.dlq = dead + self.dlq  # not acknowledged: kept for the retry of this flush
            raise
        for transition in outputs.transitions:
            self.metrics.transitions.labels(transition.kind).inc()
        substantive = sum(row.substantive for row in outputs.account_minutes)
        if substantive:
            self.metrics.substantive_interactions.inc(substantive)
        for reason, _ in dead:
            self.metrics.dlq_messages.labels(reason).inc()
        if self.late_in_interval:
            log.warning(
                "partition %d: %d late event(s) this interval; watermark %s, per topic %s, positions %s, "
                "high-waters %s",
                self.partition,
                self.late_in_interval,
                self.engine.watermark_ms,
                self.topic_watermark,
                self.position,
                self.highwater,
                extra={"partition": self.partition, "events": self.late_in_interval, "reason": "late"},
            )
            self.late_in_interval = 0
        # Checked before the table writes: abandoned here, the table holds nothing the changelog lacks.
        lease.check(f"state of partition {self.partition}")
        # 3. actor states, then the dedup hashes, then progress. The order matters: a crash keeps a
        # prefix of these writes (one changelog partition), and a surviving dedup record must imply
        # that the states holding its events survived too, or a replay would drop them as duplicates.
        changed = self.engine.dirty()
        for actor, state in changed.items():
            if state is None:
                table.pop(actor, None)
            else:
                table[actor] = state
        delta = self.engine.take_dedup_delta()
        self.dedup_log.write(table, dedup_key(self.partition, self.partitions, meta.epoch, seq), delta)
        expired = self.dedup_log.expire(table, self.engine.final_ms)
        self.metrics.changelog_writes.inc(len(changed) + bool(delta) + expired + 2)
        meta.flushed = end
        meta.pending = meta.pending_seq = meta.pending_token = meta.pending_watermark = None
        meta.flush_seq = self.engine.flush_seq
        meta.watermark_ms = self.engine.watermark_ms
        meta.topic_watermarks = dict(self.topic_watermark)
        table[key] = meta.encode()
        await out.sync_state(self.partition)
        # 4. hand back what may be acknowledged now
        handles, self.handles = self.handles, []
        self.watermark_moved = False
        if self.replay_target is not None:
            self.replay_target = None
            held, self.holdback = self.holdback, []
            for topic, offset, value, handle in held:
                self.feed(topic, offset, value, handle)
        if self.engine.watermark_ms is not None:
            self.metrics.watermark.labels(str(self.partition)).set(self.engine.watermark_ms / 1000)
        return handles


def _late_original(value: bytes, late: Interaction) -> bytes:
    """The dead letter's original bytes of a late event.

    A message holding one event is its original, byte for byte (its timestamp may be RFC 3339, its
    keys in any order). An envelope element has no bytes of its own once the array is parsed: it is
    re-encoded, as :func:`streams.events.iter_message` does for an invalid element.
    """
    return late.to_json() if value.lstrip()[:1] == b"[" else value
