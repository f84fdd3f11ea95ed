"""The flush-then-commit protocol: how a stream partition's interval becomes durable exactly once.

This module is the only description of the protocol; the README, the engine and the progress record
link here. Read it top to bottom: one function per step, in the order they run.

For stream partition *p* (partition *p* of each interaction topic) a worker flushes in numbered
intervals ``k = 0, 1, 2, …``. An interval covers the messages the partition's runner was fed since the
last flush, up to ``end = {topic: last offset}``; its idempotency token is derived from
``(group, epoch, p, k, offset ranges)`` (:func:`~streams.worker.progress.batch_token`).

0. :func:`record_intent` — the progress record (:mod:`streams.worker.progress`) gets
   ``pending = end``, ``pending_seq = k``, the token and ``pending_watermark`` (the event-time watermark
   the interval is drained at), and is written to the state table and its changelog, awaited;
1. :func:`write_sink` — the interval's sink batch (transitions, per-minute aggregates, scores, follower
   days) is written to ClickHouse with the token, retried with backoff while ClickHouse is unavailable;
2. :func:`send_outputs` — flags, per-account partials for drop detection and dead letters go to Kafka
   together, awaited;
3. :func:`write_state` — changed actor states (stamped with ``k``), the interval's dedup hashes, then
   ``flushed = end`` with ``pending`` cleared, written to the table and its changelog, awaited;
4. :func:`acknowledge` — the interval's Kafka messages are acknowledged and their offsets committed
   (once for every partition that flushed together).

The write lease (:mod:`streams.worker.lease`) is checked before the first write and before steps 2 and 3:
a worker the group may have replaced writes nothing more, and the interval is left to the partition's
next owner (:class:`~streams.errors.WriteFenced`).

**Why a crash anywhere replays exactly.** The new owner of *p* recovers the progress record and the actor
states from the changelog (:meth:`PartitionRunner.recover <streams.worker.runner.PartitionRunner.recover>`):

- it skips every message at or below ``flushed[topic]``: its effects are already in the table and sink;
- if ``pending`` is set, it re-forms *exactly* that interval (same ranges, same ``k``, so the same token:
  ClickHouse drops the insert if step 1 had happened), holding back newer messages; actor states that
  step 3 already stamped with ``k`` do not take the interval's events again (the engine's ``restore``);
  and it drains at ``pending_watermark``. The watermark moves only at a flush, so the interval's events
  are judged late against the same watermark on the replay as the first time: what a replay re-forms is
  what the dropped insert held, whatever the high-water marks and the wall clock say after the restart;
- flags and partials sent twice carry the same ids (consumers dedupe by ``transition_id``, stage 2 by
  ``(epoch, seq)``); a dead letter may be repeated (at-least-once, like any Kafka output);
- the changelog keeps a prefix of step 3's writes (one changelog partition, in order): a surviving
  dedup record implies the states holding its events survived, so a replay cannot drop them as
  duplicates;
- offsets are committed only after step 3, so nothing is acknowledged before it is durable.

Partitions flush concurrently (each awaits Kafka acknowledgements of its own changelog records only,
:class:`~streams.worker.changelog.ChangelogBuffer`); the CPU parts run one at a time on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from streams.engagement.model import Outputs
from streams.sinks.base import SinkBatch
from streams.worker.dedup_log import dedup_key
from streams.worker.drops.hours import account_hour_records
from streams.worker.flags import transition_record
from streams.worker.progress import batch_token, progress_key
from streams.worker.sink_retry import SinkWriter

if TYPE_CHECKING:
    from streams.worker.runner import PartitionRunner

log = logging.getLogger(__name__)


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


class Handle(Protocol):
    """A delivered Kafka message, acknowledged once its interval is durable (Faust's event)."""

    def ack(self) -> Any: ...


@dataclass
class Interval:
    """One flush interval of one partition, as formed before step 0."""

    seq: int
    end: dict[str, int]
    token: str
    outputs: Outputs


def form_interval(runner: PartitionRunner) -> Interval:
    """The interval's range, token and watermark, and what the engine finalised at that watermark."""
    progress = runner.progress
    seq = runner.engine.flush_seq
    if runner.replay_target is not None:
        end = dict(runner.replay_target)
        token = progress.pending_token or batch_token(progress, runner.group, runner.partition, seq, end)
        # Drained at the watermark of the interrupted attempt, not at what the high-waters and the
        # wall clock give after the restart: the sink drops this batch if that attempt wrote it, so
        # anything finalised here and not there (or there and not here) would be counted twice by a
        # later interval (or never).
        watermark = progress.pending_watermark
    else:
        end = {**progress.flushed, **runner.position}
        token = batch_token(progress, runner.group, runner.partition, seq, end)
        watermark = runner.effective_watermark()
    if watermark is not None:
        runner.engine.advance_watermark(watermark)
    return Interval(seq, end, token, runner.engine.drain())


async def record_intent(
    runner: PartitionRunner, interval: Interval, table: MutableMapping[str, bytes], out: OutputPort
) -> None:
    """Step 0: the progress record says which interval is in flight, durably, before any output."""
    progress = runner.progress
    progress.pending, progress.pending_seq, progress.pending_token = (
        interval.end,
        interval.seq,
        interval.token,
    )
    progress.pending_watermark = runner.engine.watermark_ms
    table[progress_key(runner.partition, runner.partitions)] = progress.encode()
    await out.sync_state(runner.partition)


async def write_sink(interval: Interval, writer: SinkWriter) -> None:
    """Step 1: the sink batch, under the interval's token (consumption waits while this retries)."""
    outputs = interval.outputs
    batch = SinkBatch(
        interval.token,
        outputs.transitions,
        outputs.account_minutes,
        outputs.post_minutes,
        outputs.scores,
        outputs.alerts,
        follower_days=outputs.follower_days,
    )
    await writer.write(batch, "batch")


async def send_outputs(runner: PartitionRunner, interval: Interval, out: OutputPort) -> None:
    """Step 2: flags, per-account partials and dead letters, sent together (one round trip, not three)."""
    outputs = interval.outputs
    progress = runner.progress
    sends = []
    if outputs.transitions:
        sends.append(out.send_flags([transition_record(t) for t in outputs.transitions]))
    records, heartbeat = account_hour_records(
        outputs,
        partition=runner.partition,
        epoch=progress.epoch,
        seq=interval.seq,
        watermark_ms=runner.engine.watermark_ms,
        lateness_ms=runner.lateness_ms,
    )
    if records or heartbeat:
        sends.append(out.send_account_hours(records, heartbeat))
    dead, runner.dlq = runner.dlq, []
    if dead:
        sends.append(out.send_dlq([record for _, record in dead], runner.partition))
    try:
        await asyncio.gather(*sends)
    except BaseException:
        runner.dlq = dead + runner.dlq  # not acknowledged: kept for the retry of this flush
        raise
    runner.count_outputs(outputs, [reason for reason, _ in dead])


async def write_state(
    runner: PartitionRunner, interval: Interval, table: MutableMapping[str, bytes], out: OutputPort
) -> None:
    """Step 3: actor states, then dedup hashes, then progress (``flushed = end``), durably.

    The order matters: a crash keeps a prefix of these writes (one changelog partition), and a
    surviving dedup record must imply that the states holding its events survived too, or a replay
    would drop them as duplicates.
    """
    engine = runner.engine
    progress = runner.progress
    changed = engine.dirty()
    for actor, state in changed.items():
        if state is None:
            table.pop(actor, None)
        else:
            table[actor] = state
    delta = engine.take_dedup_delta()
    runner.dedup_log.write(
        table, dedup_key(runner.partition, runner.partitions, progress.epoch, interval.seq), delta
    )
    expired = runner.dedup_log.expire(table, engine.final_ms)
    runner.metrics.changelog_writes.inc(len(changed) + bool(delta) + expired + 2)
    progress.flushed = interval.end
    progress.pending = progress.pending_seq = progress.pending_token = progress.pending_watermark = None
    progress.flush_seq = engine.flush_seq
    progress.watermark_ms = engine.watermark_ms
    progress.topic_watermarks = dict(runner.topic_watermark)
    table[progress_key(runner.partition, runner.partitions)] = progress.encode()
    await out.sync_state(runner.partition)


async def flush(
    runner: PartitionRunner, table: MutableMapping[str, bytes], out: OutputPort, writer: SinkWriter
) -> list[Any]:
    """Steps 0–3 for one partition; returns the message handles that step 4 acknowledges.

    Raises :class:`~streams.errors.WriteFenced` before any write the worker's lease no longer allows:
    checked before the first write, nothing has changed; later, the runner is abandoned (its caller
    drops it) and the partition's next owner re-forms the interval from its intent.
    """
    lease = writer.lease
    lease.check(f"flush of partition {runner.partition}")
    interval = form_interval(runner)
    await record_intent(runner, interval, table, out)
    await write_sink(interval, writer)
    lease.check(f"outputs of partition {runner.partition}")
    await send_outputs(runner, interval, out)
    # Checked before the table writes: abandoned here, the table holds nothing the changelog lacks.
    lease.check(f"state of partition {runner.partition}")
    await write_state(runner, interval, table, out)
    return runner.interval_done()


async def acknowledge(
    handles: Sequence[Sequence[Handle]], commit: Callable[[], Awaitable[object]] | None
) -> int:
    """Step 4: acknowledge every durable interval's messages, then commit their offsets at once.

    At once rather than on the framework's commit timer (up to one interval later): a crash replays
    less, and "committed" is known when the flush returns. ``commit=None`` at shutdown, where the
    consumer is already stopped (the next start skips flushed offsets by the progress record).
    Returns the number of messages acknowledged.
    """
    acked = 0
    for group in handles:
        for handle in group:
            handle.ack()
        acked += len(group)
    if acked and commit is not None:
        await commit()
    return acked
