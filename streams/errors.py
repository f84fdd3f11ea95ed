"""Every error the project raises on purpose, as one tree.

::

    EngageError
    ├── ConfigError              bad setting; the CLI prints it and exits 2
    │   ├── KafkaRefused         Kafka refused the TLS handshake or the login: a KAFKA_SSL_* / SASL setting
    │   └── TopicMismatch        an interaction topic is missing or has the wrong partition count
    ├── InvalidEvent             poison: the input can never be processed → dead-letter topic with reason
    │   ├── SchemaViolation      a field is missing, of the wrong type or out of range
    │   └── MalformedPayload     not JSON / not an object / an unmappable platform payload
    ├── LateEvent                poison: older than the watermark minus the allowed lateness → DLQ "late"
    ├── WebhookRejected          the HTTP caller gets a 4xx (status carried on the exception)
    ├── RetryableError           transient: back off and try the same thing again
    │   ├── BrokerUnavailable    Kafka did not acknowledge in time (ingest answers 503)
    │   ├── SinkUnavailable      ClickHouse unreachable or pushing back (too many parts)
    │   └── AlertmanagerUnavailable  no answer or a 5xx from Alertmanager: post again later
    ├── AlertmanagerRejected     Alertmanager answered 4xx: the payload or URL is wrong; log, do not retry
    ├── FatalSinkError           ClickHouse rejected the write for good (schema mismatch): stop the worker
    └── WriteFenced              the worker may no longer write for its partitions (revoked, or its group
                                 lease lapsed): abandon the flush unacknowledged; its new owner replays it

*Poison* and *retryable* never share a branch: a retry loop catches :class:`RetryableError` only,
and a dead-letter router catches :class:`InvalidEvent` / :class:`LateEvent` only.
"""

from __future__ import annotations


class EngageError(Exception):
    """Base of every error raised on purpose by engagement-streams."""


class ConfigError(EngageError):
    """Raised while reading settings. The CLI prints the message and exits with status 2."""


class KafkaRefused(ConfigError):
    """Raised at start when Kafka refuses the connection for a setting's sake (unknown CA, a listener
    that does not speak TLS, a refused SASL login). The message names the setting; the process stops."""


class TopicMismatch(ConfigError):
    """Raised at start by the topic check (:mod:`streams.topics`): an interaction topic is missing (and
    ``ENGAGE_CREATE_TOPICS`` is off) or its partition count differs from ``ENGAGE_TOPIC_PARTITIONS``,
    which ingest routes events by. The process stops; an operator fixes the topic or the setting."""


class InvalidEvent(EngageError):
    """Raised by decoders for input that can never be processed.

    ``reason`` is a short machine-readable code (it becomes the DLQ ``reason`` and a metric label);
    ``field`` names the offending field when there is one. The caller routes the original bytes
    to the dead-letter topic; it never retries.
    """

    reason = "invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    @property
    def detail(self) -> str:
        return str(self)


class SchemaViolation(InvalidEvent):
    """A canonical event breaks ``schemas/events/interaction.v1.json``; ``field`` says where."""

    reason = "schema"


class MalformedPayload(InvalidEvent):
    """Bytes that are not a JSON object, or a platform payload no adapter can map."""

    reason = "malformed"


class LateEvent(EngageError):
    """Raised (or reported) by the engagement core for an event older than watermark − lateness.

    Not retryable: the caller counts it and routes it to the DLQ with reason ``late``.
    """

    reason = "late"


class WebhookRejected(EngageError):
    """Raised inside the ingest service; the handler answers with ``status`` and the message.

    The message must never contain a secret or a detail that helps forge a signature.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class RetryableError(EngageError):
    """A transient failure: the caller keeps the work, backs off with jitter and tries again."""


class BrokerUnavailable(RetryableError):
    """Kafka did not acknowledge within the deadline. Ingest answers 503 with Retry-After."""


class SinkUnavailable(RetryableError):
    """ClickHouse is unreachable or pushing back. The worker pauses consumption and retries."""


class AlertmanagerUnavailable(RetryableError):
    """Raised by ``streams.alerting.AlertmanagerClient.post`` on a network error, timeout or 5xx.

    The caller keeps the alerts and posts them again later (the topic and ClickHouse already have them).
    """


class AlertmanagerRejected(EngageError):
    """Raised by ``AlertmanagerClient.post`` when Alertmanager answers 4xx (bad URL or payload).

    Retrying cannot help; the caller logs the message (which carries the status) and drops the post.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class FatalSinkError(EngageError):
    """ClickHouse rejected a write in a way retrying cannot fix. The worker stops with this message."""


class WriteFenced(EngageError):
    """Raised by :meth:`streams.worker.lease.Lease.check` before a flush writes anything outside the process.

    Either a rebalance is revoking the worker's partitions (the flush must not hold the revocation up,
    e.g. while ClickHouse is down), or no group heartbeat succeeded for longer than the lease allows:
    a worker that was frozen (SIGSTOP, a stalled VM) past its session timeout may have been replaced,
    and a write now could land after its successor's. The caller abandons the flush without
    acknowledging anything; the interval's intent is in the changelog, so whoever owns the partition
    next re-forms it with the same sink token.
    """
