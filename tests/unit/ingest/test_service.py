"""The request flow on the in-process publisher twin: statuses, envelopes, DLQ records, metrics."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
from multidict import CIMultiDict

from streams.events import Interaction, Rejected, iter_message
from streams.ingest.adapters.base import Context, JsonAdapter, Mapped
from streams.ingest.service import IngestService
from streams.partitioning import partition_for
from tests.unit.ingest.conftest import Harness, run
from tests.webhooks import SECRETS, VERIFY_TOKEN, Case, cases, signature_headers

CASES = cases()


def _published_events(harness: Harness) -> list[tuple[str, int | None, bytes | None, Interaction]]:
    out = []
    dlq = harness.settings.topics.dlq
    for envelope in harness.publisher.envelopes:
        if envelope.topic == dlq:
            continue
        for item in iter_message(envelope.value):
            assert not isinstance(item, Rejected)
            out.append((envelope.topic, envelope.partition, envelope.key, item))
    return out


def _dlq(harness: Harness) -> list[dict[str, Any]]:
    dlq = harness.settings.topics.dlq
    return [orjson.loads(e.value) for e in harness.publisher.envelopes if e.topic == dlq]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_signed_delivery_lands_on_the_right_topic_partition_and_key(harness: Harness, case: Case) -> None:
    harness.now = case.received_at
    reply = harness.deliver(
        case.platform, signature_headers(case.platform, case.body), case.body, case.account
    )
    assert reply.status == (202 if case.dead_lettered else 200), reply.body
    body = orjson.loads(reply.body)
    assert (body["accepted"], body["ignored"], body["dead_lettered"]) == (
        len(case.events),
        case.ignored,
        case.dead_lettered,
    )
    published = _published_events(harness)
    assert sorted(e.event_id for *_, e in published) == sorted(e.event_id for e in case.events)
    assert {e for *_, e in published} == set(case.events)
    topics = harness.settings.topics
    for topic, partition, key, event in published:
        assert topic == topics.for_type(event.type)
        assert partition == partition_for(event.actor_id.encode(), harness.settings.topic_partitions)
        assert key is not None and partition_for(key, harness.settings.topic_partitions) == partition
    dlq = _dlq(harness)
    assert len(dlq) == case.dead_lettered
    for record in dlq:
        assert record["reason"] and record["detail"]
        assert record["source"] == {
            "platform": case.platform,
            "source": case.platform,
            "received_at": case.received_at,
        }
        assert orjson.loads(record["original"])  # the offending part, as JSON text
    assert (
        harness.sample("engage_webhook_requests_total", platform=case.platform, status=str(reply.status)) == 1
    )
    assert harness.sample("engage_webhook_events_total", platform=case.platform, outcome="accepted") == len(
        case.events
    )
    assert (
        harness.sample("engage_webhook_events_total", platform=case.platform, outcome="ignored")
        == case.ignored
    )
    assert (
        harness.sample("engage_webhook_events_total", platform=case.platform, outcome="dlq")
        == case.dead_lettered
    )


def test_envelope_key_is_the_first_events_actor(harness: Harness) -> None:
    events = [
        {
            "event_id": f"e{i}",
            "type": "like",
            "platform": "generic",
            "account_id": "b",
            "actor_id": f"a{i % 3}",
            "post_id": "p",
            "occurred_at": 1,
        }
        for i in range(30)
    ]
    body = orjson.dumps(events)
    assert harness.deliver("generic", signature_headers("generic", body), body).status == 200
    for envelope in harness.publisher.envelopes:
        first = next(iter_message(envelope.value))
        assert isinstance(first, Interaction) and envelope.key == first.actor_id.encode()


def test_generic_source_is_chosen_by_header_with_its_own_secret(harness: Harness) -> None:
    case = next(c for c in CASES if c.id == "generic/events")
    headers = signature_headers("crm", case.body)
    headers["X-Engage-Source"] = "crm"
    assert harness.deliver("generic", headers, case.body).status == 200
    # The generic secret does not authenticate the crm source.
    wrong = signature_headers("generic", case.body)
    wrong["X-Engage-Source"] = "crm"
    assert harness.deliver("generic", wrong, case.body).status == 401


@pytest.mark.parametrize(
    ("route", "source"),
    [("tiktok", None), ("generic", "unknown-crm"), ("generic", "meta"), ("generic", "x")],
    ids=["unknown-platform", "unknown-source", "platform-secret-on-generic", "x-secret-on-generic"],
)
def test_unknown_source_is_404(harness: Harness, route: str, source: str | None) -> None:
    body = b"[]"
    headers = signature_headers(source if source in SECRETS else "generic", body)
    if source:
        headers["X-Engage-Source"] = source
    reply = harness.deliver(route, headers, body)
    assert reply.status == 404 and b"unknown source" in reply.body
    assert harness.publisher.envelopes == []


@pytest.mark.parametrize(
    ("route", "account"),
    [("mastodon", None), ("meta", "brand"), ("x", "brand"), ("bluesky", "brand"), ("generic", "brand")],
)
def test_an_account_only_on_the_inbox_route_else_404(
    harness: Harness, route: str, account: str | None
) -> None:
    """/v1/webhooks/mastodon needs its {account}; no other route takes one (what /openapi.json says)."""
    case = next(c for c in CASES if c.platform == route)
    reply = harness.deliver(route, signature_headers(route, case.body), case.body, account)
    assert reply.status == 404, reply.body
    assert harness.publisher.envelopes == []
    assert harness.sample("engage_webhook_requests_total", platform=route, status="404") == 1


def test_platform_without_a_configured_secret_is_404() -> None:
    harness = Harness(webhook_secrets={"generic": "s"})
    body = b'{"object": "page", "entry": []}'
    assert harness.deliver("meta", signature_headers("meta", body), body).status == 404
    assert harness.sample("engage_webhook_requests_total", platform="meta", status="404") == 1


def test_not_json_is_400_with_the_position_and_dead_lettered(harness: Harness) -> None:
    body = b'{"object": "page", "entry": [}'
    reply = harness.deliver("meta", signature_headers("meta", body), body)
    assert reply.status == 400
    error = orjson.loads(reply.body)["error"]
    assert "line 1 column 30" in error
    [record] = _dlq(harness)
    assert record["reason"] == "malformed" and record["original"] == body.decode()


def test_ndjson_error_names_the_line(harness: Harness) -> None:
    body = b'{"a": 1}\n{"b": 2}\n{"c": \n'
    reply = harness.deliver("generic", signature_headers("generic", body), body)
    assert reply.status == 400 and "at line 3 column" in orjson.loads(reply.body)["error"]


def test_non_utf8_body_is_dead_lettered_as_base64(harness: Harness) -> None:
    body = b"\xff\xfe not json"
    reply = harness.deliver("generic", signature_headers("generic", body), body)
    assert reply.status == 400
    [record] = _dlq(harness)
    assert record["original_encoding"] == "base64"


def test_broker_down_is_503_with_retry_after_and_nothing_recorded(harness: Harness) -> None:
    case = next(c for c in CASES if c.id == "x/tweet_create_events")
    harness.publisher.available = False
    reply = harness.deliver("x", signature_headers("x", case.body), case.body)
    assert reply.status == 503 and dict(reply.headers)["Retry-After"] == "2"
    assert harness.publisher.envelopes == []
    assert harness.sample("engage_webhook_events_total", platform="x", outcome="accepted") == 0
    harness.publisher.available = True
    assert harness.deliver("x", signature_headers("x", case.body), case.body).status == 200


def test_broker_slower_than_the_deadline_is_503() -> None:
    harness = Harness(ingest_ack_timeout_ms=50)
    harness.publisher.delay_s = 0.5
    case = next(c for c in CASES if c.id == "generic/batch")
    reply = harness.deliver("generic", signature_headers("generic", case.body), case.body)
    assert reply.status == 503 and dict(reply.headers)["Retry-After"] == "1"
    assert harness.publisher.envelopes == []


def test_dead_letters_are_also_acknowledged_before_answering(harness: Harness) -> None:
    """An all-unmappable request still needs Kafka: its 202 promises the DLQ has it."""
    body = b'{"object": "user", "entry": []}'
    harness.publisher.available = False
    assert harness.deliver("meta", signature_headers("meta", body), body).status == 503
    harness.publisher.available = True
    assert harness.deliver("meta", signature_headers("meta", body), body).status == 202
    assert len(_dlq(harness)) == 1


class _Broken(JsonAdapter):
    name = "broken"

    def verify(self, headers: Any, raw_body: bytes, secret: str, now_ms: int) -> None:
        return None

    def map(self, payload: Any, context: Context) -> list[Mapped]:
        raise KeyError("a bug")


def test_an_adapter_bug_dead_letters_the_payload_instead_of_a_500(harness: Harness) -> None:
    service = IngestService(
        harness.settings.__class__(webhook_secrets={"broken": "s"}),
        harness.publisher,
        harness.metrics,
        lambda: 1,
        adapters={"broken": _Broken()},
    )
    reply = run(service.deliver("broken", {}, b'{"a": 1}'))
    assert reply.status == 202
    [record] = _dlq(harness)
    assert record["reason"] == "adapter_error" and orjson.loads(record["original"]) == {"a": 1}


def test_secrets_never_reach_the_logs(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for case in CASES:
        harness.deliver(case.platform, signature_headers(case.platform, case.body), case.body, case.account)
        harness.deliver(
            case.platform, signature_headers(case.platform, case.body, "wrong"), case.body, case.account
        )
    harness.publisher.available = False
    for case in CASES:
        harness.deliver(case.platform, signature_headers(case.platform, case.body), case.body, case.account)
    run_handshakes = [
        harness.service.handshake(
            "meta", {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"}
        ),
        harness.service.handshake("x", {"crc_token": "NjMzYTk1NDUtNzRlYy00ODkw"}),
    ]
    assert all(r.status == 200 for r in run_handshakes)
    assert "Kafka unavailable" in caplog.text  # the logging did happen
    for secret in (*SECRETS.values(), VERIFY_TOKEN):
        assert secret not in caplog.text
    assert all(secret not in repr(harness.settings) for secret in SECRETS.values())


def test_rejected_is_counted(harness: Harness) -> None:
    reply = harness.service.rejected("meta", 413, "body over 1048576 bytes")
    assert reply.status == 413
    assert harness.sample("engage_webhook_requests_total", platform="meta", status="413") == 1


def test_metrics_label_unknown_routes_with_a_bounded_value(harness: Harness) -> None:
    for name in ("a", "b", "c"):
        harness.deliver(name, CIMultiDict(), b"{}")
    assert harness.sample("engage_webhook_requests_total", platform="unknown", status="404") == 3
