"""A small hand-computed data set: what each view must answer is written next to the rows."""

from __future__ import annotations

from streams.engagement.model import (
    ENGAGED,
    LAPSED,
    AccountMinute,
    Alert,
    FollowerDay,
    FollowerScore,
    PostMinute,
    Transition,
)
from streams.sinks.base import SinkBatch
from streams.sinks.clickhouse import ClickHouseSink

from .conftest import DAY, HOUR, MINUTE, NOW_MS, Query

T0 = NOW_MS - 2 * DAY
HALF_LIFE = 30 * DAY // 4
BASELINE_AT = T0 + 10 * MINUTE
T0_DAY = T0 // DAY * DAY


def load(sink: ClickHouseSink, q: Query) -> None:
    assert sink.score_half_life_ms == HALF_LIFE
    sink.write(
        SinkBatch(
            "fx1",
            transitions=[
                Transition("acme", "u1", ENGAGED, T0, 3, "x"),
                Transition("acme", "u2", ENGAGED, T0, 3, "x"),
                Transition("acme", "u3", ENGAGED, T0 + 2 * HOUR, 3, "x"),  # written before its older lapse
            ],
            account_minutes=[
                AccountMinute("acme", "x", T0, follows=3),  # before the baseline: not added to it
                AccountMinute("acme", "x", BASELINE_AT, follows=4, unfollows=1),
                AccountMinute("acme", "x", T0 + HOUR, follows=1, likes=2),
                AccountMinute("acme", "x", NOW_MS - 10 * DAY, likes=100),  # outside the report's 7 days
            ],
            post_minutes=[
                PostMinute("acme", "x", "p1", T0, likes=2),
                PostMinute("acme", "x", "p2", T0, likes=1),
                PostMinute("acme", "x", "p3", T0, likes=2, comments=1),
                PostMinute("acme", "x", "p4", T0, comments=2, substantive_comments=2),
            ],
            scores=[
                FollowerScore("acme", "u1", "x", 100.0, NOW_MS - 3 * HALF_LIFE, 9),  # replaced below
                FollowerScore("acme", "u9", "x", 3.0, NOW_MS, 4),
            ],
            alerts=[
                Alert("acme", "drop", "opened", T0, 2.0, 40.0, T0),
                Alert("globex", "drop", "opened", T0, 1.0, 25.0, T0),
            ],
            # u1: 3 substantive of 4 comments/shares that day, u9: 1 of 2; more of u1's in fx2.
            follower_days=[
                FollowerDay("acme", "u1", "x", T0_DAY, substantive=3, active=4),
                FollowerDay("acme", "u9", "x", T0_DAY, substantive=1, active=2),
            ],
        )
    )
    sink.write(
        SinkBatch(
            "fx2",
            transitions=[
                Transition("acme", "u2", LAPSED, T0 + HOUR, 2, "x"),
                Transition("acme", "u3", LAPSED, T0 + HOUR, 2, "x"),
                Transition("globex", "u1", ENGAGED, T0, 3, "meta"),
            ],
            account_minutes=[AccountMinute("acme", "x", T0 + HOUR, follows=1, likes=3)],
            post_minutes=[
                PostMinute("acme", "x", "p1", T0 + MINUTE, likes=1),
                PostMinute("acme", "x", "p2", T0 + MINUTE, comments=1, substantive_comments=1),
            ],
            scores=[FollowerScore("acme", "u1", "x", 8.0, NOW_MS - 2 * HALF_LIFE, 12)],
            alerts=[
                Alert("acme", "drop", "resolved", T0 + HOUR, 30.0, 40.0, T0),
                Alert("acme", "silence", "opened", T0 + 2 * HOUR, 0.0, 40.0, T0 + 2 * HOUR),
                Alert("globex", "drop", "opened", T0, 1.0, 25.0, T0),  # re-emitted: one row
            ],
            follower_days=[FollowerDay("acme", "u1", "x", T0_DAY, substantive=1, active=1)],  # u1: 4 of 5
        )
    )
    baseline = ["account_id", "followers", "updated"]
    q.client.insert(f"{q.database}.account_baseline", [["acme", 50, T0 - DAY]], column_names=baseline)
    q.client.insert(f"{q.database}.account_baseline", [["acme", 100, BASELINE_AT]], column_names=baseline)
