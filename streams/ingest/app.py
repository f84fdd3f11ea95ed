"""The HTTP layer of ``engage ingest``: aiohttp routes around :class:`~streams.ingest.service.IngestService`.

Why aiohttp: it is already installed (faust-streaming depends on it), so the service adds no
dependency; it is a mature asyncio server whose HTTP parser is C (llhttp), which matters at thousands
of requests per second; it hands over the raw body bytes that signatures are computed on; it enforces
a body limit while reading (``client_max_size``); and its ``AppRunner`` lets the demo and the tests run
the very same application in-process on a loopback port.

Access logging is off on purpose: Meta's handshake carries ``hub.verify_token`` in the query string,
and a secret must never reach a log.

The port faces the internet, so the connection limits are ours, not aiohttp's defaults (an hour of
keep-alive, no connection limit, a minute to shut down): ``ENGAGE_INGEST_KEEPALIVE_TIMEOUT`` closes
a connection that has no complete request head that long after it opened or after its last answer
(idle keep-alive, slowloris headers), ``ENGAGE_INGEST_BODY_TIMEOUT`` answers 408 to a body that
trickles in, ``ENGAGE_INGEST_MAX_CONNECTIONS`` aborts connections beyond it, and
``ENGAGE_INGEST_SHUTDOWN_TIMEOUT`` bounds how long a stop waits for requests in flight. Malformed
requests and client disconnects are logged as one line at INFO (aiohttp logs a traceback at ERROR).
``/metrics`` is not on this port: :func:`serve` serves it on ``ENGAGE_INGEST_METRICS_HOST:PORT``
(loopback by default), like the worker's.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import REGISTRY

from streams.ingest import openapi
from streams.ingest.adapters.base import Adapter
from streams.ingest.publisher import CoalescingPublisher, KafkaPublisher, Publisher
from streams.ingest.service import GENERIC, IngestService, Reply
from streams.metrics import Metrics
from streams.metrics_server import MetricsServer
from streams.runtime import INGEST_GC_THRESHOLDS
from streams.settings import Settings

log = logging.getLogger(__name__)

Ready = Callable[[], Awaitable[bool]]
LINGERING_S = 1.0


@dataclass(frozen=True)
class ConnectionLimits:
    """What :func:`running` applies to the connections of an app (from the settings, seconds)."""

    keepalive_s: float
    max_connections: int
    shutdown_s: float

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            settings.ingest_keepalive_timeout_ms / 1000,
            settings.ingest_max_connections,
            settings.ingest_shutdown_timeout_ms / 1000,
        )


SERVICE: web.AppKey[IngestService] = web.AppKey("service", IngestService)
LIMITS: web.AppKey[ConnectionLimits] = web.AppKey("limits", ConnectionLimits)


class _OneLineLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server logger, minus the tracebacks.

    aiohttp logs every malformed request and every client that disconnects mid-request with
    ``logger.exception`` (ERROR and a traceback): on a public port that is noise an attacker can
    generate at will. They are the client's problem, so one line at INFO says what happened: the
    exception's type, not its message, which quotes the offending request bytes (a query string may
    carry a verify token). A bug in our handlers never reaches this logger (``create_app``'s ``guard``
    middleware answers and logs it).
    """

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        exc = kwargs.pop("exc_info", None)
        if isinstance(exc, BaseException):
            msg = f"{msg} ({type(exc).__name__})"
        self.logger.log(min(level, logging.INFO), msg, *args, **kwargs)

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        self.log(logging.INFO, msg, *args, exc_info=exc_info, **kwargs)

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.INFO, msg, *args, **kwargs)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _response(reply: Reply) -> web.Response:
    return web.Response(
        status=reply.status, body=reply.body, content_type=reply.content_type, headers=dict(reply.headers)
    )


def _json(status: int, document: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(document), content_type="application/json")


def _route_of(request: web.Request) -> str:
    platform = request.match_info.get("platform")
    return platform if platform is not None else (GENERIC if request.path == "/v1/events" else "unknown")


