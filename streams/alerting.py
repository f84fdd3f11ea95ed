"""Direct posting of engagement alerts to an Alertmanager-compatible endpoint (``/api/v2/alerts``).

Optional: the ``engagement.alerts`` topic and ClickHouse are the record; this makes an account's drop
page someone through the usual Alertmanager routing (``ENGAGE_ALERTMANAGER_URL``). An account id is
fine as an *Alertmanager* label — it never becomes a Prometheus series.

Alertmanager treats an alert as firing until its ``endsAt``; without one it expires after its
``resolve_timeout`` (5 minutes by default), which Prometheus avoids by re-sending every evaluation.
Our alerts change once an event-time hour, so an ``opened`` alert is sent with
``endsAt = now + firing_ttl`` (3 h) and the wiring re-posts :meth:`DropDetector.open_alerts` after each
closed hour; a ``resolved`` one is sent with ``endsAt`` at its event time (never in the future). If the
stream stops, open alerts expire after the TTL rather than firing forever.

Event time is not wall time: ``startsAt`` is the event time the episode opened (capped at now, since
Alertmanager rejects an alert that ends before it starts). The client is synchronous (``urllib``):
alerts are rare; an async caller runs ``post`` in an executor.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

import orjson

from streams.engagement.model import Alert
from streams.engagement.records import iso_ms
from streams.errors import AlertmanagerRejected, AlertmanagerUnavailable

ALERT_NAME: Final = "EngagementDrop"
SEVERITY: Final = {"drop": "warning", "silence": "critical"}


class AlertPoster(Protocol):
    """Where engagement alerts are posted. One method; :class:`MemoryAlertPoster` is the twin."""

    def post(self, alerts: Sequence[Alert]) -> None:
        """Deliver the alerts (opened or resolved) or raise; an empty sequence is a no-op."""
        ...


#: This alert's runbook section (docs/runbook.md; anchor checked by tests/unit/deploy/test_runbook.py).
RUNBOOK_URL = "docs/runbook.md#engagementdrop"


def postable(alert: Alert, now_ms: int, firing_ttl_ms: int) -> dict[str, Any]:
    """The Alertmanager v2 ``postableAlert`` for one alert, as of wall time ``now_ms``."""
    ends_ms = min(alert.at_ms, now_ms) if alert.state == "resolved" else now_ms + firing_ttl_ms
    starts_ms = min(alert.opened_at_ms, ends_ms)
    return {
        "labels": {
            "alertname": ALERT_NAME,
            "account_id": alert.account_id,
            "kind": alert.kind,
            "severity": SEVERITY.get(alert.kind, "warning"),
        },
        "annotations": {
            "observed": f"{alert.observed:g}",
            "baseline": f"{alert.baseline:g}",
            "summary": (
                f"Account {alert.account_id}: {alert.observed:g} substantive interactions in the hour "
                f"to {iso_ms(alert.at_ms)}, {alert.baseline:g} expected ({alert.kind})"
            ),
            "runbook_url": RUNBOOK_URL,
        },
        "startsAt": iso_ms(starts_ms),
        "endsAt": iso_ms(ends_ms),
    }


class AlertmanagerClient:
    """POSTs alerts to ``{url}/api/v2/alerts``. ``clock`` returns wall-clock seconds (injected for tests)."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        timeout_s: float = 5.0,
        firing_ttl_ms: int = 3 * 3_600_000,
    ) -> None:
        self.endpoint = url.rstrip("/") + "/api/v2/alerts"
        self.clock = clock
        self.timeout_s = timeout_s
        self.firing_ttl_ms = firing_ttl_ms

    def post(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        now_ms = int(self.clock() * 1000)
        body = orjson.dumps([postable(a, now_ms, self.firing_ttl_ms) for a in alerts])
        request = urllib.request.Request(
            self.endpoint, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode(errors="replace")
            if 400 <= exc.code < 500:
                raise AlertmanagerRejected(exc.code, f"Alertmanager answered {exc.code}: {detail}") from None
            raise AlertmanagerUnavailable(f"Alertmanager answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise AlertmanagerUnavailable(f"Alertmanager at {self.endpoint} unreachable: {exc}") from None


class MemoryAlertPoster:
    """In-process twin: keeps what would have been posted (the same payloads, same clock rule)."""

    def __init__(
        self, *, clock: Callable[[], float] = lambda: 0.0, firing_ttl_ms: int = 3 * 3_600_000
    ) -> None:
        self.clock = clock
        self.firing_ttl_ms = firing_ttl_ms
        self.posted: list[dict[str, Any]] = []

    def post(self, alerts: Sequence[Alert]) -> None:
        now_ms = int(self.clock() * 1000)
        self.posted.extend(postable(a, now_ms, self.firing_ttl_ms) for a in alerts)
