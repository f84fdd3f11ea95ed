"""Locating the Debian Prometheus tools the deploy tests run (installed by `.ci/run`)."""

from __future__ import annotations

import shutil
import subprocess
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
        "(`.ci/run` does)",
        pytrace=False,
    )


def run_tool(
    args: list[str], cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
