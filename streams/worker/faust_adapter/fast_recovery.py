"""Table recovery read by a plain aiokafka consumer, before Faust's own changelog read.

Why: Faust reads a changelog one record at a time through its whole stream machinery: per record the
fetcher waits on the conductor with ``wait_first`` (several futures and an ``asyncio.wait``), the
conductor builds an Event and queues it, and the recovery loop takes it off the queue with
``asyncio.wait_for`` (a task per record), formats two debug f-strings and recomputes ``need_recovery()``
over every partition; no setting changes that path, and it dominated a restart with a large table
(figures in the README: Changelog read by a plain consumer). A plain ``getmany`` loop applying records
to the store in batches reads the same changelog more than twenty times faster.

Written against faust-streaming 0.15.3 and aiokafka 0.14.0; guarded by
``tests/integration/worker/test_fast_recovery.py``.

How it fits Faust's recovery (``faust.tables.recovery.Recovery``, run after every rebalance):

1. Faust builds the high-waters of its active changelog partitions (``active_highwaters``: last offset,
   from fetch replies, see :mod:`~streams.worker.faust_adapter.highwater`) and then the offsets to read from
   (``active_offsets``: the last offset already applied, -1 for none), in ``_build_offsets``.
2. Our wrapper of ``_build_offsets`` lets Faust compute those, then reads each active partition of an
   eligible table from ``active_offsets + 1`` up to its high-water with a plain consumer, applies every
   fetched batch with the store's own ``apply_changelog_batch`` (the in-memory store keeps its key →
   partition index, the RocksDB store writes its persisted offset), and advances ``active_offsets`` to
   the batch's last offset right after applying it, with no ``await`` in between.
3. Faust then finds ``need_recovery()`` false and goes on as with an empty changelog ("Resuming flow").
   Whatever was not read (deadline, error, cancellation) Faust reads itself from ``active_offsets``:
   the hand-over point is the one Faust advances too, so the result is the same records applied once, in
   offset order.

A rebalance during the read: Faust's ``on_rebalance`` sets ``signal_recovery_start`` (synchronously,
before it changes any offsets) and then cancels the wait that runs us; we check that signal before
applying each batch, so nothing is applied for a superseded assignment, and the next round starts again
from ``active_offsets``. Standby partitions are left to Faust (read in the background after recovery).

Eligible tables: raw ``bytes`` keys and values (what the changelog records hold is what the store holds)
and no ``on_changelog_event`` callback. Other tables are recovered by Faust as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka_security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)

# Large fetches: the changelog is read once, as fast as the broker serves it.
FETCH_MAX_BYTES = 64 * 1024 * 1024
PARTITION_FETCH_BYTES = 16 * 1024 * 1024


class Change:
    """One changelog record shaped like the Faust event a store's ``apply_changelog_batch`` reads."""

    __slots__ = ("key", "offset", "partition", "tp", "value")

    def __init__(self, tp: Any, offset: int, key: bytes | None, value: bytes | None) -> None:
        self.tp = tp
        self.partition = tp.partition
        self.offset = offset
        self.key = key
        self.value = value

    @property
    def message(self) -> Change:
        # Faust events carry the raw record as ``event.message``; for raw tables they are the same.
        return self


