"""One typed, frozen configuration object, read from the environment once at start-up.

Library modules never read ``os.environ``: the CLI calls :func:`Settings.from_env` and passes the
result (or the part of it a component needs) down. Every variable is declared once in
:data:`ENV_VARS`, which is what the README table and the compose-file test are checked against.

Durations accept ``500ms``, ``90s``, ``15m``, ``1h``, ``30d`` or a plain number of seconds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_duration_ms(text: str) -> int:
    """``"30d"`` → 2_592_000_000. A bare number is seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"not a duration: {text!r} (use e.g. 500ms, 90s, 15m, 1h, 30d)")
    value, unit = float(match.group(1)), match.group(2) or "s"
    return int(value * _UNIT_MS[unit])


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"not a boolean: {text!r}")


def _parse_secrets(text: str) -> dict[str, str]:
    """``"generic=s3cret,meta=abc"`` → ``{"generic": "s3cret", "meta": "abc"}``."""
    secrets: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, secret = item.partition("=")
        if not sep or not name or not secret:
            raise ConfigError("ENGAGE_WEBHOOK_SECRETS takes source=secret pairs separated by commas")
        secrets[name.strip()] = secret.strip()
    return secrets


_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _parse_log_level(text: str) -> str:
    lowered = text.strip().lower()
    lowered = {"warn": "warning", "crit": "critical"}.get(lowered, lowered)
    if lowered not in _LOG_LEVELS:
        raise ConfigError(f"not a log level: {text!r} (use {', '.join(_LOG_LEVELS)})")
    return lowered


def _parse_log_format(text: str) -> str:
    lowered = text.strip().lower()
    if lowered not in ("text", "json"):
        raise ConfigError(f"not a log format: {text!r} (use text or json)")
    return lowered


