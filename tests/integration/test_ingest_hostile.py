"""Issue 18's hostile probe against the real service: aiohttp on loopback (``running``, the way
``serve`` runs it, with its connection limits), and the real Tansu broker where the outcome depends on
Kafka (message sizes, dead letters, the debug log of the producer, shutdown with the producer open).

The service-level items (CRC shape, namespaces, timestamps, nesting, summaries) are also covered
without sockets in tests/unit/ingest/test_hostile.py; here they go through the real HTTP parser.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import socket
import threading
import time
import urllib.request
import uuid
import zlib
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import orjson
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from streams.embedded.broker import EmbeddedBroker, ensure_topics, free_port
from streams.ingest.app import create_app, running, serve
from streams.ingest.envelopes import Envelope
from streams.ingest.publisher import CoalescingPublisher, KafkaPublisher, MemoryPublisher, Publisher
from streams.metrics import Metrics
from streams.settings import Settings
from tests.webhooks import NOW_MS, VERIFY_TOKEN, signature_headers
from tests.webhooks import settings as make_settings

KEEPALIVE_S = 1.0
BODY_S = 1.0
MAX_CONNECTIONS = 40
# How much later than its configured timeout a connection may close (a loaded 2-core machine).
SLACK_S = 2.0


class Loopback:
    """``create_app`` served by ``running`` on a loopback port, its loop in a background thread."""

    def __init__(self, settings: Settings, publisher: Publisher) -> None:
        self.metrics = Metrics.create(CollectorRegistry())
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._stack = AsyncExitStack()
        app = create_app(settings, publisher, self.metrics, lambda: NOW_MS)

        async def start() -> str:
            return await self._stack.enter_async_context(running(app, "127.0.0.1", 0))

        self.url = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self.port = int(self.url.rsplit(":", 1)[1])

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=15)
        return sock

    def answered(self) -> float:
        """Every ``engage_webhook_requests_total`` sample, summed."""
        return sum(
            sample.value
            for family in self.metrics.registry.collect()
            if family.name == "engage_webhook_requests"
            for sample in family.samples
            if sample.name.endswith("_total")
        )

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stack.aclose(), self.loop).result(20)

        async def cancel_leftovers() -> None:  # handlers of connections the tests cut mid-request
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_leftovers(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


def _hostile_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "ingest_keepalive_timeout_ms": int(KEEPALIVE_S * 1000),
        "ingest_body_timeout_ms": int(BODY_S * 1000),
        "ingest_max_connections": MAX_CONNECTIONS,
        "ingest_max_body": 1_048_576,
    }
    values.update(overrides)
    return make_settings(**values)


@pytest.fixture(scope="module")
def server() -> Iterator[Loopback]:
    running_server = Loopback(_hostile_settings(), MemoryPublisher())
    yield running_server
    running_server.close()


def _closed_after(sock: socket.socket, limit_s: float) -> float | None:
    """Seconds until the server closed ``sock`` (reading and discarding any answer), or ``None``."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < limit_s:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionError:
            return time.monotonic() - started
        if not data:
            return time.monotonic() - started
    return None


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not loud, [(r.name, r.levelname, r.getMessage()) for r in loud]


# --- 4. undecodable Content-Encoding ---------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_bad_content_encoding_is_a_counted_quiet_400(
    server: Loopback, caplog: pytest.LogCaptureFixture, encoding: str
) -> None:
    caplog.set_level(logging.INFO)
    before = server.answered()
    body = b"this is not " + encoding.encode() + b" at all" * 20
    status, reply = server.request("POST", "/v1/events", body, {"Content-Encoding": encoding})
    # br without the Brotli package is refused by aiohttp's parser itself: a 400 all the same.
    assert status == 400 and (b"could not be decoded" in reply or b"decode content-encoding" in reply)
    assert server.answered() == before + 1
    _no_tracebacks(caplog)


