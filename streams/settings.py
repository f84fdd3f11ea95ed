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
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from streams.errors import ConfigError
from streams.kafka_security import KafkaSecurity
from streams.sinks.clickhouse_dsn import redact

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


def _optional_int(text: str) -> int | None:
    return int(text) if text.strip() else None


def _parse_secrets(text: str) -> dict[str, str]:
    """``"generic=s3cret,meta=abc"`` → ``{"generic": "s3cret", "meta": "abc"}``."""
    secrets: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, secret = item.partition("=")
        if not sep or not name or not secret:
            raise ConfigError("ENGAGE_WEBHOOK_SECRETS takes source=secret pairs separated by commas")
        secrets[name.strip()] = secret.strip()
    return secrets


def _parse_names(text: str) -> frozenset[str]:
    """``"crm, legacy"`` → ``frozenset({"crm", "legacy"})``."""
    return frozenset(filter(None, (part.strip() for part in text.split(","))))


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
    EnvVar(
        "KAFKA_SECURITY_PROTOCOL",
        "PLAINTEXT",
        str.upper,
        "`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`; every Kafka client of the project uses it.",
    ),
    EnvVar(
        "KAFKA_SASL_MECHANISM", "PLAIN", str.upper, "`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (SASL_*)."
    ),
    EnvVar("KAFKA_SASL_USERNAME", "", str, "SASL user name (SASL_*)."),
    EnvVar(
        "KAFKA_SASL_PASSWORD", "", str, "SASL password; or `KAFKA_SASL_PASSWORD_FILE` (a path).", secret=True
    ),
    EnvVar("KAFKA_SSL_CA_FILE", "", str, "CA bundle (PEM) to verify the brokers; empty: the system's CAs."),
    EnvVar("KAFKA_SSL_CERT_FILE", "", str, "Client certificate (PEM) for mutual TLS."),
    EnvVar("KAFKA_SSL_KEY_FILE", "", str, "Client private key (PEM) for mutual TLS."),
    EnvVar(
        "KAFKA_SSL_KEY_PASSWORD",
        "",
        str,
        "Password of the client key, if encrypted; or `KAFKA_SSL_KEY_PASSWORD_FILE`.",
        secret=True,
    ),
    EnvVar(
        "KAFKA_SSL_CHECK_HOSTNAME",
        "true",
        _parse_bool,
        "Check that the broker certificate names the host connected to (the chain is always verified).",
    ),
    EnvVar(
        "ENGAGE_CREATE_TOPICS",
        "true",
        _parse_bool,
        "Create missing topics at start (always with the embedded broker); `false` without the Create ACL.",
    ),
    EnvVar(
        "ENGAGE_CLICKHOUSE_CLUSTER",
        "",
        str,
        "ClickHouse cluster name (`remote_servers`): workers apply the cluster DDL and insert with "
        "`distributed_foreground_insert=1`. Empty: a single server (a cluster schema found is refused).",
    ),
    EnvVar("ENGAGE_TOPIC_PREFIX", "", str, "Prefix for every topic name, e.g. `prod.`."),
    EnvVar(
        "ENGAGE_TOPIC_PARTITIONS", "8", int, "Partitions of each interaction topic (the unit of scale-out)."
    ),
    EnvVar(
        "ENGAGE_TOPIC_REPLICATION",
        "",
        _optional_int,
        "Replication factor of topics the project creates. Empty: the broker's default (1 if embedded).",
    ),
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
        "ClickHouse DSN: `https://user:pass@host:8443/db` (TLS; `?verify=`, `ca_cert=`, `client_cert=`, "
        "`client_cert_key=`) or `http://...:8123/db`. Empty: chDB in `<data dir>/clickhouse`.",
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
    # --- ingest hardening (issue 18): the limits of the public webhook edge -------------------------
    EnvVar(
        "ENGAGE_INGEST_METRICS_HOST",
        "127.0.0.1",
        str,
        "Address ingest's /metrics binds (a port of its own, never the public webhook port).",
    ),
    EnvVar("ENGAGE_INGEST_METRICS_PORT", "9109", int, "Port of ingest's /metrics (0: pick a free one)."),
    EnvVar(
        "ENGAGE_INGEST_MAX_ELEMENTS",
        "10000",
        int,
        "Most events/activities/entries one webhook request may carry (413 above).",
    ),
    EnvVar(
        "ENGAGE_INGEST_MAX_DEAD_LETTERS",
        "100",
        int,
        "Most dead-letter records one request makes; above, one summary record carries the whole body.",
    ),
    EnvVar(
        "ENGAGE_INGEST_MAX_FUTURE_SKEW",
        "15m",
        parse_duration_ms,
        "An event whose occurred_at is further ahead of the wall clock is dead-lettered (reason future).",
    ),
    EnvVar(
        "ENGAGE_WEBHOOK_UNTIMED_SOURCES",
        "",
        _parse_names,
        "Generic-endpoint sources that may sign without X-Signature-Timestamp (default: none may).",
    ),
    EnvVar(
        "ENGAGE_WEBHOOK_TRUSTED_SOURCES",
        "",
        _parse_names,
        "Generic-endpoint sources allowed to post events in a platform adapter's event_id namespace or "
        "platform (x:, fb:, ig:, ap:, bsky:; default: none may).",
    ),
    EnvVar(
        "ENGAGE_INGEST_HANDSHAKES_PER_MINUTE",
        "30",
        int,
        "GET handshakes (X CRC, Meta challenge) answered per platform per minute (429 above).",
    ),
    EnvVar(
        "ENGAGE_INGEST_BODY_TIMEOUT",
        "30s",
        parse_duration_ms,
        "A request's whole body must arrive within this (408 and close above).",
    ),
    EnvVar(
        "ENGAGE_INGEST_KEEPALIVE_TIMEOUT",
        "15s",
        parse_duration_ms,
        "A connection without a complete request head this long after it opened or after its last "
        "answer (idle keep-alive, slow headers) is closed.",
    ),
    EnvVar(
        "ENGAGE_INGEST_MAX_CONNECTIONS",
        "1000",
        int,
        "Open client connections ingest keeps; connections beyond are closed at once.",
    ),
    EnvVar(
        "ENGAGE_INGEST_SHUTDOWN_TIMEOUT",
        "10s",
        parse_duration_ms,
        "On SIGTERM, how long requests in flight may finish before connections are cut.",
    ),
    # --- end ingest hardening -----------------------------------------------------------------------
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
#: A secret may also come from a file (Docker/Kubernetes secrets): ``<NAME>_FILE`` holds its path.
_SECRET_FILES = {f"{var.name}_FILE" for var in ENV_VARS if var.secret}


