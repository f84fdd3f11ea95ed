"""``engage demo`` (what ``make run`` runs): the whole pipeline on the embedded default, with live traffic.

Starts the embedded broker (unless ``KAFKA_BOOTSTRAP_SERVERS`` is set), one ``engage worker`` writing to
ClickHouse (chDB under ``ENGAGE_DATA_DIR`` unless ``CLICKHOUSE_DSN`` is set), one ``engage ingest``, and
posts signed generic/Meta/X webhooks from the traffic generator to it, with event time running
``--time-scale`` times faster than wall time. A live screen (or ``--plain`` log lines) shows what
happens; Ctrl-C or ``--duration`` stops everything in order.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.demo.generator import GeneratorConfig, TrafficGenerator
from streams.demo.orchestrator import Orchestrator
from streams.demo.runs import RunRecord, next_start_ms
from streams.demo.screen import DemoInfo, Screen, duration_text
from streams.demo.session import Outcome, Session, SessionPlan
from streams.demo.webhooks import SOURCES
from streams.errors import ConfigError, EngageError
from streams.kafka_security import PLAINTEXT
from streams.settings import Settings, parse_duration_ms

log = logging.getLogger(__name__)

DEMO_WINDOW = "2d"  # followers engage and lapse within a couple of minutes at ×3600
#: How far ahead of the wall clock the demo's ingest accepts events: ten years of event time, ten wall
#: days at the default ×3600.
DEMO_FUTURE_SKEW = "3650d"
# Wall seconds of pipeline delay the allowed lateness must cover. Outputs become final that much
# behind the newest event; a worker lagging more than this dead-letters events as late (×3600: 10 h).
PIPELINE_SLACK_S = 10.0
# The embedded broker (Tansu 0.6, memory storage) keeps every record it is sent: it has no retention and
# answers DeleteRecords with a panic ("not yet implemented"), so its memory grows with the traffic and
# nothing in the pipeline can bound it (issue 17). The demo stops itself before it takes the machine.
BROKER_BUDGET_CAP_MB = 2048
# The client settings the demo gives its worker on the embedded broker. Tansu holds every fetch for its
# wait (about half of it from 250 ms on), even one that found data, and for each fetch that finds data
# lists all the record batches the partition has ever stored: the longer it runs, the more a fetch
# costs it. Kafka's default wait (500 ms) instead of the worker's 100 ms means fewer fetches, for a
# latency the demo does not need (README, Soak).
EMBEDDED_CLIENTS = {"ENGAGE_FETCH_MAX_WAIT": "500ms"}


def broker_budget_mb(meminfo: str) -> float:
    """A quarter of ``MemTotal`` (``/proc/meminfo`` text), at most ``BROKER_BUDGET_CAP_MB``."""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return min(float(BROKER_BUDGET_CAP_MB), int(line.split()[1]) / 1024 / 4)
    return float(BROKER_BUDGET_CAP_MB)


def broker_limit(memory_mb: Callable[[], float | None], budget_mb: float) -> Callable[[], str | None]:
    """The session's stop condition: a reason once the embedded broker holds more than ``budget_mb``."""

    def over() -> str | None:
        used = memory_mb()
        if budget_mb <= 0 or used is None or used <= budget_mb:
            return None
        return (
            f"stopping: the embedded broker holds {used:,.0f} MB, over its budget of {budget_mb:,.0f} MB "
            "(it keeps every message: no retention in its memory storage). Run again to go on from here, "
            "or set KAFKA_BOOTSTRAP_SERVERS to a Kafka with retention to run for good."
        )

    return over


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "demo", help="run the whole pipeline with generated webhook traffic and a live view (make run)"
    )
    parser.add_argument("--rate", type=float, default=2000.0, help="mean events per second (default 2000)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=3600.0,
        help="event seconds per wall second (default 3600: an event-time hour per second)",
    )
    parser.add_argument("--duration", type=float, default=None, help="stop after S seconds of traffic")
    parser.add_argument("--seed", type=int, default=0, help="the generator's seed (the audience and stream)")
    parser.add_argument(
        "--window",
        default=None,
        help=f"engagement window W for this demo (default {DEMO_WINDOW}, or ENGAGE_WINDOW if set)",
    )
    parser.add_argument(
        "--lateness",
        default=None,
        help="allowed lateness (default: 10 s of wall time at the time scale, at least 1h; "
        "or ENGAGE_ALLOWED_LATENESS if set)",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="webhook requests in flight at most")
    parser.add_argument("--plain", action="store_true", help="log lines instead of the live screen")
    parser.add_argument(
        "--broker-memory-mb",
        type=float,
        default=None,
        help="stop the traffic when the embedded broker's memory passes this (default: a quarter of "
        f"the machine's memory, at most {BROKER_BUDGET_CAP_MB} MB; 0: no limit)",
    )
    parser.set_defaults(func=run)


