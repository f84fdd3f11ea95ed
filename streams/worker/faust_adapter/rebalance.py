"""What the worker's agents need to get through a consumer-group rebalance without a stale batch.

Reads ``app.consumer_generation_id`` and each message's ``generation_id`` (faust-streaming 0.15.3);
guarded by ``tests/unit/worker/test_worker_app.py``.
"""

from __future__ import annotations

from typing import Any

import faust


def current_generation(app: faust.App, events: list[Any]) -> list[Any]:
    """The events fetched in the current group generation.

    Faust skips a stale generation's messages before they reach a stream's processors, but
    ``noack_take`` may already hold some in its buffer when the partitions are revoked, and hands
    them over after the rebalance. Processed then, they would re-create the runner of a partition
    another worker may own now. Dropped unacknowledged, they are fetched again from the committed
    offset if this worker still owns their partition (Faust seeks there on assignment).
    """
    generation = app.consumer_generation_id
    if all(event.message.generation_id == generation for event in events):
        return events
    return [event for event in events if event.message.generation_id == generation]
