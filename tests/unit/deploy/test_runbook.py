"""Every alert links to a section of docs/runbook.md that exists, and the runbook has no orphan sections."""

from __future__ import annotations

import re

import pytest
import yaml

from streams.alerting import RUNBOOK_URL, postable
from streams.engagement.model import Alert
from tests.tools import DEPLOY

RUNBOOK = DEPLOY.parent / "docs" / "runbook.md"
_LINK = re.compile(r"^docs/runbook\.md#([a-z0-9-]+)$")


def _anchors() -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    anchors = set()
    for line in RUNBOOK.read_text().splitlines():
        if line.startswith("## "):
            anchors.add(re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-"))
    return anchors


def _rules() -> dict[str, dict[str, object]]:
    rules = {}
    for path in sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rules[rule["alert"]] = rule
    return rules


@pytest.mark.parametrize("name", sorted(_rules()))
def test_every_rule_links_to_its_runbook_section(name: str) -> None:
    annotations = _rules()[name]["annotations"]
    assert isinstance(annotations, dict)
    link = _LINK.match(str(annotations.get("runbook_url", "")))
    assert link, f"{name}: runbook_url must be docs/runbook.md#<anchor>"
    assert link.group(1) in _anchors(), f"{name}: docs/runbook.md has no section #{link.group(1)}"


def test_the_alerts_the_workers_post_link_to_the_runbook() -> None:
    sent = postable(Alert("acme", "drop", "opened", 0, 1.0, 10.0, 0), 0, 1000)
    assert sent["annotations"]["runbook_url"] == RUNBOOK_URL
    link = _LINK.match(RUNBOOK_URL)
    assert link and link.group(1) in _anchors()


def test_every_runbook_section_belongs_to_an_alert() -> None:
    linked = {str(rule["annotations"]["runbook_url"]).split("#")[1] for rule in _rules().values()}  # type: ignore[index]
    linked.add(RUNBOOK_URL.split("#")[1])
    assert _anchors() == linked
