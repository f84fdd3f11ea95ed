"""One stream partition's processing: decode → engagement core, event-time watermark, replay position.

No Faust here: the runner is fed ``(topic, offset, value, handle)`` tuples; :mod:`streams.worker.flush`
makes each interval durable through small ports, so the whole protocol runs in tests with in-process
twins as well as under Faust.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Final

from streams.engagement import LATE, PartitionEngine
from streams.engagement.model import Outputs
from streams.events import Interaction, Rejected, decode_message
from streams.metrics import Metrics
from streams.producer import dlq_record
from streams.worker.dedup_log import DedupLog
from streams.worker.progress import PartitionProgress, progress_key

log = logging.getLogger(__name__)
_TYPE: Final = attrgetter("type")
_OCCURRED_AT: Final = attrgetter("occurred_at_ms")


@dataclass
class PartitionRunner:
    partition: int
    partitions: int
    engine: PartitionEngine
    progress: PartitionProgress
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
        progress = PartitionProgress.decode(table.get(progress_key(partition, partitions)))
        runner = cls(partition, partitions, engine, progress, group, metrics, lateness_ms)
        # Offsets up to `flushed` are done; topics with nothing new are not re-delivered at all, so
        # without this an interrupted interval naming them could never be re-formed.
        runner.position = dict(progress.flushed)
        # Messages up to `flushed` are skipped, so they no longer tell each topic's event time: without
        # these, a topic with no new traffic would hold the watermark where the last flush left it.
        runner.topic_watermark = dict(progress.topic_watermarks)
        if progress.watermark_ms is not None:
            engine.advance_watermark(progress.watermark_ms)
        runner.dedup_log.load(dedup_records, engine.remember_dedup)
        if progress.pending is not None and progress.pending_seq is not None:
            runner.replay_target = dict(progress.pending)
            engine.flush_seq = progress.pending_seq
            log.warning(
                "partition %d: re-forming interrupted flush k=%d %s",
                partition,
                progress.pending_seq,
                progress.pending,
                extra={"partition": partition},
            )
        else:
            engine.flush_seq = progress.flush_seq
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
        if offset <= self.progress.flushed.get(topic, -1):
            return  # already in the table and the sink: a replay of a flushed interval
        batch, rejected = decode_message(value)
        for item in rejected:
            self._dead_letter(item.error.reason, str(item.error), item.raw, topic, offset, item)
        if not batch:
            return
        # map + attrgetter + Counter stay in C: a Python loop over the batch costs a share of the hot path.
        by_type = Counter(map(_TYPE, batch))
        times = list(map(_OCCURRED_AT, batch))
        newest = max(self.topic_watermark.get(topic, -1), max(times))
        # One observation per message, of its oldest event: an observe per event would be costly.
        self.metrics.event_lag.observe(max(0.0, self.wall_clock() - min(times) / 1000))
        self.topic_watermark[topic] = newest
        counts = self.engine.process_many(batch)
        # events_consumed counts every valid event read; duplicates and late ones are also counted
        # under their own metrics. Incremented per envelope: a labelled inc per event is costly.
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

    # --- after a flush (the protocol itself: streams.worker.flush) -------------------------------------

    def count_outputs(self, outputs: Outputs, dead_reasons: list[str]) -> None:
        """Metrics and the late-events log line of an interval whose outputs Kafka acknowledged."""
        for transition in outputs.transitions:
            self.metrics.transitions.labels(transition.kind).inc()
        substantive = sum(row.substantive for row in outputs.account_minutes)
        if substantive:
            self.metrics.substantive_interactions.inc(substantive)
        for reason in dead_reasons:
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

    def interval_done(self) -> list[Any]:
        """The interval is durable: hand back its message handles, and resume what a replay held back."""
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
