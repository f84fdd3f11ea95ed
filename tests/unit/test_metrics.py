"""Prometheus naming conventions, checked on a fresh ``Metrics.create()`` registry.

Every labelled metric is given one sample per label so that the exposition (the names Prometheus
actually stores, e.g. ``*_total`` and ``*_bucket``) can be checked, not just the declared names.
"""

from __future__ import annotations

import re
from dataclasses import fields

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from streams.metrics import NS, PROCESS_SERIES, Metrics

SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
# Bounded labels only. Adding one here is a design decision: it must have a small, fixed set of values.
ALLOWED_LABELS = {
    "topic",
    "partition",
    "type",
    "platform",
    "reason",
    "outcome",
    "table",
    "kind",
    "state",
    "status",
    "version",  # engage_build_info only: one value per process
    "python",  # engage_build_info only: one value per process
}
# Unbounded identities; each would create a series per account/follower/post and must never be a label.
FORBIDDEN_LABELS = {
    "account",
    "account_id",
    "actor",
    "actor_id",
    "follower",
    "follower_id",
    "post",
    "post_id",
    "event_id",
    "user",
    "user_id",
    "id",
    "text",
}
BASE_UNITS = ("_seconds", "_bytes", "_messages", "_ratio")
NON_BASE_UNITS = ("_milliseconds", "_ms", "_microseconds", "_minutes", "_hours", "_days", "_kilobytes", "_mb")


def _wrappers(metrics: Metrics) -> dict[str, MetricWrapperBase]:
    out = {}
    for f in fields(metrics):
        value = getattr(metrics, f.name)
        if isinstance(value, MetricWrapperBase):
            out[f.name] = value
    return out


def _exercised() -> Metrics:
    """A fresh registry where every metric has at least one sample."""
    metrics = Metrics.create(CollectorRegistry())
    for metric in _wrappers(metrics).values():
        labels = metric._labelnames
        child = metric.labels(*(f"v_{name}" for name in labels)) if labels else metric
        if metric._type == "counter":
            child.inc()  # type: ignore[attr-defined]
        elif metric._type == "gauge":
            child.set(1)  # type: ignore[attr-defined]
        elif metric._type == "histogram":
            child.observe(0.5)  # type: ignore[attr-defined]
        else:  # pragma: no cover - a new metric type needs a decision here
            pytest.fail(f"unexpected metric type {metric._type}")
    return metrics


def test_every_field_is_a_metric_on_the_given_registry() -> None:
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    assert metrics.registry is registry
    wrappers = _wrappers(metrics)
    other = [f.name for f in fields(metrics) if f.name != "registry" and f.name not in wrappers]
    assert other == []
    # The process collector's families are the only ones that are not fields (PROCESS_SERIES).
    process = {re.sub(r"_total$", "", name) for name in PROCESS_SERIES}
    assert {m._name for m in wrappers.values()} | process == metrics.names()
    assert len(metrics.names()) == len(wrappers) + len(process), "two fields share one metric name"


def test_two_registries_do_not_collide() -> None:
    # One registry per process, injected: tests (and a worker next to ingest) each build their own.
    a, b = Metrics.create(), Metrics.create()
    a.events_consumed.labels("comment").inc(3)
    assert b.registry.get_sample_value("engage_events_consumed_total", {"type": "comment"}) is None
    assert a.registry.get_sample_value("engage_events_consumed_total", {"type": "comment"}) == 3


def test_family_names_are_snake_case_with_the_project_prefix() -> None:
    for name in Metrics.create().names():
        assert SNAKE.match(name), name
        assert name.startswith(f"{NS}_"), name
        assert not name.endswith(("_count", "_sum", "_bucket", "_created")), f"{name}: reserved suffix"


def test_labels_are_bounded_and_never_identities() -> None:
    for attr, metric in _wrappers(Metrics.create()).items():
        labels = set(metric._labelnames)
        assert not labels & FORBIDDEN_LABELS, f"{attr}: identity label {labels & FORBIDDEN_LABELS}"
        assert labels <= ALLOWED_LABELS, f"{attr}: undeclared label(s) {labels - ALLOWED_LABELS}"
        assert not labels & {"le", "quantile", "job", "instance"}, f"{attr}: reserved label"
        for label in labels:
            assert SNAKE.match(label), label


def test_exposed_names_follow_the_conventions() -> None:
    # OpenMetrics keeps *_created with its family (the classic text format splits it off as a gauge).
    text = generate_latest(_exercised().registry).decode()
    families = list(text_string_to_metric_families(text))
    assert families, "nothing exposed"
    for family in families:
        name, kind = family.name, family.type
        assert family.documentation.strip(), f"{name}: no help text"
        assert not name.endswith(NON_BASE_UNITS), f"{name}: use base units (seconds, bytes)"
        sample_names = {s.name for s in family.samples}
        if kind == "counter":
            assert f"{name}_total" in sample_names, f"{name}: counter without _total"
            assert not name.endswith("_total"), f"{name}: doubled _total"
        else:
            assert not name.endswith("_total"), f"{name}: _total is for counters only"
        if kind == "histogram":
            assert name.endswith(BASE_UNITS), f"{name}: histogram without a unit suffix"
            assert {f"{name}_bucket", f"{name}_sum", f"{name}_count"} <= sample_names
        if "seconds" in family.documentation.lower():
            assert name.endswith("_seconds"), f"{name}: measures seconds, name it so"


def test_declared_counter_names_spell_out_total() -> None:
    """prometheus-client adds ``_total`` silently; the source must spell it out so that grepping the
    code for a name used in an alert rule finds its declaration."""
    import inspect

    import streams.metrics as module

    source = inspect.getsource(module)
    for attr, metric in _wrappers(Metrics.create()).items():
        if metric._type == "counter":
            short = metric._name.removeprefix(f"{NS}_")
            assert f'"{short}_total"' in source, f"{attr}: declare as {short}_total"


def test_issue_minimum_metric_set_is_declared() -> None:
    names = Metrics.create().names()
    required = {
        "engage_events_consumed",  # by type
        "engage_events_rejected",  # invalid/late, by reason
        "engage_events_deduplicated",
        "engage_dlq_messages",  # by reason
        "engage_transitions",  # by kind
        "engage_sink_rows_written",  # by table
        "engage_sink_batches_written",
        "engage_sink_insert_retries",
        "engage_sink_insert_failures",
        "engage_sink_paused",
        "engage_sink_flush_duration_seconds",
        "engage_event_lag_seconds",
        "engage_consumer_lag_messages",  # per partition
        "engage_webhook_requests",  # by platform and status
        "engage_webhook_request_duration_seconds",
        "engage_engaged_followers",
        "engage_substantive_interactions",
    }
    assert required <= names, required - names
    labels = {m._name: set(m._labelnames) for m in _wrappers(Metrics.create()).values()}
    assert labels["engage_events_consumed"] == {"type"}
    assert labels["engage_dlq_messages"] == {"reason"}
    assert labels["engage_consumer_lag_messages"] == {"topic", "partition"}
    assert labels["engage_webhook_requests"] == {"platform", "status"}
    assert "table" in labels["engage_sink_rows_written"]


def test_process_and_build_info_series_are_exposed() -> None:
    metrics = Metrics.create(CollectorRegistry())
    text = generate_latest(metrics.registry).decode()
    for series in PROCESS_SERIES:
        assert f"\n{series} " in text or text.startswith(f"{series} "), series
    assert 'engage_build_info{python="' in text
