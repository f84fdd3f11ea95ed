"""The topics the application owns: created at start when allowed, and checked before anything runs.

Every worker and ingest process (and the demo, ``engage broker``) calls :func:`prepare` once at start:

1. connect with the configured security (:mod:`streams.kafka_security`); a refused TLS handshake or login
   stops the process with :class:`~streams.errors.KafkaRefused` naming the setting, within
   :data:`CONNECT_TIMEOUT_MS` rather than after a client's endless retries;
2. create the missing topics when ``ENGAGE_CREATE_TOPICS`` is on (always for the embedded broker), with
   ``ENGAGE_TOPIC_REPLICATION`` or, when that is empty, the broker's default replication factor;
3. check that the four interaction topics exist with ``ENGAGE_TOPIC_PARTITIONS`` partitions: ingest
   routes each event to a partition by that number (:mod:`streams.partitioning`), so a topic with another
   count would silently put one follower's events on two partitions. A mismatch or a missing topic stops
   the process with :class:`~streams.errors.TopicMismatch`.

The application's topics are :attr:`Topics.all <streams.settings.Topics.all>` plus Faust's changelog
topics (named by :func:`changelog_topic`, prefix first), created here too (compacted) so that Faust finds
them and a cluster's default replication applies to them as well.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from streams.errors import KafkaRefused, TopicMismatch
from streams.kafka_security import PLAINTEXT, KafkaSecurity, check_tls
from streams.settings import Settings

log = logging.getLogger(__name__)

#: How long a process waits for its first answer from Kafka before it stops with a clear error.
CONNECT_TIMEOUT_MS = 15_000
#: ``replication_factor`` meaning "the broker's ``default.replication.factor``" (KIP-464).
BROKER_DEFAULT_REPLICATION = -1


def admin_client(
    bootstrap: str, security: KafkaSecurity = PLAINTEXT, timeout_ms: int = CONNECT_TIMEOUT_MS
) -> Any:
    """A kafka-python admin client, or :class:`KafkaRefused` / the client's error when none connects."""
    from kafka import KafkaAdminClient

    check_tls(bootstrap, security, RuntimeError("checked before connecting"))  # a wrong CA: at once
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=10_000,
            bootstrap_timeout_ms=timeout_ms,
            client_id="engage-admin",
            **security.kafka_python(),
        )
    except Exception as exc:
        check_tls(bootstrap, security, exc)
        detail = f" with {security.describe()}" if security.protocol != "PLAINTEXT" else ""
        raise KafkaRefused(
            f"no answer from Kafka at {bootstrap}{detail} within {timeout_ms / 1000:.0f}s: {exc!r}. "
            "Check KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL, the SASL user and password, and whether "
            "the listener requires a client certificate (KAFKA_SSL_CERT_FILE / KAFKA_SSL_KEY_FILE)"
        ) from exc


#: The worker's Faust tables (``TABLE_NAME`` of ``streams.worker.stage`` and ``streams.worker.drops.stage``).
TABLES = ("engagement-state", "drop-state")


def changelog_topic(settings: Settings, table: str) -> str:
    """Faust's changelog of ``table``, prefix first (:mod:`streams.worker.faust_adapter.changelog_names`)."""
    return f"{settings.topic_prefix}{settings.consumer_group}-{table}-changelog"


def changelog_topics(settings: Settings) -> tuple[str, ...]:
    return tuple(changelog_topic(settings, table) for table in TABLES)


def replication(settings: Settings) -> int:
    if settings.topic_replication is not None:
        return settings.topic_replication
    return 1 if settings.embedded_kafka else BROKER_DEFAULT_REPLICATION


def partition_counts(admin: Any, names: Iterable[str]) -> dict[str, int]:
    """Partition count of each existing topic among ``names``."""
    counts: dict[str, int] = {}
    for topic in admin.describe_topics(list(names)):
        if topic.get("error_code", 0) == 0 and topic.get("partitions"):
            counts[topic["name"]] = len(topic["partitions"])
    return counts


def check(settings: Settings, counts: Mapping[str, int]) -> None:
    """Raise :class:`TopicMismatch` unless every interaction topic has ``ENGAGE_TOPIC_PARTITIONS``."""
    wanted = settings.topic_partitions
    missing = [name for name in settings.topics.interactions if name not in counts]
    if missing:
        raise TopicMismatch(
            f"interaction topic(s) missing: {', '.join(missing)}. Create them with {wanted} partitions each "
            "(see README, 'Running against your own Kafka and ClickHouse'), or set ENGAGE_CREATE_TOPICS=true "
            "where the application may create topics"
        )
    wrong = {name: counts[name] for name in settings.topics.interactions if counts[name] != wanted}
    if wrong:
        shown = ", ".join(f"{name} has {count}" for name, count in sorted(wrong.items()))
        raise TopicMismatch(
            f"ENGAGE_TOPIC_PARTITIONS={wanted} but {shown} partitions: ingest routes events by that "
            "number, so a follower's events would land on different partitions. Set "
            "ENGAGE_TOPIC_PARTITIONS to the topics' partition count (all four must agree)"
        )


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """Every topic the application owns → the configs it is created with."""
    retention = {"retention.ms": str(settings.topic_retention_ms)} if settings.topic_retention_ms else {}
    owned = {name: dict(retention) for name in settings.topics.all}
    # Faust's changelogs keep the latest value per key for good: compacted, never deleted by age.
    owned.update({name: {"cleanup.policy": "compact"} for name in changelog_topics(settings)})
    return owned


def prepare(settings: Settings, bootstrap: str) -> list[str]:
    """Connect, create what is missing (if allowed), check the interaction topics; return those created."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    owned = topic_configs(settings)
    admin = admin_client(bootstrap, settings.kafka_security)
    try:
        counts = partition_counts(admin, owned)
        created: list[str] = []
        if settings.create_topics or settings.embedded_kafka:
            wanted = [
                NewTopic(name, settings.topic_partitions, replication(settings), topic_configs=configs)
                for name, configs in owned.items()
                if name not in counts
            ]
            if wanted:
                with contextlib.suppress(TopicAlreadyExistsError):  # another process was quicker
                    admin.create_topics(wanted)
                created = [topic.name for topic in wanted]
                log.info("created topics %s", created)
                counts = partition_counts(admin, owned)
        check(settings, counts)
        return created
    finally:
        admin.close()
