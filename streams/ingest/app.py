"""The HTTP layer of ``engage ingest``: aiohttp routes around :class:`~streams.ingest.service.IngestService`.

Why aiohttp: it is already installed (faust-streaming depends on it), so the service adds no
dependency; it is a mature asyncio server whose HTTP parser is C (llhttp), which matters at thousands
of requests per second; it hands over the raw body bytes that signatures are computed on; it enforces
a body limit while reading (``client_max_size``); and its ``AppRunner`` lets the demo and the tests run
the very same application in-process on a loopback port.

Access logging is off on purpose: Meta's handshake carries ``hub.verify_token`` in the query string,
and a secret must never reach a log.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from streams.ingest import openapi
from streams.ingest.adapters.base import Adapter
from streams.ingest.publisher import CoalescingPublisher, KafkaPublisher, Publisher
from streams.ingest.service import GENERIC, IngestService, Reply
from streams.metrics import Metrics
from streams.runtime import INGEST_GC_THRESHOLDS
from streams.settings import Settings

log = logging.getLogger(__name__)

SERVICE: web.AppKey[IngestService] = web.AppKey("service", IngestService)
Ready = Callable[[], Awaitable[bool]]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _response(reply: Reply) -> web.Response:
    return web.Response(
        status=reply.status, body=reply.body, content_type=reply.content_type, headers=dict(reply.headers)
    )


def _json(status: int, document: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(document), content_type="application/json")


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """aiohttp's own 404/405 (unknown path or method) as JSON, like every other answer."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _json(exc.status, {"error": exc.reason})


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
    app = web.Application(client_max_size=limit, middlewares=[_json_errors])
    app[SERVICE] = service
    spec = orjson.dumps(openapi.document(service.platforms))

    async def read_body(request: web.Request, route: str) -> bytes | Reply:
        if request.content_length is not None and request.content_length > limit:
            return service.rejected(route, 413, f"body over {limit} bytes")
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            return service.rejected(route, 413, f"body over {limit} bytes")

    async def post(request: web.Request, route: str) -> web.Response:
        body = await read_body(request, route)
        if isinstance(body, Reply):
            return _response(body)
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

    async def metrics_endpoint(request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(metrics.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def openapi_json(request: web.Request) -> web.Response:
        return web.Response(body=spec, content_type="application/json")

    app.router.add_post("/v1/events", post_generic)
    app.router.add_post("/v1/webhooks/{platform}", post_platform)
    app.router.add_post("/v1/webhooks/{platform}/{account}", post_platform)
    app.router.add_get("/v1/webhooks/{platform}", get_platform, allow_head=False)
    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/readyz", readyz, allow_head=False)
    app.router.add_get("/metrics", metrics_endpoint, allow_head=False)
    app.router.add_get("/openapi.json", openapi_json, allow_head=False)
    return app


@asynccontextmanager
async def running(app: web.Application, host: str, port: int) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` (0: a free port) for the block; yields the base URL."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
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
    try:
        app = create_app(settings, CoalescingPublisher(publisher), metrics, ready=publisher.ready)
        # What start-up built lives as long as the process: out of the collector's sight, and young
        # collections less often (see INGEST_GC_THRESHOLDS).
        gc.freeze()
        gc.set_threshold(*INGEST_GC_THRESHOLDS)
        async with running(app, settings.ingest_host, settings.ingest_port) as url:
            log.info(
                "ingest listening on %s (Kafka %s, idempotent producer: %s)",
                url,
                bootstrap,
                publisher.idempotent,
            )
            if on_started is not None:
                on_started(url)
            await (stop or asyncio.Event()).wait()
    finally:
        await publisher.stop()
