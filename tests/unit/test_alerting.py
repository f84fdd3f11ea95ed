"""The Alertmanager payload rules, through the in-process twin (the HTTP path is an integration test)."""

from __future__ import annotations

from streams.alerting import AlertmanagerClient, MemoryAlertPoster, postable
from streams.engagement.model import HOUR_MS, Alert
from streams.engagement.records import iso_ms

NOW_MS = 1_767_600_000_000
OPENED = Alert("brand-42", "drop", "opened", NOW_MS - 5 * HOUR_MS, 31.0, 96.5, NOW_MS - 5 * HOUR_MS)
RESOLVED = Alert("brand-42", "drop", "resolved", NOW_MS - HOUR_MS, 88.0, 101.25, NOW_MS - 5 * HOUR_MS)


def test_opened_alert_fires_for_the_ttl_with_the_account_as_a_label() -> None:
    poster = MemoryAlertPoster(clock=lambda: NOW_MS / 1000, firing_ttl_ms=2 * HOUR_MS)
    poster.post([OPENED])
    (sent,) = poster.posted
    assert sent["labels"] == {
        "alertname": "EngagementDrop",
        "account_id": "brand-42",
        "kind": "drop",
        "severity": "warning",
    }
    assert sent["annotations"]["observed"] == "31" and sent["annotations"]["baseline"] == "96.5"
    assert sent["startsAt"] == iso_ms(OPENED.opened_at_ms)
    assert sent["endsAt"] == iso_ms(NOW_MS + 2 * HOUR_MS)


def test_resolved_alert_ends_at_its_event_time_and_silence_is_critical() -> None:
    sent = postable(RESOLVED, NOW_MS, 3 * HOUR_MS)
    assert (sent["startsAt"], sent["endsAt"]) == (iso_ms(OPENED.at_ms), iso_ms(RESOLVED.at_ms))
    silence = Alert("a", "silence", "opened", NOW_MS, 0.0, 50.0, NOW_MS)
    assert postable(silence, NOW_MS, HOUR_MS)["labels"]["severity"] == "critical"


def test_event_time_ahead_of_the_wall_clock_never_resolves_in_the_future() -> None:
    early_now = OPENED.opened_at_ms - HOUR_MS  # the producer's clock is behind the events
    sent = postable(RESOLVED, early_now, 3 * HOUR_MS)
    assert sent["endsAt"] == iso_ms(early_now)
    assert sent["startsAt"] <= sent["endsAt"]


def test_client_posts_to_the_v2_endpoint_and_ignores_an_empty_batch() -> None:
    client = AlertmanagerClient("http://am.example:9093/", clock=lambda: 0.0)
    assert client.endpoint == "http://am.example:9093/api/v2/alerts"
    client.post([])  # no request (unit tests cannot open sockets: this would raise)
