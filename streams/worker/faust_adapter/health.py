"""The worker's heartbeat for ``/healthz`` and ``/readyz``: a callback the event loop itself runs.

Scheduled with ``loop.call_later`` rather than as a Faust timer, because Faust starts its timers only
after table recovery: a worker reading a long changelog would look dead. A callback on the loop runs
from the first iteration, and stops exactly when the loop stops running callbacks.

What it reads from Faust (written against faust-streaming 0.11, checked again on 0.15.3, guarded by
``tests/integration/worker/test_health.py``): ``app.assignor.assigned_actives()`` for the partitions
owned, and the table recovery's ``completed`` event with ``app.in_recovery`` for "recovered".
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from streams.health import Health

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 1.0


def _probe(app: Any, topics: tuple[str, ...]) -> tuple[frozenset[int], bool]:
    partitions = frozenset(tp.partition for tp in app.assignor.assigned_actives() if tp.topic in topics)
    # The recovery service is created when the table manager starts; before that nothing is recovered.
    recovery = getattr(app.tables, "_recovery", None)
    recovered = recovery is not None and recovery.completed.is_set() and not app.in_recovery
    return partitions, bool(recovered)


def install(
    app: Any,
    health: Health,
    topics: tuple[str, ...],
    loop: asyncio.AbstractEventLoop,
    interval_s: float = HEARTBEAT_INTERVAL_S,
) -> None:
    """Beat on ``loop`` every ``interval_s`` from its first iteration on."""

    def beat() -> None:
        try:
            partitions, recovered = _probe(app, topics)
        except Exception:  # a probe error must not stop the heartbeat: the loop still runs
            log.debug("health probe failed", exc_info=True)
            partitions, recovered = frozenset(), False
        health.beat(partitions, recovered)
        loop.call_later(interval_s, beat)

    loop.call_soon(beat)
