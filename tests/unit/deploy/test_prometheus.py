"""The Prometheus config and alert rules, checked and unit-tested by the real ``promtool``.

promtool (check config, check rules, test rules) works on files only: traced with ``strace -e
trace=socket,connect`` it makes no socket call, which is why these live in the unit tier.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.tools import DEPLOY, binary, run_tool

PROM = DEPLOY / "prometheus"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM / "tests").glob("*.yml"))


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _alerts() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in RULE_FILES:
        for group in _load(path)["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["alert"] not in out, f"duplicate alert {rule['alert']}"
                    out[rule["alert"]] = rule
    return out


def test_config_is_valid() -> None:
    result = run_tool([binary("promtool"), "check", "config", "prometheus.yml"], cwd=PROM)
    assert result.returncode == 0, result.stdout + result.stderr
    # The rule_files glob must find the rules, or Prometheus would silently run without alerts.
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout + result.stderr


def test_rules_are_valid() -> None:
    assert RULE_FILES, "no rule files"
    result = run_tool([binary("promtool"), "check", "rules", *map(str, RULE_FILES)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_rule_tests_pass(test_file: Path) -> None:
    result = run_tool([binary("promtool"), "test", "rules", test_file.name], cwd=test_file.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        doc = _load(path)
        for ref in doc["rule_files"]:
            assert (path.parent / ref).resolve() in {p.resolve() for p in RULE_FILES}, ref
        for case in doc["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = set(_alerts())
    assert alerts - fires == set(), "alerts never shown to fire"
    assert alerts - quiet == set(), "alerts never shown to stay quiet"
    assert (fires | quiet) - alerts == set(), "tests name alerts that do not exist"


def test_issue_alerts_exist() -> None:
    assert {
        "EngageWorkerDown",
        "EngageConsumerLagGrowing",
        "EngageDeadLetterRateHigh",
        "EngageSinkPaused",
        "EngageIngestErrorRatioHigh",
        "EngageGlobalEngagementDrop",
    } <= set(_alerts())


@pytest.mark.parametrize("name", sorted(_alerts()))
def test_alerts_carry_severity_and_text(name: str) -> None:
    rule = _alerts()[name]
    assert rule["labels"]["severity"] in {"page", "ticket"}
    assert {"summary", "description"} <= set(rule["annotations"])
    assert rule.get("for"), "an alert without `for` pages on a single bad scrape"


def test_engagement_drop_compares_with_last_week_and_has_a_volume_floor() -> None:
    expr = " ".join(_alerts()["EngageGlobalEngagementDrop"]["expr"].split())
    assert "engage_substantive_interactions_total" in expr
    assert "offset 1w" in expr
    assert ">= 100" in expr


def test_scrape_jobs_match_the_rules() -> None:
    jobs = {job["job_name"] for job in _load(PROM / "prometheus.yml")["scrape_configs"]}
    for name, rule in _alerts().items():
        for job in ("engage-worker", "engage-ingest"):
            if f'job="{job}"' in rule["expr"]:
                assert job in jobs, f"{name} watches job {job}, which nothing scrapes"


def test_readme_lists_every_alert() -> None:
    readme = (DEPLOY.parent / "README.md").read_text()
    missing = [name for name in _alerts() if f"`{name}`" not in readme]
    assert not missing, f"README 'Observability and deployment' lacks {missing}"
