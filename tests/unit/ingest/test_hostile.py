"""Issue 18's hostile probe, at the service (in-process publisher twin, no sockets).

What needs the real HTTP server or the real broker (encodings, timeouts, connection limits, logging,
message sizes on Tansu) is in tests/integration/test_ingest_hostile.py.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson
import pytest

from streams.ingest.adapters.generic import sign
from streams.ingest.envelopes import DEFAULT_MAX_BYTES
from streams.settings import Settings
from tests.unit.ingest.conftest import Harness
from tests.webhooks import NOW_MS, SECRETS, signature_headers

GOOD = {
    "event_id": "crm:1",
    "type": "comment",
    "platform": "linkedin",
    "account_id": "brand-1",
    "actor_id": "u-1",
    "post_id": "p-1",
    "text": "well said, thank you",
    "occurred_at": NOW_MS - 60_000,
}


def _event(**fields: Any) -> dict[str, Any]:
    return {**GOOD, **fields}


def _generic(harness: Harness, body: bytes, source: str = "generic") -> tuple[int, dict[str, Any]]:
    headers = signature_headers(source, body)
    if source != "generic":
        headers["X-Engage-Source"] = source
    reply = harness.deliver("generic", headers, body)
    return reply.status, orjson.loads(reply.body)


def _dlq(harness: Harness) -> list[dict[str, Any]]:
    return [
        orjson.loads(e.value) for e in harness.publisher.envelopes if e.topic == harness.settings.topics.dlq
    ]


def _published_events(harness: Harness) -> list[dict[str, Any]]:
    dlq = harness.settings.topics.dlq
    return [ev for e in harness.publisher.envelopes if e.topic != dlq for ev in orjson.loads(e.value)]


# --- 1. the X CRC is not a signing oracle ----------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        '{"for_user_id":"1","tweet_create_events":[]}',  # a payload: its HMAC would sign a forged POST
        "[1]",
        "12345678901234",  # all digits: parses as a JSON number
        "short",
        "x" * 129,
        "has space in it",
    ],
)
def test_x_crc_answers_only_token_shaped_queries(harness: Harness, token: str) -> None:
    assert harness.service.handshake("x", {"crc_token": token}).status == 400


def test_x_crc_signature_cannot_be_replayed_as_a_delivery(harness: Harness) -> None:
    """The forgery of the probe: ask the CRC to sign a payload, then POST it with that signature."""
    payload = orjson.dumps({"for_user_id": "1", "favorite_events": []})
    assert harness.service.handshake("x", {"crc_token": payload.decode()}).status == 400
    token = "NjMzYTk1NDUtNzRlYy00ODkwLWE1NGItODBjZWZiYjVjNTQ4"
    answer = harness.service.handshake("x", {"crc_token": token})
    assert answer.status == 200
    signature = orjson.loads(answer.body)["response_token"]
    reply = harness.deliver("x", {"x-twitter-webhooks-signature": signature}, token.encode())
    assert reply.status == 400  # the signed token is no payload: nothing accepted
    assert not _published_events(harness)


def test_handshakes_are_rate_limited(harness: Harness) -> None:
    limited = Harness(ingest_handshakes_per_minute=3)
    token = {"crc_token": "NjMzYTk1NDUtNzRlYy00ODkw"}
    statuses = [limited.service.handshake("x", token).status for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert limited.sample("engage_webhook_requests_total", platform="x", status="429") == 2


# --- 2. the generic source cannot use another source's namespace --------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"event_id": "x:tweet:1234"},
        {"event_id": "fb:comment:1_2"},
        {"event_id": "ig:comment:9"},
        {"event_id": "ap:https://m.example/1"},
        {"event_id": "bsky:at://did:plc:a/app.bsky.feed.like/1"},
        {"platform": "x"},
        {"platform": "facebook"},
        {"platform": "instagram"},
    ],
)
@pytest.mark.parametrize("source", ["generic", "crm"])
def test_generic_sources_cannot_use_platform_namespaces(fields: dict[str, str], source: str) -> None:
    harness = Harness()
    status, document = _generic(harness, orjson.dumps([_event(**fields), _event(event_id="crm:2")]), source)
    assert status == 202 and document["accepted"] == 1 and document["dead_lettered"] == 1
    assert document["errors"][0]["reason"] == "namespace"
    assert [e["event_id"] for e in _published_events(harness)] == ["crm:2"]


def test_a_trusted_source_may_use_platform_namespaces() -> None:
    harness = Harness(webhook_trusted_sources=frozenset({"crm"}))
    body = orjson.dumps([_event(event_id="x:tweet:1", platform="x")])
    assert _generic(harness, body, "crm")[0] == 200
    assert _generic(harness, body, "generic")[0] == 202


# --- 3. a signed timestamp is required unless the source opted out -------------------------------------


def test_timestamp_required_by_default() -> None:
    assert Settings().webhook_untimed_sources == frozenset()
    assert Settings.from_env({}).webhook_untimed_sources == frozenset()
    harness = Harness(webhook_untimed_sources=frozenset())
    body = orjson.dumps(GOOD)
    reply = harness.deliver("generic", sign(SECRETS["generic"], body), body)
    assert reply.status == 401 and b"X-Signature-Timestamp required" in reply.body
    reply = harness.deliver("generic", sign(SECRETS["generic"], body, NOW_MS), body)
    assert reply.status == 200
    # Checked after the signature: a forger learns nothing new.
    reply = harness.deliver("generic", sign("wrong", body), body)
    assert reply.status == 401 and reply.body == b'{"error":"invalid signature"}'


def test_untimed_sources_setting_is_per_source() -> None:
    settings = Settings.from_env({"ENGAGE_WEBHOOK_UNTIMED_SOURCES": "crm, legacy"})
    assert settings.webhook_untimed_sources == frozenset({"crm", "legacy"})
    harness = Harness(webhook_untimed_sources=frozenset({"crm"}))
    body = orjson.dumps(GOOD)
    assert _generic(harness, body, "crm")[0] == 200
    assert _generic(harness, body, "generic")[0] == 401


# --- 5. deep nesting is a 400 or a dead letter, never a 500 -------------------------------------------


@pytest.mark.parametrize("depth", [950, 990, 1020])
@pytest.mark.parametrize(
    ("route", "account"), [("generic", None), ("meta", None), ("bluesky", None), ("mastodon", "brand")]
)
def test_deep_nesting_never_500(route: str, account: str | None, depth: int) -> None:
    harness = Harness()
    body = b"[" * depth + b"]" * depth
    if route == "meta":
        body = b'{"object":"page","entry":' + body + b"}"
    reply = harness.deliver(route, signature_headers(route, body), body, account)
    assert reply.status in (202, 400), reply
    assert harness.sample("engage_webhook_requests_total", platform=route, status=str(reply.status)) == 1
    assert all(len(e.value) <= DEFAULT_MAX_BYTES for e in harness.publisher.envelopes)


# --- 6. a dead letter always fits ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [400_000, 1_000_000])
def test_dead_letter_of_control_bytes_fits_and_says_it_was_truncated(size: int) -> None:
    harness = Harness(ingest_max_body=2_000_000)
    body = bytes(range(1, 32)) * (size // 31)
    status, _ = _generic(harness, body)
    assert status == 400
    (record,) = _dlq(harness)
    (envelope,) = harness.publisher.envelopes
    assert len(envelope.value) <= DEFAULT_MAX_BYTES
    assert record["original_truncated"] is True and record["original_length"] == len(body)
    assert record["original_sha256"] == hashlib.sha256(body).hexdigest()
    kept = base64.b64decode(record["original"])
    assert body.startswith(kept) and len(kept) > 300_000


def test_small_dead_letters_are_unchanged(harness: Harness) -> None:
    status, _ = _generic(harness, b"not json")
    (record,) = _dlq(harness)
    assert status == 400 and record["original"] == "not json" and "original_truncated" not in record


# --- 7. timestamps: the schema's range at the edge, and no far future ---------------------------------


@pytest.mark.parametrize(
    "stamp", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "1969-12-31T23:59:59Z"]
)
def test_timestamps_outside_the_schema_range_are_refused(harness: Harness, stamp: str) -> None:
    status, document = _generic(harness, orjson.dumps(_event(occurred_at=stamp)))
    assert status == 202 and document["accepted"] == 0
    (error,) = document["errors"]
    assert error["reason"] == "schema" and "occurred_at" in error["detail"] and "outside" in error["detail"]
    assert not _published_events(harness)


def test_far_future_events_are_dead_lettered(harness: Harness) -> None:
    skew = harness.settings.ingest_max_future_skew_ms
    near, far = NOW_MS + skew - 1000, NOW_MS + skew + 86_400_000
    body = orjson.dumps(
        [_event(event_id="crm:near", occurred_at=near), _event(event_id="crm:far", occurred_at=far)]
    )
    status, document = _generic(harness, body)
    assert status == 202 and document["accepted"] == 1
    assert document["errors"][0]["reason"] == "future"
    assert [e["event_id"] for e in _published_events(harness)] == ["crm:near"]
    assert _dlq(harness)[0]["reason"] == "future"


def test_far_future_applies_to_platform_adapters(harness: Harness) -> None:
    def favorite(actor: str, at_ms: int) -> dict[str, Any]:
        status = {"id_str": "5", "user": {"id_str": "100"}}
        return {"favorited_status": status, "user": {"id_str": actor}, "timestamp_ms": str(at_ms)}

    far = NOW_MS + 10 * 86_400_000
    body = orjson.dumps(
        {"for_user_id": "100", "favorite_events": [favorite("200", far), favorite("201", NOW_MS)]}
    )
    reply = harness.deliver("x", signature_headers("x", body), body)
    document = orjson.loads(reply.body)
    assert reply.status == 202 and document["accepted"] == 1
    assert document["errors"][0]["reason"] == "future"
    assert [e["actor_id"] for e in _published_events(harness)] == ["201"]


# --- 8. bounded elements and dead letters per request ----------------------------------------------------


def test_too_many_elements_is_413_before_any_work(harness: Harness) -> None:
    body = b"[" + b",".join([b"{}"] * 100_000) + b"]"
    status, document = _generic(harness, body)
    assert status == 413 and "100000 elements" in document["error"]
    assert not harness.publisher.envelopes


def test_mostly_invalid_request_makes_one_summary_dead_letter(harness: Harness) -> None:
    body = b"[" + b",".join([b"{}"] * 5000 + [orjson.dumps(GOOD)]) + b"]"
    status, document = _generic(harness, body)
    assert status == 202 and document["accepted"] == 1 and document["dead_lettered"] == 5000
    assert len(document["errors"]) == 100
    (record,) = _dlq(harness)
    assert record["reason"] == "request_invalid" and "5000 invalid element(s)" in record["detail"]
    assert record["original"] == body.decode()
    assert harness.sample("engage_dlq_messages_total", reason="request_invalid") == 1
    assert harness.sample("engage_webhook_events_total", platform="generic", outcome="dlq") == 5000


def test_a_few_invalid_elements_are_dead_lettered_one_by_one(harness: Harness) -> None:
    body = b"[" + b",".join([b"{}"] * 3 + [orjson.dumps(GOOD)]) + b"]"
    assert _generic(harness, body)[0] == 202
    assert [r["reason"] for r in _dlq(harness)] == ["schema"] * 3


# --- 5. every answer is counted, a bug included ---------------------------------------------------------


def test_a_bug_is_a_counted_500(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(harness.service, "_canonical_envelopes", broken)
    body = orjson.dumps(GOOD)
    reply = harness.deliver("generic", signature_headers("generic", body), body)
    assert reply.status == 500 and b"bug" not in reply.body
    assert harness.sample("engage_webhook_requests_total", platform="generic", status="500") == 1
