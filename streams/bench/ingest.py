"""Ingest throughput: signed requests/s and events/s through one ``engage ingest`` process into Kafka.

:func:`measure_ingest` starts one ingest process (``engage ingest``, its own interpreter) in front of
a running broker and drives it from a *separate* load-generator process (``python -m
streams.bench.ingest load``): keep-alive HTTP/1.1 connections on loopback keeping ``concurrency`` requests in
flight, each a generic-endpoint JSON array of ``events_per_request`` canonical events signed with
``X-Signature-256``. Bodies are generated, signed and built into complete HTTP requests before the
clock starts, and the client is a bare asyncio protocol, so the generator spends little of the shared
CPU. Separate processes keep the CPU accounting apart: the result gives each
process's CPU seconds and the cores it used on average (CPU seconds / wall seconds).

Bounded on both axes, since an embedded Tansu broker keeps every message in memory: at most
``max_events`` events (``max_events // events_per_request`` requests) and at most ``seconds``.

Every ``200`` means Kafka acknowledged every event of that request (acks=all); anything else is
counted by status and not as throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

SECRET = "bench-secret"
BASE_MS = 1_795_342_500_000
DISTINCT_BODIES = 500
_TYPES = ("like", "comment", "share", "follow", "unfollow")


def bodies(count: int, events: int, *, seed: int = 0) -> list[tuple[bytes, str]]:
    """``count`` signed generic-endpoint bodies of ``events`` canonical events each (body, signature)."""
    out = []
    for b in range(count):
        batch = [
            {
                "event_id": f"bench-{seed}-{b}-{i}",
                "type": _TYPES[i % 5],
                "platform": "generic",
                "account_id": f"brand-{i % 10}",
                "actor_id": f"actor-{(b * events + i) % 50_000}",
                "post_id": f"post-{i % 20}",
                "text": "really enjoyed this one, thanks" if i % 5 in (1, 2) else None,
                "occurred_at": BASE_MS + b * events + i,
            }
            for i in range(events)
        ]
        body = orjson.dumps(batch)
        out.append((body, "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()))
    return out


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def request_bytes(host: str, path: str, body: bytes, signature: str) -> bytes:
    """One complete HTTP/1.1 request (keep-alive) for the generic endpoint, built before the clock."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nX-Signature-256: {signature}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def parse_response(buffer: bytes | bytearray) -> tuple[int, int, bool] | None:
    """``(status, bytes consumed, connection closes)`` of the first complete response, or ``None``.

    Enough HTTP/1.1 for a keep-alive client of ``engage ingest``: a status line, headers and a
    ``Content-Length`` body (aiohttp sends one for every ``web.Response``); no length means the body
    runs to the end of the connection, which ``close`` then says.
    """
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    status = int(head[9:12])
    at = head.find(b"\r\ncontent-length:")
    close = b"\r\nconnection: close" in head
    if at < 0:
        return status, end + 4, True
    line_end = head.find(b"\r\n", at + 2)
    length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
    total = end + 4 + length
    if len(buffer) < total:
        return None
    return status, total, close


class _Connection(asyncio.Protocol):
    """One keep-alive connection, one request at a time: ``send`` returns the response's status."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[tuple[int, bool]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        parsed = parse_response(self._buffer)
        if parsed is not None and self._waiter is not None and not self._waiter.done():
            status, consumed, close = parsed
            del self._buffer[:consumed]
            self._waiter.set_result((status, close))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            parsed = parse_response(self._buffer)
            if parsed is not None:  # a body that ran to the end of the connection
                self._waiter.set_result((parsed[0], True))
            else:
                self._waiter.set_exception(ConnectionError(f"connection lost mid-response: {exc!r}"))

    async def send(self, request: bytes) -> tuple[int, bool]:
        assert self._transport is not None
        if self.closed:  # a write to a lost connection would vanish and the wait never end
            raise ConnectionError("connection closed by the server")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def _load(
    url: str, payloads: list[tuple[bytes, str]], requests: int, seconds: float, concurrency: int
) -> dict[str, Any]:
    """``concurrency`` keep-alive connections, each sending pre-built requests one after the other.

    A raw asyncio protocol rather than aiohttp's client: the generator shares the cores with the
    service it measures, and aiohttp's client spent ~200 µs of CPU per request here, as much as a
    third of what the ingest process itself spends (measured; the raw client spends a fraction).
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    prepared = [request_bytes(parts.netloc, parts.path or "/", b, s) for b, s in payloads]
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    issued = 0

    async def connect() -> _Connection:
        _, protocol = await loop.create_connection(_Connection, host, port)
        return protocol

    async def worker() -> None:
        nonlocal issued
        connection = await connect()
        try:
            while issued < requests and time.perf_counter() < deadline:
                request = prepared[issued % len(prepared)]
                issued += 1
                started = time.perf_counter()
                status, close = await connection.send(request)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
                if close or connection.closed:
                    connection.close()
                    connection = await connect()
        finally:
            connection.close()

    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "ok": statuses.get(200, 0),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def load_main(argv: list[str]) -> int:
    """The load generator process: prints one JSON line with the outcome."""
    parser = argparse.ArgumentParser(prog="python -m streams.bench.ingest load")
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--events", type=int, default=100)
    args = parser.parse_args(argv)
    payloads = bodies(min(args.requests, DISTINCT_BODIES), args.events)
    cpu_before = time.process_time()
    result = asyncio.run(_load(args.url, payloads, args.requests, args.seconds, args.concurrency))
    result["cpu_s"] = time.process_time() - cpu_before
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"engage ingest exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("engage ingest did not become ready")


