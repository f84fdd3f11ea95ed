"""Every metric (and label) that an alert rule or a dashboard names is declared in streams/metrics.py.

A renamed metric would otherwise leave an alert that can never fire and a panel that is always empty,
with nothing failing. Names are taken from the PromQL text (``engage_*``), label names from ``by
(...)``/``without (...)`` clauses and ``{...}`` matchers.
"""

from __future__ import annotations

import re
from dataclasses import fields

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from streams.metrics import PROCESS_SERIES, Metrics
from tests.grafana import all_queries
from tests.tools import DEPLOY

_NAME = re.compile(r"\b(engage_[a-z0-9_]+)\b")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_MATCHERS = re.compile(r"\{([^{}]*)\}")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
# Labels Prometheus adds (job, instance), histogram buckets (le), and the metric name.
_IMPLICIT = {"job", "instance", "le", "__name__"}


def _declared() -> dict[str, set[str]]:
    """Series name → its label names, for every series a fresh registry exposes."""
    metrics = Metrics.create()
    series: dict[str, set[str]] = {}
    for f in fields(metrics):
        metric = getattr(metrics, f.name)
        if not isinstance(metric, MetricWrapperBase):
            continue
        labels = set(metric._labelnames)
        suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
        for suffix in suffixes[metric._type]:
            series[metric._name + suffix] = labels
    series.update({name: set() for name in PROCESS_SERIES})
    return series


def _expressions() -> list[tuple[str, str]]:
    """(where, PromQL) for every alert/recording rule and every Prometheus dashboard query."""
    found: list[tuple[str, str]] = []
    for path in sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found.append((f"{path.name}:{rule.get('alert') or rule.get('record')}", rule["expr"]))
    for q in all_queries():
        if q.datasource_type == "prometheus":
            found.append((f"{q.dashboard}:{q.panel}", q.text))
    return found


EXPRESSIONS = _expressions()


def test_there_is_something_to_check() -> None:
    where = {w.split(":")[0] for w, _ in EXPRESSIONS}
    assert {"engage.rules.yml", "pipeline-health.json"} <= where


@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS, ids=[w for w, _ in EXPRESSIONS])
def test_names_and_labels_are_declared(where: str, expr: str) -> None:
    declared = _declared()
    names = set(_NAME.findall(expr))
    unknown = names - set(declared)
    assert not unknown, f"{where}: not declared in streams/metrics.py: {sorted(unknown)}"

    allowed = set(_IMPLICIT).union(*(declared[n] for n in names)) if names else set(_IMPLICIT)
    used: set[str] = set()
    for clause in _GROUPING.findall(expr):
        used |= {label.strip() for label in clause.split(",") if label.strip()}
    for clause in _MATCHERS.findall(expr):
        used |= set(_MATCHER_LABEL.findall(clause))
    assert used <= allowed, f"{where}: labels {sorted(used - allowed)} are not on {sorted(names)}"


def test_every_declared_metric_is_watched_somewhere() -> None:
    """Not a rule, a nudge: a metric nobody graphs or alerts on is either missing a panel or dead.
    The exceptions are listed so that adding one is a conscious choice."""
    referenced = {name for _, expr in EXPRESSIONS for name in _NAME.findall(expr)}
    families = {re.sub(r"_(total|bucket|sum|count)$", "", s) for s in referenced}
    declared_families = {re.sub(r"_(total|bucket|sum|count)$", "", s) for s in _declared()}
    assert declared_families - families == set()