@dataclass(frozen=True)
class EnvVar:
    """One environment variable: its name, default (as text), parser and meaning."""

    name: str
    default: str
    parse: Callable[[str], Any]
    help: str
    secret: bool = False


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar(
        "KAFKA_BOOTSTRAP_SERVERS",
        "",
        str,
        "Kafka bootstrap servers (host:port,...). Empty: start the embedded Tansu broker.",
    ),
    EnvVar("ENGAGE_TOPIC_PREFIX", "", str, "Prefix for every topic name, e.g. `prod.`."),
    EnvVar(
        "ENGAGE_TOPIC_PARTITIONS", "8", int, "Partitions of each interaction topic (the unit of scale-out)."
    ),
    EnvVar("ENGAGE_TOPIC_REPLICATION", "1", int, "Replication factor of topics the project creates."),
    EnvVar(
        "ENGAGE_TOPIC_RETENTION", "7d", parse_duration_ms, "retention.ms set on topics the project creates."
    ),
    EnvVar(
        "ENGAGE_CONSUMER_GROUP", "engagement-streams", str, "Consumer group (Faust app id) of the workers."
    ),
    EnvVar(
        "CLICKHOUSE_DSN",
        "",
        str,
        "ClickHouse DSN: `http(s)://user:pass@host:8123/db`. Empty: chDB in `<data dir>/clickhouse`.",
    ),
    EnvVar("ENGAGE_DATA_DIR", "./data", Path, "Where the embedded default keeps chDB data and table state."),
    EnvVar("ENGAGE_MIGRATE_ON_START", "true", _parse_bool, "Workers apply ClickHouse migrations at start."),
    EnvVar(
        "ENGAGE_ACTIVITY_TTL",
        "400d",
        parse_duration_ms,
        "Retention of the per-minute ClickHouse tables, whole days (0: forever); set by `engage db migrate`.",
    ),
    EnvVar("ENGAGE_ENGAGED_THRESHOLD", "3", int, "N: substantive interactions in the window to be engaged."),
    EnvVar("ENGAGE_WINDOW", "30d", parse_duration_ms, "W: the sliding event-time window."),
    EnvVar("ENGAGE_MIN_WORDS", "2", int, "Words a comment or share text needs to be substantive."),
    EnvVar(
        "ENGAGE_ALLOWED_LATENESS",
        "1h",
        parse_duration_ms,
        "How far behind the watermark an event may arrive and still count exactly.",
    ),
    EnvVar(
        "ENGAGE_LIKE_WEIGHT",
        "0",
        float,
        "Weight of a like in the engagement score (e.g. 0.1). Default 0: a like, like a follow, is not "
        "engagement, and followers who only like then keep no state (1.6x worker throughput measured).",
    ),
    EnvVar("ENGAGE_STATE_STORE", "memory://", str, "Faust table store: `memory://` or `rocksdb://` (extra)."),
    EnvVar(
        "ENGAGE_COMMIT_INTERVAL", "1s", parse_duration_ms, "How often a worker flushes state and commits."
    ),
    EnvVar(
        "ENGAGE_SINK_BATCH_ROWS", "10000", int, "ClickHouse writer: flush a table's batch at this many rows."
    ),
    EnvVar(
        "ENGAGE_SINK_FLUSH_INTERVAL", "1s", parse_duration_ms, "ClickHouse writer: flush at least this often."
    ),
    EnvVar("ENGAGE_SINK_MAX_BACKOFF", "30s", parse_duration_ms, "Longest pause between ClickHouse retries."),
    EnvVar("ENGAGE_WORKER_METRICS_PORT", "9108", int, "Port of the worker's /metrics (0: pick a free one)."),
    EnvVar(
        "ENGAGE_WORKER_METRICS_HOST",
        "127.0.0.1",
        str,
        "Address the worker's /metrics binds (`0.0.0.0` in a container).",
    ),
    EnvVar("ENGAGE_INGEST_HOST", "127.0.0.1", str, "Address the webhook ingest service binds."),
    EnvVar("ENGAGE_INGEST_PORT", "8080", int, "Port of the webhook ingest service."),
    EnvVar("ENGAGE_INGEST_MAX_BODY", "1048576", int, "Largest webhook body accepted, in bytes (413 above)."),
    EnvVar(
        "ENGAGE_INGEST_ACK_TIMEOUT",
        "5s",
        parse_duration_ms,
        "How long ingest waits for Kafka to acknowledge before answering 503.",
    ),
    EnvVar(
        "ENGAGE_WEBHOOK_SECRETS",
        "",
        _parse_secrets,
        "Per-source HMAC secrets: `generic=...,meta=...,x=...`.",
        secret=True,
    ),
    EnvVar(
        "ENGAGE_META_VERIFY_TOKEN", "", str, "Token Meta echoes in its subscription handshake.", secret=True
    ),
    EnvVar(
        "ENGAGE_SIGNATURE_TOLERANCE",
        "5m",
        parse_duration_ms,
        "Oldest signed timestamp accepted where a platform signs one.",
    ),
    EnvVar("ENGAGE_DROP_THRESHOLD", "0.5", float, "Open an engagement-drop alert this far below baseline."),
    EnvVar(
        "ENGAGE_DROP_MIN_BASELINE",
        "20",
        float,
        "Baseline substantive interactions per hour below which an account never alerts.",
    ),
    EnvVar(
        "ENGAGE_ALERTMANAGER_URL",
        "",
        str,
        "If set, POST drop alerts to this Alertmanager (`/api/v2/alerts`).",
    ),
    EnvVar(
        "ENGAGE_LOG_LEVEL",
        "warning",
        _parse_log_level,
        "Log level: `debug`, `info`, `warning`, `error` (`engage -v` raises it for one run).",
    ),
    EnvVar(
        "ENGAGE_LOG_FORMAT",
        "text",
        _parse_log_format,
        "`text` (one line per record) or `json` (one JSON object per line, for a log platform).",
    ),
    EnvVar(
        "ENGAGE_HEALTH_MAX_LOOP_DELAY",
        "30s",
        parse_duration_ms,
        "The worker's `/healthz` fails once its event loop has not run for this long.",
    ),
)

_BY_NAME = {var.name: var for var in ENV_VARS}


