"""A partition with nothing new after a restart still drains what it owes once event time has passed.

The cause of the lost transitions in the crash reports of issue 17: a runner was started at its
partition's first message, so a partition whose last messages were flushed (and committed) before the
worker was killed had no runner in the restarted worker. Its watermark was never re-derived, and the
lapses that waited only for the last topic to go quiet were never emitted.
"""

from __future__ import annotations

import time
from pathlib import Path

from streams.embedded.broker import EmbeddedBroker
from streams.events import Interaction
from tests.integration.worker.harness import WorkerProcess, caught_up, read_topic, wait_for
from tests.integration.worker.test_topology import _check_exact, _expected, _flags, _publish, _setup
from tests.scenarios import one_per_partition


def _one_comment_per_partition(partitions: int, at_ms: int) -> list[Interaction]:
    """A substantive comment on every partition, at ``at_ms``: after the far-future sentinels arrive on
    the like topic, the comment topic has only just caught up and holds the watermark here for the
    idle interval, so the lapses due after ``at_ms`` wait for that interval to pass."""
    return [
        Interaction(f"tail-{i}", "comment", "generic", "acc0", actor, "p1", "one more word", at_ms)
        for i, actor in one_per_partition(partitions, "tail")
    ]


def test_a_restart_with_nothing_new_to_read_still_drains_the_lapses_due(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    cfg, settings, events, later = _setup(broker, tmp_path, seed=17)
    tail = _one_comment_per_partition(cfg.partitions, max(e.occurred_at_ms for e in events) + 60_000)
    expected = _expected(events + tail + later, settings)
    topics, partitions = settings.topics.interactions, settings.topic_partitions
    first = WorkerProcess(cfg, log_name="first")
    try:
        _publish(settings, events)
        wait_for(lambda: caught_up([first], topics, partitions), 120, what="the first worker to catch up")
        _publish(settings, tail + later)
        total = len(events) + len(tail) + len(later)
        wait_for(
            lambda: first.metric("engage_events_consumed_total") >= total, 30, interval=0.1, what="the tail"
        )
        time.sleep(0.7)  # two ticks: the lag gauge now reflects the high-waters that include the tail
        wait_for(lambda: caught_up([first], topics, partitions), 30, interval=0.1, what="its commit")
        # Everything is consumed, flushed and committed; what is still owed waits for the comment topic
        # to have been quiet for the idle interval (5 s). The worker dies before it has.
        first.kill()
    finally:
        if first.proc.poll() is None:
            first.kill()
    owed = {t for t, r in expected.items() if r["kind"] == "lapsed"}
    emitted = {
        r["transition_id"] for r in read_topic(settings.kafka_bootstrap_servers, settings.topics.flags, 3)
    }
    assert owed - emitted, "the first worker drained everything before it was killed: the test proves nothing"
    restarted = WorkerProcess(cfg, log_name="second")
    try:
        records = _flags(settings, len(expected), seconds=90)
        _check_exact(records, expected)
    finally:
        restarted.stop()
