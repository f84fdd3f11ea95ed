"""Property tests: random bytes, random JSON and mutated real payloads at every route.

Never an exception out of the service (the HTTP layer would turn it into a 500), only the statuses the
contract allows, and never an invalid canonical event on an interaction topic. The same properties are
exercised over real HTTP in ``tests/integration/test_ingest_http.py``.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from streams.events import Rejected, iter_message
from tests.unit.ingest.conftest import Harness
from tests.webhooks import cases, signature_headers

CASES = cases()
ROUTES = ["generic", "meta", "x", "mastodon", "bluesky"]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(
        ["add", "remove", "comment", "feed", "commit", "create", "Like", "Create", "Follow", "Undo"]
    ),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)


def _check(harness: Harness, status: int, allowed: set[int]) -> None:
    assert status in allowed, status
    for envelope in harness.publisher.envelopes:
        if envelope.topic == harness.settings.topics.dlq:
            # adapter_error would mean an adapter raised: the safety net worked, the adapter did not.
            assert orjson.loads(envelope.value)["reason"] != "adapter_error"
            continue
        for item in iter_message(envelope.value):
            assert not isinstance(item, Rejected), item


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            out += _paths(value, (*prefix, index))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        copy = dict(doc)
        if delete and not rest:
            copy.pop(head, None)
        else:
            copy[head] = _replace(doc[head], rest, value, delete)
        return copy
    copy_list = list(doc)
    if delete and not rest:
        del copy_list[head]
    else:
        copy_list[head] = _replace(doc[head], rest, value, delete)
    return copy_list


@FUZZ
@given(route=st.sampled_from(ROUTES), body=st.binary(max_size=600), account=st.none() | st.text(max_size=10))
def test_signed_random_bytes(route: str, body: bytes, account: str | None) -> None:
    harness = Harness()
    reply = harness.deliver(route, signature_headers(route, body), body, account)
    # Only the mastodon inbox route carries an account; any other combination is not an endpoint.
    served = (account is not None) == (route == "mastodon")
    _check(harness, reply.status, {200, 202, 400} if served else {404})
    if not served:
        assert harness.publisher.envelopes == []


@FUZZ
@given(
    route=st.sampled_from([*ROUTES, "unknown", ""]),
    body=st.binary(max_size=300),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "X-Signature-256",
                "X-Hub-Signature-256",
                "x-twitter-webhooks-signature",
                "X-Signature-Timestamp",
                "X-Engage-Source",
                "Content-Type",
            ]
        ),
        st.text(max_size=80),
    ),
)
def test_unsigned_random_requests(route: str, body: bytes, headers: dict[str, str]) -> None:
    harness = Harness()
    reply = harness.deliver(route, CIMultiDict(headers), body)
    _check(harness, reply.status, {401, 404})
    assert harness.publisher.envelopes == []


@FUZZ
@given(route=st.sampled_from(ROUTES), document=JSON)
def test_signed_random_json(route: str, document: Any) -> None:
    harness = Harness()
    body = orjson.dumps(document)
    account = "brand" if route == "mastodon" else None
    reply = harness.deliver(route, signature_headers(route, body), body, account)
    _check(harness, reply.status, {200, 202})


@FUZZ
@given(case=st.sampled_from(CASES), data=st.data())
def test_signed_mutated_payloads(case: Any, data: st.DataObject) -> None:
    try:
        document = orjson.loads(case.body)
    except orjson.JSONDecodeError:  # NDJSON
        document = [orjson.loads(line) for line in case.body.splitlines() if line.strip()]
    for _ in range(data.draw(st.integers(1, 4))):
        path = data.draw(st.sampled_from(_paths(document)))
        document = _replace(document, path, data.draw(JSON), data.draw(st.booleans()) and bool(path))
    body = orjson.dumps(document)
    harness = Harness()
    reply = harness.deliver(case.platform, signature_headers(case.platform, body), body, case.account)
    _check(harness, reply.status, {200, 202})


@FUZZ
@given(
    route=st.sampled_from([*ROUTES, "unknown"]),
    query=st.dictionaries(st.text(max_size=20), st.text(max_size=40)),
)
def test_random_handshakes(route: str, query: dict[str, str]) -> None:
    harness = Harness()
    for extra in ({}, {"hub.mode": "subscribe"}, {"crc_token": "t"}):
        reply = harness.service.handshake(route, {**query, **extra})
        assert reply.status in {200, 400, 403, 404, 405}
