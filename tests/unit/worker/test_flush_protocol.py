"""The worker's flush protocol under crashes at every step, with in-process twins (no broker).

The twins model exactly what the protocol relies on: a state table whose writes become durable only
at ``sync_state`` (as a Faust changelog does at producer flush), a sink that deduplicates by token
(as ClickHouse does with ``insert_deduplication_token``), and offsets committed only for what a
flush handed back for acknowledgement. A crash throws away everything not durable and restarts
from the committed offsets, exactly like a SIGKILLed worker.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, MutableMapping
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from streams.engagement import PartitionEngine, Rule
from streams.events import Interaction, encode_batch
from streams.metrics import Metrics
from streams.settings import Settings
from streams.sinks.backoff import Backoff
from streams.sinks.base import MemorySink, SinkBatch
from streams.worker.meta import is_meta_key
from streams.worker.runner import PartitionRunner
from tests.scenarios import DAY, scenario, sentinels

TOPICS = {"like": "like", "comment": "comment", "share": "share", "follow": "follow", "unfollow": "follow"}
SETTINGS = Settings.from_env({"ENGAGE_WINDOW": "1d", "ENGAGE_ALLOWED_LATENESS": "10m"})


class Crash(Exception):
    pass


class DurableTable(MutableMapping[str, bytes]):
    """Writes are visible at once but durable only after ``sync``; ``crash`` keeps the durable part
    (optionally only a random subset of the unsynced writes: a changelog flushed half-way)."""

    def __init__(self, durable: dict[str, bytes | None] | None = None) -> None:
        self.durable: dict[str, bytes | None] = dict(durable or {})
        self.pending: dict[str, bytes | None] = {}

    def __getitem__(self, key: str) -> bytes:
        value = self.pending[key] if key in self.pending else self.durable.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: bytes) -> None:
        self.pending[key] = value

    def __delitem__(self, key: str) -> None:
        self[key]
        self.pending[key] = None

    def __iter__(self) -> Iterator[str]:
        # Like PartitionView: the engine iterates actor states only, never the progress record.
        merged = {**self.durable, **self.pending}
        return iter([k for k, v in merged.items() if v is not None and not is_meta_key(k)])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def sync(self) -> None:
        self.durable.update(self.pending)
        self.pending.clear()

    def after_crash(self, rng: random.Random, partial: bool) -> DurableTable:
        survivors = dict(self.durable)
        if partial:
            survivors.update({k: v for k, v in self.pending.items() if rng.random() < 0.5})
        return DurableTable({k: v for k, v in survivors.items() if v is not None})


class Outputs:
    def __init__(self, table: DurableTable, crash_at: str | None) -> None:
        self.table = table
        self.crash_at = crash_at
        self.syncs = 0
        self.flags: list[bytes] = []
        self.dlq: list[bytes] = []
        self.hours: list[bytes] = []

    async def send_flags(self, records: list[tuple[bytes, bytes]]) -> None:
        self.flags.extend(value for _, value in records)
        if self.crash_at == "flags":
            raise Crash

    async def send_dlq(self, records: list[bytes]) -> None:
        self.dlq.extend(records)

    async def send_account_hours(self, records: list[tuple[bytes, bytes]], heartbeat: bytes | None) -> None:
        self.hours.extend(value for _, value in records)

    async def sync_state(self) -> None:
        self.syncs += 1
        if self.crash_at == "state-partial" and self.syncs % 2 == 0:
            raise Crash  # before the state writes became durable: a random half survives
        self.table.sync()
        if self.crash_at == "intent" and self.syncs % 2 == 1:
            raise Crash
        if self.crash_at == "state" and self.syncs % 2 == 0:
            raise Crash


class CrashingSink(MemorySink):
    def __init__(self) -> None:
        super().__init__()
        self.crash_next = False

    def write(self, batch: SinkBatch) -> None:
        super().write(batch)
        if self.crash_next:
            self.crash_next = False
            raise Crash


def _messages(events: list[Interaction], per_message: int) -> list[tuple[str, int, bytes]]:
    """Envelopes per topic with offsets, in arrival order."""
    offsets: Counter[str] = Counter()
    out: list[tuple[str, int, bytes]] = []
    for start in range(0, len(events), per_message):
        by_topic: dict[str, list[Interaction]] = {}
        for event in events[start : start + per_message]:
            by_topic.setdefault(TOPICS[event.type], []).append(event)
        for topic, chunk in by_topic.items():
            out.append((topic, offsets[topic], encode_batch(chunk)))
            offsets[topic] += 1
    return out


def _new_runner(table: DurableTable, metrics: Metrics) -> PartitionRunner:
    engine = PartitionEngine(Rule.from_settings(SETTINGS), table, write_store=False, auto_watermark=False)
    runner = PartitionRunner.recover(0, 1, engine, table, "g", metrics)
    for topic, count in HIGHWATERS.items():
        runner.note_highwater(topic, count)  # a backlog: every topic is behind until read to the end
    if runner.meta.watermark_ms is not None:
        engine.advance_watermark(runner.meta.watermark_ms)
    engine.restore()
    return runner


async def _run(
    messages: list[tuple[str, int, bytes]],
    crash_at: str | None,
    crash_flush: int,
    seed: int,
) -> tuple[MemorySink, list[bytes]]:
    rng = random.Random(seed)
    metrics = Metrics.create(CollectorRegistry())
    sink = CrashingSink()
    table = DurableTable()
    flags: list[bytes] = []
    committed: dict[str, int] = {}
    runner = _new_runner(table, metrics)
    out = Outputs(table, None)
    flushes = 0
    crashed = False
    position = 0
    while position < len(messages):
        topic, offset, value = messages[position]
        position += 1
        if offset < committed.get(topic, 0):
            continue
        runner.feed(topic, offset, value, (topic, offset))
        if (rng.random() < 0.2 or position == len(messages)) and runner.may_flush:
            flushes += 1
            armed = not crashed and flushes == crash_flush and crash_at is not None
            out.crash_at = crash_at if armed and crash_at != "sink" else None
            sink.crash_next = armed and crash_at == "sink"
            try:
                handles = await runner.flush(table, out, sink, Backoff(rand=lambda: 0.0))
                if armed and crash_at == "ack":
                    raise Crash
            except Crash:
                crashed = True
                flags.extend(out.flags)
                table = table.after_crash(rng, partial=crash_at == "state-partial")
                runner = _new_runner(table, metrics)
                out = Outputs(table, None)
                # restart from the committed offsets: rewind to the first message not committed
                position = 0
                continue
            for handle_topic, handle_offset in handles:
                committed[handle_topic] = max(committed.get(handle_topic, 0), handle_offset + 1)
    while runner.may_flush:
        await runner.flush(table, out, sink, Backoff(rand=lambda: 0.0))
    flags.extend(out.flags)
    return sink, flags


def _totals(sink: MemorySink) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for row in sink.account_minutes:
        for name in (
            "likes",
            "comments",
            "shares",
            "follows",
            "unfollows",
            "substantive",
            "engaged_new",
            "lapsed",
        ):
            totals[name] += getattr(row, name)
    for row in sink.post_minutes:
        totals["post_comments"] += row.comments
        totals["post_likes"] += row.likes
    return dict(totals)


def _final_scores(sink: MemorySink) -> dict[tuple[str, str], tuple[float, int]]:
    latest: dict[tuple[str, str], Any] = {}
    for row in sink.scores:
        key = (row.account_id, row.actor_id)
        if key not in latest or row.as_of_ms >= latest[key].as_of_ms:
            latest[key] = row
    return {k: (v.score, v.as_of_ms) for k, v in latest.items()}


def _assert_scores_match(
    got: dict[tuple[str, str], tuple[float, int]], want: dict[tuple[str, str], tuple[float, int]]
) -> None:
    # A pair whose score decayed below Rule.score_floor is dropped at whichever flush notices, so its
    # later score may lack that residue: flush timing (crash or not) moves a score by < score_floor.
    floor = Rule().score_floor
    assert got.keys() == want.keys()
    for key, (score, as_of) in want.items():
        assert got[key][1] == as_of, key
        assert abs(got[key][0] - score) < floor, (key, got[key], score)


HIGHWATERS: dict[str, int] = {}


@pytest.fixture(scope="module")
def messages() -> list[tuple[str, int, bytes]]:
    events = scenario(11, actors=25, days=4)
    far = max(e.occurred_at_ms for e in events) + 3 * DAY
    # Each message of 7 arrivals is split by topic, so topics drift apart in event time as they
    # would while a worker catches up: nothing may be judged late for that.
    out = _messages(events + sentinels(1, far), per_message=7)
    for topic, offset, _ in out:
        HIGHWATERS[topic] = max(HIGHWATERS.get(topic, 0), offset + 1)
    return out


@pytest.fixture(scope="module")
def reference(messages: list[tuple[str, int, bytes]]) -> tuple[MemorySink, list[bytes]]:
    import asyncio

    return asyncio.run(_run(messages, None, 0, seed=0))


def test_reference_run_is_rich_enough(reference: tuple[MemorySink, list[bytes]]) -> None:
    sink, flags = reference
    kinds = Counter(orjson.loads(f)["kind"] for f in flags)
    assert kinds["engaged"] >= 10 and kinds["lapsed"] >= 10
    assert len(flags) == len({orjson.loads(f)["transition_id"] for f in flags})
    assert _totals(sink)["substantive"] > 0


@pytest.mark.parametrize("crash_at", ["intent", "sink", "flags", "state", "state-partial", "ack"])
@pytest.mark.parametrize("crash_flush", [1, 3, 7])
def test_crash_at_any_step_gives_the_uninterrupted_result(
    messages: list[tuple[str, int, bytes]],
    reference: tuple[MemorySink, list[bytes]],
    crash_at: str,
    crash_flush: int,
) -> None:
    import asyncio

    sink, flags = asyncio.run(_run(messages, crash_at, crash_flush, seed=crash_flush))
    ref_sink, ref_flags = reference
    by_id = {orjson.loads(f)["transition_id"]: orjson.loads(f) for f in flags}
    ref_by_id = {orjson.loads(f)["transition_id"]: orjson.loads(f) for f in ref_flags}
    assert by_id == ref_by_id
    assert _totals(sink) == _totals(ref_sink)
    _assert_scores_match(_final_scores(sink), _final_scores(ref_sink))
