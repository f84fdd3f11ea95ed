"""Grafana provisioning and dashboards: well-formed, wired to provisioned datasources, PromQL valid.

The PromQL of every Prometheus panel is checked by the real ``promtool`` (as recording rules in a
temporary file: promtool parses them exactly as Prometheus would). The ClickHouse panels run against
chDB in tests/integration/deploy/test_dashboard_sql.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.grafana import all_queries, dashboard_files, load, promql, queries, template_variables
from tests.tools import DEPLOY, binary, run_tool

PROVISIONING = DEPLOY / "grafana" / "provisioning"


def _datasources() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yml").read_text())
    return {ds["uid"]: ds for ds in doc["datasources"]}


def test_datasources_are_prometheus_and_the_official_clickhouse_plugin() -> None:
    sources = _datasources()
    assert sources["prometheus"]["type"] == "prometheus"
    assert sources["prometheus"]["url"] == "http://prometheus:9090"
    clickhouse = sources["clickhouse"]
    assert clickhouse["type"] == "grafana-clickhouse-datasource"
    assert {"host", "port", "protocol", "username", "defaultDatabase"} <= set(clickhouse["jsonData"])
    assert clickhouse["jsonData"]["protocol"] in {"http", "native"}
    # The password comes from the environment, never from this file.
    assert clickhouse["secureJsonData"]["password"].startswith("$")


def test_dashboard_provider_points_at_the_mounted_dashboards() -> None:
    doc = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert any(
        m.split(":")[0] == "./grafana/dashboards" and m.split(":")[1] == provider["options"]["path"]
        for m in mounts
    ), mounts


def test_dashboards_exist_with_unique_uids() -> None:
    files = dashboard_files()
    assert {p.name for p in files} >= {"pipeline-health.json", "engagement.json"}
    uids = [load(p)["uid"] for p in files]
    assert len(uids) == len(set(uids))
    for path in files:
        dash = load(path)
        assert dash["title"] and dash["panels"], path.name


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_every_query_uses_a_provisioned_datasource(path: Path) -> None:
    sources = _datasources()
    found = queries(path)
    assert found, "a dashboard without queries"
    for q in found:
        assert q.datasource_uid in sources, f"{q.panel}: unknown datasource uid {q.datasource_uid!r}"
        assert sources[q.datasource_uid]["type"] == q.datasource_type, q.panel
        assert q.text.strip(), f"{q.panel}/{q.ref}: empty query"


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_panels_do_not_overlap(path: Path) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in load(path)["panels"]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_template_variables_used_in_queries_are_defined() -> None:
    for path in dashboard_files():
        defined = set(template_variables(path))
        for q in queries(path):
            # Grafana's own variables start with `$__`; ours with a letter.
            used = set(re.findall(r"\$\{?([A-Za-z]\w*)", q.text))
            assert used <= defined, f"{path.name} {q.panel}: undefined variable(s) {used - defined}"


def test_pipeline_promql_parses_in_promtool(tmp_path: Path) -> None:
    prom = [q for q in all_queries() if q.datasource_type == "prometheus"]
    assert len(prom) >= 20
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"dashboard:query:{i}", "expr": promql(q.text)} for i, q in enumerate(prom)
                ],
            }
        ]
    }
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = run_tool([binary("promtool"), "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(prom)} rules found" in result.stdout
