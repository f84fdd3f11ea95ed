"""The stream partition's watermark over its four topics (see PartitionRunner.effective_watermark)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from streams.engagement import PartitionEngine, Rule
from streams.metrics import Metrics
from streams.worker.progress import PartitionProgress
from streams.worker.runner import PartitionRunner


def _runner(
    position: dict[str, int], highwater: dict[str, int | None], wm: dict[str, int]
) -> PartitionRunner:
    runner = PartitionRunner(
        0,
        1,
        PartitionEngine(Rule(), auto_watermark=False),
        PartitionProgress(),
        "g",
        Metrics.create(CollectorRegistry()),
    )
    runner.idle_after_s = 0.0  # a caught-up topic stops holding back at once (the timeout is tested below)
    runner.position, runner.topic_watermark = dict(position), dict(wm)
    for topic, value in highwater.items():
        runner.note_highwater(topic, value)
    return runner


@pytest.mark.parametrize(
    ("position", "highwater", "wm", "expected"),
    [
        # every topic read to its high-water mark: live, the newest event time counts
        ({"like": 9, "comment": 4}, {"like": 10, "comment": 5}, {"like": 500, "comment": 300}, 500),
        # likes behind: the comments racing ahead in event time must not make likes late
        ({"like": 3, "comment": 4}, {"like": 10, "comment": 5}, {"like": 200, "comment": 900}, 200),
        # two topics behind: the slower one decides
        ({"like": 3, "comment": 1}, {"like": 10, "comment": 5}, {"like": 200, "comment": 150}, 150),
        # a topic not fetched yet (high-water unknown) holds everything back
        ({"like": 9}, {"like": 10, "comment": None}, {"like": 900}, None),
        # a topic with data that we have not read at all holds everything back
        ({"like": 9}, {"like": 10, "comment": 3}, {"like": 900}, None),
        # an empty topic (high-water 0) holds nothing back
        ({"like": 9}, {"like": 10, "share": 0}, {"like": 900}, 900),
        # nothing seen yet
        ({}, {}, {}, None),
    ],
)
def test_effective_watermark(
    position: dict[str, int], highwater: dict[str, int | None], wm: dict[str, int], expected: int | None
) -> None:
    assert _runner(position, highwater, wm).effective_watermark() == expected


def test_a_known_high_water_is_not_forgotten_by_a_later_unknown() -> None:
    runner = _runner({"like": 3}, {"like": 10}, {"like": 100})
    runner.note_highwater("like", None)
    assert runner.highwater["like"] == 10


def test_a_stale_watermark_is_re_derived_on_the_tick_and_makes_the_partition_flushable() -> None:
    # The sentinel-like message arrived while comments still looked behind; then the comments were
    # read, but no further message arrived for this partition to recompute the watermark.
    runner = _runner({"like": 4, "comment": 5}, {"like": 5, "comment": 7}, {"like": 9_000, "comment": 300})
    runner.engine.advance_watermark(runner.effective_watermark() or 0)
    assert runner.engine.watermark_ms == 300
    runner.position["comment"] = 6  # read up to the high-water since
    assert not runner.may_flush
    assert runner.refresh_watermark()
    assert runner.engine.watermark_ms == 9_000
    assert runner.may_flush
    assert not runner.refresh_watermark()  # nothing new: no movement


def test_a_caught_up_topic_holds_event_time_back_until_idle_long_enough() -> None:
    now = [100.0]
    runner = _runner({"like": 9, "comment": 4}, {"like": 10, "comment": 5}, {"like": 9_000, "comment": 300})
    runner.idle_after_s, runner.clock = 5.0, lambda: now[0]
    assert runner.effective_watermark() == 300  # both just caught up: the slower one still holds back
    now[0] = 103.0
    assert runner.effective_watermark() == 300
    runner.note_highwater("comment", 6)  # more comments were written meanwhile: behind again
    now[0] = 106.0
    assert runner.effective_watermark() == 300
    runner.position["comment"] = 5
    assert runner.effective_watermark() == 300  # caught up again, the idle clock restarts
    now[0] = 111.5
    assert runner.effective_watermark() == 9_000  # idle for 5 s: the newest event time counts
