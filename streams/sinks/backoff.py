"""How long to wait before retrying a sink that is unavailable: exponential backoff with full jitter.

The n-th consecutive failure waits a uniformly random time in ``[0, min(max, base * 2**n))`` ("full
jitter", AWS Architecture Blog, *Exponential Backoff And Jitter*): workers that lost ClickHouse together do
not come back in lockstep. The policy only computes delays; the caller sleeps (``asyncio.sleep`` in the
worker) and keeps its batch. Randomness is injected so tests are exact.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from streams.settings import Settings


@dataclass
class Backoff:
    """Delays in seconds; ``reset()`` after a success."""

    base_s: float = 0.1
    max_s: float = 30.0
    rand: Callable[[], float] = random.random
    attempt: int = 0

    @classmethod
    def from_settings(cls, settings: Settings, rand: Callable[[], float] = random.random) -> Backoff:
        return cls(max_s=settings.sink_max_backoff_ms / 1000, rand=rand)

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        # min() before the power would overflow: 2**attempt grows without bound during a long outage.
        if self.attempt > 62:
            return self.max_s
        return min(self.max_s, self.base_s * float(2**self.attempt))

    def next_delay(self) -> float:
        delay = self.ceiling() * self.rand()
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
