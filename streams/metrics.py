"""Every Prometheus metric of the project, declared once, with its type, unit and meaning.

Components receive a :class:`Metrics` (built on an injected ``CollectorRegistry``; tests pass a
fresh one) and never create metrics of their own. Labels are bounded sets: topic, event type,
platform, reason, outcome, table, kind, state, partition. Never an account or a follower id —
per-account signals go to ClickHouse and the ``engagement.alerts`` topic instead.

Durations are in seconds (Prometheus base units), so histogram buckets read as seconds.
``streams/metrics_server.py`` serves a registry at ``/metrics``. Alert rules and dashboards under
``deploy/`` may only name metrics declared here (tests/unit/deploy/test_metric_references.py), and
tests/unit/test_metrics.py enforces the naming conventions.
"""

from __future__ import annotations

import contextlib
import platform
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from streams.version import package_version

# Buckets in seconds. Flushes and webhooks are milliseconds to seconds; event lag spans
# sub-second (live) to hours (replays, lateness), hence its long tail.
_FLUSH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_WEBHOOK_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)

# The name prefix of every metric; alert rules and dashboards refer to these full names.
NS = "engage"

#: The series prometheus-client's ProcessCollector adds to every registry (CPU, memory, file
#: descriptors, start time of the process; Linux only), under our prefix: engage_process_*. Not
#: fields of :class:`Metrics` because nothing in the code updates them: they are read at scrape time.
PROCESS_SERIES = (
    "engage_process_cpu_seconds_total",
    "engage_process_virtual_memory_bytes",
    "engage_process_resident_memory_bytes",
    "engage_process_start_time_seconds",
    "engage_process_open_fds",
    "engage_process_max_fds",
)