async def read_changelog(
    bootstrap: str,
    targets: Mapping[Any, tuple[int, int]],
    apply: Callable[[Any, list[Change]], bool],
    deadline_s: float,
    security: KafkaSecurity = PLAINTEXT,
) -> dict[Any, int]:
    """Read each ``tp`` of ``targets`` (``tp → (last applied, last wanted)`` offsets) and hand its records
    to ``apply`` in fetched batches, in offset order.

    ``apply`` returns False to stop at once (nothing of that batch was applied). Returns the last offset
    applied per partition (the ``last applied`` given when nothing was).
    """
    done = {tp: start for tp, (start, _) in targets.items()}
    wanted = {
        TopicPartition(tp.topic, tp.partition): tp for tp, (start, last) in targets.items() if last > start
    }
    if not wanted:
        return done
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=FETCH_MAX_BYTES,
        max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
        **security.aiokafka(),
    )
    await consumer.start()
    try:
        consumer.assign(list(wanted))
        for ktp, tp in wanted.items():
            consumer.seek(ktp, max(0, targets[tp][0] + 1))
        pending = set(wanted)
        stop_at = time.monotonic() + deadline_s
        while pending and time.monotonic() < stop_at:
            fetched = await consumer.getmany(*pending, timeout_ms=500)
            for ktp, records in fetched.items():
                tp = wanted[ktp]
                last = targets[tp][1]
                changes = [
                    Change(tp, r.offset, r.key, r.value) for r in records if done[tp] < r.offset <= last
                ]
                if changes:
                    if not apply(tp, changes):
                        return done
                    done[tp] = changes[-1].offset
            for ktp in list(pending):
                tp = wanted[ktp]
                if done[tp] >= targets[tp][1] or await consumer.position(ktp) > targets[tp][1]:
                    pending.discard(ktp)
                    consumer.pause(ktp)
        if pending:
            log.warning("changelog read stopped at its deadline; Faust reads the rest of %s", sorted(pending))
        return done
    finally:
        await consumer.stop()


def eligible(table: Any, conf: Any) -> bool:
    """Raw bytes in and out of the store, and nobody listening to individual changelog events."""
    return (
        table.key_type is bytes
        and table.value_type is bytes
        and (table.key_serializer or conf.key_serializer) == "raw"
        and (table.value_serializer or conf.value_serializer) == "raw"
        and not getattr(table, "_on_changelog_event", None)
    )


def install(app: Any, bootstrap: str, security: KafkaSecurity = PLAINTEXT) -> None:
    """Read eligible tables' active changelog partitions ourselves at every recovery (see module doc)."""
    recovery = app.tables.recovery
    build_offsets = recovery._build_offsets

    async def _build_offsets(consumer: Any, tps: Iterable[Any], destination: Any, title: str) -> None:
        await build_offsets(consumer, tps, destination, title)
        if destination is not recovery.active_offsets:
            return  # standbys: Faust's
        await preload(recovery, app.conf, bootstrap, set(tps), security)

    recovery._build_offsets = _build_offsets


async def preload(
    recovery: Any, conf: Any, bootstrap: str, tps: set[Any], security: KafkaSecurity = PLAINTEXT
) -> None:
    offsets = recovery.active_offsets
    highwaters = recovery.active_highwaters
    targets: dict[Any, tuple[int, int]] = {}
    for tp in tps:
        table = recovery.tp_to_table.get(tp)
        start, last = offsets.get(tp), highwaters.get(tp)
        if table is None or start is None or last is None or not eligible(table, conf):
            continue  # not ours to read: Faust's
        if last > start:
            targets[tp] = (start, last)
    if not targets:
        return
    superseded = recovery.signal_recovery_start.is_set
    applied = 0

    def apply(tp: Any, changes: list[Change]) -> bool:
        nonlocal applied
        if superseded():
            return False  # a new rebalance started: this assignment's recovery is void
        recovery.tp_to_table[tp].apply_changelog_batch(changes)
        offsets[tp] = changes[-1].offset
        applied += len(changes)
        return True

    log.info(
        "changelog read: %d partitions, up to %d records",
        len(targets),
        sum(last - start for start, last in targets.values()),
    )
    started = time.monotonic()
    deadline = 0.8 * float(conf.broker_request_timeout)  # Faust cancels this step after the full timeout
    try:
        await read_changelog(bootstrap, targets, apply, deadline, security)
    except Exception:  # never fail the recovery: Faust reads whatever is left from active_offsets
        log.exception("plain changelog read failed after %d records; Faust reads the rest", applied)
    elapsed = time.monotonic() - started
    log.info(
        "changelog read done: %d records of %d partitions in %.1fs (%.0f/s)%s",
        applied,
        len(targets),
        elapsed,
        applied / elapsed if elapsed > 0 else 0.0,
        "" if not recovery.need_recovery() else "; Faust reads the rest",
        extra={"count": applied, "partitions": len(targets), "duration_s": round(elapsed, 3)},
    )
