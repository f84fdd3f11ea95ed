"""``engage ingest`` as a user runs it: embedded broker, a signed webhook, health, a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.webhooks import FIXTURES, SECRETS, VERIFY_TOKEN, signature_headers

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_") and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    env.update(extra)
    return env


def test_ingest_requires_kafka_or_embedded() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "ingest"], env=_env(), cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2 and "KAFKA_BOOTSTRAP_SERVERS" in result.stderr


def test_ingest_embedded_serves_signed_webhooks_and_stops_cleanly() -> None:
    secrets = ",".join(f"{k}={v}" for k, v in SECRETS.items())
    env = _env(ENGAGE_WEBHOOK_SECRETS=secrets, ENGAGE_META_VERIFY_TOKEN=VERIFY_TOKEN, ENGAGE_INGEST_PORT="0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "ingest", "--embedded"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        line = ""
        while "ingest listening on" not in line:
            assert time.monotonic() < deadline and proc.poll() is None, "ingest did not start"
            line = proc.stdout.readline()
        base = line.split("ingest listening on ")[1].split()[0]
        with urllib.request.urlopen(base + "/readyz", timeout=10) as response:
            assert response.status == 200
        body = (FIXTURES / "meta" / "page_feed_multi_entry.json").read_bytes()
        request = urllib.request.Request(
            base + "/v1/webhooks/meta",
            data=body,
            headers=dict(signature_headers("meta", body)),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            assert b'"accepted":4' in response.read()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "ingest stopped" in out
        for secret in (*SECRETS.values(), VERIFY_TOKEN):
            assert secret not in out and secret not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