@dataclass(frozen=True)
class Metrics:
    """All metrics, registered on one registry per process."""

    registry: CollectorRegistry
    # --- worker: input -------------------------------------------------------------------------
    events_consumed: Counter  # labels: type
    events_rejected: Counter  # labels: reason (schema|malformed|late); each also went to the DLQ
    events_deduplicated: Counter  # redeliveries with an event_id already seen within the dedup horizon
    dlq_messages: Counter  # labels: reason — messages produced to interactions.dlq
    event_lag: Histogram  # seconds from event time to processed; per message, of its oldest event
    consumer_lag: Gauge  # labels: topic, partition — messages behind the high-water mark
    watermark: Gauge  # labels: partition — event-time watermark, unix seconds
    # --- worker: engagement ------------------------------------------------------------------
    transitions: Counter  # labels: kind (engaged|lapsed)
    substantive_interactions: Counter  # accepted substantive comments/shares, counted at flush
    engaged_followers: Gauge  # (account, actor) pairs engaged now on this worker's partitions
    tracked_pairs: Gauge  # pairs with state held by this worker
    changelog_writes: Counter  # table updates written to changelogs (after per-interval merging)
    # --- worker: sink --------------------------------------------------------------------------
    rows_written: Counter  # labels: table
    batches_written: Counter  # labels: table
    insert_retries: Counter  # labels: table — retryable failures that were retried
    insert_failures: Counter  # labels: table, kind (retryable|fatal)
    sink_paused: Gauge  # 1 while consumption is paused because the sink cannot write
    flush_latency: Histogram  # labels: table — seconds per successful batch insert
    commits: Counter  # offset commits after a successful flush
    last_commit: Gauge  # unix seconds of this worker's last offset commit (0: none yet)
    # --- worker: health (streams/health.py) ----------------------------------------------------
    assigned_partitions: Gauge  # stream partitions this worker owns now
    commit_interval: Gauge  # ENGAGE_COMMIT_INTERVAL in seconds, so rules can say "N intervals"
    loop_heartbeat: Gauge  # unix seconds of the event loop's last heartbeat (stale: the loop is stuck)
    # --- every process -------------------------------------------------------------------------
    build_info: Gauge  # labels: version, python — always 1
    # --- drop detection ------------------------------------------------------------------------
    drop_alerts: Counter  # labels: state (opened|resolved), kind (drop|silence)
    open_drop_alerts: Gauge  # accounts with an open engagement-drop alert
    drop_hour_closed: Gauge  # labels: partition — end of the last event-time hour closed, unix seconds
    drop_late_partials: Counter  # per-account hourly partials that arrived after their hour closed
    # --- ingest --------------------------------------------------------------------------------
    webhook_requests: Counter  # labels: platform, status (HTTP status code)
    webhook_latency: Histogram  # labels: platform — seconds from request read to response
    webhook_events: Counter  # labels: platform, outcome (accepted|dlq|ignored)

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        reg = registry if registry is not None else CollectorRegistry()

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(f"{NS}_{name}", doc, labels, registry=reg)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(f"{NS}_{name}", doc, labels, registry=reg)

        def histogram(
            name: str, doc: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()
        ) -> Histogram:
            return Histogram(f"{NS}_{name}", doc, labels, registry=reg, buckets=buckets)

        ProcessCollector(namespace=NS, registry=reg)
        metrics = cls(
            registry=reg,
            events_consumed=counter(
                "events_consumed_total", "Canonical events consumed, by type.", ("type",)
            ),
            events_rejected=counter(
                "events_rejected_total", "Events sent to the dead-letter topic, by reason.", ("reason",)
            ),
            events_deduplicated=counter(
                "events_deduplicated_total", "Redelivered events dropped because their event_id was seen."
            ),
            dlq_messages=counter("dlq_messages_total", "Messages produced to interactions.dlq.", ("reason",)),
            event_lag=histogram(
                "event_lag_seconds", "Seconds from an event's occurred_at to its processing.", _LAG_BUCKETS
            ),
            consumer_lag=gauge(
                "consumer_lag_messages",
                "Messages between the committed position and the high-water mark (a changelog "
                "partition: records left to apply, only while it recovers).",
                ("topic", "partition"),
            ),
            watermark=gauge(
                "watermark_seconds", "Event-time watermark of a partition, unix seconds.", ("partition",)
            ),
            transitions=counter(
                "transitions_total", "Engaged/lapsed transitions emitted to engagement.flags.", ("kind",)
            ),
            substantive_interactions=counter(
                "substantive_interactions_total", "Substantive comments and shares processed."
            ),
            engaged_followers=gauge(
                "engaged_followers", "Engaged (account, follower) pairs on this worker's partitions."
            ),
            tracked_pairs=gauge("tracked_pairs", "(account, follower) pairs whose state this worker holds."),
            changelog_writes=counter("changelog_writes_total", "Table updates written to changelog topics."),
            rows_written=counter("sink_rows_written_total", "Rows written to ClickHouse.", ("table",)),
            batches_written=counter(
                "sink_batches_written_total", "Batches inserted into ClickHouse.", ("table",)
            ),
            insert_retries=counter(
                "sink_insert_retries_total", "ClickHouse inserts retried after a retryable error.", ("table",)
            ),
            insert_failures=counter(
                "sink_insert_failures_total", "Failed ClickHouse inserts, by kind.", ("table", "kind")
            ),
            sink_paused=gauge(
                "sink_paused", "1 while consumption is paused because ClickHouse cannot be written."
            ),
            flush_latency=histogram(
                "sink_flush_duration_seconds",
                "Seconds per successful batch insert.",
                _FLUSH_BUCKETS,
                ("table",),
            ),
            commits=counter("offset_commits_total", "Offset commits made after a successful flush."),
            last_commit=gauge(
                "last_commit_timestamp_seconds", "Unix seconds of this worker's last offset commit."
            ),
            assigned_partitions=gauge(
                "assigned_partitions", "Stream partitions of the interaction topics this worker owns."
            ),
            commit_interval=gauge(
                "commit_interval_seconds", "The configured commit interval (ENGAGE_COMMIT_INTERVAL), seconds."
            ),
            loop_heartbeat=gauge(
                "event_loop_heartbeat_timestamp_seconds",
                "Unix seconds of the worker's last event-loop heartbeat; stale when the loop is stuck.",
            ),
            build_info=gauge(
                "build_info",
                "Always 1; the labels say which version runs on which Python.",
                ("version", "python"),
            ),
            drop_alerts=counter(
                "drop_alerts_total",
                "Per-account engagement-drop alerts, by state and kind.",
                ("state", "kind"),
            ),
            open_drop_alerts=gauge("drop_alerts_open", "Accounts with an open engagement-drop alert."),
            drop_hour_closed=gauge(
                "drop_hour_closed_seconds",
                "End of the last event-time hour closed by drop detection, by account-hours partition.",
                ("partition",),
            ),
            drop_late_partials=counter(
                "drop_late_partials_total",
                "Per-account hourly partials that arrived after their hour had closed (counts dropped).",
            ),
            webhook_requests=counter(
                "webhook_requests_total",
                "Webhook HTTP requests, by platform and status.",
                ("platform", "status"),
            ),
            webhook_latency=histogram(
                "webhook_request_duration_seconds",
                "Seconds to answer a webhook.",
                _WEBHOOK_BUCKETS,
                ("platform",),
            ),
            webhook_events=counter(
                "webhook_events_total", "Canonical events from webhooks, by outcome.", ("platform", "outcome")
            ),
        )
        metrics.build_info.labels(package_version(), platform.python_version()).set(1)
        return metrics

    def names(self) -> set[str]:
        """Every metric family name (counters without ``_total``, as the registry reports them)."""
        return {family.name for family in self.registry.collect()}


def remove_series(metric: Any, *labels: str) -> None:
    """Remove one labelled series (a partition this process no longer owns); one never set is fine
    (older prometheus-client releases raise KeyError for it)."""
    with contextlib.suppress(KeyError):
        metric.remove(*labels)
