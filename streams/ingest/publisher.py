"""The ingest service's Kafka edge: one method, ``publish(envelopes)``, and an in-process twin.

``publish`` returns only when Kafka acknowledged every envelope (``acks="all"``) and raises
:class:`~streams.errors.BrokerUnavailable` otherwise; the service answers 2xx only after it returned.
The deadline (``ENGAGE_INGEST_ACK_TIMEOUT``) is applied by the caller around the call, so the twin and
the real producer behave the same way under it.

:class:`KafkaPublisher` uses aiokafka's ``AIOKafkaProducer`` (asyncio, so a request waiting for its
acknowledgement holds no thread). It asks for an idempotent producer and falls back to plain
``acks="all"`` when the broker refuses ``InitProducerId`` — the embedded Tansu 0.6 broker does
(``UnknownError``), real Kafka does not. Without idempotence a retried produce can duplicate a message;
event ids derived from platform ids make that harmless downstream.

The producer's ``request_timeout_ms`` — in aiokafka also the time a batch may wait to be delivered —
is half the ack deadline, so a batch the broker cannot take usually fails before the caller's
deadline. Usually, not always: a produce request already on the wire when the broker stalls may have
been written, and aiokafka retries a batch internally; a probe that stopped the broker for 10 s saw
events of requests answered 503 land anyway, some three times with the clients' retries. So a 503
means "maybe written": retrying is safe because event ids are derived from the platforms' ids and
the worker deduplicates by ``event_id`` (README, "Webhook ingestion").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from streams.errors import BrokerUnavailable
from streams.ingest.envelopes import DEFAULT_MAX_BYTES, Envelope
from streams.kafka_security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)


class Publisher(Protocol):
    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Return once Kafka acknowledged every envelope; raise ``BrokerUnavailable`` if it cannot."""
        ...


class MemoryPublisher:
    """The in-process twin. ``available=False`` makes it fail like a stopped broker; ``delay_s`` slow."""

    def __init__(self, *, available: bool = True, delay_s: float = 0.0) -> None:
        self.envelopes: list[Envelope] = []
        self.available = available
        self.delay_s = delay_s

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if not self.available:
            raise BrokerUnavailable("memory publisher: unavailable")
        self.envelopes.extend(envelopes)

    async def ready(self) -> bool:
        return self.available


