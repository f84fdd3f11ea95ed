"""``streams.metrics_server`` over real loopback HTTP (integration tier: it opens sockets)."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from streams.metrics import Metrics
from streams.metrics_server import MetricsServer, serve_metrics


def _get(url: str, accept: str | None = None) -> tuple[str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.headers["Content-Type"], response.read().decode()


def test_serves_only_the_injected_registry_on_a_free_port() -> None:
    metrics = Metrics.create(CollectorRegistry())
    metrics.transitions.labels("engaged").inc(5)
    with MetricsServer(metrics.registry, port=0) as server:
        assert server.port > 0
        content_type, body = _get(server.url)
    assert content_type.startswith("text/plain")
    assert 'engage_transitions_total{kind="engaged"} 5.0' in body
    # The process-global default registry (python_gc_*, process_*) is not mixed in.
    assert "python_gc_objects_collected_total" not in body


def test_openmetrics_when_asked() -> None:
    metrics = Metrics.create(CollectorRegistry())
    server = serve_metrics(metrics.registry, port=0)
    try:
        content_type, body = _get(server.url, accept="application/openmetrics-text; version=1.0.0")
    finally:
        server.stop()
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF")


def test_stop_releases_the_port() -> None:
    server = MetricsServer(Metrics.create().registry).start()
    port = server.port
    server.stop()
    with pytest.raises(urllib.error.URLError):
        _get(f"http://127.0.0.1:{port}/metrics")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # free again
    server.stop()  # idempotent
    with pytest.raises(RuntimeError):
        _ = server.port


def test_the_benchmark_progress_poll_reads_only_what_it_names() -> None:
    # The benchmarks poll a running worker ten times a second; the poll must not render every metric.
    from streams.bench.procs import PROGRESS, scrape

    metrics = Metrics.create(CollectorRegistry())
    metrics.events_consumed.labels("like").inc(7)
    metrics.events_consumed.labels("comment").inc(3)
    metrics.transitions.labels("engaged").inc(5)
    with MetricsServer(metrics.registry, port=0) as server:
        polled = scrape(server.port, PROGRESS)
        everything = scrape(server.port)
    assert polled["engage_events_consumed_total"] == 10
    assert set(polled) <= set(PROGRESS)
    assert everything["engage_transitions_total"] == 5
