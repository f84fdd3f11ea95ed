"""The ``engagement.flags`` record of a transition (``schemas/events/engagement_flag.v1.json``)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from streams.engagement.model import Transition


def transition_record(transition: Transition) -> tuple[bytes, bytes]:
    """(key, value): keyed by account_id so one account's flags stay in order on one partition."""
    at_iso = datetime.fromtimestamp(transition.at_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
    value = orjson.dumps(
        {
            "transition_id": transition.transition_id,
            "account_id": transition.account_id,
            "actor_id": transition.actor_id,
            "kind": transition.kind,
            "at": transition.at_ms,
            "at_iso": at_iso.replace("+00:00", "Z"),
            "count": transition.count,
            "platform": transition.platform,
        }
    )
    return transition.account_id.encode(), value
