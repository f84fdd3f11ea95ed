"""The deployed Alertmanager config in a real Alertmanager: routes, receivers and inhibitions deliver."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.integration.alertmanager import AlertmanagerServer, WebhookReceiver, deploy_config


def _alert(**labels: str) -> dict[str, Any]:
    return {"labels": labels, "annotations": {"summary": "test"}, "generatorURL": "http://example.invalid"}


def test_routes_deliver_to_the_webhooks_and_inhibit_noise(tmp_path: Path) -> None:
    with WebhookReceiver() as hook, AlertmanagerServer(tmp_path, deploy_config(hook.url)) as am:
        am.post_alerts(
            [
                # From the workers: per-account drop, `account` label → the brand receiver.
                _alert(alertname="EngagementDrop", account="acme", severity="ticket"),
                # From Prometheus: a page to ops.
                _alert(alertname="EngageSinkPaused", severity="page", instance="w1", job="engage-worker"),
                # Inhibited by EngageSinkPaused: lag grows by design while the sink is paused.
                _alert(alertname="EngageConsumerLagGrowing", severity="page", topic="interactions.comment"),
            ]
        )
        received = hook.wait_for(2)
        by_path = {path: body for path, body in received}
        assert set(by_path) == {"/brands", "/ops"}, [p for p, _ in received]

        brands = by_path["/brands"]
        assert brands["receiver"] == "brand-webhook"
        assert brands["groupLabels"] == {"alertname": "EngagementDrop", "account": "acme"}
        assert [a["labels"]["account"] for a in brands["alerts"]] == ["acme"]
        assert brands["status"] == "firing"

        ops = by_path["/ops"]
        assert ops["receiver"] == "ops-webhook"
        assert [a["labels"]["alertname"] for a in ops["alerts"]] == ["EngageSinkPaused"]

        # The lag alert is held back by the inhibition rule, as Alertmanager itself reports.
        state = {a["labels"]["alertname"]: a["status"] for a in am.alerts()}
        assert state["EngageConsumerLagGrowing"]["state"] == "suppressed"
        assert state["EngageConsumerLagGrowing"]["inhibitedBy"], state
        # And nothing for it reaches a receiver (group_wait is 1s here; allow several).
        time.sleep(2)
        names = {a["labels"]["alertname"] for _, body in hook.received for a in body["alerts"]}
        assert "EngageConsumerLagGrowing" not in names
