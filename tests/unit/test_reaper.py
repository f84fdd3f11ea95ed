"""A failing or timed-out test leaves no process behind (issue 17): an inner pytest session, with this
suite's conftest fixture and hook, runs tests that start a child ignoring SIGTERM and then fail or time
out; the children must all be gone when it returns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests import reaper

ROOT = Path(__file__).resolve().parents[2]

_INNER = """
import os, subprocess, sys, time
from pathlib import Path
import pytest

STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"


def spawn(**kwargs):
    child = subprocess.Popen([sys.executable, "-c", STUBBORN], **kwargs)
    with Path(os.environ["REAPER_PIDS"]).open("a") as out:
        out.write(f"{child.pid}\\n")
    return child


def test_fails_with_a_child_in_its_own_group():
    spawn(start_new_session=True)
    assert False


def test_fails_with_a_child_in_pytests_group():
    spawn()
    assert False


@pytest.mark.timeout(2)
def test_times_out():
    spawn(start_new_session=True)
    time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_failing_and_timed_out_tests_leave_no_process(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import _no_process_left_behind  # noqa: F401\n"
    )
    (tmp_path / "test_inner.py").write_text(_INNER)
    pids_file = tmp_path / "pids"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REAPER_PIDS": str(pids_file)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "timeout_method=signal"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "3 failed" in result.stdout, result.stdout[-3000:]
    pids = [int(line) for line in pids_file.read_text().split()]
    assert len(pids) == 3
    try:
        assert [pid for pid in pids if _alive(pid)] == []
    finally:
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_child_dies_with_a_killed_parent(tmp_path: Path) -> None:
    """``die_with_pytest``: pytest SIGKILLed (or ended by os._exit) runs no finalizer; its children go
    anyway."""
    script = (
        "import subprocess, sys, time\n"
        "from tests.reaper import die_with_pytest\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], "
        "preexec_fn=die_with_pytest)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        reaper.reap({pid: pgid for pid, pgid in reaper.descendants().items() if pid == parent.pid})
