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
from streams.worker.dedup_log import DEDUP_PREFIX
from streams.worker.flush import flush
from streams.worker.progress import is_progress_key
from streams.worker.runner import PartitionRunner
from streams.worker.sink_retry import SinkWriter
from tests.scenarios import DAY, scenario, sentinels

TOPICS = {"like": "like", "comment": "comment", "share": "share", "follow": "follow", "unfollow": "follow"}
SETTINGS = Settings.from_env({"ENGAGE_WINDOW": "1d", "ENGAGE_ALLOWED_LATENESS": "10m"})


class Crash(Exception):
    pass


class DurableTable(MutableMapping[str, bytes]):
    """Writes are visible at once but durable only after ``sync``, like a changelog partition.

    A crash keeps the durable part plus, for ``partial``, a random *prefix* of the unsynced writes:
    every key of a stream partition (actor states, dedup records, the progress record) goes to the
    same changelog partition, which Kafka keeps in order, so a later write cannot survive without
    the earlier ones. The progress record is written last, which the protocol relies on.
    """

    def __init__(self, durable: dict[str, bytes | None] | None = None) -> None:
        self.durable: dict[str, bytes | None] = dict(durable or {})
        self.log: list[tuple[str, bytes | None]] = []

    def _current(self) -> dict[str, bytes | None]:
        merged = dict(self.durable)
        merged.update(self.log)
        return merged

    def __getitem__(self, key: str) -> bytes:
        value = self._current().get(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: str, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        for logged, value in reversed(self.log):
            if logged == key:
                return default if value is None else value
        value = self.durable.get(key)
        return default if value is None else value

    def __setitem__(self, key: str, value: bytes) -> None:
        self.log.append((key, value))

    def __delitem__(self, key: str) -> None:
        self[key]
        self.log.append((key, None))

    def __iter__(self) -> Iterator[str]:
        # Like PartitionView: the engine iterates actor states only, never internal records.
        return iter([k for k, v in self._current().items() if v is not None and not is_progress_key(k)])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def sync(self) -> None:
        self.durable = self._current()
        self.log.clear()

    def after_crash(self, rng: random.Random, partial: bool) -> DurableTable:
        survivors = dict(self.durable)
        if partial:
            survivors.update(self.log[: rng.randrange(len(self.log) + 1)])
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

    async def send_dlq(self, records: list[bytes], partition: int = 0) -> None:
        self.dlq.extend(records)

    async def send_account_hours(self, records: list[tuple[bytes, bytes]], heartbeat: bytes | None) -> None:
        self.hours.extend(value for _, value in records)

    async def sync_state(self, partition: int) -> None:
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


def _messages(events: list[Interaction], per_message: int, burst: int) -> list[tuple[str, int, bytes]]:
    """Envelopes per topic (offsets in arrival order), delivered as a fetcher does: ``burst``
    envelopes of one topic, then of the next. Topics drift apart in event time by whole bursts."""
    per_topic: dict[str, list[list[Interaction]]] = {}
    for event in events:
        chunks = per_topic.setdefault(TOPICS[event.type], [[]])
        if len(chunks[-1]) == per_message:
            chunks.append([])
        chunks[-1].append(event)
    out: list[tuple[str, int, bytes]] = []
    cursor = dict.fromkeys(per_topic, 0)
    while any(cursor[t] < len(per_topic[t]) for t in per_topic):
        for topic, chunks in per_topic.items():
            for offset in range(cursor[topic], min(cursor[topic] + burst, len(chunks))):
                out.append((topic, offset, encode_batch(chunks[offset])))
            cursor[topic] = min(cursor[topic] + burst, len(chunks))
    return out


def _new_runner(table: DurableTable, metrics: Metrics) -> PartitionRunner:
    engine = PartitionEngine(Rule.from_settings(SETTINGS), table, write_store=False, auto_watermark=False)
    dedup = [(k, v) for k, v in table.durable.items() if v is not None and k.startswith(DEDUP_PREFIX)]
    runner = PartitionRunner.recover(0, 1, engine, table, "g", metrics, dedup_records=dedup)
    runner.idle_after_s = 0.0  # no wall time in this test: a caught-up topic is idle at once
    for topic, count in HIGHWATERS.items():
        runner.note_highwater(topic, count)  # a backlog: every topic is behind until read to the end
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
                handles = await flush(
                    runner, table, out, SinkWriter(sink, Backoff(rand=lambda: 0.0), runner.metrics)
                )
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
        await flush(runner, table, out, SinkWriter(sink, Backoff(rand=lambda: 0.0), runner.metrics))
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
_SCENARIO = scenario(11, actors=25, days=4)
_EVENTS = [*_SCENARIO, *sentinels(1, max(e.occurred_at_ms for e in _SCENARIO) + 3 * DAY)]


@pytest.fixture(scope="module")
def messages() -> list[tuple[str, int, bytes]]:
    events = _EVENTS[:-1]
    far = _EVENTS[-1].occurred_at_ms
    # Each message of 7 arrivals is split by topic, so topics drift apart in event time as they
    # would while a worker catches up: nothing may be judged late for that.
    out = _messages([*events, *sentinels(1, far)], per_message=7, burst=6)
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


def test_reference_run_equals_the_core_on_events_in_order(reference: tuple[MemorySink, list[bytes]]) -> None:
    """Topics drifting apart in event time must not change a single transition."""
    events = sorted(_EVENTS, key=lambda e: e.occurred_at_ms)
    engine = PartitionEngine(Rule.from_settings(SETTINGS))
    for event in events:
        engine.process(event)
    in_order = {t.transition_id for t in engine.drain().transitions}
    assert {orjson.loads(f)["transition_id"] for f in reference[1]} == in_order


@pytest.mark.parametrize("crash_at", ["intent", "sink", "flags", "state", "state-partial", "ack"])
@pytest.mark.parametrize("crash_flush", [1, 3, 7, 9, 15, 17])
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
