"""End-to-end latency, webhook accepted → aggregate visible in ClickHouse, and ClickHouse rows per event.

The live pipeline as deployed on the embedded default: ``engage ingest`` and one worker with the
ClickHouse sink on a fresh chDB path (``python -m streams.bench.probe_worker``, the ``engage worker``
command with a watching sink), both on the benchmark's broker.

Traffic: the benchmark mix (:mod:`streams.bench.workload`) posted as signed generic webhooks of 100
events, paced at ``rate`` events/s in 50 ms steps with at most 32 requests in flight. Each event's
``occurred_at`` is restamped to the wall clock when it is sent, as live traffic would be (the generator
runs event time thousands of times faster than wall time, which would make a slow probe late).

The rate: 50% of the live pipeline's max, measured first in the same session, not the throughput
figure (c): (c) runs the worker alone with ``--sink memory`` over pre-produced envelopes, while here
the sender, ingest, the worker and chDB share the two cores, and (c)'s rate is beyond what this setup
sustains. The max: a burst posted at (c)'s rate (or as fast as the sender gets) for ``burst_s``;
events accepted ÷ time from its first request until the worker consumed them all. A burst is processed
in larger flushes than steady traffic, so this max is optimistic; the latency run reports whether the
worker kept up (``worker_events_per_s_during`` vs ``accepted_events_per_s``).

Probes: every ``probe_every_s`` one extra webhook carrying a single like for a dedicated account
(``bench-probe-NNNNN``). Its *accepted* time is when the sender read the 2xx answer (ingest answers
only after Kafka acknowledged). Its *visible* time is logged by the worker's sink right after a
``SELECT`` on ``account_activity_1m`` returned the probe's row (see :mod:`streams.bench.probe_worker`).
Both are ``time.time()`` on this machine. Latency = visible − accepted; it includes the worker's
commit interval (``ENGAGE_COMMIT_INTERVAL``, 1 s, the default), since aggregates are written per flush.

Rows per event: after the traffic, once the worker has consumed every accepted event and committed
again, ``engage_sink_rows_written_total`` by table divided by ``engage_events_consumed_total``. The
per-minute aggregates merge within one flush, so this depends on the rate and the commit interval:
it is the figure for this rate.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import secrets
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from streams.bench.probe_worker import PROBE_PREFIX
from streams.bench.procs import (
    ENGAGE,
    PROGRESS,
    Child,
    bench_env,
    peak_rss_mb,
    scrape,
    scrape_labelled,
    wait_until,
)
from streams.demo.generator import GeneratorConfig, TrafficGenerator
from streams.demo.webhooks import WebhookRequest, build_requests
from streams.embedded.broker import free_port
from streams.events import Interaction
from streams.runtime import create_topics
from streams.settings import Settings

STEP_S = 0.05
IN_FLIGHT = 32


@dataclass
class Traffic:
    """What the sender did: events accepted (2xx) and failed, and each probe's accepted time."""

    accepted: int = 0
    failed: int = 0
    requests: int = 0
    seconds: float = 0.0
    started: float = 0.0  # time.perf_counter() at the first request
    behind_s: float = 0.0
    probes: dict[str, float] = field(default_factory=dict)  # account → accepted at (unix s)


def probe_event(tag: str, index: int, at_ms: int) -> Interaction:
    account = f"{PROBE_PREFIX}{tag}-{index:05d}"
    return Interaction(f"{account}-e", "like", "generic", account, f"{account}-fan", "probe", None, at_ms)


