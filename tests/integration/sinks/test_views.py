"""The views answer the hand-computed questions of ``fixture_data`` while the tables hold unmerged rows."""

from __future__ import annotations

import time

import pytest

from streams.sinks.clickhouse import ClickHouseSink

from . import fixture_data as fx
from .conftest import HOUR, Query


@pytest.fixture
def loaded(sink: ClickHouseSink, q: Query) -> Query:
    fx.load(sink, q)
    return q


def test_engaged_followers_latest_transition_wins(loaded: Query) -> None:
    assert sorted(loaded.rows("SELECT account_id, actor_id FROM DB.v_engaged_followers")) == [
        ("acme", "u1"),
        ("acme", "u3"),
        ("globex", "u1"),
    ]
    assert dict(loaded.rows("SELECT * FROM DB.v_engaged_followers_now")) == {"acme": 2, "globex": 1}
    # The raw table still has the superseded rows: this is why the views exist.
    assert loaded.rows("SELECT count() FROM DB.engaged_followers WHERE account_id = 'acme'") == [(5,)]


def test_engagement_ratio_adds_follows_since_the_baseline(loaded: Query) -> None:
    rows = loaded.rows(
        "SELECT account_id, engaged_followers, followers, ratio, baseline_followers, "
        "net_follows_since_baseline FROM DB.v_engagement_ratio"
    )
    # followers = 100 + (4 - 1) at the baseline minute + (1 + 1) an hour later; the 3 before it do not count
    assert rows == [("acme", 2, 105, pytest.approx(2 / 105), 100, 5)]


def test_activity_is_summed(loaded: Query) -> None:
    assert loaded.rows(
        "SELECT follows, likes FROM DB.v_account_activity_1m WHERE account_id = 'acme' "
        "AND minute = toDateTime({m:Int64}, 'UTC')",
        m=(fx.T0 + HOUR) // 1000,
    ) == [(2, 5)]


def test_top_advocates_decay_to_now(loaded: Query) -> None:
    before = time.time() * 1000
    rows = loaded.rows(
        "SELECT actor_id, score_now, score, interactions, engaged, half_life_ms FROM DB.v_top_advocates "
        "WHERE account_id = 'acme' ORDER BY score_now DESC"
    )
    after = time.time() * 1000
    assert [(r[0], r[2], r[3], r[4], r[5]) for r in rows] == [
        ("u9", 3.0, 4, 0, fx.HALF_LIFE),
        ("u1", 8.0, 12, 1, fx.HALF_LIFE),  # the older row (100.0) was replaced
    ]

    def decayed(score: float, as_of: float, now: float) -> float:
        return score * 2 ** (-(now - as_of) / fx.HALF_LIFE)

    u9, u1 = rows[0][1], rows[1][1]
    as_of_u1 = fx.NOW_MS - 2 * fx.HALF_LIFE
    assert decayed(8.0, as_of_u1, after) - 1e-9 <= u1 <= decayed(8.0, as_of_u1, before) + 1e-9
    assert decayed(3.0, fx.NOW_MS, after) - 1e-9 <= u9 <= 3.0


def test_posts_unanswered(loaded: Query) -> None:
    assert loaded.rows(
        "SELECT post_id, likes, comments, substantive_comments FROM DB.v_posts_unanswered ORDER BY post_id"
    ) == [("p1", 3, 0, 0), ("p3", 2, 1, 0)]


def test_open_alerts(loaded: Query) -> None:
    rows = loaded.rows(
        "SELECT account_id, kind, toUnixTimestamp64Milli(opened_at), observed "
        "FROM DB.v_open_alerts ORDER BY account_id"
    )
    assert rows == [("acme", "silence", fx.T0 + 2 * HOUR, 0.0), ("globex", "drop", fx.T0, 1.0)]
    assert loaded.rows("SELECT count() FROM DB.v_engagement_alerts") == [(4,)]
