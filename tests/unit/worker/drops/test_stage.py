"""The drops agent's body (:class:`DropStage`) with in-process twins: outputs, order, retries, failures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest
from prometheus_client import CollectorRegistry

from streams.alerting import MemoryAlertPoster
from streams.engagement.drops import DropRule
from streams.engagement.model import Alert
from streams.engagement.records import alert_to_json, iso_ms
from streams.errors import SinkUnavailable
from streams.metrics import Metrics
from streams.partitioning import partition_for
from streams.sinks.backoff import Backoff
from streams.sinks.base import MemorySink, SinkBatch
from streams.worker.changelog import Record
from streams.worker.drops.stage import DropStage
from streams.worker.drops.table import hours_progress_key
from streams.worker.sink_retry import SinkWriter
from tests.drop_streams import counts, messages, routed

P = 4
NOW_S = 1_790_000_000.0  # wall clock of the Alertmanager twin: after the stream's event time


class Port:
    """The Kafka twin: what was sent, and how many times state was synced; can fail once."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []
        self.syncs = 0
        self.changelog: list[Record] = []  # the drop-state changelog: what a recovery reads
        self.fail_next = False

    async def send_alerts(self, records: list[tuple[bytes, bytes]]) -> None:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("broker gone")
        self.sent.extend(records)

    async def sync_state(self, records: list[Record]) -> None:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("broker gone")
        self.syncs += 1
        self.changelog += records

    def recovered(self, partitions: int) -> dict[bytes, bytes]:
        """The table a recovery from the changelog rebuilds (records applied in order per partition)."""
        table: dict[bytes, bytes] = {}
        for partition in range(partitions):
            for p, key, value in self.changelog:
                assert key is not None and partition_for(key, partitions) == p  # Faust's partitioner
                if p == partition:
                    if value is None:
                        table.pop(key, None)
                    else:
                        table[key] = value
        return table


class FlakySink(MemorySink):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.on_attempt: Callable[[], object] = lambda: None

    def write(self, batch: SinkBatch) -> None:
        self.on_attempt()
        if self.failures:
            self.failures -= 1
            raise SinkUnavailable("ClickHouse restarting")
        super().write(batch)


def stage(sink: MemorySink | None = None, poster: MemoryAlertPoster | None = None) -> DropStage:
    metrics = Metrics.create(CollectorRegistry())
    writer = SinkWriter(sink if sink is not None else MemorySink(), Backoff(rand=lambda: 0.0), metrics)
    return DropStage(DropRule(), P, {}, Port(), writer, metrics, poster)


def drop_stream() -> list[tuple[int, bytes]]:
    hourly = counts(
        {"a": 50, "b": 40, "cut": 45}, 8 * 24 + 12, seed=7, cut=("cut", 8 * 24 + 2, 8 * 24 + 5, 0.1)
    )
    return routed(messages(hourly, P, seed=8), P)


def process_all(s: DropStage, items: list[tuple[int, bytes]]) -> None:
    async def go() -> None:
        for partition, value in items:
            await s.process(partition, value)
            await s.sync()

    asyncio.run(go())


def sample(s: DropStage, name: str, **labels: str) -> float:
    value = s.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_alerts_go_to_the_topic_the_sink_the_metrics_and_alertmanager() -> None:
    poster = MemoryAlertPoster(clock=lambda: NOW_S)
    s = stage(poster=poster)
    items = drop_stream()
    process_all(s, items)
    port = s.outputs
    assert isinstance(port, Port) and isinstance(s.writer.sink, MemorySink)
    alerts = [orjson.loads(v) for _, v in port.sent]
    assert [(a["account_id"], a["kind"], a["state"]) for a in alerts] == [
        ("cut", "drop", "opened"),
        ("cut", "drop", "resolved"),
    ]
    assert [k for k, _ in port.sent] == [b"cut", b"cut"]
    sunk: list[Alert] = s.writer.sink.alerts
    assert [alert_to_json(a) for a in sunk] == [v for _, v in port.sent]
    assert [b.token for b in s.writer.sink.batches] == [f"alerts/{a.alert_id}" for a in sunk]
    assert sample(s, "engage_drop_alerts_total", state="opened", kind="drop") == 1
    assert sample(s, "engage_drop_alerts_total", state="resolved", kind="drop") == 1
    assert sample(s, "engage_drop_alerts_open") == 0
    assert sample(s, "engage_drop_late_partials_total") == 0
    for q in range(P):
        assert sample(s, "engage_drop_hour_closed_seconds", partition=str(q)) > 0
    # Alertmanager: the opening, re-posts of the open alert after each closed hour, the resolution
    # (an open alert ends in the future, "now + TTL"; a resolved one at its event time, in the past)
    states = [(p["labels"]["account_id"], p["endsAt"] > iso_ms(int(NOW_S * 1000))) for p in poster.posted]
    assert states[0] == ("cut", True) and states[-1] == ("cut", False)
    assert len(states) >= 4 and all(account == "cut" for account, _ in states)
    # the state went to the table: every processed message synced it
    assert 0 < port.syncs <= len(items)
    assert all(isinstance(k, bytes) for k in s.table)
    assert {hours_progress_key(q, P).encode() for q in range(P)} <= set(s.table)
    # ... and every write reached the changelog: a recovery rebuilds exactly this table
    assert port.recovered(P) == s.table
    assert sample(s, "engage_changelog_writes_total") == len(port.changelog)


