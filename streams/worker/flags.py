"""The ``engagement.flags`` record of a transition (``schemas/events/engagement_flag.v1.json``)."""

from __future__ import annotations

from streams.engagement.model import Transition
from streams.engagement.records import transition_to_json


def transition_record(transition: Transition) -> tuple[bytes, bytes]:
    """(key, value): keyed by account_id so one account's flags stay in order on one partition."""
    return transition.account_id.encode(), transition_to_json(transition)