@dataclass(frozen=True)
class Topics:
    """Topic names, prefix applied."""

    prefix: str = ""

    def _name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def like(self) -> str:
        return self._name("interactions.like")

    @property
    def comment(self) -> str:
        return self._name("interactions.comment")

    @property
    def share(self) -> str:
        return self._name("interactions.share")

    @property
    def follow(self) -> str:
        return self._name("interactions.follow")

    @property
    def flags(self) -> str:
        return self._name("engagement.flags")

    @property
    def alerts(self) -> str:
        return self._name("engagement.alerts")

    @property
    def dlq(self) -> str:
        return self._name("interactions.dlq")

    @property
    def account_hours(self) -> str:
        """Internal: per-account hourly partials keyed by account (drop detection, stage 2)."""
        return self._name("engagement.account-hours")

    @property
    def interactions(self) -> tuple[str, str, str, str]:
        return (self.like, self.comment, self.share, self.follow)

    def for_type(self, event_type: str) -> str:
        """The interaction topic an event type goes to (unfollow shares the follow topic)."""
        if event_type == "unfollow":
            return self.follow
        return self._name(f"interactions.{event_type}")

    @property
    def all(self) -> tuple[str, ...]:
        return (*self.interactions, self.flags, self.alerts, self.dlq, self.account_hours)


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with the embedded default when the environment says nothing."""

    kafka_bootstrap_servers: str = ""
    topic_prefix: str = ""
    topic_partitions: int = 8
    topic_replication: int = 1
    topic_retention_ms: int = 7 * 86_400_000
    consumer_group: str = "engagement-streams"
    clickhouse_dsn: str = ""
    data_dir: Path = Path("./data")
    migrate_on_start: bool = True
    activity_ttl_ms: int = 400 * 86_400_000
    engaged_threshold: int = 3
    window_ms: int = 30 * 86_400_000
    min_words: int = 2
    allowed_lateness_ms: int = 3_600_000
    like_weight: float = 0.0
    state_store: str = "memory://"
    commit_interval_ms: int = 1000
    sink_batch_rows: int = 10_000
    sink_flush_interval_ms: int = 1000
    sink_max_backoff_ms: int = 30_000
    worker_metrics_port: int = 9108
    worker_metrics_host: str = "127.0.0.1"
    ingest_host: str = "127.0.0.1"
    ingest_port: int = 8080
    ingest_max_body: int = 1_048_576
    ingest_ack_timeout_ms: int = 5000
    webhook_secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    meta_verify_token: str = field(default="", repr=False)
    signature_tolerance_ms: int = 300_000
    drop_threshold: float = 0.5
    drop_min_baseline: float = 20.0
    alertmanager_url: str = ""
    log_level: str = "warning"
    log_format: str = "text"
    health_max_loop_delay_ms: int = 30_000

    @property
    def embedded_kafka(self) -> bool:
        return not self.kafka_bootstrap_servers

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    @property
    def effective_clickhouse_dsn(self) -> str:
        """The DSN actually used: the configured one, or chDB under the data dir."""
        if self.clickhouse_dsn:
            return self.clickhouse_dsn
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every declared variable once; unknown ``ENGAGE_*`` variables are an error (typos)."""
        source = os.environ if env is None else env
        unknown = sorted(k for k in source if k.startswith("ENGAGE_") and k not in _BY_NAME)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for var, attr in zip(ENV_VARS, _ATTRS, strict=True):
            raw = source.get(var.name, var.default)
            try:
                values[attr] = var.parse(raw)
            except (ValueError, ConfigError) as exc:
                shown = "<secret>" if var.secret else repr(raw)
                raise ConfigError(f"{var.name}={shown}: {exc}") from None
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.engaged_threshold < 1:
            raise ConfigError("ENGAGE_ENGAGED_THRESHOLD must be at least 1")
        if self.window_ms <= 0:
            raise ConfigError("ENGAGE_WINDOW must be positive")
        if self.min_words < 0:
            raise ConfigError("ENGAGE_MIN_WORDS must not be negative")
        if self.allowed_lateness_ms < 0:
            raise ConfigError("ENGAGE_ALLOWED_LATENESS must not be negative")
        if self.like_weight < 0:
            raise ConfigError("ENGAGE_LIKE_WEIGHT must not be negative")
        if self.topic_partitions < 1:
            raise ConfigError("ENGAGE_TOPIC_PARTITIONS must be at least 1")
        if self.activity_ttl_ms < 0 or self.activity_ttl_ms % 86_400_000:
            raise ConfigError(
                "ENGAGE_ACTIVITY_TTL must be a whole number of days, e.g. 400d (0: keep forever)"
            )
        if not 0 < self.drop_threshold < 1:
            raise ConfigError("ENGAGE_DROP_THRESHOLD must be between 0 and 1")


# Attribute names in ENV_VARS order; kept beside the table so a new variable needs both.
_ATTRS: tuple[str, ...] = (
    "kafka_bootstrap_servers",
    "topic_prefix",
    "topic_partitions",
    "topic_replication",
    "topic_retention_ms",
    "consumer_group",
    "clickhouse_dsn",
    "data_dir",
    "migrate_on_start",
    "activity_ttl_ms",
    "engaged_threshold",
    "window_ms",
    "min_words",
    "allowed_lateness_ms",
    "like_weight",
    "state_store",
    "commit_interval_ms",
    "sink_batch_rows",
    "sink_flush_interval_ms",
    "sink_max_backoff_ms",
    "worker_metrics_port",
    "worker_metrics_host",
    "ingest_host",
    "ingest_port",
    "ingest_max_body",
    "ingest_ack_timeout_ms",
    "webhook_secrets",
    "meta_verify_token",
    "signature_tolerance_ms",
    "drop_threshold",
    "drop_min_baseline",
    "alertmanager_url",
    "log_level",
    "log_format",
    "health_max_loop_delay_ms",
)
