"""Canonical events posted as they are: one object, a JSON array of them, or NDJSON.

Signature: ``X-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>``, the secret being the
source's (``ENGAGE_WEBHOOK_SECRETS``; the source is named by ``X-Engage-Source``, default
``generic``). The signature is bound to a time: with ``X-Signature-Timestamp: <epoch ms>`` the HMAC
is over ``<timestamp>.<raw body>`` and a timestamp further than ``ENGAGE_SIGNATURE_TOLERANCE`` from
now is rejected, which stops replays of captured requests. The service requires the header for every
source not listed in ``ENGAGE_WEBHOOK_UNTIMED_SOURCES`` (there, a signature over the body alone is
accepted: a sender that cannot sign a time can still post, at the cost of replayability).

An event may not use the ``event_id`` namespaces or the platforms the platform adapters own unless
its source is in ``ENGAGE_WEBHOOK_TRUSTED_SOURCES`` (checked by the service, which knows the source):
the generic secret cannot speak for X or Meta.

Every element is validated by the canonical decoder; an invalid one is dead-lettered with its reason
and field while the valid ones of the same request are published.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from streams.errors import InvalidEvent, MalformedPayload, WebhookRejected
from streams.events import decode_object
from streams.ingest.adapters.base import (
    Context,
    JsonAdapter,
    Mapped,
    Unmappable,
    check_prefixed,
    hmac_sha256_hex,
    require_signature,
)

_CANONICAL_KEYS = 8  # event_id type platform account_id actor_id post_id text occurred_at

SIGNATURE_HEADER = "X-Signature-256"
TIMESTAMP_HEADER = "X-Signature-Timestamp"


def sign(secret: str, raw_body: bytes, timestamp_ms: int | None = None) -> dict[str, str]:
    """The headers a sender adds (used by tests, the bench and any Python client)."""
    if timestamp_ms is None:
        return {SIGNATURE_HEADER: "sha256=" + hmac_sha256_hex(secret, raw_body)}
    message = str(timestamp_ms).encode() + b"." + raw_body
    return {
        SIGNATURE_HEADER: "sha256=" + hmac_sha256_hex(secret, message),
        TIMESTAMP_HEADER: str(timestamp_ms),
    }


def _position_error(exc: orjson.JSONDecodeError, line_offset: int = 0) -> MalformedPayload:
    line = exc.lineno + line_offset
    return MalformedPayload(f"not JSON: {exc.msg} at line {line} column {exc.colno}", field="$")


class GenericAdapter(JsonAdapter):
    name = "generic"

    def __init__(self, tolerance_ms: int) -> None:
        self._tolerance_ms = tolerance_ms

    def verify(self, headers: Mapping[str, str], raw_body: bytes, secret: str, now_ms: int) -> None:
        provided = require_signature(headers, SIGNATURE_HEADER)
        stamp = headers.get(TIMESTAMP_HEADER)
        if stamp is None:
            check_prefixed(provided, hmac_sha256_hex(secret, raw_body))
            return
        if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 16:
            raise WebhookRejected(401, "invalid signature timestamp")
        # Verify first, so the tolerance answer cannot be used to probe without a valid signature.
        check_prefixed(provided, hmac_sha256_hex(secret, stamp.encode() + b"." + raw_body))
        if abs(now_ms - int(stamp)) > self._tolerance_ms:
            raise WebhookRejected(401, "signature timestamp outside the tolerance")

    def parse(self, raw_body: bytes) -> Any:
        """A JSON document (object or array); failing that, NDJSON (one document per line)."""
        try:
            return orjson.loads(raw_body)
        except orjson.JSONDecodeError as exc:
            whole_error = exc
        lines = raw_body.split(b"\n")
        if sum(1 for line in lines if line.strip()) < 2:
            raise _position_error(whole_error)
        parsed: list[Any] = []
        for number, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                parsed.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise _position_error(exc, line_offset=number) from None
        return parsed

    def map(self, payload: Any, context: Context) -> list[Mapped]:
        elements = payload if type(payload) is list else [payload]
        out: list[Mapped] = []
        for index, element in enumerate(elements):
            try:
                event = decode_object(element)
            except InvalidEvent as exc:
                field = f" (field {exc.field})" if exc.field else ""
                out.append(Unmappable(exc.reason, f"element {index}{field}: {exc}", element))
                continue
            out.append(event)
        return out

    def map_canonical(self, payload: Any) -> tuple[list[dict[str, Any]], list[Unmappable]]:
        """Like :meth:`map`, but each valid event as its canonical JSON object, not an ``Interaction``.

        The ingest hot path: every element is validated by :func:`~streams.events.decode_object` (one
        validation, in one place); one that already *is* a canonical object (exactly the eight fields,
        integer ``occurred_at``) is then passed on as parsed, nothing re-encoded one event at a time,
        and the envelope is one ``orjson.dumps`` of the group. Anything else is passed on as the
        decoded event's ``to_dict()`` (``tests/unit/ingest/test_canonical.py`` checks the two paths
        agree on generated documents).
        """
        elements = payload if type(payload) is list else [payload]
        valid: list[dict[str, Any]] = []
        bad: list[Unmappable] = []
        append = valid.append
        for index, obj in enumerate(elements):
            try:
                event = decode_object(obj)
            except InvalidEvent as exc:
                field = f" (field {exc.field})" if exc.field else ""
                bad.append(Unmappable(exc.reason, f"element {index}{field}: {exc}", obj))
                continue
            if (
                type(obj) is dict
                and len(obj) == _CANONICAL_KEYS
                and "post_id" in obj
                and "text" in obj
                and type(obj["occurred_at"]) is int
            ):
                # Valid, exactly the eight fields, epoch milliseconds: it *is* event.to_dict().
                append(obj)
            else:
                append(event.to_dict())
        return valid, bad


def create(settings: Any) -> GenericAdapter:
    return GenericAdapter(settings.signature_tolerance_ms)
