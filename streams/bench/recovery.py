"""Recovery time of a restarted worker holding N pairs of state (and the pairs rows, which share it).

Pairs: ``python -m streams.bench.pairs N`` in a fresh process per size (see :mod:`streams.bench.pairs`).

Recovery: the N-pair process also writes its state to the state table's changelog topic
(``<prefix><group>-engagement-state-changelog``, four partitions) exactly as a worker's flushes leave it: one
record per follower on its murmur2 partition, in record batches, and a progress record per partition,
as if a worker of the group had built that state and stopped. Then a fresh
``engage worker --sink memory`` of that group starts while probe events trickle in (one one-word
comment of a new follower per partition every 0.25 s, which keeps a pair as likes do not, dated at the
state's watermark), as live traffic would. Measured from the process start:

- ``first_event_s``: until a partition's runner restored its engine from the table and the worker
  consumed an event. Faust starts the agents only once the table is recovered, so this is start-up +
  group join + changelog read + one partition's restore. The throughput phase's worker reports the
  same start → first event with an empty table (``start_to_first_event_s``): the baseline.
- ``all_partitions_s``: until all four partitions' runners were restored and processing.
- milestones from the worker's log (changelog read start/done, by
  :mod:`streams.worker.faust_adapter.fast_recovery` or by Faust's own recovery; worker ready), for
  where time goes.

Then the check: its ``engage_tracked_pairs`` reaches the N pairs plus the probes' new ones.

Why a trickle rather than probes produced before the start: measured once with 1M pairs, a worker
that found its probes already waiting did not consume them until a new message arrived (80 s after
"Worker ready"). The likely cause, found since: Faust cleared its queues at the end of recovery after
its fetcher had already delivered waiting messages into them, so they were lost rather than late
(fixed in :mod:`streams.worker.faust_adapter.recovery_gate`). The trickle stays: it measures a
restart under live traffic.

The topics live in the embedded broker's memory (~60 MB for 1M pairs), hence no recovery figure at 5M.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from streams.bench.pairs import END_MS
from streams.bench.procs import ENGAGE, Child, bench_env, peak_rss_mb, scrape, wait_until
from streams.embedded.broker import ensure_topics, free_port
from streams.events import Interaction
from streams.partitioning import partition_for
from streams.producer import KafkaEventPublisher
from streams.runtime import create_topics
from streams.settings import Settings
from streams.topics import changelog_topic
from streams.worker.stage import TABLE_NAME

PARTITIONS = 4


def pairs_subprocess(pairs: int, *extra: str, template: int | None = None) -> dict[str, Any]:
    """Run :mod:`streams.bench.pairs` in a fresh interpreter and return its JSON line."""
    argv = [sys.executable, "-m", "streams.bench.pairs", str(pairs), *extra]
    if template is not None:
        argv += ["--template", str(template)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"pairs {pairs} failed: {proc.stderr[-2000:]}")
    result: dict[str, Any] = orjson.loads(proc.stdout.strip().splitlines()[-1])
    return result


def probe_events(round_: int) -> list[Interaction]:
    """One one-word comment of a new follower per partition, dated at the restored state's watermark."""
    events: list[Interaction] = []
    seen: set[int] = set()
    i = 0
    while len(seen) < PARTITIONS:
        actor = f"recovery-probe-{round_}-{i}"
        partition = partition_for(actor.encode(), PARTITIONS)
        if partition not in seen:
            seen.add(partition)
            # A one-word comment: scored, so it keeps a pair (likes weigh 0 by default and keep none).
            events.append(
                Interaction(f"{actor}-e", "comment", "generic", "acct00001", actor, "p", "Nice!", END_MS)
            )
        i += 1
    return events


def measure(
    bootstrap: str, data_dir: Path, pairs: int, *, template: int | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Returns (the pairs row for ``pairs``, the recovery row)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = bench_env(bootstrap, data_dir, f"rec{uuid.uuid4().hex[:4]}.", ENGAGE_WORKER_METRICS_PORT=str(port))
    settings = Settings.from_env(env)
    create_topics(settings, bootstrap)
    changelog = changelog_topic(settings, TABLE_NAME)  # the worker's: ENGAGE_TOPIC_PREFIX first
    ensure_topics(bootstrap, [changelog], partitions=PARTITIONS)
    state = pairs_subprocess(
        pairs,
        "--changelog",
        changelog,
        "--bootstrap",
        bootstrap,
        "--partitions",
        str(PARTITIONS),
        template=template,
    )
    worker = Child(
        [*ENGAGE, "worker", "--sink", "memory", "--loglevel", "info"], env, data_dir / "worker.log"
    )
    sent = 0
    try:
        with KafkaEventPublisher(bootstrap, settings.topics, PARTITIONS, max_batch=500) as publisher:

            def processing(partitions: int) -> bool:
                """Send the next round of probes; True once ``partitions`` runners were recovered."""
                nonlocal sent
                worker.check()
                publisher.send(probe_events(sent))
                sent += 1
                return (
                    _recovered_lines(worker) >= partitions
                    and scrape(port).get("engage_events_consumed_total", 0) > 0
                )

            first = wait_until(lambda: processing(1), 600, "the restarted worker's first event", 0.25)
            everything = wait_until(lambda: processing(PARTITIONS), 120, "every partition recovered", 0.25)
        wanted = pairs + PARTITIONS
        wait_until(lambda: scrape(port).get("engage_tracked_pairs", 0) >= wanted, 60, f"{wanted} pairs")
        tracked = scrape(port).get("engage_tracked_pairs", 0)
        rss = peak_rss_mb(worker.pid)
    finally:
        worker.stop()
    recovery = {
        "pairs": pairs,
        "changelog_records": state.get("changelog_records"),
        "first_event_s": first - worker.started,
        "all_partitions_s": everything - worker.started,
        "tracked_pairs": tracked,
        "partitions_recovered": _recovered_lines(worker),
        "probe_rounds": sent,
        "worker_peak_rss_mb": rss,
        **_faust_phases(worker.log_path.read_text(errors="replace"), worker.started_at),
    }
    # who read the changelog: faust_adapter.fast_recovery (a plain consumer) or Faust's record-by-record loop
    log_text = worker.log_path.read_text(errors="replace")
    recovery["changelog_reader"] = "plain consumer" if ": changelog read done: " in log_text else "faust"
    return state, recovery


def _recovered_lines(worker: Child) -> int:
    """The worker logs ``recovered partition N: …`` once a partition's runner restored its engine."""
    return worker.log_path.read_text(errors="replace").count(": recovered partition ")


def _faust_phases(log: str, started_at: float) -> dict[str, float]:
    """Seconds from the process start to Faust's recovery milestones, from its log timestamps."""
    marks = {  # Faust's own changelog read, or ours (streams.worker.faust_adapter.fast_recovery)
        "changelog_read_start_s": ("Restoring state from changelog topics", ": changelog read: "),
        "changelog_read_done_s": ("Done reading from changelog topics", ": changelog read done: "),
        "worker_ready_s": ("Worker]: Ready",),
    }
    found: dict[str, float] = {}
    for line in log.splitlines():  # streams.logs' text format: "2026-12-07 00:01:03,149 INFO name: ..."
        for name, texts in marks.items():
            if name not in found and any(text in line for text in texts) and line[:1].isdigit():
                stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                found[name] = stamp - started_at
    return found