def create_app(
    settings: Settings,
    publisher: Publisher,
    metrics: Metrics,
    clock: Callable[[], int] = wall_clock_ms,
    *,
    ready: Ready | None = None,
    adapters: Mapping[str, Adapter] | None = None,
) -> web.Application:
    """The ingest application. ``ready`` answers ``/readyz`` (default: the publisher's ``ready``)."""
    service = IngestService(settings, publisher, metrics, clock, adapters=adapters)
    readiness: Ready | None = ready or getattr(publisher, "ready", None)
    limit = settings.ingest_max_body
    body_timeout_s = settings.ingest_body_timeout_ms / 1000

    @web.middleware
    async def guard(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Every answer under ``/v1/`` is counted in ``engage_webhook_requests_total``: the handlers'
        own (through the service), aiohttp's 404/405 (as JSON, like every other answer) and a 500 for
        a bug, which is logged with its traceback and answered rather than left to aiohttp."""
        counted = request.path.startswith("/v1/")
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            if counted:
                service.rejected(_route_of(request), exc.status, exc.reason)
            return _json(exc.status, {"error": exc.reason})
        except Exception:
            log.exception("ingest handler failed on %s %s", request.method, request.path[:64])
            if counted:
                service.rejected(_route_of(request), 500, "internal error")
            return _json(500, {"error": "internal error"})

    app = web.Application(client_max_size=limit, middlewares=[guard])
    app[SERVICE] = service
    app[LIMITS] = ConnectionLimits.of(settings)
    spec = orjson.dumps(openapi.document(service.platforms))

    async def read_body(request: web.Request, route: str) -> bytes | Reply:
        if request.content_length is not None and request.content_length > limit:
            return service.rejected(route, 413, f"body over {limit} bytes")
        try:
            async with asyncio.timeout(body_timeout_s):
                return await request.read()
        except web.HTTPRequestEntityTooLarge:
            return service.rejected(route, 413, f"body over {limit} bytes")
        except TimeoutError:
            log.info("body of a %s request not complete within %.1fs; closing", route, body_timeout_s)
            return service.rejected(route, 408, f"body not complete within {body_timeout_s:g}s")
        except web.RequestPayloadError as exc:
            # A Content-Encoding the body does not match (not gzip, bad deflate) or a broken chunked
            # encoding: the client's error, so a 400 and one line, never a 500 with tracebacks.
            cause = exc.__cause__ or exc
            log.info("undecodable %s request body: %s", route, type(cause).__name__)
            return service.rejected(route, 400, "request body could not be decoded (Content-Encoding?)")
        except ConnectionError as exc:  # the client went away mid-body: nobody reads the answer
            log.info("client disconnected during a %s request body: %s", route, type(exc).__name__)
            return service.rejected(route, 400, "request body incomplete")

    async def post(request: web.Request, route: str) -> web.Response:
        body = await read_body(request, route)
        if isinstance(body, Reply):
            response = _response(body)
            response.force_close()  # the rest of the body, if any, is not worth reading
            return response
        account = request.match_info.get("account")
        return _response(await service.deliver(route, request.headers, body, account))

    async def post_generic(request: web.Request) -> web.Response:
        return await post(request, GENERIC)

    async def post_platform(request: web.Request) -> web.Response:
        return await post(request, request.match_info["platform"])

    async def get_platform(request: web.Request) -> web.Response:
        return _response(service.handshake(request.match_info["platform"], request.query))

    async def healthz(request: web.Request) -> web.Response:
        return _json(200, {"status": "alive"})

    async def readyz(request: web.Request) -> web.Response:
        ok = await readiness() if readiness is not None else True
        return _json(200 if ok else 503, {"status": "ready" if ok else "kafka unreachable"})

    async def openapi_json(request: web.Request) -> web.Response:
        return web.Response(body=spec, content_type="application/json")

    app.router.add_post("/v1/events", post_generic)
    app.router.add_post("/v1/webhooks/{platform}", post_platform)
    app.router.add_post("/v1/webhooks/{platform}/{account}", post_platform)
    app.router.add_get("/v1/webhooks/{platform}", get_platform, allow_head=False)
    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/readyz", readyz, allow_head=False)
    app.router.add_get("/openapi.json", openapi_json, allow_head=False)
    return app


class _LimitedRunner(web.AppRunner):
    """An ``AppRunner`` whose server aborts connections beyond ``max_connections`` and counts the
    answers aiohttp gives on its own (a request its parser refuses never reaches a handler).

    Written against aiohttp 3.14, which has no connection limit and no hook on its parser's error
    answers: the server's class is swapped for a subclass that checks the count where every accepted
    connection is registered (``Server.connection_made``) and builds handlers whose ``handle_error``
    counts its answer in ``engage_webhook_requests_total{platform="unknown"}``. Guarded by
    tests/integration/test_ingest_hostile.py (``test_connections_beyond_the_limit_are_closed``,
    ``test_bad_content_encoding_is_a_counted_quiet_400``).
    """

    def __init__(self, app: web.Application, max_connections: int, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.max_connections = max_connections

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        limit, service = self.max_connections, self.app.get(SERVICE)

        class Handler(web.RequestHandler):
            def handle_error(
                self,
                request: Any,
                status: int = 500,
                exc: BaseException | None = None,
                message: str | None = None,
            ) -> web.StreamResponse:
                response = super().handle_error(request, status, exc, message)
                if service is not None:
                    service.rejected("unknown", response.status, "refused by the HTTP parser")
                return response

        class Guarded(web.Server):
            def __call__(self) -> web.RequestHandler:
                return Handler(self, loop=self._loop, **self._kwargs)

            def connection_made(self, handler: web.RequestHandler, transport: asyncio.Transport) -> None:
                super().connection_made(handler, transport)
                if len(self._connections) > limit:
                    log.info("connection limit (%d) reached; closing a new connection", limit)
                    transport.abort()

        server.__class__ = Guarded
        return server


@asynccontextmanager
async def running(app: web.Application, host: str, port: int) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` (0: a free port) for the block; yields the base URL.

    The connection limits are the app's (:class:`ConnectionLimits`, set by :func:`create_app`).
    """
    limits = app.get(LIMITS) or ConnectionLimits.of(Settings())
    runner = _LimitedRunner(
        app,
        limits.max_connections,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=limits.keepalive_s,
        # After an early answer (408, 413, 400) aiohttp drains the unread rest of the body so the
        # client can read the answer before the close: 1 s of that, not its default 10 s.
        lingering_time=LINGERING_S,
        shutdown_timeout=limits.shutdown_s,
        logger=_OneLineLog(logging.getLogger("streams.ingest.http"), {}),
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        yield f"http://{host}:{bound}"
    finally:
        await runner.cleanup()


async def serve(
    settings: Settings,
    bootstrap: str,
    *,
    metrics: Metrics | None = None,
    stop: asyncio.Event | None = None,
    on_started: Callable[[str], None] | None = None,
) -> None:
    """Run the service against Kafka at ``bootstrap`` until ``stop`` is set (or forever)."""
    metrics = metrics or Metrics.create(REGISTRY)
    if not settings.webhook_secrets:
        log.warning("ENGAGE_WEBHOOK_SECRETS is empty: every webhook will be answered 404 (unknown source)")
    publisher = await KafkaPublisher(
        bootstrap, ack_timeout_ms=settings.ingest_ack_timeout_ms, security=settings.kafka_security
    ).start()
    exposition = MetricsServer(
        metrics.registry, port=settings.ingest_metrics_port, host=settings.ingest_metrics_host
    )
    try:
        exposition.start()
        app = create_app(settings, CoalescingPublisher(publisher), metrics, ready=publisher.ready)
        # What start-up built lives as long as the process: out of the collector's sight, and young
        # collections less often (see INGEST_GC_THRESHOLDS).
        gc.freeze()
        gc.set_threshold(*INGEST_GC_THRESHOLDS)
        async with running(app, settings.ingest_host, settings.ingest_port) as url:
            log.info(
                "ingest listening on %s (Kafka %s, idempotent producer: %s; metrics on %s)",
                url,
                bootstrap,
                publisher.idempotent,
                exposition.url,
            )
            if on_started is not None:
                on_started(url)
            await (stop or asyncio.Event()).wait()
    finally:
        exposition.stop()
        await publisher.stop()
