"""Serve one registry's ``/metrics`` over HTTP on a threaded server (the worker and ingest).

The worker runs Faust's event loop, so its exposition runs on a daemon thread (prometheus-client's
own WSGI server) and never competes with the agents for the loop. The ingest service does the same on
a port of its own (never beside its public webhook routes).

It honours the ``Accept`` header (Prometheus text format, or OpenMetrics when asked for), and serves
exactly the registry it was given, never the process-global default one.

Given a :class:`~streams.health.Health`, the threaded server also answers ``/healthz`` and ``/readyz``
(200 or 503, with a small JSON body saying why). The thread answering is not the event loop, which is
why those answers come from the loop's own heartbeat (see :mod:`streams.health`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from streams.health import Health

log = logging.getLogger(__name__)


class MetricsServer:
    """``http://host:port/metrics`` for one registry, on a daemon thread.

    ``port=0`` binds a free port; :attr:`port` is the one actually bound. Bind ``0.0.0.0`` only where
    a scraper outside the host must reach it (a container); loopback is the default.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        port: int = 0,
        host: str = "127.0.0.1",
        health: Health | None = None,
    ) -> None:
        self._registry = registry
        self._health = health
        self._host = host
        self._requested_port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> MetricsServer:
        if self._server is not None:
            return self
        app = _routes(make_wsgi_app(self._registry), self._health)
        server = make_server(self._host, self._requested_port, app, ThreadingWSGIServer, _QuietHandler)
        thread = threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True)
        thread.start()
        self._server, self._thread = server, thread
        log.info("serving metrics on %s", self.url)
        return self

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("metrics server not started")
        port: int = self._server.server_port
        return port

    @property
    def host(self) -> str:
        return self._host

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self._host in ("", "0.0.0.0") else self._host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape and probe on stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _routes(metrics_app: Any, health: Health | None) -> Any:
    """``/healthz`` and ``/readyz`` from ``health``; everything else is the metrics exposition."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/readyz"):
            if health is None:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"no health checks in this process\n"]
            ok, detail = health.live() if path == "/healthz" else health.ready()
            start_response(
                "200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")]
            )
            return [json.dumps(detail).encode() + b"\n"]
        result: Iterable[bytes] = metrics_app(environ, start_response)
        return result

    return app


def serve_metrics(
    registry: CollectorRegistry, port: int, host: str = "127.0.0.1", health: Health | None = None
) -> MetricsServer:
    """Start serving ``registry`` (and ``health``, if given) and return the running server."""
    return MetricsServer(registry, port=port, host=host, health=health).start()
