"""``engage_consumer_lag_messages`` from what the Faust consumer knows.

Reads ``Consumer._committed_offset`` and ``TableManager.recovery`` (faust-streaming 0.15.3); guarded by
``tests/unit/worker/test_worker_app.py``.
"""

from __future__ import annotations

from typing import Any

import faust

from streams.metrics import Metrics, remove_series


def update_lag(app: faust.App, metrics: Metrics, reported: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Lag = high-water mark from fetch replies − committed offset; returns the series now reported.

    Tansu's ListOffsets answer is lower than the truth, so ``end_offsets`` is never used here.
    ``_committed_offset`` is Faust's own record of what it committed (no public accessor exists).
    A changelog partition has no committed offset (nothing consumes it but recovery), so its series is
    Faust's count of records left to apply while it recovers, and there is none once it is recovered: a
    value kept from recovery time stayed forever with nothing left to read (issue 17).
    The series of a topic-partition this worker no longer owns (``reported`` last time) is removed:
    its last value would otherwise stay, e.g. a stale 0 while the new owner works through a backlog.
    """
    consumer = app.consumer
    committed_offsets = getattr(consumer, "_committed_offset", {})
    tables: Any = app.tables  # TableManagerT does not declare the ``recovery`` the TableManager has
    changelogs = tables.changelog_topics
    recovery = tables.recovery
    recovering = recovery.active_remaining() if recovery.in_recovery else {}
    now: set[tuple[str, str]] = set()
    for tp in consumer.assignment():
        if tp.topic in changelogs:
            if tp not in recovering:
                continue
            lag = recovering[tp]
        else:
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            lag = highwater - (committed_offsets.get(tp) or 0)
        labels = (tp.topic, str(tp.partition))
        metrics.consumer_lag.labels(*labels).set(max(0, lag))
        now.add(labels)
    for labels in reported - now:
        remove_series(metrics.consumer_lag, *labels)
    return now