def test_good_gzip_is_decoded_and_verified(server: Loopback) -> None:
    body = orjson.dumps([])
    headers = {**signature_headers("generic", body), "Content-Encoding": "gzip"}
    assert server.request("POST", "/v1/events", gzip.compress(body), headers)[0] == 200
    headers = {**signature_headers("generic", body), "Content-Encoding": "deflate"}
    assert server.request("POST", "/v1/events", zlib.compress(body), headers)[0] == 200


# --- 5. nesting through the real parser, and every answer counted -------------------------------------


@pytest.mark.parametrize("depth", [950, 990, 1100])
def test_deep_nesting_over_http_is_never_500(server: Loopback, depth: int) -> None:
    before = server.answered()
    body = b"[" * depth + b"]" * depth
    for path, platform in (("/v1/events", "generic"), ("/v1/webhooks/bluesky", "bluesky")):
        status, _ = server.request("POST", path, body, dict(signature_headers(platform, body)))
        assert status in (202, 400)
    assert server.answered() == before + 2


def test_unknown_routes_and_methods_are_counted(server: Loopback) -> None:
    before = server.answered()
    assert server.request("PUT", "/v1/events", b"{}")[0] == 405
    assert server.request("GET", "/v1/nope")[0] == 404
    assert server.request("GET", "/healthz")[0] == 200  # not a webhook: not counted
    assert server.answered() == before + 2


# --- 9. timeouts and the connection limit -------------------------------------------------------------


def test_idle_connection_is_closed_within_the_keepalive_timeout(server: Loopback) -> None:
    with server.connect() as sock:
        closed = _closed_after(sock, KEEPALIVE_S + SLACK_S + 3)
    assert closed is not None and closed <= KEEPALIVE_S + SLACK_S, closed


def test_partial_headers_are_cut_off(server: Loopback) -> None:
    """A slowloris: a byte of header every 0.3 s never completes a head, and is closed anyway."""
    with server.connect() as sock:
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed_at = None
        while time.monotonic() - started < KEEPALIVE_S + SLACK_S + 3:
            try:
                sock.sendall(b"X")
            except OSError:
                closed_at = time.monotonic() - started
                break
            if _closed_after(sock, 0.3) is not None:
                closed_at = time.monotonic() - started
                break
    assert closed_at is not None and closed_at <= KEEPALIVE_S + SLACK_S, closed_at


def test_idle_keepalive_after_an_answer_is_closed(server: Loopback) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        closed = _closed_after(sock, KEEPALIVE_S + SLACK_S + 3)
    assert closed is not None and closed <= KEEPALIVE_S + SLACK_S, closed


