"""Serve one registry's ``/metrics`` over HTTP: a threaded server (worker) or an aiohttp handler (ingest).

The worker runs Faust's event loop, so its exposition runs on a daemon thread (prometheus-client's
own WSGI server) and never competes with the agents for the loop. The ingest service does the same on
a port of its own (never beside its public webhook routes); :func:`aiohttp_metrics_handler` remains
for an aiohttp app that wants ``/metrics`` as a route.

Both honour the ``Accept`` header (Prometheus text format, or OpenMetrics when asked for), and both
serve exactly the registry they were given, never the process-global default one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.exposition import choose_encoder

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)


class MetricsServer:
    """``http://host:port/metrics`` for one registry, on a daemon thread.

    ``port=0`` binds a free port; :attr:`port` is the one actually bound. Bind ``0.0.0.0`` only where
    a scraper outside the host must reach it (a container); loopback is the default.
    """

    def __init__(self, registry: CollectorRegistry, port: int = 0, host: str = "127.0.0.1") -> None:
        self._registry = registry
        self._host = host
        self._requested_port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> MetricsServer:
        if self._server is not None:
            return self
        self._server, self._thread = start_http_server(
            self._requested_port, addr=self._host, registry=self._registry
        )
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


def serve_metrics(registry: CollectorRegistry, port: int, host: str = "127.0.0.1") -> MetricsServer:
    """Start serving ``registry`` and return the running server (call ``stop()`` at shutdown)."""
    return MetricsServer(registry, port=port, host=host).start()


def aiohttp_metrics_handler(
    registry: CollectorRegistry,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A ``GET /metrics`` handler for an aiohttp app: ``app.router.add_get("/metrics", handler)``."""
    from aiohttp import web

    async def metrics(request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        # Collecting is CPU-only and fast for our few dozen series; no executor hop needed.
        return web.Response(body=encoder(registry), headers={"Content-Type": content_type})

    return metrics
