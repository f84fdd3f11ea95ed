"""Reading the Grafana dashboards the way Grafana and the ClickHouse plugin would run their queries.

:func:`clickhouse_sql` expands the grafana-clickhouse-datasource macros exactly as the plugin's
``pkg/macros/macros.go`` does (``$__timeFilter(col)`` → ``col >= toDateTime(from) AND col <=
toDateTime(to)``, ...) and then the dashboard's template variables, so the text that reaches
ClickHouse in a test is the text Grafana would send.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tests.tools import DEPLOY

DASHBOARDS = DEPLOY / "grafana" / "dashboards"


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    ref: str
    datasource_uid: str
    datasource_type: str
    text: str  # PromQL `expr` or ClickHouse `rawSql`


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    return data


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # collapsed rows nest their panels


def queries(path: Path) -> list[Query]:
    """Every panel target and every query-type template variable of one dashboard."""
    dash = load(path)
    out: list[Query] = []
    for panel in _panels(dash.get("panels", [])):
        for target in panel.get("targets", []):
            ds = target.get("datasource") or panel.get("datasource") or {}
            text = target.get("expr") if ds.get("type") == "prometheus" else target.get("rawSql")
            out.append(
                Query(
                    path.name,
                    panel["title"],
                    target["refId"],
                    ds.get("uid", ""),
                    ds.get("type", ""),
                    text or "",
                )
            )
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            ds = var.get("datasource") or {}
            query = var["query"] if isinstance(var["query"], str) else var["query"].get("query", "")
            out.append(
                Query(path.name, f"${var['name']}", "var", ds.get("uid", ""), ds.get("type", ""), query)
            )
    return out


def all_queries() -> list[Query]:
    return [q for path in dashboard_files() for q in queries(path)]


def template_variables(path: Path) -> list[str]:
    return [var["name"] for var in load(path).get("templating", {}).get("list", [])]


# --- PromQL ------------------------------------------------------------------------------------------
_PROM_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def promql(text: str) -> str:
    """A dashboard expression with Grafana's interval variables replaced, ready for promtool."""
    for name, value in _PROM_VARS.items():
        text = text.replace(name, value)
    return text


# --- ClickHouse plugin macros ----------------------------------------------------------------------
@dataclass(frozen=True)
class TimeRange:
    from_s: int
    to_s: int
    interval_s: int = 60


def _dt(seconds: int) -> str:
    return f"toDateTime({seconds})"


def _dt64(seconds: int) -> str:
    return f"fromUnixTimestamp64Milli({seconds * 1000})"


def _function_macros(tr: TimeRange) -> dict[str, Any]:
    return {
        "timeFilter": lambda c: f"{c} >= {_dt(tr.from_s)} AND {c} <= {_dt(tr.to_s)}",
        "timeFilter_ms": lambda c: f"{c} >= {_dt64(tr.from_s)} AND {c} <= {_dt64(tr.to_s)}",
        "dateFilter": lambda c: (
            f"{c} >= toDate(toDateTime({tr.from_s})) AND {c} <= toDate(toDateTime({tr.to_s}))"
        ),
        "timeInterval": lambda c: (
            f"toStartOfInterval(toDateTime({c}), INTERVAL {max(tr.interval_s, 1)} second)"
        ),
    }


def clickhouse_sql(text: str, tr: TimeRange, variables: Mapping[str, str]) -> str:
    """Expand the plugin macros, then ``${var}`` / ``$var`` template variables; refuse leftovers."""
    for name, expand in _function_macros(tr).items():
        text = re.sub(rf"\$__{name}\(\s*([^()]+?)\s*\)", lambda m, f=expand: f(m.group(1)), text)
    plain = {
        "$__fromTime_ms": _dt64(tr.from_s),
        "$__toTime_ms": _dt64(tr.to_s),
        "$__fromTime": _dt(tr.from_s),
        "$__toTime": _dt(tr.to_s),
        "$__interval_s": str(max(tr.interval_s, 1)),
    }
    for name, value in plain.items():  # longest names first (the dict is ordered that way)
        text = text.replace(name, value)
    for name, value in variables.items():
        text = text.replace(f"${{{name}}}", value)
        text = re.sub(rf"\${name}\b", value, text)
    leftover = re.findall(r"\$\{?[A-Za-z_]\w*", text)
    if leftover:
        raise ValueError(f"unexpanded macro or variable {leftover} in: {text}")
    return text
