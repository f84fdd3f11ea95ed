"""The one interface every platform adapter implements, and the small helpers they share.

An adapter knows one platform's wire format and nothing about HTTP servers or Kafka:

- ``verify(headers, raw_body, secret, now_ms)`` checks the platform's signature over the raw bytes
  (constant-time compare) and raises :class:`~streams.errors.WebhookRejected` (401) when it fails;
- ``handshake(query, secret)`` answers the platform's subscription check on ``GET`` (Meta
  ``hub.challenge``, X CRC), or ``None`` where the platform has none;
- ``parse(raw_body)`` turns bytes into a JSON value (:class:`~streams.errors.MalformedPayload` with the
  parse position when it cannot);
- ``map(payload, context)`` turns one authentic delivery into canonical events, each item an
  :class:`~streams.events.Interaction`, an :class:`Ignored` (a real platform event that is deliberately
  not an interaction, e.g. a comment removal) or an :class:`Unmappable` (it should map but cannot:
  it goes to the dead-letter topic with the reason).

Mapping is pure: no clock read (``context.received_at_ms`` is the injected clock's reading, used only
when a payload carries no event time), no I/O. ``event_id`` is derived from the platform's own ids so
a redelivery maps to the same id and is deduplicated downstream.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from streams.errors import InvalidEvent, WebhookRejected
from streams.events import Interaction, decode_object, parse_json

# 10^11 ms is March 1973; 10^11 s is the year 5138. Platforms send either seconds or milliseconds, so a
# value below this is seconds.
_SECONDS_BELOW = 100_000_000_000


@dataclass(frozen=True, slots=True)
class Context:
    """What the service knows about one delivery besides its body."""

    source: str
    received_at_ms: int
    account: str | None = None  # from the route, for inboxes that belong to one account (ActivityPub)


@dataclass(frozen=True, slots=True)
class Ignored:
    """An authentic platform event that is deliberately not an interaction (counted, not stored)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Unmappable:
    """A part of an authentic payload that should have mapped but cannot: dead-lettered with ``reason``."""

    reason: str
    detail: str
    original: Any


Mapped = Interaction | Ignored | Unmappable


@dataclass(frozen=True, slots=True)
class HandshakeReply:
    status: int
    body: bytes
    content_type: str = "text/plain"


class Adapter(Protocol):
    """One platform. ``name`` is its route segment, metric label and default secret name.

    ``takes_account``: deliveries are posted to ``/v1/webhooks/<name>/{account}`` (an inbox that belongs
    to one account and whose payloads do not name it, ActivityPub) instead of ``/v1/webhooks/<name>``.
    """

    name: str
    takes_account: bool

    def verify(self, headers: Mapping[str, str], raw_body: bytes, secret: str, now_ms: int) -> None:
        """Raise ``WebhookRejected(401, ...)`` unless ``raw_body`` is signed with ``secret``."""
        ...

    def handshake(self, query: Mapping[str, str], secret: str) -> HandshakeReply | None:
        """The answer to the platform's ``GET`` subscription check, or ``None`` if it has none."""
        ...

    def parse(self, raw_body: bytes) -> Any:
        """The JSON value of the body; ``MalformedPayload`` (with the position) if it is not JSON."""
        ...

    def map(self, payload: Any, context: Context) -> list[Mapped]:
        """Every item of one delivery, in payload order."""
        ...


class JsonAdapter:
    """Defaults for platforms that post one JSON document and have no handshake."""

    name = "json"
    takes_account = False

    def parse(self, raw_body: bytes) -> Any:
        return parse_json(raw_body)

    def handshake(self, query: Mapping[str, str], secret: str) -> HandshakeReply | None:
        return None


# --- signatures ------------------------------------------------------------------------------------


def hmac_sha256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def hmac_sha256_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def hmac_sha256_b64(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac_sha256(secret, message)).decode()


def require_signature(headers: Mapping[str, str], header: str) -> str:
    value = headers.get(header)
    if not value:
        raise WebhookRejected(401, f"missing signature header {header}")
    return value


def check_prefixed(provided: str, expected_digest: str, prefix: str = "sha256=") -> None:
    """Constant-time comparison of ``<prefix><digest>``; the same answer for every kind of mismatch."""
    expected = (prefix + expected_digest).encode()
    if not hmac.compare_digest(provided.strip().encode(errors="replace"), expected):
        raise WebhookRejected(401, "invalid signature")


def verify_hex_hmac(headers: Mapping[str, str], raw_body: bytes, secret: str, header: str) -> None:
    """``<header>: sha256=<hex HMAC-SHA256(secret, raw body)>`` (Meta, the generic scheme, bridges)."""
    check_prefixed(require_signature(headers, header), hmac_sha256_hex(secret, raw_body))


# --- payload helpers ---------------------------------------------------------------------------------


def id_str(value: object) -> str | None:
    """A platform id as text: strings as they are, integers in decimal, anything else ``None``."""
    if type(value) is str:
        return value or None
    if type(value) is int:
        return str(value)
    return None


def obj(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (so lookups chain without type checks)."""
    return value if type(value) is dict else {}


def items(value: object) -> list[Any]:
    return value if type(value) is list else []


def epoch_ms(value: object) -> int | None:
    """Epoch seconds or milliseconds (number or numeric string), or an ISO 8601 timestamp → ms."""
    if type(value) is str:
        text = value.strip()
        if text.isascii() and text.isdigit():
            value = int(text)
        else:
            return iso_ms(text)
    if type(value) is float:
        value = int(value)
    if type(value) is not int or value < 0:
        return None
    return value * 1000 if value < _SECONDS_BELOW else value


def iso_ms(text: str) -> int | None:
    """RFC 3339 / Graph API style (``2026-11-22T10:00:00+0000``) timestamps with an offset → ms."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return round(parsed.timestamp() * 1000)


def first_time(*candidates: object) -> int | None:
    for candidate in candidates:
        ms = epoch_ms(candidate)
        if ms is not None:
            return ms
    return None


_ID_MAX = 256
_TEXT_MAX = 65_536


def stable_id(prefix: str, *parts: str) -> str:
    """``prefix:part:part``; ids longer than the schema allows become ``prefix:h:<sha256>`` (stable)."""
    joined = ":".join((prefix, *parts))
    if len(joined) <= _ID_MAX:
        return joined
    return f"{prefix}:h:{hashlib.sha256(joined.encode()).hexdigest()}"


def build(
    *,
    event_id: str,
    type: str,
    platform: str,
    account_id: str | None,
    actor_id: str | None,
    post_id: str | None,
    text: str | None,
    occurred_at_ms: int | None,
    original: Any,
) -> Interaction | Unmappable:
    """A canonical event validated by the one decoder, or why it cannot be one.

    Every adapter goes through here, so nothing an adapter emits can break the schema. Text longer
    than the schema's limit is truncated (the word count, all the pipeline needs, is not affected in
    practice; platforms cap comments far below it).
    """
    candidate = {
        "event_id": event_id,
        "type": type,
        "platform": platform,
        "account_id": account_id,
        "actor_id": actor_id,
        "post_id": post_id,
        "text": text[:_TEXT_MAX] if text is not None else None,
        "occurred_at": occurred_at_ms,
    }
    try:
        return decode_object(candidate)
    except InvalidEvent as exc:
        return Unmappable(exc.reason, f"{platform} {type}: {exc}", original)
