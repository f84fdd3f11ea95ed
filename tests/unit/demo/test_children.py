"""The demo's child processes: stopped by SIGTERM, killed when they will not stop, and never orphaned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.demo.orchestrator import Child, ChildFailed

STUBBORN = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)
POLITE = "import sys, time\nprint('ready', flush=True)\ntime.sleep(60)\n"


def started(tmp_path: Path, code: str, name: str = "child") -> Child:
    child = Child(name, [sys.executable, "-c", code], dict(os.environ), tmp_path / f"{name}.log").start()
    deadline = time.monotonic() + 10
    while "ready" not in child.tail() and time.monotonic() < deadline:
        time.sleep(0.05)
    return child


def test_sigterm_stops_a_polite_child(tmp_path: Path) -> None:
    child = started(tmp_path, POLITE)
    child.check_alive()
    assert child.stop(5.0) == -signal.SIGTERM


def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    child = started(tmp_path, STUBBORN)
    began = time.monotonic()
    assert child.stop(0.5) == -signal.SIGKILL
    assert 0.4 < time.monotonic() - began < 5


def test_giving_up_kills_at_once(tmp_path: Path) -> None:
    child = started(tmp_path, STUBBORN)
    began = time.monotonic()
    assert child.stop(60.0, give_up=lambda: True) == -signal.SIGKILL
    assert time.monotonic() - began < 5


def test_a_child_that_died_is_reported_with_its_log(tmp_path: Path) -> None:
    child = Child("worker", [sys.executable, "-c", "print('boom'); raise SystemExit(3)"], dict(os.environ),
                  tmp_path / "worker.log").start()  # fmt: skip
    deadline = time.monotonic() + 10
    while child.returncode is None and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(ChildFailed, match=r"(?s)worker exited with status 3.*boom"):
        child.check_alive()


def test_children_die_with_a_killed_parent(tmp_path: Path) -> None:
    # A parent (standing in for `engage demo`) starts a child the demo's way, then is SIGKILLed.
    parent_code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from streams.demo.orchestrator import Child\n"
        f"log = Path({str(tmp_path)!r}) / 'c.log'\n"
        f"child = Child('c', [sys.executable, '-c', {POLITE!r}], dict(os.environ), log)\n"
        "print(child.start().pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    os.kill(pid, 0)  # the child runs
    assert os.getpgid(pid) == pid  # in its own process group: a terminal's Ctrl-C reaches the parent only
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            break  # gone
        if state == "Z":
            break  # dead, waiting for init to reap it
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the child outlived its killed parent")
