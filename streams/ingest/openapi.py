"""The OpenAPI 3.1 document served at ``/openapi.json``, built from the adapters that are served."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _responses(*codes: int) -> dict[str, Any]:
    meaning = {
        200: ("every event acknowledged by Kafka", {"$ref": "#/components/schemas/Result"}),
        202: (
            "settled; some items are in the dead-letter topic (do not retry)",
            {"$ref": "#/components/schemas/Result"},
        ),
        400: ("not JSON: the error names the parse position (the body is dead-lettered)", _ERROR),
        401: ("missing or invalid signature", _ERROR),
        403: ("verify token mismatch", _ERROR),
        404: ("unknown source, or no secret configured for it", _ERROR),
        405: ("method not allowed", _ERROR),
        413: ("body over ENGAGE_INGEST_MAX_BODY", _ERROR),
        503: ("Kafka did not acknowledge in time; retry after Retry-After seconds", _ERROR),
    }
    out: dict[str, Any] = {}
    for code in codes:
        description, schema = meaning[code]
        out[str(code)] = {"description": description, "content": {"application/json": {"schema": schema}}}
    return out


_POST_CODES = (200, 202, 400, 401, 404, 413, 503)
_SIGNATURES = {
    "generic": "X-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>; optional X-Signature-Timestamp",
    "meta": "X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>",
    "x": "x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256(consumer secret, body)>",
    "mastodon": "X-Signature-256 from a relay that verified the HTTP Signature (native: out of scope)",
    "bluesky": "X-Signature-256 from the Jetstream bridge (Jetstream itself is unsigned)",
}
_HANDSHAKES = {
    "meta": (
        "Meta subscription verification: echoes hub.challenge when hub.verify_token matches.",
        ["hub.mode", "hub.verify_token", "hub.challenge"],
    ),
    "x": ('X CRC: {"response_token": "sha256=<base64 HMAC(consumer secret, crc_token)>"}.', ["crc_token"]),
}


def document(platforms: list[str]) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/v1/events": {
            "post": {
                "summary": "Canonical events: one object, a JSON array, or NDJSON",
                "description": _SIGNATURES["generic"] + ". Source from X-Engage-Source (default generic).",
                "parameters": [{"name": "X-Engage-Source", "in": "header", "schema": {"type": "string"}}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {}, "application/x-ndjson": {}},
                },
                "responses": _responses(*_POST_CODES),
            }
        },
        "/healthz": {"get": {"summary": "Alive", "responses": {"200": {"description": "alive"}}}},
        "/readyz": {
            "get": {
                "summary": "Kafka reachable",
                "responses": {"200": {"description": "ready"}, "503": {"description": "Kafka unreachable"}},
            }
        },
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text"}}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "JSON"}}}},
    }
    for name in platforms:
        path = f"/v1/webhooks/{name}" + ("/{account}" if name == "mastodon" else "")
        item: dict[str, Any] = {
            "post": {
                "summary": f"{name} webhook deliveries",
                "description": _SIGNATURES.get(name, "signed webhook"),
                "requestBody": {"required": True, "content": {"application/json": {}}},
                "responses": _responses(*_POST_CODES),
            }
        }
        if name == "mastodon":
            item["parameters"] = [
                {"name": "account", "in": "path", "required": True, "schema": {"type": "string"}}
            ]
        if name in _HANDSHAKES:
            summary, params = _HANDSHAKES[name]
            item["get"] = {
                "summary": summary,
                "parameters": [
                    {"name": p, "in": "query", "required": True, "schema": {"type": "string"}} for p in params
                ],
                "responses": {"200": {"description": "handshake answer"}, **_responses(400, 403, 404)},
            }
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
