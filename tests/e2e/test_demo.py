"""``engage demo`` as a user runs it (what ``make run`` runs), bounded by ``--duration``; then a report.

Real everything: the embedded Tansu broker, ``engage worker`` writing to chDB, ``engage ingest`` and the
signed webhook traffic. About 100 s: ~10 s start-up, 75 s of traffic, the drain and the ordered stop.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

ENGAGE = [sys.executable, "-m", "streams.cli"]


def _environ(data_dir: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("ENGAGE_", "CLICKHOUSE_", "KAFKA_"))}
    # Free ports rather than 8080/9108, which another process on this machine may hold.
    environ.update(ENGAGE_DATA_DIR=str(data_dir), ENGAGE_INGEST_PORT="0", ENGAGE_WORKER_METRICS_PORT="0")
    return environ


def _children() -> dict[int, int]:
    """pid → parent pid of every process."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _descendants(root: int) -> dict[int, str]:
    """pid → command line of every process below ``root`` now."""
    parents = _children()
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                try:
                    found[child] = (Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")).decode()
                except OSError:
                    continue
                frontier.append(child)
    return found


def _alive(pid: int, cmdline: str) -> bool:
    """Still running (not a zombie) and still the same program (pids are reused)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        now = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return state != "Z" and now == cmdline


@pytest.mark.timeout(300)
def test_demo_runs_the_whole_pipeline_and_leaves_nothing_behind(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    started = time.monotonic()
    demo = subprocess.Popen(
        [*ENGAGE, "demo", "--duration", "75", "--plain"],
        env=_environ(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: dict[int, str] = {}
    done = threading.Event()

    def watch() -> None:  # every process the demo starts, while it runs
        while not done.is_set():
            for pid, command in _descendants(demo.pid).items():
                # A child that has exited and is not reaped yet reads as an empty command line: keep
                # the one seen while it ran (a CI run once lost the worker's that way).
                if command or pid not in seen:
                    seen[pid] = command
            done.wait(1.0)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        output, _ = demo.communicate(timeout=240)
    finally:
        done.set()
        watcher.join(5)
        if demo.poll() is None:
            demo.kill()
    elapsed = time.monotonic() - started
    print(output[-3000:])
    print(f"demo took {elapsed:.0f}s")
    assert demo.returncode == 0, output[-3000:]

    # It started a broker, a worker and an ingest service, and none of them outlived it.
    commands = " | ".join(seen.values())
    assert "tansu" in commands or "broker" in commands, commands
    assert "streams.cli worker" in commands and "streams.cli ingest" in commands, commands
    left = {pid: cmd for pid, cmd in seen.items() if _alive(pid, cmd)}
    assert left == {}, f"processes left behind: {left}"

    # The plain log's numbers: traffic sent and processed, followers engaged.
    lines = [line for line in output.splitlines() if line.startswith("[") and "status=running" in line]
    assert len(lines) >= 10, output[-3000:]  # one every 5 s over 75 s
    last = dict(re.findall(r"(\w+)=(\S+)", lines[-1]))
    assert int(last["sent"]) > 0 and int(last["processed"]) > 0
    assert int(last["transitions_engaged"]) > 0
    summary = next(line for line in output.splitlines() if line.startswith("demo stopped after"))
    numbers = dict(re.findall(r"(\w+)=(\S+)", summary))
    assert int(numbers["sent"]) >= int(last["sent"]) > 10_000
    assert int(numbers["accepted"]) == int(numbers["sent"])  # every signed webhook was accepted
    assert int(numbers["processed"]) > 0 and int(numbers["transitions_engaged"]) > 0
    assert "webhook secrets: generated for this run (not shown)" in output
    assert "/metrics" in output and str(data_dir.resolve()) in output
    for name in ("worker.log", "ingest.log", "broker.log", "demo.log"):
        assert (data_dir / "logs" / name).is_file(), name

    # Afterwards the report answers from ClickHouse in the data dir, with the audience as the baseline.
    hint = re.search(r"engage report --account (\S+) --since (\S+)", output)
    assert hint is not None, output[-2000:]
    report = subprocess.run(
        [*ENGAGE, "report", "--account", hint.group(1), "--since", hint.group(2), "--json"],
        env=_environ(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    document = orjson.loads(report.stdout)
    assert document["engaged_followers"] > 0
    assert document["followers"] > document["engaged_followers"] and 0 < document["ratio"] < 1
    assert document["activity"]["substantive"] > 0
