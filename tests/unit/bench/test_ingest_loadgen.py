"""The ingest bench's raw HTTP/1.1 client: requests it builds and responses it splits.

The end-to-end check (real ``engage ingest``, every 2xx on the topics) is
``tests/integration/test_bench_ingest.py``; these pin the byte-level parts without a socket.
"""

from __future__ import annotations

import hashlib
import hmac

import orjson

from streams.bench.ingest import SECRET, bodies, parse_response, request_bytes


def test_request_is_a_signed_keep_alive_post_with_the_exact_body() -> None:
    [(body, signature)] = bodies(1, 3)
    raw = request_bytes("127.0.0.1:8080", "/v1/events", body, signature)
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/events HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers["Host"] == "127.0.0.1:8080"
    assert headers["Content-Length"] == str(len(body))
    assert "Connection" not in headers  # HTTP/1.1 keeps the connection alive by default
    assert rest == body and len(orjson.loads(rest)) == 3
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Signature-256"] == signature == expected


BODY = b'{"accepted":100,"ignored":0,"dead_lettered":0}'
AIOHTTP_200 = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 46\r\n"
    b"Date: Sun, 22 Nov 2026 10:00:00 GMT\r\nServer: Python/3.11 aiohttp/3.14.5\r\n\r\n" + BODY
)


def test_response_complete_only_with_its_whole_body() -> None:
    assert len(BODY) == 46
    assert parse_response(AIOHTTP_200) == (200, len(AIOHTTP_200), False)
    for cut in (0, 10, AIOHTTP_200.index(b"\r\n\r\n") + 2, len(AIOHTTP_200) - 1):
        assert parse_response(AIOHTTP_200[:cut]) is None


def test_two_responses_in_one_read_are_split_at_the_first() -> None:
    second = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\ncontent-length: 2\r\n\r\n{}"
    buffer = bytearray(AIOHTTP_200 + second)
    status, consumed, close = parse_response(buffer) or (0, 0, True)
    assert (status, close) == (200, False)
    del buffer[:consumed]
    assert parse_response(buffer) == (503, len(second), False)


def test_connection_close_and_missing_length_end_the_connection() -> None:
    closing = b"HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    assert parse_response(closing) == (413, len(closing), True)
    unbounded = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\npartial"
    assert parse_response(unbounded) == (400, unbounded.index(b"\r\n\r\n") + 4, True)