def test_partial_body_is_answered_408_and_closed(server: Loopback) -> None:
    before = server.answered()
    with server.connect() as sock:
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n[1,2,")
        started = time.monotonic()
        sock.settimeout(BODY_S + SLACK_S + 3)
        answer = sock.recv(65536)
        took = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
        assert took <= BODY_S + SLACK_S
        assert _closed_after(sock, SLACK_S) is not None
    assert server.answered() == before + 1


def test_connections_beyond_the_limit_are_closed(server: Loopback) -> None:
    # Fresh connections (the idle ones of other tests are gone after the keep-alive timeout).
    time.sleep(KEEPALIVE_S + 0.5)
    held = [server.connect() for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)
        with server.connect() as extra:
            closed = _closed_after(extra, 1.0)
        assert closed is not None and closed < 1.0
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert server.request("GET", "/healthz")[0] == 200


def test_slowloris_of_many_connections_is_cut_off(server: Loopback) -> None:
    time.sleep(KEEPALIVE_S + 0.5)
    socks = [server.connect() for _ in range(MAX_CONNECTIONS // 2)]
    try:
        for sock in socks:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: ")
        deadline = time.monotonic() + KEEPALIVE_S + SLACK_S
        open_left = list(socks)
        while open_left and time.monotonic() < deadline + 2:
            open_left = [s for s in open_left if _closed_after(s, 0.05) is None]
        assert not open_left, f"{len(open_left)} slowloris connections still open"
    finally:
        for sock in socks:
            sock.close()


# --- 10. malformed requests and disconnects: one line, no traceback -----------------------------------


def test_malformed_requests_and_disconnects_are_logged_quietly(
    server: Loopback, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with server.connect() as sock:  # a good request, then garbage on the same connection
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01GARBAGE\r\n\r\n")
        _closed_after(sock, 3)
    with server.connect() as sock:  # a client that gives up half-way through its body
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"[" * 100)
        time.sleep(0.1)
    with server.connect() as sock:  # a header line too long
        sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n")
        _closed_after(sock, 3)
    with server.connect() as sock:  # a broken request line that quotes a secret
        sock.sendall(
            b"\x00GET /v1/webhooks/meta?hub.verify_token=" + VERIFY_TOKEN.encode() + b" HTTP/1.1\r\n\r\n"
        )
        _closed_after(sock, 3)
    time.sleep(0.5)
    _no_tracebacks(caplog)
    assert VERIFY_TOKEN not in caplog.text
    assert any(r.name == "streams.ingest.http" and r.levelno == logging.INFO for r in caplog.records)


# --- 1 and 8 over HTTP ----------------------------------------------------------------------------------


def test_crc_oracle_refused_over_http(server: Loopback) -> None:
    from urllib.parse import quote

    token = quote('{"for_user_id":"1","favorite_events":[]}')
    assert server.request("GET", f"/v1/webhooks/x?crc_token={token}")[0] == 400


def test_many_elements_over_http_is_413(server: Loopback) -> None:
    body = b"[" + b",".join([b"{}"] * 100_000) + b"]"
    status, reply = server.request("POST", "/v1/events", body, dict(signature_headers("generic", body)))
    assert status == 413 and b"elements" in reply


def test_concurrent_mostly_invalid_bodies_stay_small(caplog: pytest.LogCaptureFixture) -> None:
    """The probe's amplification: four concurrent signed bodies of invalid elements once made 299,997
    dead letters, +1.9 GB of RSS and a 4 s /healthz stall. Now: one summary dead letter per request,
    bounded memory, and /healthz answers meanwhile."""
    caplog.set_level(logging.WARNING)
    publisher = MemoryPublisher()
    server = Loopback(_hostile_settings(), publisher)
    try:
        element = b'{"event_id":"e","type":"comment","platform":"generic"}'
        body = b"[" + b",".join([element] * 10_000) + b"]"  # ~560 KB, at the element limit
        headers = dict(signature_headers("generic", body))
        before = _rss_bytes()
        results: list[tuple[int, bytes]] = []
        health: list[float] = []

        def post() -> None:
            results.append(server.request("POST", "/v1/events", body, headers))

        threads = [threading.Thread(target=post) for _ in range(4)]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            started = time.monotonic()
            assert server.request("GET", "/healthz")[0] == 200
            health.append(time.monotonic() - started)
        for thread in threads:
            thread.join()
        grown = _rss_bytes() - before
        assert [status for status, _ in results] == [202] * 4
        assert all(orjson.loads(reply)["dead_lettered"] == 10_000 for _, reply in results)
        dlq = [e for e in publisher.envelopes if e.topic.endswith("interactions.dlq")]
        assert len(dlq) == 4 and all(orjson.loads(e.value)["reason"] == "request_invalid" for e in dlq)
        assert grown < 120 * 1024 * 1024, grown
        assert max(health, default=0.0) < 2.0, health
    finally:
        server.close()


# --- the fuzz: headers, encodings, bodies -----------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


_BODIES = st.one_of(
    st.binary(max_size=3000),
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
        max_leaves=30,
    ).map(orjson.dumps),
    st.integers(min_value=1, max_value=1100).map(lambda d: b"[" * d + b"]" * d),
    st.integers(min_value=0, max_value=12_000).map(lambda n: b"[" + b",".join([b"{}"] * n) + b"]"),
)
_PATHS = {
    "/v1/events": "generic",
    "/v1/webhooks/generic": "generic",
    "/v1/webhooks/meta": "meta",
    "/v1/webhooks/x": "x",
    "/v1/webhooks/mastodon/brand": "mastodon",
    "/v1/webhooks/bluesky": "bluesky",
}
FUZZ_RSS: list[int] = []


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(sorted(_PATHS)),
    body=_BODIES,
    signed=st.booleans(),
    encoding=st.sampled_from([None, "gzip", "deflate", "br", "identity", "gzip, deflate", "bogus"]),
    compress=st.booleans(),
    extra=st.dictionaries(
        st.sampled_from(["X-Engage-Source", "X-Signature-Timestamp", "Content-Type", "Expect"]),
        st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=30),
        max_size=3,
    ),
)
def test_fuzz_no_5xx_every_answer_counted_bounded_memory(
    server: Loopback,
    path: str,
    body: bytes,
    signed: bool,
    encoding: str | None,
    compress: bool,
    extra: dict[str, str],
) -> None:
    if not FUZZ_RSS:
        FUZZ_RSS.append(_rss_bytes())
    headers = dict(extra)
    if "Expect" in headers:
        headers["Expect"] = "100-continue"
    if signed:
        headers.update(signature_headers(_PATHS[path], body))
    wire = body
    if encoding is not None:
        headers["Content-Encoding"] = encoding
        if compress and encoding == "gzip":
            wire = gzip.compress(body)
        elif compress and encoding == "deflate":
            wire = zlib.compress(body)
    before = server.answered()
    status, reply = server.request("POST", path, wire, headers)
    assert status < 500, (status, reply[:200])
    assert server.answered() == before + 1
    # Memory: the server's process (this one) grows by a bounded amount over the whole run.
    assert _rss_bytes() - FUZZ_RSS[0] < 150 * 1024 * 1024


