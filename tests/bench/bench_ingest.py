"""Ingest throughput: signed requests/s and events/s through ``engage ingest`` into Kafka, p50/p99.

One ingest process (``engage ingest``, a subprocess with its own interpreter) in front of the embedded
Tansu broker; this process is the load generator: an aiohttp client on loopback keeping
``--concurrency`` requests in flight, each a generic-endpoint batch of ``--events`` canonical events,
signed with ``X-Signature-256``. Bodies are generated and signed before the clock starts so the load
generator spends its CPU on HTTP only. Every request must be answered 200 (acknowledged by Kafka).

Bounded: stops after ``--requests`` requests or ``--seconds`` seconds, whichever comes first.

    .venv/bin/python tests/bench/bench_ingest.py [--requests 20000] [--seconds 20] [--concurrency 64]

Prints a summary and one JSON line (``{"bench": "ingest", ...}``) for ``make bench`` to collect.
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
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[2]
SECRET = "bench-secret"
BASE_MS = 1_795_342_500_000


def bodies(count: int, events: int) -> list[tuple[bytes, str]]:
    out = []
    for b in range(count):
        batch = [
            {
                "event_id": f"bench-{b}-{i}",
                "type": ("like", "comment", "share", "follow", "unfollow")[i % 5],
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


async def load(url: str, payloads: list[tuple[bytes, str]], args: argparse.Namespace) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    issued = 0
    deadline = time.perf_counter() + args.seconds
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal issued
            while issued < args.requests and time.perf_counter() < deadline:
                body, signature = payloads[issued % len(payloads)]
                issued += 1
                started = time.perf_counter()
                async with session.post(
                    url, data=body, headers={"X-Signature-256": signature, "Content-Type": "application/json"}
                ) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                latencies.append(time.perf_counter() - started)

        # Warm-up: connections, producer metadata, the server's first envelopes.
        for body, signature in payloads[:20]:
            async with session.post(url, data=body, headers={"X-Signature-256": signature}) as response:
                await response.read()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - started
    ok = statuses.get(200, 0)
    latencies.sort()
    return {
        "bench": "ingest",
        "requests": len(latencies),
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "events_per_request": args.events,
        "concurrency": args.concurrency,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(ok / elapsed, 1),
        "events_per_s": round(ok * args.events / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux ``/proc``): the cost per request, whatever the load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    import urllib.request

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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--profile", help="write a cProfile of the ingest process to this file")
    args = parser.parse_args(argv)

    from streams.embedded.broker import EmbeddedBroker, free_port
    from streams.runtime import create_topics
    from streams.settings import Settings

    payloads = bodies(min(args.requests, 500), args.events)
    port = free_port()
    with EmbeddedBroker() as broker:
        create_topics(Settings(), broker.bootstrap)
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "ENGAGE_WEBHOOK_SECRETS": f"generic={SECRET}",
            "ENGAGE_INGEST_PORT": str(port),
        }
        command = [sys.executable, "-m", "streams.cli", "ingest"]
        if args.profile:
            command[1:1] = ["-m", "cProfile", "-o", args.profile]
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, proc)
            cpu_before = process_cpu_s(proc.pid)
            result = asyncio.run(load(base + "/v1/events", payloads, args))
            cpu = process_cpu_s(proc.pid) - cpu_before
            result["ingest_cpu_s"] = round(cpu, 2)
            result["ingest_cpu_us_per_request"] = round(cpu / max(result["requests"], 1) * 1e6, 1)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(
        f"ingest: {result['requests_per_s']:.0f} signed requests/s, {result['events_per_s']:.0f} events/s "
        f"({result['events_per_request']} events/request, {result['concurrency']} in flight), "
        f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, statuses {result['statuses']}, "
        f"ingest CPU {result['ingest_cpu_us_per_request']} µs/request, "
        f"load avg {result['load_avg_1m']} on {result['cpus']} cpus"
    )
    print(orjson.dumps(result).decode())
    return result


if __name__ == "__main__":
    main()
