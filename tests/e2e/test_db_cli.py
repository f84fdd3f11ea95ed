"""``engage db`` and ``engage report`` as a user runs them: separate processes on an embedded chDB."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ENGAGE = [sys.executable, "-m", "streams.cli"]


def _engage(data_dir: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("ENGAGE_", "CLICKHOUSE_"))}
    environ.update(ENGAGE_DATA_DIR=str(data_dir), **env)
    return subprocess.run([*ENGAGE, *argv], env=environ, capture_output=True, text=True, timeout=120)


def test_migrate_twice_status_and_a_held_data_dir(tmp_path: Path) -> None:
    first = _engage(tmp_path, "db", "migrate")
    assert first.returncode == 0, first.stderr
    assert "applied 0001_activity.sql" in first.stdout and "applied 0004_views.sql" in first.stdout

    again = _engage(tmp_path, "db", "migrate")
    assert again.returncode == 0, again.stderr
    assert "applied" not in again.stdout and "up to date" in again.stdout

    status = _engage(tmp_path, "db", "status", ENGAGE_ACTIVITY_TTL="90d")
    assert status.returncode == 0, status.stderr
    assert status.stdout.count(" applied ") == 5
    assert "ttl account_activity_1m: 400 days" in status.stdout  # status changes nothing

    # A worker holds the chDB directory: report says so instead of failing obscurely.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, clickhouse_connect\n"
            f"c = clickhouse_connect.get_client(dsn='chdb://{tmp_path / 'clickhouse'}')\n"
            "c.command('SELECT 1'); print('ready', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        held = _engage(tmp_path, "report", "--account", "acme")
        assert held.returncode == 1
        assert "in use by another process" in held.stderr
    finally:
        holder.communicate("", timeout=30)
    free = _engage(tmp_path, "report", "--account", "acme", "--json")
    assert free.returncode == 0, free.stderr
    assert '"engaged_followers": 0' in free.stdout


def test_report_without_data_says_what_to_do(tmp_path: Path) -> None:
    result = _engage(tmp_path, "report", "--account", "acme")
    assert result.returncode == 2
    assert "engage db migrate" in result.stderr
    assert not (tmp_path / "clickhouse").exists()