# --- the real broker: dead letters that fit, one summary, no values in the debug log, shutdown ----------


PARTITIONS = 2


class _KafkaOnServerLoop:
    """``CoalescingPublisher(KafkaPublisher)`` as ``serve`` composes it, started on first use so that
    the producer lives on the server's own event loop (the test thread has none)."""

    def __init__(self, bootstrap: str, ack_timeout_ms: int) -> None:
        self._bootstrap = bootstrap
        self._ack_timeout_ms = ack_timeout_ms
        self._kafka: KafkaPublisher | None = None
        self._inner: CoalescingPublisher | None = None

    async def publish(self, envelopes: Any) -> None:
        if self._inner is None:
            self._kafka = await KafkaPublisher(self._bootstrap, ack_timeout_ms=self._ack_timeout_ms).start()
            self._inner = CoalescingPublisher(self._kafka)
        await self._inner.publish(envelopes)

    async def stop(self) -> None:
        if self._kafka is not None:
            await self._kafka.stop()


@pytest.fixture
def kafka_ingest(broker: EmbeddedBroker) -> Iterator[tuple[Loopback, Settings, str]]:
    settings = _hostile_settings(topic_prefix=f"hostile-{uuid.uuid4().hex[:8]}.", topic_partitions=PARTITIONS)
    ensure_topics(broker.bootstrap, settings.topics.all, partitions=PARTITIONS)
    publisher = _KafkaOnServerLoop(broker.bootstrap, settings.ingest_ack_timeout_ms)
    server = Loopback(settings, publisher)
    try:
        yield server, settings, broker.bootstrap
    finally:
        asyncio.run_coroutine_threadsafe(publisher.stop(), server.loop).result(15)
        server.close()


def _dlq_records(bootstrap: str, topic: str, expected: int) -> list[dict[str, Any]]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
            await consumer.seek_to_beginning()
            out: list[dict[str, Any]] = []
            deadline = time.monotonic() + 20
            quiet_until = None
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=300)
                for records in batch.values():
                    out.extend(orjson.loads(r.value) for r in records)
                if len(out) >= expected:
                    quiet_until = quiet_until or time.monotonic() + 1.0
                    if time.monotonic() > quiet_until:
                        break
            return out
        finally:
            await consumer.stop()

    return asyncio.run(read())


