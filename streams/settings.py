"""One typed, frozen configuration object, read from the environment once at start-up.

Library modules never read ``os.environ``: the CLI calls :func:`Settings.from_env` and passes the
result (or the part of it a component needs) down. Every variable is declared once, as a field of
:class:`Settings` made by :func:`setting` (environment name, parser, default as text, help); :data:`ENV_VARS`
is derived from those fields, and the README table and the compose-file test are checked against it.

Durations accept ``500ms``, ``90s``, ``15m``, ``1h``, ``30d`` or a plain number of seconds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

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


_T = TypeVar("_T")
_ENV = "env"  # the metadata key of a Settings field's EnvVar


@dataclass(frozen=True)
class EnvVar:
    """One environment variable: its name, default (as text), parser and meaning."""

    name: str
    default: str
    parse: Callable[[str], Any]
    help: str
    secret: bool = False


def setting(name: str, parse: Callable[[str], _T], default: str, help: str, *, secret: bool = False) -> _T:
    """A :class:`Settings` field read from the environment variable ``name``.

    The field's default is ``parse(default)``, so ``Settings()`` and ``Settings.from_env({})`` agree; a
    secret is left out of ``repr`` and may come from ``<name>_FILE``. The declaration rides in the field's
    metadata, from which :data:`ENV_VARS` is built.
    """
    var = EnvVar(name, default, parse, help, secret)
    value = parse(default)
    metadata = {_ENV: var}
    if isinstance(value, (dict, list, set)):
        return field(default_factory=lambda: parse(default), repr=not secret, metadata=metadata)
    return field(default=value, repr=not secret, metadata=metadata)


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

    kafka_bootstrap_servers: str = setting(
        "KAFKA_BOOTSTRAP_SERVERS",
        str,
        "",
        "Kafka bootstrap servers (host:port,...). Empty: start the embedded Tansu broker.",
    )
    kafka_security_protocol: str = setting(
        "KAFKA_SECURITY_PROTOCOL",
        str.upper,
        "PLAINTEXT",
        "`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`; every Kafka client of the project uses it.",
    )
    kafka_sasl_mechanism: str = setting(
        "KAFKA_SASL_MECHANISM", str.upper, "PLAIN", "`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (SASL_*)."
    )
    kafka_sasl_username: str = setting("KAFKA_SASL_USERNAME", str, "", "SASL user name (SASL_*).")
    kafka_sasl_password: str = setting(
        "KAFKA_SASL_PASSWORD", str, "", "SASL password; or `KAFKA_SASL_PASSWORD_FILE` (a path).", secret=True
    )
    kafka_ssl_ca_file: str = setting(
        "KAFKA_SSL_CA_FILE", str, "", "CA bundle (PEM) to verify the brokers; empty: the system's CAs."
    )
    kafka_ssl_cert_file: str = setting(
        "KAFKA_SSL_CERT_FILE", str, "", "Client certificate (PEM) for mutual TLS."
    )
    kafka_ssl_key_file: str = setting(
        "KAFKA_SSL_KEY_FILE", str, "", "Client private key (PEM) for mutual TLS."
    )
    kafka_ssl_key_password: str = setting(
        "KAFKA_SSL_KEY_PASSWORD",
        str,
        "",
        "Password of the client key, if encrypted; or `KAFKA_SSL_KEY_PASSWORD_FILE`.",
        secret=True,
    )
    kafka_ssl_check_hostname: bool = setting(
        "KAFKA_SSL_CHECK_HOSTNAME",
        _parse_bool,
        "true",
        "Check that the broker certificate names the host connected to (the chain is always verified).",
    )
    create_topics: bool = setting(
        "ENGAGE_CREATE_TOPICS",
        _parse_bool,
        "true",
        "Create missing topics at start (always with the embedded broker); `false` without the Create ACL.",
    )
    clickhouse_cluster: str = setting(
        "ENGAGE_CLICKHOUSE_CLUSTER",
        str,
        "",
        "ClickHouse cluster name (`remote_servers`): workers apply the cluster DDL and insert with "
        "`distributed_foreground_insert=1`. Empty: a single server (a cluster schema found is refused).",
    )
    topic_prefix: str = setting("ENGAGE_TOPIC_PREFIX", str, "", "Prefix for every topic name, e.g. `prod.`.")
    topic_partitions: int = setting(
        "ENGAGE_TOPIC_PARTITIONS", int, "8", "Partitions of each interaction topic (the unit of scale-out)."
    )
    topic_replication: int | None = setting(
        "ENGAGE_TOPIC_REPLICATION",
        _optional_int,
        "",
        "Replication factor of topics the project creates. Empty: the broker's default (1 if embedded).",
    )
    topic_retention_ms: int = setting(
        "ENGAGE_TOPIC_RETENTION", parse_duration_ms, "7d", "retention.ms set on topics the project creates."
    )
    consumer_group: str = setting(
        "ENGAGE_CONSUMER_GROUP", str, "engagement-streams", "Consumer group (Faust app id) of the workers."
    )
    clickhouse_dsn: str = setting(
        "CLICKHOUSE_DSN",
        str,
        "",
        "ClickHouse DSN: `https://user:pass@host:8443/db` (TLS; `?verify=`, `ca_cert=`, `client_cert=`, "
        "`client_cert_key=`) or `http://...:8123/db`. Empty: chDB in `<data dir>/clickhouse`.",
    )
    data_dir: Path = setting(
        "ENGAGE_DATA_DIR", Path, "./data", "Where the embedded default keeps chDB data and table state."
    )
    migrate_on_start: bool = setting(
        "ENGAGE_MIGRATE_ON_START", _parse_bool, "true", "Workers apply ClickHouse migrations at start."
    )
    activity_ttl_ms: int = setting(
        "ENGAGE_ACTIVITY_TTL",
        parse_duration_ms,
        "400d",
        "Retention of the per-minute ClickHouse tables, whole days (0: forever); set by `engage db migrate`.",
    )
    engaged_threshold: int = setting(
        "ENGAGE_ENGAGED_THRESHOLD", int, "3", "N: substantive interactions in the window to be engaged."
    )
    window_ms: int = setting("ENGAGE_WINDOW", parse_duration_ms, "30d", "W: the sliding event-time window.")
    min_words: int = setting(
        "ENGAGE_MIN_WORDS", int, "2", "Words a comment or share text needs to be substantive."
    )
    allowed_lateness_ms: int = setting(
        "ENGAGE_ALLOWED_LATENESS",
        parse_duration_ms,
        "1h",
        "How far behind the watermark an event may arrive and still count exactly.",
    )
    like_weight: float = setting(
        "ENGAGE_LIKE_WEIGHT",
        float,
        "0",
        "Weight of a like in the engagement score (e.g. 0.1). Default 0: a like, like a follow, is not "
        "engagement, and followers who only like then keep no state (the worker's largest saving).",
    )
    state_store: str = setting(
        "ENGAGE_STATE_STORE", str, "memory://", "Faust table store: `memory://` or `rocksdb://` (extra)."
    )
    commit_interval_ms: int = setting(
        "ENGAGE_COMMIT_INTERVAL", parse_duration_ms, "1s", "How often a worker flushes state and commits."
    )
    fetch_max_wait_ms: int = setting(
        "ENGAGE_FETCH_MAX_WAIT",
        parse_duration_ms,
        "100ms",
        "The longest a worker's fetch waits at the broker for data that is not there yet (Kafka's "
        "`fetch.max.wait.ms`). The demo sets a longer one on the embedded broker (README, Soak).",
    )
    sink_max_backoff_ms: int = setting(
        "ENGAGE_SINK_MAX_BACKOFF", parse_duration_ms, "30s", "Longest pause between ClickHouse retries."
    )
    sink_timeout_ms: int = setting(
        "ENGAGE_SINK_TIMEOUT",
        parse_duration_ms,
        "30s",
        "How long a worker waits for ClickHouse to answer one request (an insert, a migration) before it "
        "counts ClickHouse unavailable and retries the batch.",
    )
    worker_metrics_port: int = setting(
        "ENGAGE_WORKER_METRICS_PORT", int, "9108", "Port of the worker's /metrics (0: pick a free one)."
    )
    worker_metrics_host: str = setting(
        "ENGAGE_WORKER_METRICS_HOST",
        str,
        "127.0.0.1",
        "Address the worker's /metrics binds (`0.0.0.0` in a container).",
    )
    ingest_host: str = setting(
        "ENGAGE_INGEST_HOST", str, "127.0.0.1", "Address the webhook ingest service binds."
    )
    ingest_port: int = setting("ENGAGE_INGEST_PORT", int, "8080", "Port of the webhook ingest service.")
    ingest_max_body: int = setting(
        "ENGAGE_INGEST_MAX_BODY", int, "1048576", "Largest webhook body accepted, in bytes (413 above)."
    )
    ingest_ack_timeout_ms: int = setting(
        "ENGAGE_INGEST_ACK_TIMEOUT",
        parse_duration_ms,
        "5s",
        "How long ingest waits for Kafka to acknowledge before answering 503.",
    )
    webhook_secrets: Mapping[str, str] = setting(
        "ENGAGE_WEBHOOK_SECRETS",
        _parse_secrets,
        "",
        "Per-source HMAC secrets: `generic=...,meta=...,x=...`.",
        secret=True,
    )
    meta_verify_token: str = setting(
        "ENGAGE_META_VERIFY_TOKEN", str, "", "Token Meta echoes in its subscription handshake.", secret=True
    )
    signature_tolerance_ms: int = setting(
        "ENGAGE_SIGNATURE_TOLERANCE",
        parse_duration_ms,
        "5m",
        "Oldest signed timestamp accepted where a platform signs one.",
    )
    # ingest hardening (issue 18): the limits of the public webhook edge
    ingest_metrics_host: str = setting(
        "ENGAGE_INGEST_METRICS_HOST",
        str,
        "127.0.0.1",
        "Address ingest's /metrics binds (a port of its own, never the public webhook port).",
    )
    ingest_metrics_port: int = setting(
        "ENGAGE_INGEST_METRICS_PORT", int, "9109", "Port of ingest's /metrics (0: pick a free one)."
    )
    ingest_max_elements: int = setting(
        "ENGAGE_INGEST_MAX_ELEMENTS",
        int,
        "10000",
        "Most events/activities/entries one webhook request may carry (413 above).",
    )
    ingest_max_dead_letters: int = setting(
        "ENGAGE_INGEST_MAX_DEAD_LETTERS",
        int,
        "100",
        "Most dead-letter records one request makes; above, one summary record carries the whole body.",
    )
    ingest_max_future_skew_ms: int = setting(
        "ENGAGE_INGEST_MAX_FUTURE_SKEW",
        parse_duration_ms,
        "15m",
        "An event whose occurred_at is further ahead of the wall clock is dead-lettered (reason future).",
    )
    webhook_untimed_sources: frozenset[str] = setting(
        "ENGAGE_WEBHOOK_UNTIMED_SOURCES",
        _parse_names,
        "",
        "Generic-endpoint sources that may sign without X-Signature-Timestamp (default: none may).",
    )
    webhook_trusted_sources: frozenset[str] = setting(
        "ENGAGE_WEBHOOK_TRUSTED_SOURCES",
        _parse_names,
        "",
        "Generic-endpoint sources allowed to post events in a platform adapter's event_id namespace or "
        "platform (x:, fb:, ig:, ap:, bsky:; default: none may).",
    )
    ingest_handshakes_per_minute: int = setting(
        "ENGAGE_INGEST_HANDSHAKES_PER_MINUTE",
        int,
        "30",
        "GET handshakes (X CRC, Meta challenge) answered per platform per minute (429 above).",
    )
    ingest_body_timeout_ms: int = setting(
        "ENGAGE_INGEST_BODY_TIMEOUT",
        parse_duration_ms,
        "30s",
        "A request's whole body must arrive within this (408 and close above).",
    )
    ingest_keepalive_timeout_ms: int = setting(
        "ENGAGE_INGEST_KEEPALIVE_TIMEOUT",
        parse_duration_ms,
        "15s",
        "A connection without a complete request head this long after it opened or after its last "
        "answer (idle keep-alive, slow headers) is closed.",
    )
    ingest_max_connections: int = setting(
        "ENGAGE_INGEST_MAX_CONNECTIONS",
        int,
        "1000",
        "Open client connections ingest keeps; connections beyond are closed at once.",
    )
    ingest_shutdown_timeout_ms: int = setting(
        "ENGAGE_INGEST_SHUTDOWN_TIMEOUT",
        parse_duration_ms,
        "10s",
        "On SIGTERM, how long requests in flight may finish before connections are cut.",
    )
    # end ingest hardening
    drop_threshold: float = setting(
        "ENGAGE_DROP_THRESHOLD", float, "0.5", "Open an engagement-drop alert this far below baseline."
    )
    drop_min_baseline: float = setting(
        "ENGAGE_DROP_MIN_BASELINE",
        float,
        "20",
        "Baseline substantive interactions per hour below which an account never alerts.",
    )
    alertmanager_url: str = setting(
        "ENGAGE_ALERTMANAGER_URL",
        str,
        "",
        "If set, POST drop alerts to this Alertmanager (`/api/v2/alerts`).",
    )
    log_level: str = setting(
        "ENGAGE_LOG_LEVEL",
        _parse_log_level,
        "warning",
        "Log level: `debug`, `info`, `warning`, `error` (`engage -v` raises it for one run).",
    )
    log_format: str = setting(
        "ENGAGE_LOG_FORMAT",
        _parse_log_format,
        "text",
        "`text` (one line per record) or `json` (one JSON object per line, for a log platform).",
    )
    health_max_loop_delay_ms: int = setting(
        "ENGAGE_HEALTH_MAX_LOOP_DELAY",
        parse_duration_ms,
        "30s",
        "The worker's `/healthz` fails once its event loop has not run for this long.",
    )

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
        for attr, var in _ATTR_VARS:
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


#: Each field of :class:`Settings` with its variable, in declaration order.
_ATTR_VARS: tuple[tuple[str, EnvVar], ...] = tuple(
    (item.name, item.metadata[_ENV]) for item in fields(Settings)
)
#: Every variable :meth:`Settings.from_env` reads; the README table and compose-file test check against it.
ENV_VARS: tuple[EnvVar, ...] = tuple(var for _, var in _ATTR_VARS)
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
