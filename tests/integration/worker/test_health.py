"""``/healthz`` and ``/readyz`` of a real worker on the real broker: ready once it owns recovered
partitions, and not alive once its event loop stops running (SIGSTOP stops the HTTP thread too, so the
loop is blocked from inside instead: a test entry point whose worker sleeps on the loop on demand)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from streams.embedded.broker import EmbeddedBroker
from tests.integration.worker.harness import WorkerEnv, WorkerProcess, wait_for


def _get(worker: WorkerProcess, path: str) -> tuple[int, dict[str, object]]:
    url = f"http://127.0.0.1:{worker.metrics_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_ready_when_partitions_are_recovered_and_not_alive_when_the_loop_is_stuck(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    stuck_flag = tmp_path / "block-the-loop"
    cfg = WorkerEnv(
        broker.bootstrap,
        tmp_path / "data",
        extra={"ENGAGE_HEALTH_MAX_LOOP_DELAY": "3s", "BLOCKING_WORKER_FLAG": str(stuck_flag)},
    )
    worker = WorkerProcess(cfg, module="tests.integration.worker.blocking_worker")
    try:
        wait_for(lambda: _get(worker, "/healthz")[0] == 200, 60, what="/healthz to answer 200")
        wait_for(lambda: _get(worker, "/readyz")[0] == 200, 90, what="/readyz to answer 200")
        ready = _get(worker, "/readyz")[1]
        assert ready["partitions"] == [0, 1, 2, 3] and ready["recovered"] is True, ready
        text = worker.metrics_text()
        assert "engage_assigned_partitions 4.0" in text
        assert 'engage_build_info{python="' in text and "engage_process_resident_memory_bytes" in text
        assert "engage_commit_interval_seconds 0.3" in text
        wait_for(lambda: worker.metric("engage_offset_commits_total") > 0, 30, what="a commit")

        stuck_flag.write_text("block")  # the worker's loop now sleeps in a blocking call
        wait_for(lambda: _get(worker, "/healthz")[0] == 503, 30, what="/healthz to fail")
        assert _get(worker, "/healthz")[0] == 503
        live = _get(worker, "/healthz")[1]
        assert live["live"] is False and float(live["loop_heartbeat_age_s"]) > 3, live  # type: ignore[arg-type]
        assert _get(worker, "/readyz")[0] == 503
        stuck_flag.unlink()
        wait_for(lambda: _get(worker, "/healthz")[0] == 200, 30, what="/healthz to recover")
    finally:
        assert worker.stop() in (0, -15), worker.log()[-3000:]
