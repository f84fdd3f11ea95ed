"""JSON records of the output topics: ``engagement.alerts`` and ``engagement.flags``.

The schemas are ``schemas/events/engagement_alert.v1.json`` and ``engagement_flag.v1.json``; a test
validates what these functions produce against them. Times go out twice: epoch milliseconds for
machines and RFC 3339 UTC for people reading the topic.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from streams.engagement.model import Alert, Transition

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def iso_ms(epoch_ms: int) -> str:
    """``1767571200000`` → ``"2026-01-05T00:00:00.000Z"`` (exact: no float on the way)."""
    moment = _EPOCH + timedelta(milliseconds=epoch_ms)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{epoch_ms % 1000:03d}Z"


def alert_to_dict(alert: Alert) -> dict[str, Any]:
    return {
        "alert_id": alert.alert_id,
        "account_id": alert.account_id,
        "kind": alert.kind,
        "state": alert.state,
        "at": alert.at_ms,
        "at_iso": iso_ms(alert.at_ms),
        "opened_at": alert.opened_at_ms,
        "opened_at_iso": iso_ms(alert.opened_at_ms),
        "observed": alert.observed,
        "baseline": alert.baseline,
    }


def alert_to_json(alert: Alert) -> bytes:
    """The ``engagement.alerts`` message value (key: the account id)."""
    return orjson.dumps(alert_to_dict(alert))


def transition_to_dict(transition: Transition) -> dict[str, Any]:
    return {
        "transition_id": transition.transition_id,
        "account_id": transition.account_id,
        "actor_id": transition.actor_id,
        "kind": transition.kind,
        "at": transition.at_ms,
        "at_iso": iso_ms(transition.at_ms),
        "count": transition.count,
        "platform": transition.platform,
    }


def transition_to_json(transition: Transition) -> bytes:
    """The ``engagement.flags`` message value (key: the account id)."""
    return orjson.dumps(transition_to_dict(transition))
