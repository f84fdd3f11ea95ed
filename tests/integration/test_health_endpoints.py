"""``/healthz`` and ``/readyz`` of the threaded metrics server, and ``python -m streams.healthcheck`` (the
image's HEALTHCHECK), over real loopback HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from prometheus_client import CollectorRegistry

from streams.health import Health
from streams.healthcheck import healthy
from streams.metrics import Metrics
from streams.metrics_server import serve_metrics
from streams.settings import Settings


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_health_routes_beside_metrics() -> None:
    clock = Clock()
    metrics = Metrics.create(CollectorRegistry())
    health = Health(5.0, clock=clock, metrics=metrics)
    server = serve_metrics(metrics.registry, 0, health=health)
    try:
        status, body = _get(server.port, "/readyz")
        assert status == 503 and json.loads(body)["partitions"] == []
        health.beat(frozenset({2}), True)
        assert _get(server.port, "/healthz")[0] == 200
        status, body = _get(server.port, "/readyz")
        assert status == 200 and json.loads(body) == {
            "live": True,
            "loop_heartbeat_age_s": 0.0,
            "max_loop_delay_s": 5.0,
            "started": True,
            "ready": True,
            "partitions": [2],
            "recovered": True,
        }
        status, body = _get(server.port, "/metrics")
        assert status == 200 and b"engage_assigned_partitions 1.0" in body
        clock.now = 6.0
        assert _get(server.port, "/healthz")[0] == 503
        assert _get(server.port, "/readyz")[0] == 503
    finally:
        server.stop()


def test_without_health_the_routes_are_not_found() -> None:
    server = serve_metrics(CollectorRegistry(), 0)
    try:
        assert _get(server.port, "/healthz")[0] == 404
        assert _get(server.port, "/metrics")[0] == 200
    finally:
        server.stop()


def test_image_healthcheck_follows_the_workers_healthz() -> None:
    clock = Clock()
    health = Health(5.0, clock=clock)
    health.beat(frozenset({0}), True)
    server = serve_metrics(CollectorRegistry(), 0, health=health)
    try:
        settings = Settings(worker_metrics_port=server.port, ingest_port=1)  # nothing on port 1
        assert healthy(settings)
        clock.now = 10.0  # the loop has not beaten for 10 s
        assert not healthy(settings)
    finally:
        server.stop()
    assert not healthy(Settings(worker_metrics_port=1, ingest_port=1))