def test_control_bytes_dead_letter_fits_on_kafka(kafka_ingest: tuple[Loopback, Settings, str]) -> None:
    """The probe's 503-forever: a 400 KB body of control bytes made a record over the producer limit."""
    server, settings, bootstrap = kafka_ingest
    body = bytes(range(1, 32)) * (400_000 // 31)
    status, reply = server.request("POST", "/v1/events", body, dict(signature_headers("generic", body)))
    assert status == 400, reply[:300]
    # Many invalid elements: one summary record, on the real broker.
    many = b"[" + b",".join([b"{}"] * 5000) + b"]"
    status, reply = server.request("POST", "/v1/events", many, dict(signature_headers("generic", many)))
    assert status == 202 and orjson.loads(reply)["dead_lettered"] == 5000
    records = _dlq_records(bootstrap, settings.topics.dlq, 2)
    assert sorted(r["reason"] for r in records) == ["malformed", "request_invalid"]
    truncated = next(r for r in records if r["reason"] == "malformed")
    assert truncated["original_truncated"] is True and truncated["original_length"] == len(body)


def test_debug_log_carries_no_message_values(
    broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    topic = f"hostile-log-{uuid.uuid4().hex[:8]}"
    ensure_topics(broker.bootstrap, [topic], partitions=1)
    marker = "private comment text of a follower 7f3a"

    async def publish() -> None:
        kafka = await KafkaPublisher(broker.bootstrap, ack_timeout_ms=5000).start()
        try:
            await kafka.publish([Envelope(topic, 0, b"actor-7f3a", orjson.dumps([{"text": marker}]))])
        finally:
            await kafka.stop()

    asyncio.run(publish())
    assert "Sending (key" in caplog.text  # the debug line is there, sizes only
    assert marker not in caplog.text and "actor-7f3a" not in caplog.text


def test_serve_metrics_on_their_own_port_and_bounded_shutdown(broker: EmbeddedBroker) -> None:
    """``serve``: /metrics on ENGAGE_INGEST_METRICS_PORT (loopback by default), not the webhook port;
    a stop with idle and half-sent clients open returns within the shutdown bound."""
    assert Settings().ingest_metrics_host == "127.0.0.1"
    metrics_port = free_port()
    shutdown_s, ack_s = 2.0, 2.0
    settings = make_settings(
        ingest_port=0,
        ingest_metrics_port=metrics_port,
        ingest_shutdown_timeout_ms=int(shutdown_s * 1000),
        ingest_ack_timeout_ms=int(ack_s * 1000),
        ingest_keepalive_timeout_ms=60_000,
        ingest_body_timeout_ms=60_000,
    )
    urls: list[str] = []
    result: dict[str, float] = {}

    def run() -> None:
        async def main() -> None:
            stop = asyncio.Event()
            result_loop.append((asyncio.get_running_loop(), stop))
            await serve(
                settings,
                broker.bootstrap,
                metrics=Metrics.create(CollectorRegistry()),
                stop=stop,
                on_started=urls.append,
            )
            result["stopped"] = time.monotonic()

        asyncio.run(main())

    result_loop: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not urls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert urls, "serve did not start"
    base = urls[0]
    port = int(base.rsplit(":", 1)[1])
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        assert b"engage_webhook_requests_total" in response.read()
    try:
        urllib.request.urlopen(base + "/metrics", timeout=5)
        raise AssertionError("/metrics answered on the webhook port")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n[")
    time.sleep(0.3)
    loop, stop = result_loop[0]
    asked = time.monotonic()
    loop.call_soon_threadsafe(stop.set)
    thread.join(shutdown_s + ack_s + 15)
    for sock in [*clients, half]:
        sock.close()
    assert not thread.is_alive(), "serve did not stop"
    took = result["stopped"] - asked
    assert took <= shutdown_s + ack_s + SLACK_S, took
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2)


def test_web_app_has_no_metrics_route() -> None:
    app = create_app(make_settings(), MemoryPublisher(), Metrics.create(CollectorRegistry()))
    assert all(
        getattr(r.resource, "canonical", "") != "/metrics"
        for r in app.router.routes()
        if isinstance(r, web.AbstractRoute)
    )
