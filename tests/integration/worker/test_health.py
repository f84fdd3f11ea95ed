"""``/healthz`` and ``/readyz`` of a real worker on the real broker (logging JSON lines): ready once it
owns recovered partitions, and not alive once its event loop stops running (SIGSTOP would stop the HTTP
thread too, so the loop is blocked from inside instead: a test entry point whose worker sleeps on the
loop on demand)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

from streams.embedded.broker import EmbeddedBroker
from streams.events import Interaction
from streams.partitioning import key_on_partition
from streams.settings import Settings
from tests.integration.worker.harness import WorkerEnv, WorkerProcess, wait_for
from tests.integration.worker.test_dead_letters import _produce


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
        extra={
            "ENGAGE_HEALTH_MAX_LOOP_DELAY": "3s",
            "BLOCKING_WORKER_FLAG": str(stuck_flag),
            "ENGAGE_LOG_FORMAT": "json",
        },
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
        # One like per partition, so that each partition's runner starts (and logs it).
        settings = Settings.from_env(cfg.env(0))
        likes = []
        for partition in range(cfg.partitions):
            actor = key_on_partition("fan", partition, cfg.partitions)
            like = Interaction(f"like-{partition}", "like", "x", "acme", actor, "p1", None, 1_790_000_000_000)
            likes.append((settings.topics.like, partition, actor.encode(), like.to_json()))
        asyncio.run(_produce(broker.bootstrap, likes))
        wait_for(lambda: worker.metric("engage_events_consumed_total") == 4, 30, what="the likes")

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
    # ENGAGE_LOG_FORMAT=json: the worker's records (Faust's and ours) are JSON lines with the component,
    # and the per-partition ones carry the partition as a field.
    records = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    assert records and all(r["component"] == "worker" for r in records)
    recovered = [r for r in records if r["message"].startswith("recovered partition")]
    assert sorted(r["partition"] for r in recovered) == [0, 1, 2, 3], recovered
