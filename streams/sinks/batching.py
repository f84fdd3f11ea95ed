"""Accumulate the core's outputs into one :class:`SinkBatch`, flushed by size or by age.

Rows with equal keys are merged on the way in, which is exact because of how the tables read: minute
aggregates are deltas that are summed (so two deltas for one minute become their sum), a score row is
replaced by the one with the latest ``as_of``, and transitions and alerts are identified by their ids.
A busy account then costs one row per minute per flush, however many events it had.

A batch is *due* when any table holds ``max_rows`` rows, or ``max_age_ms`` after the first row was added
(``ENGAGE_SINK_BATCH_ROWS`` / ``ENGAGE_SINK_FLUSH_INTERVAL``). The clock is injected (milliseconds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields

from streams.engagement.model import (
    ACCOUNT_COUNTERS,
    AccountMinute,
    Alert,
    FollowerScore,
    Outputs,
    PostMinute,
    Transition,
)
from streams.settings import Settings
from streams.sinks.base import SinkBatch

_ACCOUNT_KEY = ("account_id", "platform", "minute_ms")
_POST_KEY = ("account_id", "platform", "post_id", "minute_ms")
_POST_COUNTERS = tuple(f.name for f in fields(PostMinute) if f.name not in _POST_KEY)


class BatchAccumulator:
    def __init__(self, max_rows: int, max_age_ms: int, clock: Callable[[], int]) -> None:
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self.max_rows = max_rows
        self.max_age_ms = max_age_ms
        self.clock = clock
        self._first_ms: int | None = None
        self._clear()

    @classmethod
    def from_settings(cls, settings: Settings, clock: Callable[[], int]) -> BatchAccumulator:
        return cls(settings.sink_batch_rows, settings.sink_flush_interval_ms, clock)

    def _clear(self) -> None:
        self._transitions: dict[str, Transition] = {}
        self._accounts: dict[tuple[str, str, int], AccountMinute] = {}
        self._posts: dict[tuple[str, str, str, int], PostMinute] = {}
        self._scores: dict[tuple[str, str], FollowerScore] = {}
        self._alerts: dict[str, Alert] = {}
        self._first_ms = None

    def add(self, outputs: Outputs) -> None:
        if self._first_ms is None and _count(outputs):
            self._first_ms = self.clock()
        for t in outputs.transitions:
            self._transitions[t.transition_id] = t
        for m in outputs.account_minutes:
            akey = (m.account_id, m.platform, m.minute_ms)
            into = self._accounts.get(akey)
            if into is None:
                self._accounts[akey] = AccountMinute(m.account_id, m.platform, m.minute_ms)
                into = self._accounts[akey]
            for name in ACCOUNT_COUNTERS:
                setattr(into, name, getattr(into, name) + getattr(m, name))
        for p in outputs.post_minutes:
            pkey = (p.account_id, p.platform, p.post_id, p.minute_ms)
            pinto = self._posts.get(pkey)
            if pinto is None:
                self._posts[pkey] = PostMinute(p.account_id, p.platform, p.post_id, p.minute_ms)
                pinto = self._posts[pkey]
            for name in _POST_COUNTERS:
                setattr(pinto, name, getattr(pinto, name) + getattr(p, name))
        for s in outputs.scores:
            skey = (s.account_id, s.actor_id)
            held = self._scores.get(skey)
            if held is None or s.as_of_ms >= held.as_of_ms:
                self._scores[skey] = s
        for a in outputs.alerts:
            self._alerts[a.alert_id] = a

    @property
    def rows_by_table(self) -> dict[str, int]:
        return {
            "transitions": len(self._transitions),
            "account_minutes": len(self._accounts),
            "post_minutes": len(self._posts),
            "scores": len(self._scores),
            "alerts": len(self._alerts),
        }

    def __len__(self) -> int:
        return sum(self.rows_by_table.values())

    def due(self) -> bool:
        if self._first_ms is None:
            return False
        if max(self.rows_by_table.values()) >= self.max_rows:
            return True
        return self.clock() - self._first_ms >= self.max_age_ms

    def take(self, token: str) -> SinkBatch:
        """Everything accumulated, as one batch with ``token``; the accumulator starts empty again."""
        batch = SinkBatch(
            token,
            transitions=list(self._transitions.values()),
            account_minutes=list(self._accounts.values()),
            post_minutes=list(self._posts.values()),
            scores=list(self._scores.values()),
            alerts=list(self._alerts.values()),
        )
        self._clear()
        return batch


def _count(outputs: Outputs) -> int:
    return (
        len(outputs.transitions)
        + len(outputs.account_minutes)
        + len(outputs.post_minutes)
        + len(outputs.scores)
        + len(outputs.alerts)
    )
