"""A real Prometheus scrapes our ``/metrics`` and sees exactly what the code counted.

The endpoint is ``streams.metrics_server`` (the thread server the worker and the ingest service
run, each on a port of its own) over a real :class:`Metrics` registry, driven here directly;
pointing the same helper at a running worker is a matter of its URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import CollectorRegistry

from streams.metrics import Metrics
from streams.metrics_server import MetricsServer
from tests.integration.prom import PrometheusServer


def _series(target_selector: str, name: str, **labels: str) -> str:
    extra = "".join(f',{key}="{value}"' for key, value in labels.items())
    return f"{name}{{{target_selector}{extra}}}"


def test_counters_histograms_and_gauges_arrive_exactly(prometheus: PrometheusServer) -> None:
    metrics = Metrics.create(CollectorRegistry())
    # Children exist (at 0) before the first scrape, so Prometheus sees the start of every series.
    comments = metrics.events_consumed.labels("comment")
    likes = metrics.events_consumed.labels("like")
    with MetricsServer(metrics.registry) as server, prometheus.scrape("engage-worker", server.url) as target:
        target.wait_up()
        sel = target.selector
        consumed_comment = _series(sel, "engage_events_consumed_total", type="comment")
        prometheus.wait_for_value(consumed_comment, 0)

        # 4 threads x 2500 increments: the exposition must not lose any (prometheus-client is thread-safe).
        def bump(_: int) -> None:
            for _ in range(2500):
                comments.inc()
                metrics.substantive_interactions.inc()

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(bump, range(4)))
        likes.inc(37)
        for seconds in (0.2, 1.5, 4.0, 120.0):
            metrics.event_lag.observe(seconds)
        metrics.sink_paused.set(1)
        metrics.rows_written.labels("account_activity_1m").inc(512)

        prometheus.wait_for_value(consumed_comment, 10_000)
        assert prometheus.value(_series(sel, "engage_events_consumed_total", type="like")) == 37
        assert prometheus.value(_series(sel, "engage_substantive_interactions_total")) == 10_000
        assert prometheus.value(_series(sel, "engage_event_lag_seconds_count")) == 4
        assert prometheus.value(_series(sel, "engage_event_lag_seconds_sum")) == pytest.approx(125.7)
        assert prometheus.value(_series(sel, "engage_event_lag_seconds_bucket", le="5.0")) == 3
        assert prometheus.value(_series(sel, "engage_sink_paused")) == 1
        rows = _series(sel, "engage_sink_rows_written_total", table="account_activity_1m")
        assert prometheus.value(rows) == 512

        # Every stored sample of the counter: it started at 0, only rose, and ended at the count.
        history = prometheus.samples(consumed_comment)
        assert history[0] == 0 and history[-1] == 10_000, history
        assert history == sorted(history)
        # The moved-by amount as the alert rules see it: no resets, increase == the increments.
        assert prometheus.value(f"resets({consumed_comment}[5m])") == 0


@pytest.fixture
def ingest_metrics() -> Iterator[tuple[Metrics, str]]:
    """Ingest's exposition as ``streams.ingest.app`` runs it: a MetricsServer on a port of its own."""
    metrics = Metrics.create(CollectorRegistry())
    with MetricsServer(metrics.registry) as server:
        yield metrics, server.url


def test_ingest_metrics_are_scraped(
    prometheus: PrometheusServer, ingest_metrics: tuple[Metrics, str]
) -> None:
    metrics, url = ingest_metrics
    ok = metrics.webhook_requests.labels("meta", "200")
    unavailable = metrics.webhook_requests.labels("meta", "503")
    with prometheus.scrape("engage-ingest", url) as target:
        target.wait_up()
        sel = target.selector
        prometheus.wait_for_value(
            _series(sel, "engage_webhook_requests_total", platform="meta", status="200"), 0
        )
        for _ in range(90):
            ok.inc()
        for _ in range(10):
            unavailable.inc()
        metrics.webhook_latency.labels("meta").observe(0.003)
        prometheus.wait_for_value(
            _series(sel, "engage_webhook_requests_total", platform="meta", status="503"), 10
        )
        assert (
            prometheus.value(_series(sel, "engage_webhook_requests_total", platform="meta", status="200"))
            == 90
        )
        count = _series(sel, "engage_webhook_request_duration_seconds_count", platform="meta")
        assert prometheus.value(count) == 1
        # The 5xx share as the EngageIngestErrorRatioHigh rule computes it, on real scraped data.
        errors = f'sum(engage_webhook_requests_total{{{sel},status=~"5.."}})'
        total = f"sum(engage_webhook_requests_total{{{sel}}})"
        assert prometheus.value(f"{errors} / {total}") == pytest.approx(0.1)


def test_a_stopped_worker_reads_as_down_and_the_real_rule_goes_pending(prometheus: PrometheusServer) -> None:
    """The deploy rules are loaded in this Prometheus: EngageWorkerDown must start its `for` clock."""
    metrics = Metrics.create(CollectorRegistry())
    server = MetricsServer(metrics.registry).start()
    try:
        with prometheus.scrape("engage-worker", server.url) as target:
            target.wait_up()
            server.stop()
            target.wait_down()
            alert = (
                f'ALERTS{{alertname="EngageWorkerDown",alertstate="pending",instance="{target.instance}"}}'
            )
            found = prometheus.wait_until(alert, lambda result: len(result) == 1)
            assert found[0][0]["severity"] == "page"
    finally:
        server.stop()
