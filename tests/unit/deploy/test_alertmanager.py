"""The Alertmanager config, checked and routed by the real ``amtool`` (file-only: no socket calls).

A real Alertmanager delivering to the webhook receiver is tested in the integration tier.
"""

from __future__ import annotations

import pytest
import yaml

from tests.tools import DEPLOY, binary, run_tool

CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
RULES = DEPLOY / "prometheus" / "rules"


def test_config_is_valid() -> None:
    result = run_tool([binary("amtool"), "check-config", str(CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr


def _route(*labels: str) -> str:
    result = run_tool([binary("amtool"), "config", "routes", "test", f"--config.file={CONFIG}", *labels])
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        # Per-account drops posted by the workers carry an `account` label.
        (("alertname=EngagementDrop", "account=acme", "severity=ticket"), "brand-webhook"),
        (("alertname=EngageWorkerDown", "severity=page", "job=engage-worker"), "ops-webhook"),
        (("alertname=EngageGlobalEngagementDrop", "severity=ticket"), "ops-webhook"),
        (("alertname=Anything",), "ops-webhook"),
    ],
)
def test_routes(labels: tuple[str, ...], receiver: str) -> None:
    assert _route(*labels) == receiver


def test_every_prometheus_alert_reaches_the_ops_receiver() -> None:
    for path in RULES.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    got = _route(f"alertname={rule['alert']}", f"severity={rule['labels']['severity']}")
                    assert got == "ops-webhook", rule["alert"]


def test_inhibit_rules_name_existing_alerts() -> None:
    alerts = {
        rule["alert"]
        for path in RULES.glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    config = yaml.safe_load(CONFIG.read_text())
    for inhibit in config["inhibit_rules"]:
        for matcher in (*inhibit["source_matchers"], *inhibit["target_matchers"]):
            name, _, value = matcher.partition("=")
            if name == "alertname":
                assert value.strip('"') in alerts, matcher
