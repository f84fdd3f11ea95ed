"""Test certificates made with the ``openssl`` command: a CA and a certificate it signs for loopback.

Used by the secured-connection tests (a TLS Tansu broker, a loopback TLS server for the ClickHouse
``https://`` DSN). Nothing here is a real secret; every file lives in the test's temporary directory.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streams.embedded.broker import EmbeddedBroker, free_port
from streams.kafka_security import KafkaSecurity


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA certificate clients trust
    cert: Path  # the server's certificate, for 127.0.0.1 and localhost
    key: Path  # its private key
    other_ca: Path  # a CA that did not sign ``cert`` (the "wrong CA")
    client_cert: Path  # a client certificate the CA signed (mutual TLS)
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
        "-keyout", str(key), "-out", str(cert), cwd=directory,
    )  # fmt: skip
    return cert, key


def make_pki(directory: Path) -> Pki:
    """A CA, a server certificate it signs (SAN 127.0.0.1, localhost), and an unrelated CA."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed: cannot make test certificates")
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _ca(directory, "test-ca")
    other_ca, _ = _ca(directory, "other-ca")
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(csr), cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-extfile", str(ext), "-out", str(cert), cwd=directory,
    )  # fmt: skip
    client_key, client_csr, client_cert = (directory / f"client.{ext}" for ext in ("key", "csr", "pem"))
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=engage",
        "-keyout", str(client_key), "-out", str(client_csr), cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(client_csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-out", str(client_cert), cwd=directory,
    )  # fmt: skip
    return Pki(ca=ca, cert=cert, key=key, other_ca=other_ca, client_cert=client_cert, client_key=client_key)


@contextlib.contextmanager
def tls_broker(
    pki: Pki, *, authentication: bool = False, mutual: bool = False, log_path: str | None = None
) -> Iterator[EmbeddedBroker]:
    """A real Tansu broker whose only advertised listener is TLS (see :mod:`tests.tls_proxy` for why a
    terminator stands in front of it). ``authentication``: Tansu also requires a SASL login.
    ``mutual``: the listener requires a client certificate signed by the test CA."""
    from tests.tls_proxy import TlsTerminator

    port = free_port()
    ready = KafkaSecurity(
        protocol="SSL",
        ca_file=str(pki.ca),
        cert_file=str(pki.client_cert) if mutual else "",
        key_file=str(pki.client_key) if mutual else "",
    )
    client_ca = str(pki.ca) if mutual else None
    with TlsTerminator(port, str(pki.cert), str(pki.key), client_ca=client_ca) as terminator:
        broker = EmbeddedBroker(
            port,
            advertised_port=terminator.port,
            authentication=authentication,
            security=ready,
            log_path=log_path,
        )
        if authentication:  # nobody can log in to check it serves: wait for the TLS handshake instead
            broker.start_unchecked()
            _wait_for_tls(terminator.port, ready)
        else:
            broker.start()
        try:
            yield broker
        finally:
            broker.stop()


def _wait_for_tls(port: int, security: KafkaSecurity, timeout_s: float = 20.0) -> None:
    import socket
    import time

    deadline = time.monotonic() + timeout_s
    context = security.ssl_context
    assert context is not None
    while True:
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=2) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1"),
            ):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def security_env(pki: Pki, bootstrap: str, **extra: str) -> dict[str, str]:
    """The environment of a process that talks TLS to ``bootstrap``."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_SECURITY_PROTOCOL": "SSL",
        "KAFKA_SSL_CA_FILE": str(pki.ca),
        **extra,
    }