async def send_traffic(
    url: str, secret: str, rate: float, seconds: float, probe_every_s: float, *, tag: str, seed: int = 11
) -> Traffic:
    """Post the mix at ``rate`` for ``seconds`` plus a probe every ``probe_every_s`` (accounts ``…tag-N``)."""
    events = iter(TrafficGenerator(GeneratorConfig.bench(seed)))
    keys = {"generic": secret}
    traffic = Traffic()
    slots = asyncio.Semaphore(IN_FLIGHT)
    tasks: set[asyncio.Task[None]] = set()
    probe_numbers = itertools.count()

    async def post(session: aiohttp.ClientSession, request: WebhookRequest, probe: str | None) -> None:
        try:
            async with session.post(request.path, data=request.body, headers=request.headers) as resp:
                await resp.read()
                ok = 200 <= resp.status < 300
        except (aiohttp.ClientError, OSError, TimeoutError):
            ok = False
        finally:
            slots.release()
        traffic.requests += 1
        if ok:
            traffic.accepted += len(request.events)
            if probe is not None:
                traffic.probes[probe] = time.time()
        else:
            traffic.failed += len(request.events)

    async def submit(session: aiohttp.ClientSession, request: WebhookRequest, probe: str | None) -> None:
        await slots.acquire()
        task = asyncio.create_task(post(session, request, probe))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async with aiohttp.ClientSession(base_url=url, timeout=aiohttp.ClientTimeout(total=30)) as session:
        started = traffic.started = time.perf_counter()
        owed = 0.0
        next_probe = started
        for step in itertools.count():
            due = started + step * STEP_S
            now = time.perf_counter()
            if due >= started + seconds:
                break
            if due > now:
                await asyncio.sleep(due - now)
            else:
                traffic.behind_s = max(traffic.behind_s, now - due)
            owed += rate * STEP_S
            count = int(owed)
            owed -= count
            at_ms = int(time.time() * 1000)
            batch = [dataclasses.replace(e, occurred_at_ms=at_ms) for e in itertools.islice(events, count)]
            for request in build_requests(batch, keys, max_events=100):
                await submit(session, request, None)
            if time.perf_counter() >= next_probe:
                probe = probe_event(tag, next(probe_numbers), at_ms)
                await submit(session, build_requests([probe], keys)[0], probe.account_id)
                next_probe += probe_every_s
        if tasks:
            await asyncio.gather(*tasks)
        traffic.seconds = time.perf_counter() - started
    return traffic


