"""What the engagement core emits: transitions, partial aggregates, scores and alerts.

Plain, serialisable values. They are the contract between the pure core, the Faust wiring
(``engagement.flags`` / ``engagement.alerts``) and the ClickHouse writer. Aggregates are *partial*:
each worker emits rows for what its partitions saw, and summing rows with equal keys gives the total,
so they are safe to add across partitions, workers and flushes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final

ENGAGED: Final = "engaged"
LAPSED: Final = "lapsed"
MINUTE_MS: Final = 60_000
DAY_MS: Final = 86_400_000
HOUR_MS: Final = 3_600_000


def stable_id(*parts: object) -> str:
    """A deterministic 128-bit hex id, so a re-emitted record can be deduplicated by consumers."""
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Transition:
    """A pair became engaged, or lapsed, at event time ``at_ms``.

    ``count`` is the number of substantive interactions in ``(at_ms − W, at_ms]`` right after the
    transition (≥ N for engaged, < N for lapsed). A pair can be in only one state at a given instant, so
    (account, actor, kind, at) identifies a transition: ``transition_id`` hashes it.
    """

    account_id: str
    actor_id: str
    kind: str
    at_ms: int
    count: int
    platform: str

    @property
    def transition_id(self) -> str:
        return stable_id(self.account_id, self.actor_id, self.kind, self.at_ms)


@dataclass(slots=True)
class AccountMinute:
    """Partial activity of one account in one UTC minute of event time."""

    account_id: str
    platform: str
    minute_ms: int
    likes: int = 0
    comments: int = 0
    shares: int = 0
    follows: int = 0
    unfollows: int = 0
    substantive: int = 0
    active: int = 0  # comments + shares
    passive: int = 0  # likes + follows
    engaged_new: int = 0
    lapsed: int = 0


#: The counters of :class:`AccountMinute`, in column order (ClickHouse tables, views, reports).
ACCOUNT_COUNTERS: Final[tuple[str, ...]] = (
    "likes",
    "comments",
    "shares",
    "follows",
    "unfollows",
    "substantive",
    "active",
    "passive",
    "engaged_new",
    "lapsed",
)


@dataclass(slots=True)
class FollowerDay:
    """Partial activity of one follower with one account on one UTC day of event time.

    Only comments and shares make one (likes and follows are attention, not participation): what
    participation concentration needs, per follower, without a row per like.
    """

    account_id: str
    actor_id: str
    platform: str
    day_ms: int
    substantive: int = 0
    active: int = 0  # comments + shares, substantive or not


@dataclass(slots=True)
class PostMinute:
    """Partial activity on one post in one UTC minute of event time."""

    account_id: str
    platform: str
    post_id: str
    minute_ms: int
    likes: int = 0
    comments: int = 0
    substantive_comments: int = 0
    shares: int = 0


@dataclass(slots=True, unsafe_hash=True)
class FollowerScore:
    """A pair's valuable-engagement score, exactly as of event time ``as_of_ms``.

    Immutable by convention, not ``frozen``: one is built per changed pair per flush, and a frozen
    dataclass's constructor costs about five times as much (see :class:`streams.events.Interaction`).

    The score decays exponentially with half-life ``SCORE_HALF_LIFE`` (a fraction of W, see
    ``streams.engagement.score``); the value at a later time t is
    ``score * 2 ** (-(t - as_of_ms) / half_life_ms)``. Rows for one pair replace each other by ``as_of_ms``.
    """

    account_id: str
    actor_id: str
    platform: str
    score: float
    as_of_ms: int
    interactions: int  # all interactions of the pair counted into the score so far


@dataclass(frozen=True, slots=True)
class Alert:
    """An engagement-drop (or silence) alert on one account opened or resolved at event time ``at_ms``."""

    account_id: str
    kind: str  # "drop" | "silence"
    state: str  # "opened" | "resolved"
    at_ms: int
    observed: float  # substantive interactions in the hour that triggered the change
    baseline: float  # what was expected for that hour
    opened_at_ms: int  # the opening time of this alert episode (== at_ms when state == "opened")

    @property
    def alert_id(self) -> str:
        return stable_id(self.account_id, self.kind, self.opened_at_ms, self.state)


@dataclass(slots=True)
class Outputs:
    """Everything one step of the core produced, handed to the sinks and topics together."""

    transitions: list[Transition] = field(default_factory=list)
    account_minutes: list[AccountMinute] = field(default_factory=list)
    post_minutes: list[PostMinute] = field(default_factory=list)
    scores: list[FollowerScore] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    follower_days: list[FollowerDay] = field(default_factory=list)
