"""The pure engagement core: the engaged rule, scores and aggregates. No Kafka, Faust or ClickHouse.

Entry point: :class:`PartitionEngine`, one per source partition (see :mod:`.engine` for the
event-time semantics and the flush protocol); :class:`Rule` holds the parameters. Drop detection over
the accounts' hourly counts is the subpackage :mod:`.drops`.
"""

from streams.engagement.engine import DUPLICATE, LATE, OK, Counts, PartitionEngine
from streams.engagement.model import (
    ENGAGED,
    LAPSED,
    AccountMinute,
    Alert,
    FollowerScore,
    Outputs,
    PostMinute,
    Transition,
)
from streams.engagement.rule import Rule, count_words, is_substantive
from streams.engagement.state import ActorState, PairState, decode, encode

__all__ = [
    "DUPLICATE",
    "ENGAGED",
    "LAPSED",
    "LATE",
    "OK",
    "AccountMinute",
    "ActorState",
    "Alert",
    "Counts",
    "FollowerScore",
    "Outputs",
    "PairState",
    "PartitionEngine",
    "PostMinute",
    "Rule",
    "Transition",
    "count_words",
    "decode",
    "encode",
    "is_substantive",
]
