"""``engage worker``: consume the interaction topics, keep engagement state, flag, aggregate, sink."""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry

from streams import runtime
from streams.errors import ConfigError
from streams.health import Health
from streams.metrics import Metrics
from streams.metrics_server import serve_metrics
from streams.settings import Settings
from streams.sinks.base import CountingSink, Sink

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    parser = sub.add_parser("worker", help="run a stream worker (join the consumer group)")
    parser.add_argument(
        "--embedded",
        action="store_true",
        help="start an embedded broker when KAFKA_BOOTSTRAP_SERVERS is empty",
    )
    parser.add_argument(
        "--sink",
        choices=("clickhouse", "memory"),
        default="clickhouse",
        help="memory: count rows in process, write nothing (benchmarks, tests)",
    )
    parser.add_argument(
        "--loglevel",
        default=None,
        choices=("crit", "error", "warn", "info", "debug"),
        help="log level of this worker (default: ENGAGE_LOG_LEVEL)",
    )
    parser.set_defaults(func=run)


def create_sink(settings: Settings, metrics: Metrics, kind: str = "clickhouse") -> Sink:
    if kind == "memory":
        return CountingSink()
    from streams.sinks.clickhouse import ClickHouseSink

    sink: Sink = ClickHouseSink.from_settings(settings, metrics)
    return sink


@contextlib.contextmanager
def _bootstrap(settings: Settings, embedded: bool) -> Iterator[str]:
    if settings.embedded_kafka and not embedded:
        raise ConfigError("set KAFKA_BOOTSTRAP_SERVERS, or pass --embedded to start a broker for this worker")
    with runtime.kafka(settings) as bootstrap:
        if settings.embedded_kafka:
            print(f"embedded Kafka on {bootstrap}", flush=True)
        yield bootstrap


def run(
    args: argparse.Namespace, settings: Settings, *, wrap_sink: Callable[[Sink], Sink] | None = None
) -> int:
    """``wrap_sink``: decorate the sink (the benchmark's latency probe watches what lands in ClickHouse)."""
    from streams.worker import topology

    # The worker allocates many short-lived objects per event and keeps many long-lived ones (state);
    # CPython's default GC thresholds then spend about half the time in full collections (measured
    # by the engine benchmark). Freeze what start-up created and collect young objects less often;
    # and let the busy agent thread keep the GIL longer (see streams.runtime).
    runtime.tune_worker_process()
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    sink = create_sink(settings, metrics, args.sink)
    if wrap_sink is not None:
        sink = wrap_sink(sink)
    with _bootstrap(settings, args.embedded) as bootstrap:
        runtime.create_topics(settings, bootstrap)
        worker = topology.build(settings, bootstrap, sink, metrics)
        health = Health(settings.health_max_loop_delay_ms / 1000, metrics=metrics)
        metrics.commit_interval.set(settings.commit_interval_ms / 1000)
        # "Not committed since" counts from the start: a worker that never gets to commit (stuck in
        # recovery, or before its first flush) is caught by the same alert.
        metrics.last_commit.set_to_current_time()
        server = serve_metrics(
            registry, settings.worker_metrics_port, settings.worker_metrics_host, health=health
        )
        print(f"worker metrics on {server.url} (and /healthz, /readyz)", flush=True)
        gc.freeze()
        if args.loglevel is not None:
            logging.getLogger().setLevel(
                {"crit": "CRITICAL", "warn": "WARNING"}.get(args.loglevel, args.loglevel.upper())
            )
        topology.run(worker, settings, health)
    return 0
