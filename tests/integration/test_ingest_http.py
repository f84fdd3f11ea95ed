"""The aiohttp application over a real loopback socket, on the in-process publisher twin.

What only the HTTP layer can show: body limits while reading, aiohttp's own 404/405, query strings
reaching the handshakes, the operational endpoints, and fuzzing through the real parser (never a 500).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from streams.ingest.app import create_app
from streams.ingest.publisher import MemoryPublisher
from streams.metrics import Metrics
from tests.webhooks import NOW_MS, VERIFY_TOKEN, Case, ServerThread, cases, signature_headers
from tests.webhooks import settings as make_settings

CASES = cases()
PUBLISHER = MemoryPublisher()
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    metrics = Metrics.create(CollectorRegistry())
    running = ServerThread(
        lambda: create_app(make_settings(ingest_max_body=MAX_BODY), PUBLISHER, metrics, lambda: NOW_MS)
    )
    yield running
    running.close()


def _post(server: ServerThread, path: str, body: bytes, platform: str) -> tuple[int, dict[str, str], bytes]:
    return server.request("POST", path, body, dict(signature_headers(platform, body)))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_signed_fixture_over_http(server: ServerThread, case: Case) -> None:
    path = "/v1/events" if case.platform == "generic" else f"/v1/webhooks/{case.platform}"
    if case.account:
        path += f"/{case.account}"
    status, headers, body = _post(server, path, case.body, case.platform)
    assert status == (202 if case.dead_lettered else 200), body
    assert headers["content-type"].startswith("application/json")
    assert orjson.loads(body)["accepted"] == len(case.events)


def test_meta_handshake_over_http(server: ServerThread) -> None:
    query = urlencode({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "424242"})
    assert server.request("GET", f"/v1/webhooks/meta?{query}")[::2] == (200, b"424242")
    query = urlencode({"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "424242"})
    assert server.request("GET", f"/v1/webhooks/meta?{query}")[0] == 403


def test_x_crc_over_http(server: ServerThread) -> None:
    status, _, body = server.request("GET", "/v1/webhooks/x?crc_token=NjMzYTk1NDUtNzRlYy00ODkw")
    assert status == 200 and orjson.loads(body)["response_token"].startswith("sha256=")


def test_body_over_the_limit_is_413_by_content_length(server: ServerThread) -> None:
    body = b"[" + b" " * MAX_BODY + b"]"
    status, _, reply = _post(server, "/v1/events", body, "generic")
    assert status == 413 and b"body over" in reply


def test_body_over_the_limit_is_413_when_chunked(server: ServerThread) -> None:
    import http.client

    body = b"[" + b" " * (MAX_BODY + 10) + b"]"
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(
            "POST",
            "/v1/events",
            body=iter([body[:1000], body[1000:]]),
            headers={**dict(signature_headers("generic", body)), "Transfer-Encoding": "chunked"},
            encode_chunked=True,
        )
        assert connection.getresponse().status == 413
    finally:
        connection.close()


@pytest.fixture(scope="module")
def default_limit_server() -> Iterator[ServerThread]:
    """Settings as shipped: ``ENGAGE_INGEST_MAX_BODY`` unset, so the 1 MiB default applies."""
    metrics = Metrics.create(CollectorRegistry())
    running = ServerThread(lambda: create_app(make_settings(), MemoryPublisher(), metrics, lambda: NOW_MS))
    yield running
    running.close()


def _chunked_post(server: ServerThread, body: bytes) -> int:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(
            "POST",
            "/v1/events",
            body=iter([body[i : i + 65536] for i in range(0, len(body), 65536)]),
            headers={**dict(signature_headers("generic", body)), "Transfer-Encoding": "chunked"},
            encode_chunked=True,
        )
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_default_limit_is_one_mebibyte(default_limit_server: ServerThread, chunked: bool) -> None:
    at_limit = b"[" + b" " * (1024 * 1024 - 2) + b"]"  # an empty array of exactly 1 MiB
    over = at_limit + b" "
    for body, expected in ((at_limit, 200), (over, 413)):
        if chunked:
            status = _chunked_post(default_limit_server, body)
        else:
            status = _post(default_limit_server, "/v1/events", body, "generic")[0]
        assert status == expected, (len(body), status)


def test_unknown_path_and_method_answer_json(server: ServerThread) -> None:
    status, _headers, body = server.request("GET", "/nope")
    assert status == 404 and orjson.loads(body)["error"]
    status, _, body = server.request("PUT", "/v1/events", b"[]")
    assert status == 405 and orjson.loads(body)["error"]
    status, _, body = server.request("POST", "/v1/webhooks/tiktok", b"{}")
    assert status == 404 and b"unknown source" in body


def test_operational_endpoints(server: ServerThread) -> None:
    assert server.request("GET", "/healthz")[0] == 200
    assert server.request("GET", "/readyz")[0] == 200
    PUBLISHER.available = False
    try:
        assert server.request("GET", "/readyz")[0] == 503
        assert server.request("GET", "/healthz")[0] == 200  # alive, just not ready
    finally:
        PUBLISHER.available = True
    # Metrics are not on the public port (serve() runs them on ENGAGE_INGEST_METRICS_PORT; see
    # tests/integration/test_ingest_hostile.py::test_metrics_on_their_own_loopback_port).
    status, _headers, _body = server.request("GET", "/metrics")
    assert status == 404


def test_openapi_document_lists_every_endpoint(server: ServerThread) -> None:
    status, _, body = server.request("GET", "/openapi.json")
    document = orjson.loads(body)
    assert status == 200 and document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/v1/events",
        "/v1/webhooks/generic",
        "/v1/webhooks/meta",
        "/v1/webhooks/x",
        "/v1/webhooks/mastodon/{account}",
        "/v1/webhooks/bluesky",
        "/healthz",
        "/readyz",
        "/openapi.json",
    }


# Requests at every route shape the service could plausibly serve, documented or not.
_PROBE_PATHS = [
    "/v1/events",
    "/v1/events/brand",
    *(
        f"/v1/webhooks/{name}{tail}"
        for name in ("generic", "meta", "x", "mastodon", "bluesky", "tiktok")
        for tail in ("", "/brand")
    ),
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
]
_HANDSHAKE_QUERIES = [
    {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "31337", "crc_token": "t"},
    {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "31337"},  # meta 403, x 400
]


def _documented(document: dict[str, Any], path: str, method: str) -> dict[str, Any] | None:
    for template, item in document["paths"].items():
        if template.replace("{account}", "brand") == path:
            operation: dict[str, Any] | None = item.get(method.lower())
            return operation
    return None


def test_openapi_describes_exactly_what_is_served(server: ServerThread) -> None:
    """Every documented operation answers (not 404/405) with a documented status and content type, and
    every request that is answered is documented."""
    document = orjson.loads(server.request("GET", "/openapi.json")[2])
    seen: set[tuple[str, str]] = set()
    for path in _PROBE_PATHS:
        platform = path.split("/")[3] if path.startswith("/v1/webhooks/") else "generic"
        for method in ("GET", "POST"):
            body = b"{}"
            requests = (
                [(f"{path}?{urlencode(q)}", None, {}) for q in _HANDSHAKE_QUERIES]
                if method == "GET"
                else [
                    (
                        path,
                        body,
                        dict(signature_headers(platform if platform != "tiktok" else "generic", body)),
                    )
                ]
            )
            operation = _documented(document, path, method)
            for target, payload, headers in requests:
                status, reply_headers, _ = server.request(method, target, payload, headers)
                served = status not in (404, 405)
                assert served == (operation is not None), (method, target, status)
                if operation is None:
                    continue
                seen.add((path, method))
                responses = operation["responses"]
                assert str(status) in responses, (method, target, status)
                content = responses[str(status)].get("content")
                if content:
                    assert reply_headers["content-type"].split(";")[0] in content, (method, target)
    documented = {
        (template.replace("{account}", "brand"), method.upper())
        for template, item in document["paths"].items()
        for method in item
        if method in ("get", "post")
    }
    assert seen == documented


PATHS = {
    "/v1/events": "generic",
    "/v1/webhooks/meta": "meta",
    "/v1/webhooks/x": "x",
    "/v1/webhooks/mastodon/brand": "mastodon",
    "/v1/webhooks/bluesky": "bluesky",
}
HTTP_FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@HTTP_FUZZ
@given(path=st.sampled_from(sorted(PATHS)), body=st.binary(max_size=2000), signed=st.booleans())
def test_http_fuzz_random_bodies_never_500(
    server: ServerThread, path: str, body: bytes, signed: bool
) -> None:
    platform = PATHS[path]
    headers = dict(signature_headers(platform, body)) if signed else {}
    status, _, reply = server.request("POST", path, body, headers)
    assert status in ({200, 202, 400} if signed else {401}), (status, reply)


@HTTP_FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    path=st.sampled_from(
        [*sorted(PATHS), "/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/webhooks/", "/x"]
    ),
    query=st.dictionaries(
        st.sampled_from(["crc_token", "hub.mode", "hub.challenge", "hub.verify_token", "q"]),
        st.text(max_size=30),
    ),
)
def test_http_fuzz_methods_paths_queries_never_500(
    server: ServerThread, method: str, path: str, query: dict[str, str]
) -> None:
    target = path + ("?" + urlencode(query) if query else "")
    status, _, _ = server.request(method, target, b"{}" if method != "GET" else None)
    assert 200 <= status < 500 and status != 500
    assert server.request("GET", "/healthz")[0] == 200