def _secret_from_file(source: Mapping[str, str], var: EnvVar) -> str | None:
    path = source.get(f"{var.name}_FILE")
    if not path:
        return None
    if source.get(var.name):
        raise ConfigError(f"set {var.name} or {var.name}_FILE, not both")
    try:
        return Path(path).read_text().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{var.name}_FILE: cannot read {path}: {exc.strerror}") from None


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
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = field(default="", repr=False)
    kafka_ssl_ca_file: str = ""
    kafka_ssl_cert_file: str = ""
    kafka_ssl_key_file: str = ""
    kafka_ssl_key_password: str = field(default="", repr=False)
    kafka_ssl_check_hostname: bool = True
    create_topics: bool = True
    clickhouse_cluster: str = ""
    topic_prefix: str = ""
    topic_partitions: int = 8
    topic_replication: int | None = None
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
    # ingest hardening (issue 18)
    ingest_metrics_host: str = "127.0.0.1"
    ingest_metrics_port: int = 9109
    ingest_max_elements: int = 10_000
    ingest_max_dead_letters: int = 100
    ingest_max_future_skew_ms: int = 900_000
    webhook_untimed_sources: frozenset[str] = frozenset()
    webhook_trusted_sources: frozenset[str] = frozenset()
    ingest_handshakes_per_minute: int = 30
    ingest_body_timeout_ms: int = 30_000
    ingest_keepalive_timeout_ms: int = 15_000
    ingest_max_connections: int = 1000
    ingest_shutdown_timeout_ms: int = 10_000
    # end ingest hardening
    drop_threshold: float = 0.5
    drop_min_baseline: float = 20.0
    alertmanager_url: str = ""
    log_level: str = "warning"
    log_format: str = "text"
    health_max_loop_delay_ms: int = 30_000

    def __repr__(self) -> str:
        """Every field but the secrets; URLs (the ClickHouse DSN, Alertmanager) with passwords replaced."""
        shown = []
        for item in fields(self):
            if item.repr:
                value = getattr(self, item.name)
                if item.name in ("clickhouse_dsn", "alertmanager_url"):
                    value = redact(value)
                shown.append(f"{item.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @property
    def embedded_kafka(self) -> bool:
        return not self.kafka_bootstrap_servers

    @property
    def kafka_security(self) -> KafkaSecurity:
        """TLS/SASL of every Kafka client (see :mod:`streams.kafka_security`)."""
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
            ca_file=self.kafka_ssl_ca_file,
            cert_file=self.kafka_ssl_cert_file,
            key_file=self.kafka_ssl_key_file,
            key_password=self.kafka_ssl_key_password,
            check_hostname=self.kafka_ssl_check_hostname,
        )

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
        unknown = sorted(
            k for k in source if k.startswith("ENGAGE_") and k not in _BY_NAME and k not in _SECRET_FILES
        )
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for var, attr in zip(ENV_VARS, _ATTRS, strict=True):
            raw = _secret_from_file(source, var) if var.secret else None
            raw = source.get(var.name, var.default) if raw is None else raw
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
        self.kafka_security.validate()
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
        for name, value in (
            ("ENGAGE_INGEST_MAX_ELEMENTS", self.ingest_max_elements),
            ("ENGAGE_INGEST_MAX_DEAD_LETTERS", self.ingest_max_dead_letters),
            ("ENGAGE_INGEST_HANDSHAKES_PER_MINUTE", self.ingest_handshakes_per_minute),
            ("ENGAGE_INGEST_MAX_CONNECTIONS", self.ingest_max_connections),
            ("ENGAGE_INGEST_BODY_TIMEOUT", self.ingest_body_timeout_ms),
            ("ENGAGE_INGEST_KEEPALIVE_TIMEOUT", self.ingest_keepalive_timeout_ms),
        ):
            if value < 1:
                raise ConfigError(f"{name} must be positive")
        if not 0 < self.drop_threshold < 1:
            raise ConfigError("ENGAGE_DROP_THRESHOLD must be between 0 and 1")


# Attribute names in ENV_VARS order; kept beside the table so a new variable needs both.
_ATTRS: tuple[str, ...] = (
    "kafka_bootstrap_servers",
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "kafka_sasl_password",
    "kafka_ssl_ca_file",
    "kafka_ssl_cert_file",
    "kafka_ssl_key_file",
    "kafka_ssl_key_password",
    "kafka_ssl_check_hostname",
    "create_topics",
    "clickhouse_cluster",
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
    # ingest hardening (issue 18)
    "ingest_metrics_host",
    "ingest_metrics_port",
    "ingest_max_elements",
    "ingest_max_dead_letters",
    "ingest_max_future_skew_ms",
    "webhook_untimed_sources",
    "webhook_trusted_sources",
    "ingest_handshakes_per_minute",
    "ingest_body_timeout_ms",
    "ingest_keepalive_timeout_ms",
    "ingest_max_connections",
    "ingest_shutdown_timeout_ms",
    # end ingest hardening
    "drop_threshold",
    "drop_min_baseline",
    "alertmanager_url",
    "log_level",
    "log_format",
    "health_max_loop_delay_ms",
)
