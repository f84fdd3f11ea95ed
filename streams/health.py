"""Liveness and readiness of a worker, for ``/healthz`` and ``/readyz`` beside ``/metrics``.

The metrics server runs on its own thread, so answering HTTP proves nothing about the worker: its
event loop can be stuck (a blocking call, a busy loop) while ``/metrics`` keeps serving frozen gauges.
So the *loop* proves it is alive: a callback it runs every ``interval`` seconds (:meth:`Health.beat`,
scheduled by :func:`streams.worker.faust_adapter.health.install`) records the time and what the worker owns.
The HTTP thread only reads that snapshot:

- ``/healthz`` (live): the last heartbeat is at most ``max_loop_delay_s`` old. Before the first beat
  the process is starting and counts as alive for the same bound from its creation.
- ``/readyz`` (ready): live, the worker owns at least one stream partition, and its tables are recovered
  (Faust has read the changelogs), so it is processing.

Pure: the clock is injected, nothing here knows Faust or HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from streams.metrics import Metrics


@dataclass(frozen=True, slots=True)
class Snapshot:
    beat_at: float | None  # monotonic seconds of the last heartbeat
    partitions: frozenset[int]  # stream partitions owned
    recovered: bool


class Health:
    def __init__(
        self,
        max_loop_delay_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self.max_loop_delay_s = max_loop_delay_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._metrics = metrics
        self._created = clock()
        # Replaced as a whole by the loop thread, read by the HTTP thread: no lock needed.
        self._snapshot = Snapshot(None, frozenset(), False)

    def beat(self, partitions: frozenset[int], recovered: bool) -> None:
        """Called on the event loop: it ran, and this is what the worker owns now."""
        self._snapshot = Snapshot(self._clock(), partitions, recovered)
        if self._metrics is not None:
            self._metrics.loop_heartbeat.set(self._wall_clock())
            self._metrics.assigned_partitions.set(len(partitions))

    def live(self) -> tuple[bool, dict[str, object]]:
        snapshot = self._snapshot
        since = self._created if snapshot.beat_at is None else snapshot.beat_at
        age = self._clock() - since
        ok = age <= self.max_loop_delay_s
        return ok, {
            "live": ok,
            "loop_heartbeat_age_s": round(age, 3),
            "max_loop_delay_s": self.max_loop_delay_s,
            "started": snapshot.beat_at is not None,
        }

    def ready(self) -> tuple[bool, dict[str, object]]:
        live, detail = self.live()
        snapshot = self._snapshot
        ok = live and bool(snapshot.partitions) and snapshot.recovered
        return ok, {
            **detail,
            "ready": ok,
            "partitions": sorted(snapshot.partitions),
            "recovered": snapshot.recovered,
        }