def read_probe_log(path: Path) -> dict[str, float]:
    """account → first time the worker saw it in ClickHouse."""
    seen: dict[str, float] = {}
    if path.exists():
        for line in path.read_bytes().splitlines():
            if line.strip():
                entry = orjson.loads(line)
                seen.setdefault(entry["account"], entry["visible_at"])
    return seen


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def insert_seconds(samples: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean seconds per ClickHouse insert, by table, over the worker's life."""
    sums = samples.get("engage_sink_flush_duration_seconds_sum", {})
    counts = samples.get("engage_sink_flush_duration_seconds_count", {})
    return {
        labels.removeprefix("table="): total / counts[labels]
        for labels, total in sums.items()
        if counts.get(labels)
    }


def _ready(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/readyz", timeout=2) as resp:
        return bool(resp.status == 200)


def measure(
    bootstrap: str,
    data_dir: Path,
    burst_rate: float,
    *,
    burst_s: float = 8.0,
    seconds: float = 20.0,
    load: float = 0.5,
    probe_every_s: float = 0.2,
) -> dict[str, Any]:
    """Run ingest + a ClickHouse worker; measure the pipeline's max, then latency at ``load`` × max."""
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(16)
    metrics_port, ingest_port = free_port(), free_port()
    env = bench_env(
        bootstrap,
        data_dir,
        f"lat{uuid.uuid4().hex[:4]}.",
        ENGAGE_WEBHOOK_SECRETS=f"generic={secret}",
        ENGAGE_WORKER_METRICS_PORT=str(metrics_port),
        ENGAGE_INGEST_PORT=str(ingest_port),
    )
    create_topics(Settings.from_env(env), bootstrap)
    probe_log = data_dir / "probes.ndjson"
    worker = Child(
        [ENGAGE[0], "-m", "streams.bench.probe_worker", "--probe-log", str(probe_log)],
        env,
        data_dir / "worker.log",
    )
    ingest = Child([*ENGAGE, "ingest", "--port", str(ingest_port)], env, data_dir / "ingest.log")
    url = f"http://127.0.0.1:{ingest_port}"

    def consumed() -> float:
        worker.check()
        return scrape(metrics_port, PROGRESS).get("engage_events_consumed_total", 0)

    def rows() -> dict[str, float]:
        found = scrape_labelled(metrics_port).get("engage_sink_rows_written_total", {})
        return {labels.removeprefix("table="): value for labels, value in found.items()}

    def settle() -> None:
        """Wait for two more commit ticks: what was consumed so far is flushed and written."""
        commits = scrape(metrics_port, PROGRESS).get("engage_offset_commits_total", 0)
        wait_until(
            lambda: scrape(metrics_port, PROGRESS).get("engage_offset_commits_total", 0) > commits + 1,
            60,
            "a commit",
        )

    try:
        wait_until(lambda: _ready(url), 60, "ingest /readyz")
        # Warm up: the worker has joined its group and written to ClickHouse once.
        warm = asyncio.run(send_traffic(url, secret, 200, 1.0, 0.5, tag="warmup", seed=12))
        wait_until(lambda: len(read_probe_log(probe_log)) >= len(warm.probes) > 0, 120, "the warm-up probes")
        # The pipeline's max: a burst faster than it can take, timed until the worker consumed all of it.
        before = consumed()
        burst = asyncio.run(send_traffic(url, secret, burst_rate, burst_s, 1.0, tag="max", seed=13))
        drained = wait_until(lambda: consumed() >= before + burst.accepted, 300, "the burst to be consumed")
        max_rate = burst.accepted / (drained - burst.started)
        settle()  # the burst's last flushes reach ClickHouse before the run starts
        # The latency run at `load` of that max.
        rows_before, before = rows(), consumed()
        traffic = asyncio.run(send_traffic(url, secret, load * max_rate, seconds, probe_every_s, tag="run"))
        during = consumed() - before
        wait_until(lambda: consumed() >= before + traffic.accepted, 120, "every accepted event consumed")
        wait_until(lambda: set(traffic.probes) <= set(read_probe_log(probe_log)), 30, "the probes", 0.5)
        settle()
        events = consumed() - before
        written = {t: n - rows_before.get(t, 0) for t, n in rows().items()}
        inserts = insert_seconds(scrape_labelled(metrics_port))
        rss = peak_rss_mb(worker.pid)
    finally:
        ingest.stop()
        worker.stop(60)
    seen = read_probe_log(probe_log)
    latencies = [seen[a] - t for a, t in traffic.probes.items() if a in seen]
    latency = {
        "max_events_per_s": max_rate,
        "max_burst_sent_events_per_s": (burst.accepted + burst.failed) / burst.seconds,
        "load": load,
        "target_events_per_s": load * max_rate,
        "sent_events_per_s": (traffic.accepted + traffic.failed) / traffic.seconds,
        "accepted_events_per_s": traffic.accepted / traffic.seconds,
        "worker_events_per_s_during": during / traffic.seconds,
        "failed_events": traffic.failed,
        "sender_behind_s": traffic.behind_s,
        "probes": len(traffic.probes),
        "probes_found": len(latencies),
        "p50_s": percentile(latencies, 50) if latencies else None,
        "p99_s": percentile(latencies, 99) if latencies else None,
        "max_s": max(latencies) if latencies else None,
        "worker_peak_rss_mb": rss,
        "latencies_s": [round(seen[a] - t, 3) for a, t in sorted(traffic.probes.items()) if a in seen],
    }
    clickhouse = {
        "events": events,
        "rows": sum(written.values()),
        "rows_per_event": sum(written.values()) / events if events else None,
        "rows_per_event_by_table": {t: n / events for t, n in sorted(written.items())} if events else {},
        "mean_insert_s_by_table": inserts,
    }
    return {"latency": latency, "clickhouse": clickhouse}
