"""Run real `engage worker` processes against the session broker, and read what they publish."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from streams.embedded.broker import free_port
from tests.reaper import die_with_pytest


@dataclass
class WorkerEnv:
    bootstrap: str
    data_dir: Path
    prefix: str = field(default_factory=lambda: f"w{uuid.uuid4().hex[:8]}.")
    group: str = field(default_factory=lambda: f"g{uuid.uuid4().hex[:8]}")
    partitions: int = 4
    extra: dict[str, str] = field(default_factory=dict)

    def env(self, metrics_port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
            ENGAGE_TOPIC_PREFIX=self.prefix,
            ENGAGE_CONSUMER_GROUP=self.group,
            ENGAGE_TOPIC_PARTITIONS=str(self.partitions),
            ENGAGE_DATA_DIR=str(self.data_dir),
            ENGAGE_WORKER_METRICS_PORT=str(metrics_port),
            ENGAGE_COMMIT_INTERVAL="300ms",
            ENGAGE_WINDOW="1d",
            ENGAGE_ALLOWED_LATENESS="10m",
        )
        env.update(self.extra)
        return env


REPO_ROOT = Path(__file__).resolve().parents[3]


class WorkerProcess:
    """``engage worker`` in a subprocess; ``module`` is the CLI module to run (``streams.cli``, or a test
    entry point that wraps it)."""

    def __init__(
        self, cfg: WorkerEnv, *, sink: str = "memory", log_name: str = "worker", module: str = "streams.cli"
    ) -> None:
        self.metrics_port = free_port()
        self.log_path = cfg.data_dir / f"{log_name}-{uuid.uuid4().hex[:6]}.log"
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "worker", "--sink", sink, "--loglevel", "info"],
            env=cfg.env(self.metrics_port),
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            preexec_fn=die_with_pytest,
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metric(self, name: str) -> float:
        """The sum of a metric's samples (over its labels) on ``/metrics``."""
        total = 0.0
        for line in self.metrics_text().splitlines():
            if line.startswith((f"{name} ", f"{name}{{")):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def metrics_text(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            text: str = resp.read().decode()
            return text


async def _read_topic(bootstrap: str, topic: str, seconds: float, until: Any = None) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"reader-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out.extend(orjson.loads(r.value) for r in records)
            if until is not None and until(out):
                break
    finally:
        await consumer.stop()
    return out


def read_topic(bootstrap: str, topic: str, seconds: float, until: Any = None) -> list[dict[str, Any]]:
    return asyncio.run(_read_topic(bootstrap, topic, seconds, until))


def caught_up(workers: list[WorkerProcess], interaction_topics: tuple[str, ...], partitions: int) -> bool:
    """Every interaction topic-partition reports zero lag (consumed and committed) on some worker.

    Each worker reports only the partitions it owns, so the views of several workers are merged.
    """
    lags: dict[tuple[str, str], float] = {}
    for worker in workers:
        try:
            text = worker.metrics_text()
        except OSError:
            return False
        for line in text.splitlines():
            if line.startswith("engage_consumer_lag_messages{"):
                inside = line[line.index("{") + 1 : line.index("}")]
                labels = dict(part.split("=", 1) for part in inside.split(","))
                key = (labels["topic"].strip('"'), labels["partition"].strip('"'))
                lags[key] = min(lags.get(key, float("inf")), float(line.rsplit(" ", 1)[1]))
    wanted = {(t, str(p)) for t in interaction_topics for p in range(partitions)}
    return wanted <= lags.keys() and all(lags[k] == 0 for k in wanted)


def wait_for(predicate: Any, timeout: float, interval: float = 0.5, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass  # the process is not serving yet (metrics port not open)
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