def demo_durations(
    env: dict[str, str], settings: Settings, window: str | None, lateness: str | None, time_scale: float
) -> tuple[int, str, int]:
    """``(window_ms, note for the screen, lateness_ms)``: flags, then the environment, then the demo's
    own defaults."""
    if window is not None:
        window_ms, note = parse_duration_ms(window), "--window"
    elif "ENGAGE_WINDOW" in env:
        window_ms, note = settings.window_ms, "ENGAGE_WINDOW"
    else:
        window_ms = parse_duration_ms(DEMO_WINDOW)
        note = "shortened for the demo; the product default is 30d"
    if lateness is not None:
        lateness_ms = parse_duration_ms(lateness)
    elif "ENGAGE_ALLOWED_LATENESS" in env:
        lateness_ms = settings.allowed_lateness_ms
    else:
        slack_ms = PIPELINE_SLACK_S * time_scale * 1000
        lateness_ms = int(max(3_600_000, -(-slack_ms // 3_600_000) * 3_600_000))  # whole hours
    if window_ms <= 0:
        raise ConfigError("--window must be positive")
    return window_ms, note, lateness_ms


def demo_overrides(
    env: Mapping[str, str], window_ms: int, lateness_ms: int, *, embedded_kafka: bool = True
) -> dict[str, str]:
    """The settings the demo gives its worker and ingest, where the environment does not set them."""
    overrides = {"ENGAGE_WINDOW": f"{window_ms}ms", "ENGAGE_ALLOWED_LATENESS": f"{lateness_ms}ms"}
    if embedded_kafka:
        overrides.update({name: value for name, value in EMBEDDED_CLIENTS.items() if name not in env})
    # The demo's generic sender is the simulator itself: it posts the X and Meta events their routes
    # cannot express (in those platforms' namespaces) and signs no timestamp. Trust it, unless told.
    for name in ("ENGAGE_WEBHOOK_TRUSTED_SOURCES", "ENGAGE_WEBHOOK_UNTIMED_SOURCES"):
        if name not in env:
            overrides[name] = "generic"
    # Its event clock starts at most LEAD_DAYS back and runs --time-scale times faster than the wall
    # clock (an hour a second by default), so after a few minutes every event it sends is dated ahead of
    # now: with the product's far-future check (15 min by default) the demo's own ingest dead-lettered
    # all of them as "future" from minute 6 on. The check stays for real traffic.
    if "ENGAGE_INGEST_MAX_FUTURE_SKEW" not in env:
        overrides["ENGAGE_INGEST_MAX_FUTURE_SKEW"] = DEMO_FUTURE_SKEW
    return overrides


def webhook_secrets(settings: Settings) -> tuple[dict[str, str], bool]:
    """The configured secrets, or fresh random ones for this run (``True``: generated)."""
    if settings.webhook_secrets:
        missing = [s for s in SOURCES if s not in settings.webhook_secrets]
        if missing:
            raise ConfigError(
                f"ENGAGE_WEBHOOK_SECRETS has no secret for {', '.join(missing)} (the demo sends all)"
            )
        return dict(settings.webhook_secrets), False
    return {source: secrets.token_urlsafe(24) for source in SOURCES}, True


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.rate <= 0 or args.time_scale <= 0:
        raise ConfigError("--rate and --time-scale must be positive")
    if args.duration is not None and args.duration <= 0:
        raise ConfigError("--duration must be positive")
    env = dict(os.environ)
    window_ms, window_note, lateness_ms = demo_durations(
        env, settings, args.window, args.lateness, args.time_scale
    )
    keys, generated = webhook_secrets(settings)
    overrides = demo_overrides(env, window_ms, lateness_ms, embedded_kafka=settings.embedded_kafka)
    if generated:
        overrides["ENGAGE_WEBHOOK_SECRETS"] = ",".join(f"{k}={v}" for k, v in keys.items())

    record = RunRecord.load(settings.data_dir)
    start_ms = next_start_ms(record.last_event_ms, time.time_ns() // 1_000_000)
    config = GeneratorConfig.demo(
        args.seed, rate_events_per_s=args.rate, time_scale=args.time_scale, start_ms=start_ms
    )
    generator = TrafficGenerator(config)
    followers = generator.followers_per_account()
    drop = config.drop
    top = generator.accounts[0].account_id

    first_day = datetime.fromtimestamp(start_ms / 1000, UTC).strftime("%Y-%m-%d")
    print(
        f"engage demo: run {record.runs + 1}, event clock from {first_day}"
        + (" (continuing after the previous run)" if record.runs else ""),
        flush=True,
    )
    print(
        "webhook secrets: "
        + ("generated for this run (not shown)" if generated else "from ENGAGE_WEBHOOK_SECRETS"),
        flush=True,
    )
    log_file = _log_to_file(settings.data_dir.resolve() / "logs" / "demo.log", args.verbose)
    orchestrator = Orchestrator(settings, env, overrides)
    outcome: Outcome | None = None
    stopped_by: str | None = None
    statuses: dict[str, int | None] = {}
    try:
        endpoints = orchestrator.start()
        info = DemoInfo(
            run=record.runs + 1,
            seed=args.seed,
            rate=args.rate,
            time_scale=args.time_scale,
            start_ms=start_ms,
            window_ms=window_ms,
            window_note=window_note,
            lateness_ms=lateness_ms,
            duration_s=args.duration,
            drop_account=generator.drop_account.account_id if generator.drop_account else None,
            drop_start_ms=int(start_ms + drop.start_hour * 3_600_000) if drop else None,
            drop_end_ms=int(start_ms + (drop.start_hour + drop.hours) * 3_600_000) if drop else None,
            drop_factor=drop.factor if drop else 0.0,
            ingest_url=endpoints.ingest_url,
            ingest_metrics=endpoints.ingest_metrics,
            worker_metrics=endpoints.worker_metrics,
            data_dir=endpoints.data_dir,
            log_dir=endpoints.log_dir,
            kafka=(
                f"embedded Tansu on {endpoints.bootstrap} (memory storage)"
                if endpoints.embedded_kafka
                else endpoints.bootstrap
            ),
        )
        print(f"worker /metrics: {endpoints.worker_metrics}", flush=True)
        print(f"ingest /metrics: {endpoints.ingest_metrics}", flush=True)
        print(f"data: {endpoints.data_dir} (logs: {endpoints.log_dir})", flush=True)
        window_text, lateness_text = duration_text(window_ms), duration_text(lateness_ms)
        print(f"window {window_text} ({window_note}), allowed lateness {lateness_text}", flush=True)
        plan = SessionPlan(
            generator=generator,
            followers=followers,
            secrets=keys,
            rate=args.rate,
            time_scale=args.time_scale,
            duration_s=args.duration,
            bootstrap=endpoints.bootstrap,
            flags_topic=settings.topics.flags,
            alerts_topic=settings.topics.alerts,
            ingest_url=endpoints.ingest_url,
            ingest_metrics=endpoints.ingest_metrics,
            worker_metrics=endpoints.worker_metrics,
            concurrency=args.concurrency,
            worker_log=str(endpoints.log_dir / "worker.log"),
            # the embedded broker the demo starts is plaintext on loopback; a configured Kafka is not
            kafka_security=PLAINTEXT if endpoints.embedded_kafka else settings.kafka_security,
        )
        with Screen(info, live=not args.plain) as screen:
            budget = args.broker_memory_mb
            if budget is None:
                budget = broker_budget_mb(Path("/proc/meminfo").read_text())
            limit = broker_limit(orchestrator.broker_memory_mb, budget)
            session = Session(plan, screen, orchestrator.check_children, limit)
            outcome = asyncio.run(session.run())
            stopped_by = session.stopped_by
    finally:
        cpu = {**orchestrator.cpu_usage(), "demo": time.process_time()}
        interrupts: list[int] = []

        def interrupted(signum: int, frame: object) -> None:
            interrupts.append(signum)
            print("interrupted again: killing what is left (the sink may not be flushed)", flush=True)

        previous = signal.signal(signal.SIGINT, interrupted)
        try:
            print("stopping ingest…", flush=True)
            statuses["ingest"] = orchestrator.stop_ingest(lambda: bool(interrupts))
            print("stopping the worker (it flushes its sink to ClickHouse; Ctrl-C to kill it)…", flush=True)
            statuses["worker"] = orchestrator.stop_worker(lambda: bool(interrupts))
            orchestrator.stop()
        finally:
            signal.signal(signal.SIGINT, previous)
        last_ms = outcome.send.event_time_ms if outcome is not None else None
        if last_ms is not None:
            first = record.first_start_ms if record.first_start_ms is not None else start_ms
            RunRecord(record.runs + 1, last_ms, first).save(settings.data_dir)
            if statuses.get("worker") == 0:
                _record_baselines(settings, followers, last_ms)
    assert outcome is not None
    history_start = record.first_start_ms if record.first_start_ms is not None else start_ms
    _summary(outcome, statuses, settings, top, history_start, log_file)
    if stopped_by is not None:
        print(stopped_by, flush=True)
    print("cpu seconds: " + " ".join(f"{name}={seconds:.1f}" for name, seconds in cpu.items()), flush=True)
    failed = [name for name, status in statuses.items() if status not in (0, None)]
    return 1 if failed else 0


def _log_to_file(path: Path, verbose: int) -> Path:
    """The demo's own log goes to a file: log lines on the terminal would tear the live screen."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    return path


def _record_baselines(settings: Settings, followers: dict[str, int], last_ms: int) -> None:
    from streams.demo.baseline import record_baselines

    try:
        count = record_baselines(settings, followers, last_ms)
    except EngageError as exc:
        log.warning("could not record follower baselines: %s", exc)
        print(f"note: follower baselines not recorded ({exc}); engage report shows no ratio", flush=True)
    else:
        log.info("recorded the follower counts of %d accounts in account_baseline", count)


def _summary(
    outcome: Outcome,
    statuses: dict[str, int | None],
    settings: Settings,
    top: str,
    history_start_ms: int,
    log_file: Path,
) -> None:
    s, p = outcome.send, outcome.pipeline
    rate = s.events_sent / outcome.elapsed_s if outcome.elapsed_s > 0 else 0.0
    print(
        f"demo stopped after {outcome.elapsed_s:.0f}s of traffic: sent={s.events_sent} "
        f"({rate:,.0f}/s) accepted={p.accepted} processed={p.handled} "
        f"transitions_engaged={p.engaged} transitions_lapsed={p.lapsed} "
        f"drained={'yes' if outcome.drained else 'no'}",
        flush=True,
    )
    for name, status in statuses.items():
        if status not in (0, None):
            print(f"{name} exited with status {status}; see {log_file.parent / f'{name}.log'}", flush=True)
    since = datetime.fromtimestamp(history_start_ms / 1000, UTC).strftime("%Y-%m-%d")  # every run so far
    print(f"data kept in {settings.data_dir.resolve()}; next: engage report --account {top} --since {since}")
