"""Locating the Debian Prometheus tools the deploy tests run (installed by `make tools`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"

# Debian names the Alertmanager binary `prometheus-alertmanager`; upstream tarballs `alertmanager`.
_BINARIES = {
    "prometheus": ("prometheus",),
    "promtool": ("promtool",),
    "alertmanager": ("prometheus-alertmanager", "alertmanager"),
    "amtool": ("amtool",),
}


def binary(tool: str) -> str:
    """The path of a required tool; fails (not skips) the test when missing, naming the package."""
    for name in _BINARIES[tool]:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        f"{tool} not found: install Debian's `prometheus` and `prometheus-alertmanager` packages "
        "(`make tools` does)",
        pytrace=False,
    )


def run_tool(
    args: list[str], cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def start_daemon(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start a server binary in its own process group, output appended to ``log_path``."""
    with log_path.open("ab") as log:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(proc: subprocess.Popen[bytes], url: str, log_path: Path, timeout_s: float = 30.0) -> None:
    """Until ``url`` answers 200; raises (after stopping ``proc``) if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited ({proc.returncode}): {tail(log_path)}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.1)
    stop_daemon(proc)
    raise RuntimeError(f"{url} not ready after {timeout_s}s: {tail(log_path)}")


def stop_daemon(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM the process group we started, SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""
