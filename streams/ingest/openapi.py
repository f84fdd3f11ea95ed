"""The OpenAPI 3.1 document served at ``/openapi.json``, built from the adapters that are served."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streams.ingest.adapters.base import Adapter

_ERROR = {"$ref": "#/components/schemas/Error"}


def _responses(*codes: int) -> dict[str, Any]:
    meaning = {
        200: ("every event acknowledged by Kafka", {"$ref": "#/components/schemas/Result"}),
        202: (
            "settled; some items are in the dead-letter topic (do not retry)",
            {"$ref": "#/components/schemas/Result"},
        ),
        400: (
            "not JSON (the error names the parse position; the body is dead-lettered), or a body "
            "its Content-Encoding does not decode",
            _ERROR,
        ),
        401: (
            "missing or invalid signature, its timestamp outside the tolerance, or a required "
            "X-Signature-Timestamp missing",
            _ERROR,
        ),
        404: ("unknown source, or no secret configured for it", _ERROR),
        408: ("the body did not arrive within ENGAGE_INGEST_BODY_TIMEOUT (connection closed)", _ERROR),
        413: ("body over ENGAGE_INGEST_MAX_BODY, or more elements than ENGAGE_INGEST_MAX_ELEMENTS", _ERROR),
        429: ("more handshakes than ENGAGE_INGEST_HANDSHAKES_PER_MINUTE; retry after Retry-After", _ERROR),
        503: (
            "Kafka did not acknowledge in time: some of the request may have been written; retrying "
            "after Retry-After seconds is safe (event ids deduplicate)",
            _ERROR,
        ),
    }
    out: dict[str, Any] = {}
    for code in codes:
        description, schema = meaning[code]
        out[str(code)] = {"description": description, "content": {"application/json": {"schema": schema}}}
    return out


_POST_CODES = (200, 202, 400, 401, 404, 408, 413, 503)
# Per route: (signature header, what it carries).
_SIGNATURES = {
    "generic": (
        "X-Signature-256",
        "sha256=<hex HMAC-SHA256(secret, <X-Signature-Timestamp>.<body>)>; over the body alone only for "
        "sources in ENGAGE_WEBHOOK_UNTIMED_SOURCES",
    ),
    "meta": ("X-Hub-Signature-256", "sha256=<hex HMAC-SHA256(app secret, body)>"),
    "x": ("x-twitter-webhooks-signature", "sha256=<base64 HMAC-SHA256(consumer secret, body)>"),
    "mastodon": (
        "X-Signature-256",
        "sha256=<hex HMAC> from a relay that verified the HTTP Signature (native: out of scope)",
    ),
    "bluesky": ("X-Signature-256", "sha256=<hex HMAC> from the Jetstream bridge (Jetstream is unsigned)"),
}
_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_RESPONSE_TOKEN = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {"response_token": {"type": "string", "pattern": "^sha256="}},
            "required": ["response_token"],
        }
    }
}
# The GET handshakes the adapters answer: (summary, query parameters, 200 content, refusals). Refusals
# are plain text, as the adapters write them; 404 (no secret configured) is the service's JSON error.
_HANDSHAKES: dict[str, tuple[str, list[str], dict[str, Any], dict[int, str]]] = {
    "meta": (
        "Meta subscription verification: echoes hub.challenge when hub.verify_token matches.",
        ["hub.mode", "hub.verify_token", "hub.challenge"],
        _TEXT,
        {400: "not hub.mode=subscribe with a hub.challenge", 403: "verify token mismatch"},
    ),
    "x": (
        'X CRC: {"response_token": "sha256=<base64 HMAC(consumer secret, crc_token)>"}.',
        ["crc_token"],
        _RESPONSE_TOKEN,
        {400: "no usable crc_token"},
    ),
}


def _signature_parameters(name: str) -> list[dict[str, Any]]:
    header, value = _SIGNATURES.get(name, ("X-Signature-256", "sha256=<hex HMAC-SHA256(secret, body)>"))
    out = [
        {"name": header, "in": "header", "required": True, "description": value, "schema": {"type": "string"}}
    ]
    if name == "generic":
        out += [
            {
                "name": "X-Signature-Timestamp",
                "in": "header",
                "description": "epoch ms; the HMAC is over <timestamp>.<body>, held to the tolerance; "
                "required unless the source is in ENGAGE_WEBHOOK_UNTIMED_SOURCES",
                "schema": {"type": "string", "pattern": "^[0-9]{1,16}$"},
            },
            {
                "name": "X-Engage-Source",
                "in": "header",
                "description": "the source whose secret signs the body (default generic)",
                "schema": {"type": "string"},
            },
        ]
    return out


def _handshake(name: str) -> dict[str, Any]:
    summary, params, content, refusals = _HANDSHAKES[name]
    responses: dict[str, Any] = {"200": {"description": "handshake answer", "content": content}}
    for code, description in refusals.items():
        responses[str(code)] = {"description": description, "content": _TEXT}
    responses.update(_responses(404, 429))
    return {
        "summary": summary,
        "parameters": [
            {"name": p, "in": "query", "required": True, "schema": {"type": "string"}} for p in params
        ],
        "responses": responses,
    }


def document(platforms: Iterable[Adapter]) -> dict[str, Any]:
    """The document for the generic route and ``platforms`` (their routes as ``create_app`` serves them)."""
    generic = {
        "post": {
            "summary": "Canonical events: one object, a JSON array, or NDJSON",
            "parameters": _signature_parameters("generic"),
            "requestBody": {
                "required": True,
                "content": {"application/json": {}, "application/x-ndjson": {}},
            },
            "responses": _responses(*_POST_CODES),
        }
    }
    paths: dict[str, Any] = {
        "/v1/events": generic,
        # The platform route pattern serves the generic adapter too; documented, as it answers.
        "/v1/webhooks/generic": generic,
        "/healthz": {"get": {"summary": "Alive", "responses": {"200": {"description": "alive"}}}},
        "/readyz": {
            "get": {
                "summary": "Kafka reachable",
                "responses": {"200": {"description": "ready"}, "503": {"description": "Kafka unreachable"}},
            }
        },
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "JSON"}}}},
    }
    for adapter in platforms:
        name = adapter.name
        path = f"/v1/webhooks/{name}" + ("/{account}" if adapter.takes_account else "")
        item: dict[str, Any] = {
            "post": {
                "summary": f"{name} webhook deliveries",
                "parameters": _signature_parameters(name),
                "requestBody": {"required": True, "content": {"application/json": {}}},
                "responses": _responses(*_POST_CODES),
            }
        }
        if adapter.takes_account:
            item["parameters"] = [
                {"name": "account", "in": "path", "required": True, "schema": {"type": "string"}}
            ]
        if name in _HANDSHAKES:
            item["get"] = _handshake(name)
        paths[path] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "engagement-streams webhook ingestion",
            "version": "1",
            "description": "2xx only after Kafka (acks=all) acknowledged every event of the request.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}},
                    "required": ["error"],
                },
                "Result": {
                    "type": "object",
                    "properties": {
                        "accepted": {"type": "integer"},
                        "ignored": {"type": "integer"},
                        "dead_lettered": {"type": "integer"},
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"reason": {"type": "string"}, "detail": {"type": "string"}},
                            },
                        },
                    },
                    "required": ["accepted", "ignored", "dead_lettered"],
                },
            }
        },
    }
