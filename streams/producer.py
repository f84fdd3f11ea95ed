"""Producing canonical events to the interaction topics (synchronous edge, kafka-python).

Events are grouped per (topic, partition) into batch envelopes of at most ``max_batch`` events;
``send`` returns only after Kafka acknowledged every envelope (acks=all, idempotent producer), so a
caller can acknowledge upstream once it returns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Protocol

from streams.errors import BrokerUnavailable
from streams.events import Interaction, encode_batch
from streams.kafka_security import PLAINTEXT, KafkaSecurity, check_tls
from streams.partitioning import group_for_envelopes
from streams.settings import Topics

#: How long a producer waits for its first answer from Kafka (kafka-python's default: 30 s).
CONNECT_TIMEOUT_MS = 15_000


class EventPublisher(Protocol):
    """The one-method edge for putting canonical events on Kafka."""

    def send(self, events: Sequence[Interaction]) -> int:
        """Publish and wait for acknowledgement; return the number of Kafka messages written."""
        ...


class KafkaEventPublisher:
    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        partitions: int,
        *,
        max_batch: int = 500,
        timeout_s: float = 30.0,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        from kafka import KafkaProducer

        self._topics = topics
        self._partitions = partitions
        self._max_batch = max_batch
        self._timeout_s = timeout_s
        self._topic_for = {t: topics.for_type(t) for t in ("like", "comment", "share", "follow", "unfollow")}
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap,
                bootstrap_timeout_ms=CONNECT_TIMEOUT_MS,
                **security.kafka_python(),
                acks="all",
                linger_ms=5,
                compression_type=None,
                max_request_size=8 * 1024 * 1024,
                retries=5,
            )
        except Exception as exc:
            check_tls(bootstrap, security, exc)
            raise BrokerUnavailable(
                f"Kafka at {bootstrap} ({security.describe()}) did not answer: {exc!r}"
            ) from exc

    def send(self, events: Sequence[Interaction]) -> int:
        futures = []
        for (topic, partition), group in group_for_envelopes(
            events, self._partitions, self._topic_for
        ).items():
            for start in range(0, len(group), self._max_batch):
                chunk = group[start : start + self._max_batch]
                futures.append(
                    self._producer.send(
                        topic, value=encode_batch(chunk), key=chunk[0].partition_key, partition=partition
                    )
                )
        # A large send (a replay, the benchmark) needs longer than one request: allow 10k events/s.
        self._producer.flush(max(self._timeout_s, len(events) / 10_000))
        try:
            for future in futures:
                future.get(timeout=self._timeout_s)
        except Exception as exc:
            raise BrokerUnavailable(f"Kafka did not acknowledge: {exc}") from exc
        return len(futures)

    def send_dlq(self, records: Iterable[bytes]) -> None:
        futures = [self._producer.send(self._topics.dlq, value=record) for record in records]
        self._producer.flush(self._timeout_s)
        for future in futures:
            future.get(timeout=self._timeout_s)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._producer.close(timeout=5)

    def __enter__(self) -> KafkaEventPublisher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