class CoalescingPublisher:
    """Merges the envelopes of concurrent requests bound for the same (topic, partition).

    At load, a hundred-event request spreads over every partition of four topics, so each request
    makes ~30 small messages, and per-message producer overhead dominates. Requests that publish in
    the same event-loop iteration are flushed together: envelopes for one (topic, partition) are
    spliced into one JSON array (byte-level, no re-encoding; cut at ``max_bytes``), keyed by the
    first envelope's key. Each request still learns its own outcome: it succeeds only if every merged
    message that carries one of its envelopes was acknowledged. Envelopes without a partition (DLQ
    records, not arrays) pass through unmerged.

    At most ``max_in_flight`` merged flushes wait for Kafka at a time; requests that arrive meanwhile
    queue for the next one. The batch size thus follows the load with no timer: an idle service
    flushes at once (no added latency), a busy one merges everything that arrived during a broker
    round trip, so the number of Kafka messages per request falls as the request rate rises.
    """

    def __init__(
        self, inner: Publisher, *, max_bytes: int = DEFAULT_MAX_BYTES, max_in_flight: int = 2
    ) -> None:
        self._inner = inner
        self._max_bytes = max_bytes
        self._max_in_flight = max_in_flight
        self._in_flight = 0
        self._scheduled = False
        self._pending: list[tuple[Sequence[Envelope], asyncio.Future[None]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._publish_each = getattr(inner, "publish_each", None)

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if not envelopes:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((envelopes, future))
        self._schedule(loop)
        await future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._pending and not self._scheduled and self._in_flight < self._max_in_flight:
            self._scheduled = True
            loop.call_soon(self._start_flush)

    async def ready(self) -> bool:
        ready = getattr(self._inner, "ready", None)
        return bool(await ready()) if ready is not None else True

    def _start_flush(self) -> None:
        self._scheduled = False
        # A request whose caller already gave up (its deadline passed while it queued) is not sent:
        # it was answered 503 and will be retried, so sending it now would only make a duplicate.
        batch = [entry for entry in self._pending if not entry[1].done()]
        self._pending = []
        if not batch:
            return
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._flush(batch))
        self._tasks.add(task)
        task.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._in_flight -= 1
        self._schedule(asyncio.get_running_loop())

    def _merge(
        self, batch: list[tuple[Sequence[Envelope], asyncio.Future[None]]]
    ) -> list[tuple[Envelope, set[int]]]:
        merged: list[tuple[Envelope, set[int]]] = []
        groups: dict[tuple[str, int], list[tuple[int, Envelope]]] = {}
        for index, (envelopes, _) in enumerate(batch):
            for envelope in envelopes:
                if envelope.partition is None or not envelope.value.startswith(b"["):
                    merged.append((envelope, {index}))
                else:
                    groups.setdefault((envelope.topic, envelope.partition), []).append((index, envelope))
        for (topic, partition), members in groups.items():
            parts: list[bytes] = []
            owners: set[int] = set()
            key: bytes | None = None
            size = 2
            for index, envelope in members:
                inner = envelope.value[1:-1]
                if not inner.strip():  # an empty array carries nothing to acknowledge
                    continue
                if parts and size + len(inner) + 1 > self._max_bytes:
                    merged.append((Envelope(topic, partition, key, b"[" + b",".join(parts) + b"]"), owners))
                    parts, owners, size = [], set(), 2
                if not parts:
                    key = envelope.key
                parts.append(inner)
                owners.add(index)
                size += len(inner) + 1
            if parts:
                merged.append((Envelope(topic, partition, key, b"[" + b",".join(parts) + b"]"), owners))
        return merged

    async def _flush(self, batch: list[tuple[Sequence[Envelope], asyncio.Future[None]]]) -> None:
        merged = self._merge(batch)
        results: list[BaseException | None]
        if self._publish_each is not None:
            try:
                results = await self._publish_each([e for e, _ in merged])
            except Exception as exc:  # nothing could be sent: every request of the flush fails
                results = [exc] * len(merged)
        else:
            results = await asyncio.gather(
                *(self._inner.publish([e]) for e, _ in merged), return_exceptions=True
            )
        failed: dict[int, BaseException] = {}
        for (_, owners), result in zip(merged, results, strict=True):
            if isinstance(result, BaseException):
                failed.update(dict.fromkeys(owners, result))
        for index, (_, future) in enumerate(batch):
            if future.done():  # the caller's deadline already gave up on it
                continue
            if index in failed:
                error = failed[index]
                future.set_exception(
                    error if isinstance(error, BrokerUnavailable) else BrokerUnavailable(repr(error))
                )
            else:
                future.set_result(None)


class _RedactValues(logging.Filter):
    """aiokafka (0.12) logs every message's key and value at DEBUG, twice: the producer's "Sending
    (key=%s value=%s) to %s" and the connection's "Request to %s:%d %d: %s" with the whole produce
    request, records included. At ``-vv`` that was every comment text and actor id the service
    received. The lines keep the sizes, the partition and the request's type, never the bytes
    (tests/integration/test_ingest_hostile.py::test_debug_log_carries_no_message_values)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.args, tuple):
            return True
        if record.msg == "Sending (key=%s value=%s) to %s" and len(record.args) == 3:
            key, value, tp = record.args
            record.msg = "Sending (key %s bytes, value %s bytes) to %s"
            record.args = (_size(key), _size(value), tp)
        elif any(type(arg).__name__.startswith("ProduceRequest") for arg in record.args):
            record.args = tuple(
                f"<{type(arg).__name__}: records not logged>"
                if type(arg).__name__.startswith("ProduceRequest")
                else arg
                for arg in record.args
            )
        return True


def _size(data: object) -> int | None:
    return len(data) if isinstance(data, bytes | bytearray | str) else None


_REDACT = _RedactValues()


def _error_types() -> tuple[type[BaseException], ...]:
    from aiokafka.errors import KafkaError

    return (KafkaError, OSError)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class KafkaPublisher:
    """aiokafka producer: ``acks="all"``, idempotent where the broker supports it."""

    def __init__(
        self,
        bootstrap: str,
        *,
        ack_timeout_ms: int,
        linger_ms: int = 1,
        max_request_size: int = 2 * 1024 * 1024,
        idempotence: bool | None = None,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        """``idempotence``: ``True`` requires it, ``False`` never asks, ``None`` asks and falls back."""
        self._bootstrap = bootstrap
        self._ack_timeout_ms = ack_timeout_ms
        self._linger_ms = linger_ms
        self._max_request_size = max_request_size
        self._idempotence = idempotence
        self._security = security
        self._producer: Any = None
        self.idempotent = False
        for name in ("aiokafka.producer.producer", "aiokafka.conn"):
            logger = logging.getLogger(name)
            if _REDACT not in logger.filters:
                logger.addFilter(_REDACT)

    def _make(self, idempotent: bool) -> Any:
        from aiokafka import AIOKafkaProducer

        return AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            enable_idempotence=idempotent,
            linger_ms=self._linger_ms,
            # The embedded broker keeps every record batch in memory for good (streams.embedded.broker):
            # compressed, it holds a few times less; zstd costs about nothing at the demo's rates.
            compression_type="zstd",
            max_batch_size=256 * 1024,
            max_request_size=self._max_request_size,
            request_timeout_ms=max(self._ack_timeout_ms // 2, 250),
            retry_backoff_ms=100,
            client_id="engage-ingest",
            **self._security.aiokafka(),
        )

    async def start(self) -> KafkaPublisher:
        from aiokafka.errors import KafkaConnectionError, KafkaError

        if self._idempotence is not False:
            producer = self._make(True)
            try:
                await producer.start()
            except KafkaConnectionError as exc:
                await producer.stop()
                raise BrokerUnavailable(f"Kafka at {self._bootstrap} is unreachable: {exc}") from exc
            except KafkaError as exc:
                await producer.stop()
                if self._idempotence:
                    raise BrokerUnavailable(f"Kafka refused an idempotent producer: {exc!r}") from exc
                log.warning(
                    "Kafka at %s refused InitProducerId (%r); continuing without idempotence (acks=all)",
                    self._bootstrap,
                    exc,
                )
            else:
                self._producer, self.idempotent = producer, True
                return self
        producer = self._make(False)
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise BrokerUnavailable(f"Kafka at {self._bootstrap} is unreachable: {exc}") from exc
        self._producer = producer
        return self

    async def publish_each(self, envelopes: Sequence[Envelope]) -> list[BaseException | None]:
        """Send every envelope; return each one's outcome (``None``: acknowledged) — one coroutine
        for a whole merged flush instead of a task per message."""
        if self._producer is None:
            raise BrokerUnavailable("publisher not started")
        errors = _error_types()
        send = self._producer.send
        outcomes: list[asyncio.Future[Any] | BaseException] = []
        for e in envelopes:
            try:
                future = await send(e.topic, e.value, key=e.key, partition=e.partition)
            except errors as exc:
                outcomes.append(BrokerUnavailable(f"Kafka did not accept the message: {exc!r}"))
                continue
            future.add_done_callback(_retrieve)
            outcomes.append(future)
        results: list[BaseException | None] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                results.append(outcome)
                continue
            try:
                await outcome
            except errors as exc:
                results.append(BrokerUnavailable(f"Kafka did not acknowledge a message: {exc!r}"))
            else:
                results.append(None)
        return results

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if self._producer is None:
            raise BrokerUnavailable("publisher not started")
        errors = _error_types()
        futures: list[asyncio.Future[Any]] = []
        try:
            for e in envelopes:
                future = await self._producer.send(e.topic, e.value, key=e.key, partition=e.partition)
                # If the caller's deadline cancels us before gather, nobody else reads the outcome.
                future.add_done_callback(_retrieve)
                futures.append(future)
        except errors as exc:
            raise BrokerUnavailable(f"Kafka did not accept the messages: {exc!r}") from exc
        results = await asyncio.gather(*futures, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise BrokerUnavailable(f"Kafka did not acknowledge {len(failed)} message(s): {failed[0]!r}")

    async def ready(self) -> bool:
        """Whether the broker answers a metadata request now (``/readyz``)."""
        if self._producer is None:
            return False
        errors: tuple[type[BaseException], ...] = (TimeoutError, *_error_types())
        try:
            async with asyncio.timeout(2.0):
                return bool(await self._producer.client.force_metadata_update())
        except errors:
            return False

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                async with asyncio.timeout(max(self._ack_timeout_ms / 1000, 1.0)):
                    await producer.stop()
            except TimeoutError:
                log.warning("Kafka producer did not flush within the ack timeout while stopping")
