"""An ``https://`` CLICKHOUSE_DSN really speaks TLS, on any port, verified against the DSN's ``ca_cert``.

No ClickHouse server runs here, so the other end is a loopback HTTPS server made in the test (a CA made in the
test signs its certificate). It records what arrives over TLS and answers 503, so building the client fails
*after* the handshake, with the server's answer; what matters is that the request arrived encrypted, with the
credentials. Before the DSN was mapped (``streams/sinks/clickhouse_dsn.py``) clickhouse-connect spoke plain
HTTP to a port other than 443/8443 and this server saw only a failed handshake.
"""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from streams.embedded.broker import free_port
from streams.sinks.clickhouse import connect
from tests.tls import Pki, make_pki


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []

    def _answer(self) -> None:
        self.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def https_server(pki: Pki) -> Iterator[tuple[int, list[dict[str, str]]]]:
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Recorder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(pki.cert), str(pki.key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    seen: list[dict[str, str]] = []
    _Recorder.seen = seen
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port, seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_an_https_dsn_on_any_port_performs_a_verified_tls_handshake(
    https_server: tuple[int, list[dict[str, str]]], pki: Pki
) -> None:
    port, seen = https_server
    dsn = f"https://engage:s3cret@127.0.0.1:{port}/engagement?ca_cert={pki.ca}&connect_timeout=5"
    with pytest.raises(Exception) as caught:
        connect(dsn)
    assert seen, f"nothing arrived over TLS: {caught.value!r}"
    assert "certificate" not in str(caught.value).lower()
    first = seen[0]
    assert first.get("x-clickhouse-user") == "engage" or "authorization" in first


def test_the_wrong_ca_is_refused(https_server: tuple[int, list[dict[str, str]]], pki: Pki) -> None:
    port, seen = https_server
    with pytest.raises(Exception, match=r"(?i)certificate"):
        connect(f"https://engage:s3cret@127.0.0.1:{port}/engagement?ca_cert={pki.other_ca}&connect_timeout=5")
    assert seen == []


def test_verify_false_skips_the_check(https_server: tuple[int, list[dict[str, str]]], tmp_path: Path) -> None:
    port, seen = https_server
    with pytest.raises(Exception):  # noqa: B017 - the 503 after the handshake
        connect(f"https://engage:s3cret@127.0.0.1:{port}/engagement?verify=false&connect_timeout=5")
    assert seen
