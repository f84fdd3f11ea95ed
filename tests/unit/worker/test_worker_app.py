"""The worker app's wiring around Faust, on real Faust objects without a broker: the fetch wait its
aiokafka consumer is built with, and the offset commit that follows a flush's acknowledgements."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from streams.metrics import Metrics
from streams.settings import Settings
from streams.sinks.base import MemorySink
from streams.worker.app import FETCH_MAX_WAIT_MS, WorkerRuntime, create_app


def _runtime(tmp_path: Path) -> WorkerRuntime:
    settings = Settings.from_env({"ENGAGE_DATA_DIR": str(tmp_path)})
    return WorkerRuntime(settings, Metrics.create(CollectorRegistry()), MemorySink())


def test_the_worker_consumer_is_built_with_the_short_fetch_wait(tmp_path: Path) -> None:
    async def build() -> tuple[int, int]:
        runtime = _runtime(tmp_path)
        app = create_app(runtime.settings, "localhost:1", runtime)
        ours = app.consumer._thread._create_worker_consumer(app.transport)  # what start() would build
        plain = faust.App("plain", broker="kafka://localhost:1", web_enabled=False)
        theirs = plain.consumer._thread._create_worker_consumer(plain.transport)
        return ours._fetch_max_wait_ms, theirs._fetch_max_wait_ms

    assert asyncio.run(build()) == (FETCH_MAX_WAIT_MS, 1500)
    assert FETCH_MAX_WAIT_MS < 1500


class _Runner:
    """Stands in for a PartitionRunner: its flush hands back message handles that log their ack."""

    def __init__(self, partition: int, log: list[str], handles: int) -> None:
        self.partition = partition
        self.log = log
        self.handles = handles
        self.may_flush = True
        self.replay_ready = False
        self.engine = SimpleNamespace(tracked_pairs=0, engaged_pairs=0)

    async def flush(self, *args: Any) -> list[Any]:
        self.may_flush = False
        handles = [
            SimpleNamespace(ack=lambda name=f"{self.partition}.{i}": self.log.append(f"ack {name}"))
            for i in range(self.handles)
        ]
        self.handles = 0
        return handles


async def _flush(tmp_path: Path, handles: list[int], **kwargs: Any) -> list[str]:
    log: list[str] = []
    runtime = _runtime(tmp_path)
    runtime.table = SimpleNamespace(data={})

    async def commit() -> None:
        log.append("commit")

    runtime.commit_offsets = commit
    runtime.runners = {p: _Runner(p, log, n) for p, n in enumerate(handles)}  # type: ignore[misc]
    await runtime.maybe_flush(force=True, **kwargs)
    return log


def test_a_flush_commits_once_after_every_acknowledgement(tmp_path: Path) -> None:
    log = asyncio.run(_flush(tmp_path, [2, 1]))
    assert log == ["ack 0.0", "ack 0.1", "ack 1.0", "commit"]


def test_nothing_acknowledged_nothing_committed(tmp_path: Path) -> None:
    assert asyncio.run(_flush(tmp_path, [0, 0])) == []


def test_no_commit_at_shutdown_where_the_consumer_has_stopped(tmp_path: Path) -> None:
    assert asyncio.run(_flush(tmp_path, [1], commit=False)) == ["ack 0.0"]
