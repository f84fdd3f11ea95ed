"""Post generated events to ``engage ingest`` as signed webhooks, paced, with bounded concurrency.

The sender takes the generator's events in steps (about ``step_s`` of wall time each), asks the
:class:`~streams.demo.pacing.Pacer` when a step is due, turns it into signed requests
(:func:`streams.demo.webhooks.build_requests`: generic, Meta and X) and posts them with at most
``concurrency`` requests in flight. A full pipe (every slot taken) slows the generator down instead
of queueing without bound; the pacer then reports how far behind it is.

Answers are counted by class (2xx/4xx/5xx). A ``503`` (ingest: Kafka did not acknowledge in time) and
a connection error are retried after ``Retry-After`` (or a short backoff), at most ``max_attempts``
times, and never once the sender is stopping.

The HTTP client is a one-method :class:`Transport`; :class:`AiohttpTransport` is the real one and
tests pass an in-process twin.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from streams.demo.pacing import Pacer
from streams.demo.webhooks import WebhookRequest, build_requests
from streams.errors import EngageError
from streams.events import Interaction

log = logging.getLogger(__name__)


class TransportError(EngageError):
    """Raised by a :class:`Transport`'s ``post`` when the request got no HTTP answer (connection refused,
    reset, timed out). The sender counts a connection error and tries the request again."""


class Transport(Protocol):
    async def post(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, float | None]:
        """POST and return ``(status, Retry-After seconds or None)``; raise :class:`TransportError`."""
        ...


@dataclass
class SendStats:
    """What the sender did so far (cumulative; the screen derives rates from successive copies)."""

    events_generated: int = 0
    events_sent: int = 0  # carried by requests answered 2xx
    events_rejected: int = 0  # carried by requests answered 4xx
    events_failed: int = 0  # carried by requests that got no 2xx/4xx after every attempt
    requests: int = 0  # answered requests (every attempt)
    status_classes: dict[str, int] = field(default_factory=lambda: {"2xx": 0, "4xx": 0, "5xx": 0})
    retries: int = 0
    connection_errors: int = 0
    in_flight: int = 0
    event_time_ms: int | None = None  # the newest event time handed out so far
    behind_s: float = 0.0  # how far the sender is behind the pacer's schedule

    def copy(self) -> SendStats:
        return SendStats(**{**self.__dict__, "status_classes": dict(self.status_classes)})


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 200 <= status < 600 else "other"


class WebhookSender:
    def __init__(
        self,
        events: Iterable[Interaction],
        secrets: Mapping[str, str],
        transport: Transport,
        pacer: Pacer,
        *,
        step_events: int,
        concurrency: int = 16,
        max_attempts: int = 5,
        retry_backoff_s: float = 0.5,
    ) -> None:
        if step_events < 1 or concurrency < 1 or max_attempts < 1:
            raise ValueError("step_events, concurrency and max_attempts must be at least 1")
        self._events = events
        self._secrets = dict(secrets)
        self._transport = transport
        self._pacer = pacer
        self._step = step_events
        self._slots = asyncio.Semaphore(concurrency)
        self._max_attempts = max_attempts
        self._backoff_s = retry_backoff_s
        self._stopping = asyncio.Event()
        self.stats = SendStats()

    def stop(self) -> None:
        """Stop taking new events; requests in flight finish (without further retries)."""
        self._stopping.set()

    async def run(self, limit: int | None = None) -> SendStats:
        """Send until :meth:`stop` (or ``limit`` events, or the end of a finite stream)."""
        events = iter(self._events if limit is None else itertools.islice(self._events, limit))
        tasks: set[asyncio.Task[None]] = set()
        stats = self.stats
        while not self._stopping.is_set():
            batch = list(itertools.islice(events, self._step))
            if not batch:
                break
            newest = max(event.occurred_at_ms for event in batch)
            wait = self._pacer.delay_s(newest, len(batch))
            stats.behind_s = self._pacer.behind_s
            if wait > 0 and await self._pause(wait):
                break
            stats.events_generated += len(batch)
            if stats.event_time_ms is None or newest > stats.event_time_ms:
                stats.event_time_ms = newest
            for request in build_requests(batch, self._secrets):
                await self._slots.acquire()
                task = asyncio.create_task(self._deliver(request))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
        return stats

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds``, or less when the sender is stopped meanwhile; True when stopped."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
            return True
        except TimeoutError:
            return False

    async def _deliver(self, request: WebhookRequest) -> None:
        stats = self.stats
        stats.in_flight += 1
        try:
            status: int | None = None
            for attempt in range(1, self._max_attempts + 1):
                retry_after: float | None = None
                try:
                    status, retry_after = await self._transport.post(
                        request.path, request.headers, request.body
                    )
                except TransportError as exc:
                    status = None
                    stats.connection_errors += 1
                    log.debug("%s %s: %s", request.method, request.path, exc)
                else:
                    stats.requests += 1
                    kind = status_class(status)
                    stats.status_classes[kind] = stats.status_classes.get(kind, 0) + 1
                retryable = status is None or status == 503
                if not retryable or attempt == self._max_attempts or self._stopping.is_set():
                    break
                stats.retries += 1
                if await self._pause(retry_after if retry_after is not None else self._backoff_s * attempt):
                    break
            count = len(request.events)
            if status is not None and 200 <= status < 300:
                stats.events_sent += count
            elif status is not None and 400 <= status < 500:
                stats.events_rejected += count
            else:
                stats.events_failed += count
        finally:
            stats.in_flight -= 1
            self._slots.release()


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the HTTP-date form is not used by ingest and is ignored)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class AiohttpTransport:
    """The real :class:`Transport`: one aiohttp session to the ingest service's base URL."""

    def __init__(self, base_url: str, *, concurrency: int = 16, timeout_s: float = 30.0) -> None:
        self._base_url = base_url
        self._concurrency = concurrency
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AiohttpTransport:
        self._session = aiohttp.ClientSession(
            base_url=self._base_url,
            connector=aiohttp.TCPConnector(limit=self._concurrency),
            timeout=aiohttp.ClientTimeout(total=self._timeout_s),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, float | None]:
        if self._session is None:
            raise RuntimeError("use AiohttpTransport as an async context manager")
        try:
            async with self._session.post(path, data=body, headers=dict(headers)) as response:
                await response.read()
                return response.status, parse_retry_after(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
