"""``engage ingest`` as a user runs it: embedded broker, a signed webhook, health, a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import orjson

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


def test_ingest_embedded_serves_signed_webhooks_and_stops_cleanly(tmp_path: Path) -> None:
    secrets = ",".join(f"{k}={v}" for k, v in SECRETS.items())
    env = _env(
        ENGAGE_WEBHOOK_SECRETS=secrets,
        ENGAGE_META_VERIFY_TOKEN=VERIFY_TOKEN,
        ENGAGE_INGEST_PORT="0",
        ENGAGE_INGEST_METRICS_PORT="0",
        ENGAGE_INGEST_SHUTDOWN_TIMEOUT="2s",
    )
    log_path = tmp_path / "stderr.log"
    # The debug log goes to a file: a pipe nobody reads until the end would fill and block the service.
    log_file = log_path.open("w")
    proc = subprocess.Popen(
        # -vv: debug logging, so a secret logged at any level (an access log line) would show below.
        [sys.executable, "-m", "streams.cli", "-vv", "ingest", "--embedded"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log_file,
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
        # The secrets travel in a query string (Meta's handshake) and as HMAC keys (X's CRC, signatures).
        query = urllib.parse.urlencode(
            {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "8080"}
        )
        with urllib.request.urlopen(f"{base}/v1/webhooks/meta?{query}", timeout=10) as response:
            assert response.read() == b"8080"
        with urllib.request.urlopen(f"{base}/v1/webhooks/x?crc_token=crc-token-0001", timeout=10) as response:
            assert b"response_token" in response.read()
        forged = urllib.request.Request(
            base + "/v1/webhooks/x", data=body, headers={"x-twitter-webhooks-signature": "sha256=AAAA"}
        )
        try:
            urllib.request.urlopen(forged, timeout=10)
            raise AssertionError("a forged signature was accepted")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
        # Clients left open at SIGTERM (idle, and one half-way through a body) do not hold the stop
        # beyond ENGAGE_INGEST_SHUTDOWN_TIMEOUT (aiohttp's default waited 60 s: the probe saw 61 s).
        host, port = base.removeprefix("http://").rsplit(":", 1)
        clients = [socket.create_connection((host, int(port))) for _ in range(3)]
        clients[0].sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n[")
        time.sleep(0.3)
        asked = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        took = time.monotonic() - asked
        for client in clients:
            client.close()
        err = log_path.read_text()
        assert proc.returncode == 0, err
        assert "ingest stopped" in out
        # 2 s for requests in flight, up to the 5 s ack deadline for the producer, the broker's stop.
        assert took < 15, took
        assert " DEBUG " in err  # the log was written at the most verbose level
        for secret in (*SECRETS.values(), VERIFY_TOKEN):
            assert secret not in out and secret not in err
        # -vv logs no message values: the texts and actors the webhook carried are nowhere.
        for event in orjson.loads((FIXTURES / "meta" / "page_feed_multi_entry.expected.json").read_bytes())[
            "events"
        ]:
            for value in (event.get("text"), event["actor_id"]):
                assert not value or value not in err, value
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log_file.close()
