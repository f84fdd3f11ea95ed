"""What happens to one webhook request, independent of the HTTP server.

``deliver`` runs the checks in an order that never does work for an unauthenticated caller:

1. the source is known and has a secret, and the path carries an account exactly when the adapter
   takes one (else ``404``);
2. the signature over the raw bytes is valid (else ``401``; constant-time, no detail that helps forging);
3. the body parses (else ``400`` with the parse position — and, being authentic, it is dead-lettered);
4. the adapter maps it; what cannot be mapped is dead-lettered, deliberate skips are counted;
5. every envelope (events and DLQ records) is published and acknowledged within
   ``ENGAGE_INGEST_ACK_TIMEOUT``; otherwise ``503`` with ``Retry-After``: nothing is reported accepted,
   but some of it may have been written — a retry is safe because event ids deduplicate downstream.

Bounds (issue 18): a request of more than ``ENGAGE_INGEST_MAX_ELEMENTS`` elements is a 413 before any
per-element work; more than ``ENGAGE_INGEST_MAX_DEAD_LETTERS`` invalid elements make one summary
dead letter (reason ``request_invalid``, the whole body) instead of one each; every dead letter fits
the producer's message limit (:func:`~streams.ingest.envelopes.bounded_dlq_record`); an event dated
more than ``ENGAGE_INGEST_MAX_FUTURE_SKEW`` ahead is dead-lettered (reason ``future``); a generic
event in a platform adapter's namespace is dead-lettered (reason ``namespace``); a bug is a counted
500, never an unanswered request.

``200`` means every event is on Kafka; ``202`` means the request is settled but some of it went to the
dead-letter topic (a platform must not retry a payload that will never map). An adapter that raises
is a bug, but its payload is still authentic: it is dead-lettered with reason ``adapter_error`` rather
than answered with a 500.

The HTTP layer (``streams.ingest.app``) only moves bytes in and out; tests drive this class directly
with the in-process publisher twin.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from streams.errors import BrokerUnavailable, MalformedPayload, WebhookRejected
from streams.events import Interaction
from streams.ingest.adapters import build_adapters
from streams.ingest.adapters.base import Adapter, Context, Ignored, Mapped, Unmappable
from streams.ingest.adapters.generic import TIMESTAMP_HEADER
from streams.ingest.envelopes import (
    ActorPartitions,
    Envelope,
    canonical_envelopes,
    dlq_envelopes,
    event_envelopes,
    topic_map,
)
from streams.ingest.publisher import Publisher
from streams.metrics import Metrics
from streams.settings import Settings

log = logging.getLogger(__name__)

GENERIC = "generic"
SOURCE_HEADER = "X-Engage-Source"
_MAX_ERRORS_SHOWN = 100


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def json_reply(status: int, document: Any, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, orjson.dumps(document), "application/json", headers)


def _original_bytes(original: Any) -> bytes:
    try:
        return orjson.dumps(original)
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, nesting deeper than 254
        pass
    try:
        return repr(original).encode()
    except RecursionError:
        # JSON nested ~1000 deep parses (orjson's limit is 1024) but neither encodes nor reprs; the
        # dead letter then says so instead of the request failing with a 500.
        return b"<not encodable: nested deeper than the encoder allows>"


class HandshakeLimit:
    """A token bucket per route: ``per_minute`` answers, refilled evenly (``monotonic`` seconds)."""

    def __init__(self, per_minute: int, monotonic: Callable[[], float]) -> None:
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._monotonic = monotonic
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, route: str) -> bool:
        now = self._monotonic()
        tokens, last = self._buckets.get(route, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - last) * self._rate)
        allowed = tokens >= 1.0
        self._buckets[route] = (tokens - 1.0 if allowed else tokens, now)
        return allowed


def _future(occurred_at_ms: int, now_ms: int, original: Any) -> Unmappable:
    """An event dated further ahead than ``ENGAGE_INGEST_MAX_FUTURE_SKEW``.

    Not published: one such event moves its partition's event-time watermark to its date, after which
    every genuine event of that partition is "late" and dropped from the counts until the clock catches
    up. A clock a little fast is tolerated; a date this far ahead is a sender's bug (or an attack).
    """
    ahead_s = (occurred_at_ms - now_ms) // 1000
    return Unmappable("future", f"occurred_at {ahead_s} s ahead of the ingest clock", original)


class Unavailable(BrokerUnavailable):
    """Raised by :meth:`IngestService._publish` when Kafka did not acknowledge within
    ``ENGAGE_INGEST_ACK_TIMEOUT`` or the producer failed. Its message is safe to show the HTTP caller
    (no broker address); :meth:`IngestService.deliver` answers 503 with Retry-After."""


class IngestService:
    def __init__(
        self,
        settings: Settings,
        publisher: Publisher,
        metrics: Metrics,
        clock: Callable[[], int],
        *,
        adapters: Mapping[str, Adapter] | None = None,
        monotonic: Callable[[], float] = time.perf_counter,
    ) -> None:
        """``clock`` returns epoch milliseconds (signature tolerance, fallback event time)."""
        self._adapters = dict(adapters if adapters is not None else build_adapters(settings))
        self._secrets = dict(settings.webhook_secrets)
        self._publisher = publisher
        self._metrics = metrics
        self._clock = clock
        self._monotonic = monotonic
        self._topics = settings.topics
        self._topic_for = topic_map(settings.topics)
        self._partitions = settings.topic_partitions
        self._partition_of = ActorPartitions(settings.topic_partitions)
        # Adapters whose events are canonical objects already (the generic one): see _map_canonical.
        self._canonical: dict[str, Callable[[Any], tuple[list[dict[str, Any]], list[Unmappable]]]] = {
            name: fn for name, a in self._adapters.items() if (fn := getattr(a, "map_canonical", None))
        }
        self._children: dict[tuple[str, ...], Any] = {}
        self._ack_timeout_s = settings.ingest_ack_timeout_ms / 1000
        self._retry_after = str(max(1, math.ceil(self._ack_timeout_s)))
        self._max_elements = settings.ingest_max_elements
        self._max_dead_letters = settings.ingest_max_dead_letters
        self._max_future_ms = settings.ingest_max_future_skew_ms
        self._untimed = settings.webhook_untimed_sources
        self._trusted = settings.webhook_trusted_sources
        # What the platform adapters own: their event_id prefixes and platform names (see _trespass).
        self._reserved_prefixes = frozenset(
            p for a in self._adapters.values() for p in getattr(a, "id_prefixes", ())
        )
        self._reserved_platforms = frozenset(
            p for a in self._adapters.values() for p in getattr(a, "emits_platforms", ())
        )
        self._reserved_starts = tuple(f"{prefix}:" for prefix in sorted(self._reserved_prefixes))
        self._handshakes = HandshakeLimit(settings.ingest_handshakes_per_minute, monotonic)

    @property
    def platforms(self) -> list[Adapter]:
        """Adapters served under ``/v1/webhooks/<name>`` (everything but the generic one)."""
        return [adapter for name, adapter in self._adapters.items() if name != GENERIC]

    # --- entry points -----------------------------------------------------------------------------

    async def deliver(
        self, route: str, headers: Mapping[str, str], raw_body: bytes, account: str | None = None
    ) -> Reply:
        """A ``POST``: ``route`` is ``generic`` or a platform adapter's name."""
        started = self._monotonic()
        try:
            reply = await self._deliver(route, headers, raw_body, account)
        except WebhookRejected as exc:
            reply = json_reply(exc.status, {"error": str(exc)})
        except Unavailable as exc:
            reply = json_reply(
                503,
                {
                    "error": "Kafka did not acknowledge within the deadline; some of the request may "
                    f"have been written, retrying is safe (event ids deduplicate) ({exc})"
                },
                (("Retry-After", self._retry_after),),
            )
        except Exception:  # a bug: answered (and counted) as a 500, never an unanswered request
            log.exception("ingest failed on a %s request", route if route in self._adapters else "unknown")
            reply = json_reply(500, {"error": "internal error"})
        return self._finish(route, reply, started)

    def handshake(self, route: str, query: Mapping[str, str]) -> Reply:
        """A ``GET`` on a platform route: the platform's subscription check."""
        started = self._monotonic()
        try:
            adapter, _, secret = self._resolve(route, {})
            # X's CRC answers HMAC(secret, token): bound how often anyone can ask (see adapters/x.py).
            if not self._handshakes.allow(adapter.name):
                refused = json_reply(429, {"error": "too many handshakes"}, (("Retry-After", "60"),))
                return self._finish(route, refused, started)
            answer = adapter.handshake(query, secret)
            if answer is None:
                reply = json_reply(405, {"error": f"{route} has no GET handshake"})
            else:
                reply = Reply(answer.status, answer.body, answer.content_type)
        except WebhookRejected as exc:
            reply = json_reply(exc.status, {"error": str(exc)})
        return self._finish(route, reply, started)

    def rejected(self, route: str, status: int, message: str) -> Reply:
        """A rejection decided by the HTTP layer (body over the limit), counted like the others."""
        return self._finish(route, json_reply(status, {"error": message}), self._monotonic())

    # --- the steps --------------------------------------------------------------------------------

    def _resolve(self, route: str, headers: Mapping[str, str]) -> tuple[Adapter, str, str]:
        adapter = self._adapters.get(route)
        if adapter is None:
            raise WebhookRejected(404, f"unknown source {route[:64]!r}")
        source = route
        if route == GENERIC:
            source = headers.get(SOURCE_HEADER) or GENERIC
            # A platform's secret authenticates that platform's payloads only.
            if source != GENERIC and source in self._adapters:
                raise WebhookRejected(404, f"unknown source {source[:64]!r}")
        secret = self._secrets.get(source)
        if not secret:
            raise WebhookRejected(404, f"unknown source {source[:64]!r}")
        return adapter, source, secret

    async def _deliver(
        self, route: str, headers: Mapping[str, str], raw_body: bytes, account: str | None
    ) -> Reply:
        adapter, source, secret = self._resolve(route, headers)
        if (account is not None) != adapter.takes_account:
            # Serve exactly the paths /openapi.json documents: an inbox route needs its account and no
            # other route takes one (a Mastodon delivery without it could only be dead-lettered).
            raise WebhookRejected(404, f"unknown endpoint for {adapter.name}")
        now = self._clock()
        adapter.verify(headers, raw_body, secret, now)
        if route == GENERIC and source not in self._untimed and headers.get(TIMESTAMP_HEADER) is None:
            # Checked after the signature, so the answer tells nothing to an unauthenticated caller.
            raise WebhookRejected(
                401, f"{TIMESTAMP_HEADER} required for source {source[:64]!r} (replay protection)"
            )
        origin = {"platform": adapter.name, "source": source, "received_at": now}
        try:
            payload = adapter.parse(raw_body)
        except MalformedPayload as exc:
            await self._publish(dlq_envelopes(self._topics, [(exc.reason, str(exc), raw_body)], origin))
            self._count(adapter.name, "dlq", {exc.reason: 1})
            return json_reply(400, {"error": str(exc), "dead_lettered": 1})
        if type(payload) is list and len(payload) > self._max_elements:
            # Refused before any per-element work; the sender splits it (not dead-lettered: nothing
            # about its contents is wrong).
            raise WebhookRejected(
                413, f"{len(payload)} elements in one request; at most {self._max_elements}"
            )
        canonical = self._canonical.get(adapter.name)
        if canonical is not None:
            envelopes, accepted, rejected = self._canonical_envelopes(
                adapter.name, canonical, payload, origin, now, police=source not in self._trusted
            )
            ignored = 0
        else:
            envelopes, accepted, ignored, rejected = self._mapped_envelopes(
                adapter, payload, Context(source, now, account), origin
            )
        reasons: dict[str, int] = {}
        for reason, _ in rejected:
            reasons[reason] = reasons.get(reason, 0) + 1
        summarised = len(rejected) > self._max_dead_letters
        if summarised:
            # Mostly invalid: one summary record with the whole (authentic) body instead of one record
            # per element (the helpers above made none), so a small body cannot fan out into a hundred
            # thousand messages.
            detail = f"{len(rejected)} invalid element(s) in one request: " + ", ".join(
                f"{reason} {count}" for reason, count in sorted(reasons.items())
            )
            envelopes += dlq_envelopes(self._topics, [("request_invalid", detail, raw_body)], origin)
        # The parsed payload is garbage from here on: drop it before waiting for Kafka, so its objects
        # are freed by reference counting now instead of piling up across the requests in flight and
        # triggering the cyclic garbage collector (which then walks them again and again).
        del payload
        await self._publish(envelopes)
        if summarised:
            self._child("webhook_events", adapter.name, "dlq").inc(len(rejected))
            self._child("dlq_messages", "request_invalid").inc()
        elif rejected:
            self._count(adapter.name, "dlq", reasons)
        self._count(adapter.name, "accepted", {"": accepted})
        self._count(adapter.name, "ignored", {"": ignored})
        return self._settled(accepted, ignored, rejected)

    def _mapped_envelopes(
        self, adapter: Adapter, payload: Any, context: Context, origin: dict[str, Any]
    ) -> tuple[list[Envelope], int, int, list[tuple[str, str]]]:
        """Through the adapter's ``map``: envelopes, events accepted, ignored, (reason, detail) of the DLQ."""
        try:
            mapped: list[Mapped] = adapter.map(payload, context)
        except Exception as exc:  # a bug in an adapter; keep the authentic payload, answer 202
            log.exception("adapter %s failed to map a payload; dead-lettering it", adapter.name)
            mapped = [Unmappable("adapter_error", f"{adapter.name}: {type(exc).__name__}", payload)]
        if len(mapped) > self._max_elements:
            raise WebhookRejected(413, f"{len(mapped)} items in one request; at most {self._max_elements}")
        horizon = context.received_at_ms + self._max_future_ms
        events: list[Interaction] = []
        unmappable: list[Unmappable] = []
        for m in mapped:
            if type(m) is Interaction:
                if m.occurred_at_ms > horizon:
                    unmappable.append(_future(m.occurred_at_ms, context.received_at_ms, m.to_dict()))
                else:
                    events.append(m)
            elif type(m) is Unmappable:
                unmappable.append(m)
        ignored = sum(1 for m in mapped if type(m) is Ignored)
        envelopes: list[Envelope] = event_envelopes(events, self._topic_for, self._partitions)
        if len(unmappable) <= self._max_dead_letters:  # else _deliver writes one summary record
            envelopes += dlq_envelopes(
                self._topics, ((u.reason, u.detail, _original_bytes(u.original)) for u in unmappable), origin
            )
        return envelopes, len(events), ignored, [(u.reason, u.detail) for u in unmappable]

    def _canonical_envelopes(
        self,
        platform: str,
        canonical: Callable[[Any], tuple[list[dict[str, Any]], list[Unmappable]]],
        payload: Any,
        origin: dict[str, Any],
        now_ms: int,
        *,
        police: bool,
    ) -> tuple[list[Envelope], int, list[tuple[str, str]]]:
        """The generic endpoint's path: validated objects are grouped and encoded once per envelope."""
        try:
            events, unmappable = canonical(payload)
        except Exception as exc:  # a bug in the adapter; keep the authentic payload, answer 202
            log.exception("adapter %s failed to map a payload; dead-lettering it", platform)
            events = []
            unmappable = [Unmappable("adapter_error", f"{platform}: {type(exc).__name__}", payload)]
        platforms, starts = self._reserved_platforms, self._reserved_starts
        # One C-level membership test and one startswith per event on the hot path; the detail only
        # for the (rare) request that trespasses.
        if police and any(e["platform"] in platforms or e["event_id"].startswith(starts) for e in events):
            unmappable += [Unmappable("namespace", why, e) for e in events if (why := self._trespass(e))]
            events = [e for e in events if not self._trespass(e)]
        horizon = now_ms + self._max_future_ms
        if any(event["occurred_at"] > horizon for event in events):
            unmappable += [_future(e["occurred_at"], now_ms, e) for e in events if e["occurred_at"] > horizon]
            events = [event for event in events if event["occurred_at"] <= horizon]
        envelopes = canonical_envelopes(events, self._topic_for, self._partition_of)
        if unmappable and len(unmappable) <= self._max_dead_letters:  # else: one summary record
            envelopes += dlq_envelopes(
                self._topics, ((u.reason, u.detail, _original_bytes(u.original)) for u in unmappable), origin
            )
        return envelopes, len(events), [(u.reason, u.detail) for u in unmappable]

    def _trespass(self, event: dict[str, Any]) -> str:
        """Why a generic event may not be published, or ``""``: it uses a platform adapter's namespace.

        Deduplication downstream is by ``event_id``: a generic event carrying ``x:tweet:<id>`` would
        displace the genuine X event (or be displaced by it), and one claiming ``platform: "x"`` would
        pass for X's. So the generic secret cannot speak for another source (reason ``namespace``),
        unless its source is listed in ``ENGAGE_WEBHOOK_TRUSTED_SOURCES``.
        """
        platform = event["platform"]
        if platform in self._reserved_platforms:
            return f"platform {platform!r} is served by its own webhook route"
        prefix, colon, _ = event["event_id"].partition(":")
        if colon and prefix in self._reserved_prefixes:
            return f"event_id namespace {prefix + ':'!r} belongs to a platform webhook route"
        return ""

    @staticmethod
    def _settled(accepted: int, ignored: int, rejected: list[tuple[str, str]]) -> Reply:
        document: dict[str, Any] = {
            "accepted": accepted,
            "ignored": ignored,
            "dead_lettered": len(rejected),
        }
        if not rejected:
            return json_reply(200, document)
        document["errors"] = [
            {"reason": reason, "detail": detail} for reason, detail in rejected[:_MAX_ERRORS_SHOWN]
        ]
        return json_reply(202, document)

    async def _publish(self, envelopes: list[Envelope]) -> None:
        if not envelopes:
            return
        try:
            async with asyncio.timeout(self._ack_timeout_s):
                await self._publisher.publish(envelopes)
        except TimeoutError:
            log.warning(
                "Kafka did not acknowledge %d message(s) within %.1fs", len(envelopes), self._ack_timeout_s
            )
            raise Unavailable("timeout") from None
        except BrokerUnavailable as exc:
            log.warning("Kafka unavailable: %s", exc)
            raise Unavailable("broker unavailable") from None
        except Exception as exc:  # an unexpected producer failure is still "not acknowledged"
            log.exception("publishing failed")
            raise Unavailable(type(exc).__name__) from None

    def _child(self, metric: str, *labels: str) -> Any:
        """A labelled metric child, looked up once (``labels()`` takes a lock and builds a key)."""
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = getattr(self._metrics, metric).labels(*labels)
            if len(self._children) < 4096:  # labels are bounded (routes, statuses, reasons) but be safe
                self._children[key] = child
        return child

    def _count(self, platform: str, outcome: str, counts: dict[str, int]) -> None:
        total = sum(counts.values())
        if total:
            self._child("webhook_events", platform, outcome).inc(total)
        if outcome == "dlq":
            for reason, count in counts.items():
                self._child("dlq_messages", reason).inc(count)

    def _finish(self, route: str, reply: Reply, started: float) -> Reply:
        label = route if route in self._adapters else "unknown"
        self._child("webhook_requests", label, str(reply.status)).inc()
        self._child("webhook_latency", label).observe(self._monotonic() - started)
        return reply
