"""Hold stream deliveries while Faust finishes a recovery, so its queue clearing cannot drop them.

The bug (faust-streaming 0.15.3, ``Recovery.on_recovery_completed``; ``_resume_streams`` is the same):
once the changelogs are read, Faust

1. resumes the stream partitions (``consumer.resume_partitions``),
2. seeks them to the committed offsets (``perform_seek``: one OffsetFetch round trip per assigned
   partition, ~30 here),
3. and only then calls ``app.flow_control.resume()``, which **clears every channel and stream
   queue** (they are ``clear_on_resume`` queues).

Faust's fetcher keeps running through step 2 after a changelog read, and the aiokafka consumer has
usually prefetched the waiting backlog while the partitions were paused, so messages reach the
agents' queues during step 2. Those still queued at step 3 are discarded. They are not fetched
again (the consumer's position is past them), and Faust still commits past them: its drain loop
records the jump in read offsets that ``perform_seek`` causes as a "gap" and counts gaps as done.
So events of a backlog that was waiting when a worker (re)started were silently lost, and offsets
committed over them. Measured with a backlog of 2000 single-event envelopes and step 3 forced to
happen while messages were queued (tests/integration/worker/test_backlog_at_start.py): 1995 of 2000
events processed, committed offsets at the end of every partition.

The fix: suspend flow control when Faust signals ``on_rebalance_complete``, which it sends before
step 1. A delivery then waits in the conductor (``await app.flow_control.acquire()``) until step 3's
``resume()`` has cleared the queues, and only then enters them. Nothing is dropped, and a message
fetched before step 2's seek is delivered once more after it, which the dedup of the engine absorbs
(as any replay). While suspended, Faust's streams skip (do not process) queued messages, so nothing
may already be queued when the gate closes: the stream partitions are still paused then, since
Faust pauses every assigned partition at assignment and resumes them only in step 1.
"""

from __future__ import annotations

from typing import Any


def install(app: Any) -> None:
    """Close the gate on ``app.on_rebalance_complete``; Faust's own ``flow_control.resume()`` opens it."""

    @app.on_rebalance_complete.connect  # type: ignore[untyped-decorator]
    async def hold_deliveries(app_: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        app.flow_control.suspend()
