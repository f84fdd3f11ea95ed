"""Per-partition timer index: which follower must be re-evaluated when the final horizon passes what.

A min-heap of ``(due_ms, actor_id)`` with lazy invalidation: ``_due`` holds each actor's one live
due time; a heap entry whose time no longer matches it is skipped when popped. Rescheduling to an
*earlier* time pushes a new entry, a later one only happens after the actor fired (its entry is
gone), so each actor has one live entry and a few stale ones at most; the heap is rebuilt when
stale entries outnumber live ones.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator


class TimerIndex:
    __slots__ = ("_due", "_heap")

    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []
        self._due: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._due)

    def due(self, actor: str) -> int | None:
        return self._due.get(actor)

    def schedule(self, actor: str, due: int) -> None:
        """Make sure ``actor`` fires once the horizon passes ``due`` (keeps an earlier due time)."""
        current = self._due.get(actor)
        if current is not None and current <= due:
            return
        self._due[actor] = due
        heapq.heappush(self._heap, (due, actor))
        if len(self._heap) > 2 * len(self._due) + 1024:
            self._heap = [(when, who) for who, when in self._due.items()]
            heapq.heapify(self._heap)

    def cancel(self, actor: str) -> None:
        self._due.pop(actor, None)

    def pop_before(self, horizon: int) -> Iterator[str]:
        """Actors due before ``horizon``, earliest first; each is unscheduled as it is yielded."""
        live = self._due
        # self._heap, not a local: schedule() may rebuild it while the caller handles a yielded actor.
        while self._heap and self._heap[0][0] < horizon:
            due, actor = heapq.heappop(self._heap)
            if live.get(actor) == due:
                del live[actor]
                yield actor
