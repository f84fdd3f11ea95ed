"""Every error the project raises on purpose, as one tree.

::

    EngageError                  the base; one that reaches the CLI is printed, exit status 1
    ├── ConfigError              bad setting; the CLI prints it and exits 2
    │   ├── KafkaRefused         Kafka refused the TLS handshake or the login: a KAFKA_SSL_* / SASL setting
    │   └── TopicMismatch        an interaction topic is missing or has the wrong partition count
    ├── InvalidEvent             poison: the input can never be processed → dead-letter topic with reason
    │   ├── SchemaViolation      a field is missing, of the wrong type or out of range
    │   └── MalformedPayload     not JSON / not an object / an unmappable platform payload
    ├── WebhookRejected          the HTTP caller gets a 4xx (status carried on the exception)
    ├── BrokerUnavailable        transient: Kafka did not acknowledge in time
    │   └── Unavailable          (streams.ingest.service) the same, worded for the HTTP caller: a 503
    ├── SinkUnavailable          transient: ClickHouse unreachable or pushing back (too many parts)
    ├── FatalSinkError           ClickHouse rejected the write for good (schema mismatch): stop the worker
    ├── WriteFenced              the worker may no longer write for its partitions (revoked, or its group
    │                            lease lapsed): abandon the flush unacknowledged; its new owner replays it
    ├── AlertmanagerUnavailable  transient: no answer or a 5xx from Alertmanager; log, post again later
    ├── AlertmanagerRejected     Alertmanager answered 4xx: the payload or URL is wrong; log, do not retry
    ├── TransportError           (streams.demo.sender) a demo webhook POST got no HTTP answer; count, retry
    ├── ChildFailed              (streams.demo.orchestrator) a child process of the demo exited on its own
    └── NotReady                 (streams.demo.session) the demo's pipeline did not come up in time

*Poison* and *transient* never share a branch: a dead-letter router catches :class:`InvalidEvent` only,
and each retry loop catches the one transient error of the edge it retries (the worker's sink retry
loop :class:`SinkUnavailable`); nothing retries a poison event.

The errors that belong to one module's own protocol live beside it (marked above with their module);
everything else is here.
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


class WebhookRejected(EngageError):
    """Raised inside the ingest service; the handler answers with ``status`` and the message.

    The message must never contain a secret or a detail that helps forge a signature.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BrokerUnavailable(EngageError):
    """Transient: Kafka did not answer or acknowledge within the deadline.

    Raised by the producers (``streams.ingest.publisher``, ``streams.producer``), the dead-letter reader
    (``streams.dlq_topic``) and the embedded broker's start-up wait. Ingest answers 503 with Retry-After
    (through :class:`streams.ingest.service.Unavailable`); a command (``engage send``, ``replay``, ``dlq``)
    prints it and exits 1, and the caller runs it again once Kafka is back.
    """


class SinkUnavailable(EngageError):
    """Transient: ClickHouse is unreachable or pushing back (too many parts, a timeout).

    Raised by the ClickHouse sink (``streams.sinks.clickhouse``). The worker's sink retry loop
    (``streams.worker.sink_retry``) pauses consumption, backs off and writes the same batch again; a
    command (``engage db``, ``report``) prints it and exits 1.
    """


class AlertmanagerUnavailable(EngageError):
    """Transient: raised by ``streams.alerting.AlertmanagerClient.post`` on a network error, timeout or 5xx.

    The caller (drop detection in the worker) logs it and carries on: open alerts are posted again after
    the next closed hour, and the topic and ClickHouse already have them.
    """


class AlertmanagerRejected(EngageError):
    """Raised by ``AlertmanagerClient.post`` when Alertmanager answers 4xx (bad URL or payload).

    Retrying cannot help; the caller logs the message (which carries the status) and drops the post.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class FatalSinkError(EngageError):
    """Raised by the ClickHouse sink and its migrations when ClickHouse rejects a write or a schema in a way
    retrying cannot fix (a changed applied migration, a schema mismatch). The worker stops with this
    message; an operator fixes the schema or the setting."""


class WriteFenced(EngageError):
    """Raised by :meth:`streams.worker.lease.Lease.check` before a flush writes anything outside the process.

    Either a rebalance is revoking the worker's partitions (the flush must not hold the revocation up,
    e.g. while ClickHouse is down), or no group heartbeat succeeded for longer than the lease allows:
    a worker that was frozen (SIGSTOP, a stalled VM) past its session timeout may have been replaced,
    and a write now could land after its successor's. The caller abandons the flush without
    acknowledging anything; the interval's intent is in the changelog, so whoever owns the partition
    next re-forms it with the same sink token.
    """