def _warm_up(url: str, events: int) -> None:
    """A few requests before the clock: connection set-up, producer metadata, first code paths."""
    for body, signature in bodies(5, events, seed=1):
        request = urllib.request.Request(
            url + "/v1/events", data=body, headers={"X-Signature-256": signature}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            if response.status != 200:
                raise RuntimeError(f"warm-up request answered {response.status}")


def measure_ingest(
    bootstrap: str,
    *,
    topic_prefix: str,
    partitions: int,
    seconds: float = 10.0,
    max_events: int = 1_000_000,
    events_per_request: int = 100,
    concurrency: int = 64,
    extra_env: dict[str, str] | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """Start one ingest process on ``bootstrap`` (topics ``topic_prefix``…, created here), drive it.

    ``extra_env`` is added to the ingest process's environment only (a setting to try, or a
    ``PYTHONPATH`` to compare another checkout of the service under the same load generator).
    ``command`` replaces ``engage ingest`` by another server configured from the same environment
    (``tests/bench/ingest_floor.py`` measures bare aiohttp/aiokafka servers that way).

    Returns ``requests_per_s`` and ``events_per_s`` (acknowledged only), ``p50_ms``/``p99_ms``,
    ``events_per_request``, ``events`` (accepted during the measured run, warm-up excluded),
    ``warmup_events``, the statuses, and per process (``ingest``/``loadgen``) the CPU microseconds
    per request and the cores used on average.
    """
    from streams.embedded.broker import free_port
    from streams.runtime import create_topics
    from streams.settings import Settings

    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "ENGAGE_TOPIC_PREFIX": topic_prefix,
        "ENGAGE_TOPIC_PARTITIONS": str(partitions),
        "ENGAGE_WEBHOOK_SECRETS": f"generic={SECRET}",
        # Bodies are signed before the clock starts, without a timestamp; no fixed /metrics port.
        "ENGAGE_WEBHOOK_UNTIMED_SOURCES": "generic",
        "ENGAGE_INGEST_METRICS_PORT": "0",
        "ENGAGE_INGEST_HOST": "127.0.0.1",
        "ENGAGE_INGEST_PORT": str(free_port()),
    }
    settings = Settings.from_env(env)
    create_topics(settings, bootstrap)
    url = f"http://127.0.0.1:{settings.ingest_port}"
    requests = max(1, max_events // events_per_request)
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            command or [sys.executable, "-m", "streams.cli", "ingest"],
            env={**env, **(extra_env or {})},
            stdout=subprocess.DEVNULL,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        try:
            try:
                _wait_ready(url, proc)
                _warm_up(url, events_per_request)
            except (RuntimeError, OSError) as exc:
                log.seek(0)
                raise RuntimeError(f"{exc}: {log.read()[-2000:].decode(errors='replace')}") from exc
            cpu_before = process_cpu_s(proc.pid)
            generator = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "streams.bench.ingest",
                    "load",
                    f"--url={url}/v1/events",
                    f"--requests={requests}",
                    f"--seconds={seconds}",
                    f"--concurrency={concurrency}",
                    f"--events={events_per_request}",
                ],
                env=env,
                capture_output=True,
                timeout=seconds + 120,
                check=False,
            )
            ingest_cpu = process_cpu_s(proc.pid) - cpu_before
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    lines = [ln for ln in generator.stdout.decode().splitlines() if ln.startswith("{")]
    if generator.returncode != 0 or not lines:
        raise RuntimeError(f"load generator failed ({generator.returncode}): {generator.stderr[-2000:]!r}")
    load = orjson.loads(lines[-1])
    ok, elapsed = load["ok"], load["seconds"]
    per_request = max(load["requests"], 1)
    return {
        "requests_per_s": ok / elapsed,
        "events_per_s": ok * events_per_request / elapsed,
        "p50_ms": load["p50_ms"],
        "p99_ms": load["p99_ms"],
        "events_per_request": events_per_request,
        "requests": load["requests"],
        "events": ok * events_per_request,
        "warmup_events": 5 * events_per_request,
        "statuses": load["statuses"],
        "concurrency": concurrency,
        "seconds": elapsed,
        "ingest_cpu_us_per_request": ingest_cpu / per_request * 1e6,
        "ingest_cores": ingest_cpu / elapsed,
        "loadgen_cpu_us_per_request": load["cpu_s"] / per_request * 1e6,
        "loadgen_cores": load["cpu_s"] / elapsed,
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["load"]:
        return load_main(argv[1:])
    raise SystemExit("usage: python -m streams.bench.ingest load --url URL --requests N --seconds S")


if __name__ == "__main__":
    sys.exit(main())
