"""The sink edge: one method, ``write(batch)``, and an in-process twin for pure tests.

A :class:`SinkBatch` carries everything one flush of a worker produced, plus an idempotency
``token`` derived from the source offsets it covers. Writing the same token twice must have the
effect of writing it once (the ClickHouse writer uses it as ``insert_deduplication_token``), which is
what makes a replay after a crash harmless. ``write`` returns only when the batch is durable; it
raises :class:`~streams.errors.SinkUnavailable` (retry later) or
:class:`~streams.errors.FatalSinkError` (stop).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from streams.engagement.model import AccountMinute, Alert, FollowerDay, FollowerScore, PostMinute, Transition


@dataclass(slots=True)
class SinkBatch:
    token: str
    transitions: list[Transition] = field(default_factory=list)
    account_minutes: list[AccountMinute] = field(default_factory=list)
    post_minutes: list[PostMinute] = field(default_factory=list)
    scores: list[FollowerScore] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    follower_days: list[FollowerDay] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.transitions)
            + len(self.account_minutes)
            + len(self.post_minutes)
            + len(self.scores)
            + len(self.alerts)
            + len(self.follower_days)
        )


class Sink(Protocol):
    def write(self, batch: SinkBatch) -> None:
        """Make ``batch`` durable, idempotently by ``batch.token``."""
        ...


class MemorySink:
    """The in-process twin: keeps every batch, ignores a token it has already seen."""

    def __init__(self) -> None:
        self.batches: list[SinkBatch] = []
        self._tokens: set[str] = set()

    def write(self, batch: SinkBatch) -> None:
        if batch.token in self._tokens:
            return
        self._tokens.add(batch.token)
        self.batches.append(batch)

    @property
    def transitions(self) -> list[Transition]:
        return [t for b in self.batches for t in b.transitions]

    @property
    def account_minutes(self) -> list[AccountMinute]:
        return [r for b in self.batches for r in b.account_minutes]

    @property
    def post_minutes(self) -> list[PostMinute]:
        return [r for b in self.batches for r in b.post_minutes]

    @property
    def scores(self) -> list[FollowerScore]:
        return [r for b in self.batches for r in b.scores]

    @property
    def alerts(self) -> list[Alert]:
        return [r for b in self.batches for r in b.alerts]

    @property
    def follower_days(self) -> list[FollowerDay]:
        return [r for b in self.batches for r in b.follower_days]


class CountingSink:
    """For `engage worker --sink memory` (benchmarks, tests reading the topics): counts rows per kind
    and keeps nothing else, so the worker's memory is the worker's, not an ever-growing sink's."""

    def __init__(self) -> None:
        self.batches = 0
        self.rows = 0

    def write(self, batch: SinkBatch) -> None:
        self.batches += 1
        self.rows += len(batch)
