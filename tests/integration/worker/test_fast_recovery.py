"""The plain-consumer changelog read (``faust_adapter.fast_recovery``) against the real Tansu broker.

The Faust side is a real ``faust.App`` with a real in-memory table store (not started: nothing here needs
its consumer); the Recovery service's state is driven by hand where a test needs a given hand-over point.
Whole-worker restarts through this path are covered by the worker tests (SIGKILL + restart exact, two
workers) and by the bench recovery phase test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from faust.types import TP

from streams.embedded.broker import EmbeddedBroker, ensure_topics, free_port
from streams.worker.faust_adapter import fast_recovery, highwater
from streams.worker.faust_adapter.outputs import send_records

# (partition, key, value): a key written twice, a tombstone, and a key deleted then written again.
RECORDS: list[tuple[int, bytes, bytes | None]] = [
    (0, b"a", b"1"),
    (0, b"b", b"1"),
    (0, b"a", b"2"),
    (0, b"b", None),
    (0, b"c", None),
    (0, b"c", b"3"),
    (1, b"x", b"1"),
    (1, b"y", b"1"),
    (1, b"y", None),
    (1, b"z", b"9"),
]
FINAL = {b"a": b"2", b"c": b"3", b"x": b"1", b"z": b"9"}


def _app(tmp_path: Path, bootstrap: str) -> tuple[faust.App, Any]:
    app = faust.App(
        f"fr{uuid.uuid4().hex[:6]}",
        broker=f"kafka://{bootstrap}",
        datadir=str(tmp_path / "faust"),
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
    )
    table = app.Table("state", partitions=2, key_type=bytes, value_type=bytes)
    return app, table


async def _write(bootstrap: str, topic: str, records: list[tuple[int, bytes, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await send_records(producer, topic, records)  # each partition's records in one record batch
    finally:
        await producer.stop()


def _changelog(broker: EmbeddedBroker) -> str:
    topic = f"fr-{uuid.uuid4().hex[:8]}-changelog"
    ensure_topics(broker.bootstrap, [topic], partitions=2)
    asyncio.run(_write(broker.bootstrap, topic, RECORDS))
    return topic


async def _last_offsets(bootstrap: str, topic: str) -> dict[Any, int]:
    found = await highwater.fetched_highwaters(bootstrap, [TP(topic, 0), TP(topic, 1)])
    return {tp: value - 1 for tp, value in found.items()}


def test_reads_every_record_to_the_fetched_highwater_into_the_store(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    topic = _changelog(broker)
    app, table = _app(tmp_path, broker.bootstrap)
    assert fast_recovery.eligible(table, app.conf)
    last = asyncio.run(_last_offsets(broker.bootstrap, topic))
    # The Tansu quirk this depends on: the fetched high-water is the truth (6 and 4 records).
    assert last == {TP(topic, 0): 5, TP(topic, 1): 3}
    applied: list[tuple[int, int]] = []

    def apply(tp: Any, changes: list[fast_recovery.Change]) -> bool:
        applied.extend((tp.partition, c.offset) for c in changes)
        table.apply_changelog_batch(changes)
        return True

    done = asyncio.run(
        fast_recovery.read_changelog(broker.bootstrap, {tp: (-1, end) for tp, end in last.items()}, apply, 30)
    )
    assert done == last
    assert sorted(applied) == [(0, o) for o in range(6)] + [(1, o) for o in range(4)]
    assert dict(table.data.items()) == FINAL
    # the in-memory store's key → partition index, which it uses to drop revoked partitions' keys
    assert table.data._key_partition == {b"a": 0, b"c": 0, b"x": 1, b"z": 1}


def test_starts_after_the_last_applied_offset_and_stops_when_told(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    topic = _changelog(broker)
    p0, p1 = TP(topic, 0), TP(topic, 1)
    seen: list[tuple[int, int]] = []

    def apply(tp: Any, changes: list[fast_recovery.Change]) -> bool:
        seen.extend((tp.partition, c.offset) for c in changes)
        return True

    done = asyncio.run(fast_recovery.read_changelog(broker.bootstrap, {p0: (2, 5), p1: (3, 3)}, apply, 30))
    assert done == {p0: 5, p1: 3}
    assert seen == [(0, 3), (0, 4), (0, 5)]  # after offset 2 only; p1 had nothing left

    def refuse(tp: Any, changes: list[fast_recovery.Change]) -> bool:
        return False  # e.g. a rebalance started: nothing of this batch is applied

    done = asyncio.run(fast_recovery.read_changelog(broker.bootstrap, {p0: (-1, 5), p1: (-1, 3)}, refuse, 30))
    assert done == {p0: -1, p1: -1}  # the hand-over points did not move


def _recovering(broker: EmbeddedBroker, tmp_path: Path) -> tuple[faust.App, Any, dict[Any, int], Any]:
    """A written changelog, a fresh app and its Recovery set up as Faust leaves it before reading."""
    topic = _changelog(broker)
    app, table = _app(tmp_path, broker.bootstrap)
    last = asyncio.run(_last_offsets(broker.bootstrap, topic))
    recovery = app.tables.recovery
    for tp in last:
        recovery.tp_to_table[tp] = table
        recovery.active_tps.add(tp)
    recovery.active_offsets.update({tp: -1 for tp in last})
    recovery.active_highwaters.update(last)
    return app, table, last, recovery


def test_preload_hands_faust_nothing_left_to_recover(broker: EmbeddedBroker, tmp_path: Path) -> None:
    app, table, last, recovery = _recovering(broker, tmp_path)
    assert recovery.need_recovery()
    asyncio.run(fast_recovery.preload(recovery, app.conf, broker.bootstrap, set(last)))
    assert dict(recovery.active_offsets) == last
    assert not recovery.need_recovery()  # Faust goes on as with an empty changelog
    assert dict(table.data.items()) == FINAL


def test_preload_applies_nothing_once_a_new_rebalance_started(broker: EmbeddedBroker, tmp_path: Path) -> None:
    app, table, last, recovery = _recovering(broker, tmp_path)
    recovery.signal_recovery_start.set()
    asyncio.run(fast_recovery.preload(recovery, app.conf, broker.bootstrap, set(last)))
    assert dict(recovery.active_offsets) == dict.fromkeys(last, -1)
    assert recovery.need_recovery()
    assert dict(table.data.items()) == {}


def test_install_wraps_only_the_active_offsets_step(broker: EmbeddedBroker, tmp_path: Path) -> None:
    app, table, last, recovery = _recovering(broker, tmp_path)
    recovery.active_offsets.clear()
    for tp in last:
        recovery.active_offsets[tp] = None  # as Faust's add_active leaves a store with no persisted offset
    fast_recovery.install(app, broker.bootstrap)

    class Earliest:  # the consumer call _build_offsets makes: the changelog starts at offset 0
        async def earliest_offsets(self, *tps: Any) -> dict[Any, int]:
            return dict.fromkeys(tps, 0)

    standby: Counter[Any] = Counter(dict.fromkeys(last))  # as add_standby leaves them: None
    asyncio.run(recovery._build_offsets(Earliest(), set(last), standby, "standby"))
    assert dict(standby) == dict.fromkeys(last, -1)
    assert dict(table.data.items()) == {}  # standbys stay Faust's
    asyncio.run(recovery._build_offsets(Earliest(), set(last), recovery.active_offsets, "active"))
    assert dict(recovery.active_offsets) == last
    assert dict(table.data.items()) == FINAL


def test_a_failed_read_leaves_the_recovery_to_faust(broker: EmbeddedBroker, tmp_path: Path) -> None:
    app, _table, last, recovery = _recovering(broker, tmp_path)
    # nothing listens there: the plain consumer cannot start, and preload must not raise
    asyncio.run(fast_recovery.preload(recovery, app.conf, f"127.0.0.1:{free_port()}", set(last)))
    assert dict(recovery.active_offsets) == dict.fromkeys(last, -1)
    assert recovery.need_recovery()
