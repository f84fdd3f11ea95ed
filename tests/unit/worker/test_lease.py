"""The write lease and the one sink-retry loop: a revocation or a lapsed lease stops a flush's writes.

Pure asyncio with in-process sinks; the group side (heartbeats renewing the lease) is tested on
aiokafka's real coordinator method, and the whole of it on real workers by the chaos harness.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams.errors import SinkUnavailable, WriteFenced
from streams.metrics import Metrics
from streams.settings import Settings
from streams.sinks.backoff import Backoff
from streams.sinks.base import MemorySink, SinkBatch
from streams.worker import flush
from streams.worker.faust_adapter import group_lease
from streams.worker.lease import Lease
from streams.worker.sink_retry import SinkWriter
from streams.worker.stage import EngagementStage


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_lease_lapses_without_renewal_and_a_renewal_restores_it() -> None:
    clock = _Clock()
    lease = Lease(limit_s=7.0, clock=clock)
    lease.check("write")
    clock.now += 7.5
    with pytest.raises(WriteFenced, match=r"no group heartbeat for 7\.5s"):
        lease.check("write")
    lease.renew()
    lease.check("write")
    lease.revoking = True
    with pytest.raises(WriteFenced, match="revoked"):
        lease.check("write")
    lease.readmitted()
    lease.check("write")


class _DownSink(MemorySink):
    """ClickHouse down: every insert fails as retryable."""

    def write(self, batch: SinkBatch) -> None:
        raise SinkUnavailable("connection refused")


def _writer(sink: MemorySink, lease: Lease) -> SinkWriter:
    return SinkWriter(
        sink, Backoff(base_s=0.05, max_s=0.05, rand=lambda: 1.0), Metrics.create(CollectorRegistry()), lease
    )


def test_a_revocation_ends_a_write_retrying_against_a_dead_sink_within_a_poll() -> None:
    lease = Lease()
    writer = _writer(_DownSink(), lease)

    async def scenario() -> float:
        task = asyncio.ensure_future(writer.write(SinkBatch("t"), "batch"))
        await asyncio.sleep(0.3)
        assert not task.done()  # retrying
        assert writer.metrics.registry.get_sample_value("engage_sink_paused") == 1
        lease.revoking = True
        started = time.monotonic()
        with pytest.raises(WriteFenced):
            await task
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 0.5
    assert writer.metrics.registry.get_sample_value("engage_sink_paused") == 0


class _HangingSink(MemorySink):
    """An insert that does not answer until released (a server that stopped responding)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.order: list[str] = []

    def write(self, batch: SinkBatch) -> None:
        self.order.append(f"start {batch.token}")
        if batch.token == "hung":
            self.release.wait(10)
        self.order.append(f"end {batch.token}")
        super().write(batch)


def test_an_insert_in_flight_is_abandoned_on_revocation_and_the_next_write_waits_for_it() -> None:
    lease = Lease()
    sink = _HangingSink()
    writer = _writer(sink, lease)

    async def scenario() -> None:
        hung = asyncio.ensure_future(writer.write(SinkBatch("hung"), "batch"))
        await asyncio.sleep(0.1)
        lease.revoking = True
        with pytest.raises(WriteFenced, match="abandoned in flight"):
            await hung
        lease.readmitted()
        later = asyncio.ensure_future(writer.write(SinkBatch("next"), "batch"))
        await asyncio.sleep(0.3)
        assert not later.done()  # the client is not shared by two inserts at once
        sink.release.set()
        await later

    asyncio.run(scenario())
    assert sink.order == ["start hung", "end hung", "start next", "end next"]


def test_a_lapsed_lease_fences_before_the_insert() -> None:
    clock = _Clock()
    lease = Lease(limit_s=7.0, clock=clock)
    sink = MemorySink()
    clock.now += 20  # frozen past the session timeout
    with pytest.raises(WriteFenced):
        asyncio.run(_writer(sink, lease).write(SinkBatch("t"), "batch"))
    assert sink.batches == []


class _Runner:
    def __init__(self, partition: int, outcome: Any) -> None:
        self.partition = partition
        self.outcome = outcome
        self.may_flush, self.replay_ready = True, False
        self.engine = SimpleNamespace(tracked_pairs=0, engaged_pairs=0)

    async def flush(self, *args: Any) -> list[Any]:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return list(self.outcome)


@pytest.mark.parametrize("revoking", [False, True], ids=["lease-lapsed", "revoking"])
def test_an_abandoned_flush_forgets_its_partition_and_acknowledges_nothing_of_it(
    tmp_path: Path, revoking: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flush, "flush", lambda runner, *args: runner.flush(*args))  # fakes for steps 0-3
    runtime = EngagementStage(
        Settings.from_env({"ENGAGE_DATA_DIR": str(tmp_path)}),
        Metrics.create(CollectorRegistry()),
        MemorySink(),
    )
    runtime.partition_store = lambda partition: {}
    log: list[str] = []
    runtime.request_rejoin = lambda: log.append("rejoin")

    async def commit() -> None:
        log.append("commit")

    runtime.commit_offsets = commit
    runtime.lease.revoking = revoking
    ok = SimpleNamespace(ack=lambda: log.append("ack 1"))
    runtime.runners = {0: _Runner(0, WriteFenced("fenced")), 1: _Runner(1, [ok])}  # type: ignore[dict-item]
    runtime.changelog.add(0, b"k", b"stale")
    asyncio.run(runtime.maybe_flush(force=True))
    assert set(runtime.runners) == {1}
    assert not runtime.changelog.take(0)  # nothing of the abandoned partition goes out later
    assert log == ["ack 1", "commit"] + ([] if revoking else ["rejoin"])


def test_a_heartbeat_the_coordinator_accepts_renews_the_lease() -> None:
    """On aiokafka's real ``GroupCoordinator._do_heartbeat`` (the method the adapter wraps)."""
    from aiokafka.consumer.group_coordinator import GroupCoordinator

    clock = _Clock()
    lease = Lease(limit_s=7.0, clock=clock)
    group_lease.install(lease)
    group_lease.install(Lease())  # installing twice does not wrap twice
    try:

        async def send_req(request: Any) -> Any:
            return SimpleNamespace(error_code=0)

        coordinator = SimpleNamespace(group_id="g", generation=1, member_id="m", _send_req=send_req)
        clock.now += 20
        assert lease.lapsed
        assert asyncio.run(GroupCoordinator._do_heartbeat(coordinator)) is True
        assert not lease.lapsed
    finally:
        group_lease._LEASES.clear()
