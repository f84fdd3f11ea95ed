"""Wall-clock pacing of a generated (or recorded) stream, for live use: the demo and ``engage replay``.

The generator knows only event time. A :class:`Pacer` maps it onto the wall clock:

- ``rate_events_per_s``: at most this many events per wall second (``None``: no cap);
- ``time_scale``: event time runs this many times faster than wall time (``3600``: an event-time
  hour per wall second); ``None``: event time does not pace.

With both, each event is due at the later of the two deadlines, so the rate is a ceiling and event
time never runs ahead of the scale. A pacer falls behind (never bursts to catch up beyond what the
deadlines allow) when the sender is slower than the targets; :attr:`Pacer.behind_s` says by how much.
The clock is injected, so pacing is tested without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    def __init__(
        self,
        rate_events_per_s: float | None = None,
        time_scale: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_events_per_s is not None and rate_events_per_s <= 0:
            raise ValueError("rate_events_per_s must be positive")
        if time_scale is not None and time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.rate = rate_events_per_s
        self.time_scale = time_scale
        self._clock = clock
        self._wall0: float | None = None
        self._event0 = 0
        self._event_max = 0
        self.sent = 0
        self.behind_s = 0.0

    def delay_s(self, event_time_ms: int, count: int = 1) -> float:
        """Register ``count`` events (the latest event time among them) and return how long to wait
        before sending them. ``0.0`` when they are due (or overdue)."""
        now = self._clock()
        if self._wall0 is None:
            self._wall0, self._event0, self._event_max = now, event_time_ms, event_time_ms
        self._event_max = max(self._event_max, event_time_ms)
        due = self._wall0
        if self.rate is not None:
            due += self.sent / self.rate
        if self.time_scale is not None:
            due = max(due, self._wall0 + (self._event_max - self._event0) / 1000.0 / self.time_scale)
        self.sent += count
        wait = due - now
        self.behind_s = max(0.0, -wait)
        return max(0.0, wait)
