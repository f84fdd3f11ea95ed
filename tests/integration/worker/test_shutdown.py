"""A worker stops on SIGTERM within a bound, even when its broker is gone (issue 17 item 8: two workers
whose test had timed out were still running 27 minutes later and ignored SIGTERM for 30 s)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from streams.embedded.broker import EmbeddedBroker
from streams.settings import Settings
from tests.integration.worker.harness import WorkerEnv, WorkerProcess, caught_up, wait_for

# The worker exits at most STOP_DEADLINE_S (20 s) after the signal, whatever its shutdown waits on.
STOP_BOUND_S = 30.0


@pytest.mark.parametrize("sink", ["memory", "clickhouse"])
def test_worker_stops_on_sigterm_after_its_broker_is_gone(tmp_path: Path, sink: str) -> None:
    with EmbeddedBroker(log_path=str(tmp_path / "broker.log")) as broker:
        cfg = WorkerEnv(broker.bootstrap, tmp_path / "data", partitions=2)
        settings = Settings.from_env(cfg.env(0))
        worker = WorkerProcess(cfg, sink=sink)
        try:
            wait_for(
                lambda: caught_up([worker], settings.topics.interactions, cfg.partitions),
                timeout=120,
                what="the worker to own its partitions",
            )
            broker.stop(timeout_s=0.0)  # SIGKILL-like: no goodbye to its clients
        except BaseException:
            worker.stop()
            raise
    time.sleep(2)  # the worker notices the broker is gone
    started = time.monotonic()
    worker.proc.terminate()
    try:
        worker.proc.wait(STOP_BOUND_S)
    except subprocess.TimeoutExpired:
        worker.proc.kill()
        worker.proc.wait()
        pytest.fail(f"the worker ignored SIGTERM for {STOP_BOUND_S:.0f}s:\n{worker.log()[-3000:]}")
    print(f"stopped in {time.monotonic() - started:.1f}s with status {worker.proc.returncode}")
