"""How a :class:`~streams.sinks.base.SinkBatch` becomes column data, one insert per ClickHouse table.

Pure: no driver import, so the mapping is unit-tested without a database. Times go in as integers
(``DateTime`` takes unix seconds, ``DateTime64(3)`` takes milliseconds), which the driver writes as is.
The column lists here must match ``schemas/clickhouse``; an integration test compares them with
``system.columns`` after migrating.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from streams.engagement.model import ACCOUNT_COUNTERS, ENGAGED
from streams.sinks.base import SinkBatch

ACCOUNT_ACTIVITY = "account_activity_1m"
POST_ACTIVITY = "post_activity_1m"
TRANSITIONS = "engagement_transitions"
ENGAGED_FOLLOWERS = "engaged_followers"
FOLLOWER_SCORES = "follower_scores"
ALERTS = "engagement_alerts"
FOLLOWER_ACTIVITY = "follower_activity_1d"

_POST_COUNTERS = ("likes", "comments", "substantive_comments", "shares")


@dataclass(frozen=True)
class TableSpec:
    """A table the writer inserts into: its columns and how one batch becomes column data."""

    name: str
    columns: tuple[str, ...]
    extract: Callable[[SinkBatch, int], list[list[Any]]]  # (batch, score half-life ms) -> columns

    def columns_of(self, batch: SinkBatch, half_life_ms: int) -> list[list[Any]]:
        return self.extract(batch, half_life_ms)


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def _account_activity(batch: SinkBatch, _: int) -> list[list[Any]]:
    rows = [
        (m.account_id, m.platform, m.minute_ms // 1000, *(getattr(m, c) for c in ACCOUNT_COUNTERS))
        for m in batch.account_minutes
    ]
    return _columns(rows, 3 + len(ACCOUNT_COUNTERS))


def _post_activity(batch: SinkBatch, _: int) -> list[list[Any]]:
    rows = [
        (p.account_id, p.platform, p.post_id, p.minute_ms // 1000, *(getattr(p, c) for c in _POST_COUNTERS))
        for p in batch.post_minutes
    ]
    return _columns(rows, 4 + len(_POST_COUNTERS))


def _transitions(batch: SinkBatch, _: int) -> list[list[Any]]:
    rows = [
        (t.transition_id, t.account_id, t.actor_id, t.platform, t.kind, t.at_ms, t.count)
        for t in batch.transitions
    ]
    return _columns(rows, 7)


def _engaged_followers(batch: SinkBatch, _: int) -> list[list[Any]]:
    rows = [
        (t.account_id, t.actor_id, t.platform, 1 if t.kind == ENGAGED else 0, t.at_ms, t.count)
        for t in batch.transitions
    ]
    return _columns(rows, 6)


def _scores(batch: SinkBatch, half_life_ms: int) -> list[list[Any]]:
    rows = [
        (s.account_id, s.actor_id, s.platform, float(s.score), s.as_of_ms, half_life_ms, s.interactions)
        for s in batch.scores
    ]
    return _columns(rows, 7)


def _follower_activity(batch: SinkBatch, _: int) -> list[list[Any]]:
    rows = [
        (f.account_id, f.actor_id, f.platform, f.day_ms // 1000, f.substantive, f.active)
        for f in batch.follower_days
    ]
    return _columns(rows, 6)


def _alerts(batch: SinkBatch, _: int) -> list[list[Any]]:
    rows = [
        (
            a.alert_id,
            a.account_id,
            a.kind,
            a.state,
            a.at_ms,
            float(a.observed),
            float(a.baseline),
            a.opened_at_ms,
        )
        for a in batch.alerts
    ]
    return _columns(rows, 8)


# Insert order: state before aggregates, so a reader never sees an aggregate's engaged_new without the pair.
TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        TRANSITIONS,
        ("transition_id", "account_id", "actor_id", "platform", "kind", "at", "count"),
        _transitions,
    ),
    TableSpec(
        ENGAGED_FOLLOWERS,
        ("account_id", "actor_id", "platform", "engaged", "since", "count"),
        _engaged_followers,
    ),
    TableSpec(
        FOLLOWER_SCORES,
        ("account_id", "actor_id", "platform", "score", "as_of", "half_life_ms", "interactions"),
        _scores,
    ),
    TableSpec(ACCOUNT_ACTIVITY, ("account_id", "platform", "minute", *ACCOUNT_COUNTERS), _account_activity),
    TableSpec(
        POST_ACTIVITY, ("account_id", "platform", "post_id", "minute", *_POST_COUNTERS), _post_activity
    ),
    TableSpec(
        FOLLOWER_ACTIVITY,
        ("account_id", "actor_id", "platform", "day", "substantive", "active"),
        _follower_activity,
    ),
    TableSpec(
        ALERTS,
        ("alert_id", "account_id", "kind", "state", "at", "observed", "baseline", "opened_at"),
        _alerts,
    ),
)

TABLE_NAMES: tuple[str, ...] = tuple(spec.name for spec in TABLES)


def dedup_token(batch_token: str, table: str) -> str:
    """The ``insert_deduplication_token`` of one batch's insert into one table."""
    return f"{batch_token}:{table}"
