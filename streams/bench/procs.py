"""What the benchmark's phases share: child processes, their ``/metrics`` and their peak RSS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ENGAGE = (sys.executable, "-m", "streams.cli")


def bench_env(bootstrap: str, data_dir: Path, prefix: str, **extra: str) -> dict[str, str]:
    """The environment of a benchmark child: its own topics (``prefix``), group and data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        ENGAGE_TOPIC_PREFIX=prefix,
        ENGAGE_TOPIC_PARTITIONS="4",
        ENGAGE_DATA_DIR=str(data_dir),
        ENGAGE_CONSUMER_GROUP=f"bench-{uuid.uuid4().hex[:6]}",
        ENGAGE_COMMIT_INTERVAL="1s",
        # Several children may run at once: no fixed /metrics port for ingest. The load generators
        # sign bodies built before the clock starts, without a timestamp.
        ENGAGE_INGEST_METRICS_PORT="0",
        ENGAGE_WEBHOOK_UNTIMED_SOURCES="generic",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


#: What the phases poll while a worker runs. Asking for these only (``name[]``, which prometheus-client
#: honours) keeps the poll out of the measurement: py-spy put the whole exposition at 2.1% of the worker's
#: samples at 4 polls a second (~5 ms of CPU per scrape); the phases poll 10 times a second.
PROGRESS: tuple[str, ...] = (
    "engage_events_consumed_total",
    "engage_events_rejected_total",
    "engage_offset_commits_total",
)


def scrape(port: int, names: Sequence[str] = ()) -> dict[str, float]:
    """Every sample of a ``/metrics`` endpoint (only ``names`` if given), summed over labels."""
    return {name: sum(v.values()) for name, v in scrape_labelled(port, names).items()}


def scrape_labelled(port: int, names: Sequence[str] = ()) -> dict[str, dict[str, float]]:
    """Every sample by name, then by its labels rendered ``k=v,...`` (``""`` when unlabelled)."""
    query = "?" + urllib.parse.urlencode([("name[]", name) for name in names]) if names else ""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics{query}", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out.setdefault(sample.name, {})[labels] = float(sample.value)
    return out


def peak_rss_mb(pid: int | None = None) -> float:
    """VmHWM (the peak resident set) of ``pid`` (default: this process), MiB."""
    where = "self" if pid is None else str(pid)
    for line in Path(f"/proc/{where}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.1) -> float:
    """Poll ``predicate`` (an ``OSError`` counts as not yet); return ``time.perf_counter()`` when true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return time.perf_counter()
        except OSError:
            pass
        time.sleep(interval_s)
    raise RuntimeError(f"timed out after {timeout_s:.0f}s waiting for {what}")


class Child:
    """A benchmark child process (``engage …`` or a bench module), output to ``log_path``."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.started = time.perf_counter()
        self.started_at = time.time()
        with log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                list(argv), env=dict(env), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check(self) -> None:
        """Raise if the child has exited (with the end of its log)."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.proc.args!r} exited with {self.proc.returncode}:\n{self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