def test_a_failed_delivery_leaves_the_state_untouched_and_the_retry_delivers() -> None:
    items = drop_stream()
    undisturbed = stage()
    first_alert = None
    for i, (partition, value) in enumerate(items):
        handled = asyncio.run(undisturbed.process(partition, value))
        if first_alert is None and handled is not None and handled.alerts:
            first_alert = i
    assert first_alert is not None
    s = stage()
    port = s.outputs
    assert isinstance(port, Port)
    process_all(s, items[:first_alert])
    before = dict(s.table)
    port.fail_next = True
    with pytest.raises(ConnectionError):
        process_all(s, items[first_alert : first_alert + 1])
    assert s.table == before and port.sent == []  # nothing applied, nothing acknowledged
    process_all(s, items[first_alert:])  # Faust redelivers the message
    assert [orjson.loads(v)["state"] for _, v in port.sent] == ["opened", "resolved"]
    assert s.table == undisturbed.table


def test_the_sink_is_retried_with_backoff_while_unavailable() -> None:
    sink = FlakySink(failures=3)
    s = stage(sink=sink)
    paused: list[float] = []
    sink.on_attempt = lambda: paused.append(sample(s, "engage_sink_paused"))
    process_all(s, drop_stream())
    assert len(sink.alerts) == 2
    assert sample(s, "engage_sink_insert_retries_total", table="alerts") == 3
    # the same gauge as stage 1's flushes: paused from the first failure until the write went through
    assert paused == [0, 1, 1, 1, 0] and sample(s, "engage_sink_paused") == 0


def test_an_undecodable_record_is_skipped() -> None:
    s = stage()
    assert asyncio.run(s.process(0, b"{not json")) is None
    assert s.table == {}


def test_only_messages_that_change_state_need_a_changelog_flush() -> None:
    s = stage()
    port = s.outputs
    assert isinstance(port, Port)
    beat = orjson.dumps(
        {
            "heartbeat": True,
            "source_partition": 0,
            "epoch": "e",
            "seq": 0,
            "complete_before_ms": 7,
            "active_hours": [],
        }
    )
    asyncio.run(s.process(1, beat))
    assert s.unsynced
    asyncio.run(s.sync())
    assert port.syncs == 1 and not s.unsynced
    asyncio.run(s.process(1, beat))  # the same heartbeat again (a replay): nothing to write
    asyncio.run(s.sync())
    assert port.syncs == 1 and not s.unsynced


def test_a_failed_changelog_send_keeps_the_records_for_the_next_sync() -> None:
    s = stage()
    port = s.outputs
    assert isinstance(port, Port)
    items = drop_stream()

    async def go() -> None:
        for i, (partition, value) in enumerate(items):
            await s.process(partition, value)
            port.fail_next = i % 7 == 3
            try:
                await s.sync()
            except ConnectionError:
                assert s.unsynced  # not acknowledged; Faust would redeliver after a restart
        await s.sync()

    asyncio.run(go())
    assert not s.unsynced
    assert port.recovered(P) == s.table


def _left_open() -> tuple[DropStage, list[tuple[int, bytes]]]:
    """A stage whose stream ends with the cut account's drop still open."""
    cut = ("cut", 8 * 24 + 2, 8 * 24 + 5, 0.1)
    hourly = counts({"a": 50, "b": 40, "cut": 45}, 8 * 24 + 6, seed=7, cut=cut)
    s = stage()
    items = routed(messages(hourly, P, seed=8), P)
    process_all(s, items)
    assert sample(s, "engage_drop_alerts_open") == 1
    return s, items


def test_a_restarted_worker_counts_the_open_alerts_of_its_partitions_before_any_message() -> None:
    """After a restart or a rebalance the gauge must not wait for the partition's next message: while the
    whole stream is idle (an ingest outage, exactly when someone looks) none comes."""
    before, _ = _left_open()
    port = before.outputs
    assert isinstance(port, Port)
    restarted = stage()
    restarted.table = port.recovered(P)  # the new owner's table, recovered from the changelog
    assert sample(restarted, "engage_drop_alerts_open") == 0
    restarted.assigned(set(range(P)))  # the wiring calls this once the table is recovered
    assert sample(restarted, "engage_drop_alerts_open") == 1
    restarted.forget(set(range(P)))
    assert sample(restarted, "engage_drop_alerts_open") == 0


def test_a_revoked_partition_leaves_the_closed_hour_gauge() -> None:
    """As stage 1's watermark gauge: a worker reports only the partitions it owns."""
    s, _ = _left_open()
    assert all(sample(s, "engage_drop_hour_closed_seconds", partition=str(q)) > 0 for q in range(P))
    s.forget({1})
    assert s.metrics.registry.get_sample_value("engage_drop_hour_closed_seconds", {"partition": "1"}) is None
    assert sample(s, "engage_drop_hour_closed_seconds", partition="0") > 0
