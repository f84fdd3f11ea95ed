"""Signatures (good, bad, missing, tampered, replayed) and the platforms' handshakes."""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson
import pytest
from multidict import CIMultiDict

from streams.ingest.adapters.generic import sign
from tests.unit.ingest.conftest import Harness
from tests.webhooks import NOW_MS, SECRETS, VERIFY_TOKEN, cases, signature_headers

ONE_PER_PLATFORM = {case.platform: case for case in reversed(cases())}
PLATFORMS = sorted(ONE_PER_PLATFORM)
HEADER = {
    "meta": "X-Hub-Signature-256",
    "x": "x-twitter-webhooks-signature",
    "generic": "X-Signature-256",
    "mastodon": "X-Signature-256",
    "bluesky": "X-Signature-256",
}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_good_signature_is_accepted(harness: Harness, platform: str) -> None:
    case = ONE_PER_PLATFORM[platform]
    reply = harness.deliver(platform, signature_headers(platform, case.body), case.body, case.account)
    assert reply.status in (200, 202)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize(
    "forge",
    [
        "wrong-secret",
        "tampered-body",
        "missing",
        "empty",
        "no-prefix",
        "sha1-prefix",
        "other-platform-header",
    ],
)
def test_bad_or_missing_signature_is_401_and_publishes_nothing(
    harness: Harness, platform: str, forge: str
) -> None:
    case = ONE_PER_PLATFORM[platform]
    body = case.body
    headers = signature_headers(platform, body)
    value = headers[HEADER[platform]]
    if forge == "wrong-secret":
        headers = signature_headers(platform, body, secret="not-the-secret")
    elif forge == "tampered-body":
        body = body.replace(b"2026", b"2027", 1) if b"2026" in body else body + b" "
    elif forge == "missing":
        del headers[HEADER[platform]]
    elif forge == "empty":
        headers[HEADER[platform]] = ""
    elif forge == "no-prefix":
        headers[HEADER[platform]] = value.removeprefix("sha256=")
    elif forge == "sha1-prefix":
        headers[HEADER[platform]] = "sha1=" + value.removeprefix("sha256=")
    elif forge == "other-platform-header":
        other = "x" if platform != "x" else "meta"
        headers = signature_headers(other, body, secret=SECRETS[platform])
    reply = harness.deliver(platform, headers, body, case.account)
    assert reply.status == 401, reply.body
    message = orjson.loads(reply.body)["error"]
    assert message in ("invalid signature", f"missing signature header {HEADER[platform]}")
    assert harness.publisher.envelopes == []
    assert harness.sample("engage_webhook_requests_total", platform=platform, status="401") == 1


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_signature_decision_is_a_constant_time_compare(
    harness: Harness, platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``hmac.compare_digest`` alone decides: it is called, and forcing its answer flips the status.

    Timing cannot be measured reliably in a unit test; what can fail here is a regression to ``==``
    or an early return before the compare.
    """
    case = ONE_PER_PLATFORM[platform]
    forged = signature_headers(platform, case.body, secret="not-the-secret")
    calls: list[tuple[bytes, bytes]] = []
    verdict = {"forced": False}

    def compare(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return verdict["forced"]

    monkeypatch.setattr(hmac, "compare_digest", compare)
    assert harness.deliver(platform, forged, case.body, case.account).status == 401
    [(provided, expected)] = calls
    assert provided == forged[HEADER[platform]].encode() and provided != expected
    verdict["forced"] = True  # the same forged header, now "equal": the compare was the only gate
    assert harness.deliver(platform, forged, case.body, case.account).status in (200, 202)


def test_meta_verify_token_is_compared_in_constant_time(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[bytes, bytes]] = []

    def compare(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return False

    monkeypatch.setattr(hmac, "compare_digest", compare)
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "7"}
    assert harness.service.handshake("meta", query).status == 403
    assert calls == [(VERIFY_TOKEN.encode(), VERIFY_TOKEN.encode())]


def test_signature_header_name_is_case_insensitive(harness: Harness) -> None:
    case = ONE_PER_PLATFORM["meta"]
    value = signature_headers("meta", case.body)["X-Hub-Signature-256"]
    assert harness.deliver("meta", CIMultiDict({"x-hub-signature-256": value}), case.body).status == 200


def test_meta_signature_matches_the_documented_scheme() -> None:
    """sha256= + hex HMAC-SHA256 keyed by the app secret over the raw bytes (Meta's Getting Started)."""
    body = b'{"object":"page","entry":[]}'
    expected = hmac.new(b"meta-app-secret-5c1e", body, hashlib.sha256).hexdigest()
    assert signature_headers("meta", body)["X-Hub-Signature-256"] == f"sha256={expected}"


# --- generic: optional timestamp binding ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("signed_at", "status"),
    [
        (NOW_MS, 200),
        (NOW_MS - 299_000, 200),
        (NOW_MS - 301_000, 401),  # older than the 5-minute tolerance: a replay
        (NOW_MS + 301_000, 401),  # from the future
    ],
)
def test_generic_timestamped_signature_is_held_to_the_tolerance(
    harness: Harness, signed_at: int, status: int
) -> None:
    body = b"[]"
    reply = harness.deliver("generic", CIMultiDict(sign(SECRETS["generic"], body, signed_at)), body)
    assert reply.status == status


def test_generic_timestamp_is_part_of_what_is_signed(harness: Harness) -> None:
    body = b"[]"
    headers = CIMultiDict(sign(SECRETS["generic"], body, NOW_MS - 1_000_000))
    headers["X-Signature-Timestamp"] = str(NOW_MS)  # a replayer refreshing the timestamp
    reply = harness.deliver("generic", headers, body)
    assert reply.status == 401 and orjson.loads(reply.body)["error"] == "invalid signature"


@pytest.mark.parametrize("stamp", ["", "abc", "-1", "1e12", "9" * 30])
def test_generic_malformed_timestamp_is_401(harness: Harness, stamp: str) -> None:
    body = b"[]"
    headers = CIMultiDict(sign(SECRETS["generic"], body))
    headers["X-Signature-Timestamp"] = stamp
    assert harness.deliver("generic", headers, body).status == 401


def test_generic_tolerance_uses_the_injected_clock(harness: Harness) -> None:
    body = b"[]"
    headers = CIMultiDict(sign(SECRETS["generic"], body, NOW_MS))
    assert harness.deliver("generic", headers, body).status == 200
    harness.now = NOW_MS + 3_600_000
    assert harness.deliver("generic", headers, body).status == 401


# --- handshakes ---------------------------------------------------------------------------------------


def test_meta_verification_echoes_the_challenge(harness: Harness) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    reply = harness.service.handshake("meta", query)
    assert (reply.status, reply.body, reply.content_type) == (200, b"1158201444", "text/plain")


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"}, 403),
        ({"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}, 403),
        ({"hub.mode": "subscribe", "hub.challenge": "1"}, 403),
        ({"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"}, 400),
        ({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN}, 400),
        ({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "9" * 300}, 400),
        ({}, 400),
    ],
    ids=["wrong-token", "empty-token", "no-token", "wrong-mode", "no-challenge", "huge-challenge", "nothing"],
)
def test_meta_verification_refusals(harness: Harness, query: dict[str, str], status: int) -> None:
    reply = harness.service.handshake("meta", query)
    assert reply.status == status and reply.body != b"1"


def test_meta_verification_refused_when_no_token_is_configured() -> None:
    harness = Harness(meta_verify_token="")
    reply = harness.service.handshake(
        "meta", {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}
    )
    assert reply.status == 403


def test_x_crc_response_token(harness: Harness) -> None:
    reply = harness.service.handshake("x", {"crc_token": "9b4507b3-9040-4669-9ca3-6b94edb50553"})
    assert reply.status == 200 and reply.content_type == "application/json"
    digest = hmac.new(SECRETS["x"].encode(), b"9b4507b3-9040-4669-9ca3-6b94edb50553", hashlib.sha256).digest()
    assert orjson.loads(reply.body) == {"response_token": "sha256=" + base64.b64encode(digest).decode()}


@pytest.mark.parametrize("query", [{}, {"crc_token": ""}, {"crc_token": "x" * 600}])
def test_x_crc_without_a_usable_token_is_400(harness: Harness, query: dict[str, str]) -> None:
    assert harness.service.handshake("x", query).status == 400


@pytest.mark.parametrize("route", ["generic", "mastodon", "bluesky"])
def test_platforms_without_a_handshake_answer_405(harness: Harness, route: str) -> None:
    assert harness.service.handshake(route, {"crc_token": "a"}).status == 405


def test_handshake_on_an_unknown_platform_is_404(harness: Harness) -> None:
    assert harness.service.handshake("tiktok", {}).status == 404
    assert Harness(webhook_secrets={}).service.handshake("x", {"crc_token": "a"}).status == 404
