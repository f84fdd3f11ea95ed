"""Aggregates (partial, per minute, deltas) and the valuable-engagement score."""

from __future__ import annotations

import math

import pytest

from streams.engagement import AccountMinute, PartitionEngine, PostMinute, Rule

from .factory import ONE_WORD, ev

M = 60_000
W = 1_000_000
H = W // 4


def engine(**kw: float) -> PartitionEngine:
    """Likes weigh 0.1 here (the default is 0), so the like row of the weight table means something."""
    return PartitionEngine(
        Rule(
            window_ms=W,
            allowed_lateness_ms=int(kw.pop("lateness", 10 * M)),
            like_weight=kw.pop("like_weight", 0.1),
            **kw,  # type: ignore[arg-type]
        )
    )


def test_account_and_post_minutes() -> None:
    e = engine()
    events = [
        ev(10, "like", post="p1"),
        ev(20, "like", post="p1", actor="f2"),
        ev(30, "comment", ONE_WORD, post="p1"),
        ev(40, "comment", "really good stuff", post="p1"),
        ev(50, "share", None, post="p2"),
        ev(60, "share", "read this", post="p2"),
        ev(70, "follow"),
        ev(80, "unfollow"),
        ev(M + 5, "follow", actor="f3"),
        ev(M + 6, "like", post="p1", account="other", platform="y"),
    ]
    for event in events:
        e.process(event)
    out = e.drain()
    assert out.account_minutes == [
        AccountMinute("brand", "x", 0, likes=2, comments=2, shares=2, follows=1, unfollows=1, substantive=2,
                      active=4, passive=3),
        AccountMinute("brand", "x", M, follows=1, passive=1),
        AccountMinute("other", "y", M, likes=1, passive=1),
    ]  # fmt: skip
    assert out.post_minutes == [
        PostMinute("brand", "x", "p1", 0, likes=2, comments=2, substantive_comments=1),
        PostMinute("brand", "x", "p2", 0, shares=2),
        PostMinute("other", "y", "p1", M, likes=1),
    ]
    # Deltas: the next drain carries only what happened since.
    e.process(ev(90, "like", post="p1"))
    again = e.drain()
    assert again.account_minutes == [AccountMinute("brand", "x", 0, likes=1, passive=1)]
    assert again.post_minutes == [PostMinute("brand", "x", "p1", 0, likes=1)]
    assert e.drain().account_minutes == []


def test_duplicates_and_late_events_are_not_counted() -> None:
    e = engine(lateness=0)
    e.process(ev(100 * M, "like", event_id="a"))
    e.process(ev(100 * M, "like", event_id="a"))
    e.process(ev(99 * M, "like"))
    e.process(ev(100 * M, "comment", "good point here", event_id="c"))
    e.process(ev(100 * M, "comment", "good point here", event_id="c"))
    [row] = e.drain().account_minutes
    assert (row.likes, row.comments, row.substantive, row.active, row.passive) == (1, 1, 1, 1, 1)


def test_transitions_are_counted_in_the_minute_they_happen_when_emitted() -> None:
    e = engine(lateness=0)
    for t in (0, M, 2 * M):
        e.process(ev(t, "comment", "this is great"))
    first = e.drain()
    assert [r.engaged_new for r in first.account_minutes] == [0, 0, 0]  # not final yet
    e.advance_watermark(2 * M + 1)
    [row] = e.drain().account_minutes
    assert (row.minute_ms, row.engaged_new, row.lapsed, row.comments) == (2 * M, 1, 0, 0)
    e.advance_watermark(W + 1)
    [row] = e.drain().account_minutes
    assert (row.minute_ms, row.engaged_new, row.lapsed) == (W - W % M, 0, 1)


@pytest.mark.parametrize(
    ("kind", "text", "weight"),
    [
        ("like", None, 0.1),
        ("comment", ONE_WORD, 0.2),
        ("comment", "🔥🔥 👏", 0.2),
        ("comment", "this is great", 1.0),
        ("share", None, 0.5),
        ("share", "wow", 0.5),
        ("share", "you must read this", 1.5),
    ],
)
def test_score_weights(kind: str, text: str | None, weight: float) -> None:
    e = engine()
    e.process(ev(1000, kind, text))
    [score] = e.drain().scores
    assert (score.account_id, score.actor_id, score.platform) == ("brand", "fan", "x")
    assert (score.score, score.as_of_ms, score.interactions) == (pytest.approx(weight), 1000, 1)


def test_likes_do_not_score_by_default() -> None:
    e = PartitionEngine(Rule(window_ms=W, allowed_lateness_ms=10 * M))
    e.process(ev(1000, "like", post="p1"))
    out = e.drain()
    assert out.scores == []
    assert e.tracked_pairs == 0
    assert out.account_minutes[0].likes == 1


def test_follows_do_not_score() -> None:
    e = engine()
    e.process(ev(1000, "follow"))
    e.process(ev(1001, "unfollow"))
    assert e.drain().scores == []
    assert e.tracked_pairs == 0


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_score_decays_and_is_exact_in_any_order(order: tuple[int, ...]) -> None:
    events = [ev(0, "like"), ev(H, "comment", "this is great"), ev(2 * H, "share", None)]
    e = engine(lateness=W)
    for i in order:
        e.process(events[i])
    scores = e.drain().scores
    [score] = scores
    expected = 0.1 * 0.25 + 1.0 * 0.5 + 0.5
    assert score.score == pytest.approx(expected, rel=1e-12)
    assert (score.as_of_ms, score.interactions) == (2 * H, 3)


def test_score_rows_are_emitted_for_changed_pairs_only() -> None:
    e = engine()
    e.process(ev(0, "like", actor="a"))
    e.process(ev(0, "like", actor="b"))
    assert [s.actor_id for s in e.drain().scores] == ["a", "b"]
    e.process(ev(10, "like", actor="b"))
    [row] = e.drain().scores
    assert row.actor_id == "b"
    assert row.score == pytest.approx(0.1 + 0.1 * math.exp(-10 * math.log(2) / H))
    assert e.drain().scores == []


def test_half_life_is_configurable() -> None:
    e = PartitionEngine(Rule(window_ms=W, score_half_life_ms=100, allowed_lateness_ms=0, like_weight=0.1))
    e.process(ev(0, "like"))
    e.process(ev(100, "like"))
    [row] = e.drain().scores
    assert row.score == pytest.approx(0.15)


def test_follower_days_count_each_followers_comments_and_shares_once() -> None:
    from streams.engagement.model import DAY_MS, FollowerDay

    e = engine(lateness=DAY_MS)
    day = 10 * DAY_MS
    repeated = ev(day + 3, "comment", "a second real comment", actor="ann", event_id="dup-1")
    events = [
        ev(day + 1, "comment", "a real comment here", actor="ann"),
        ev(day + 2, "comment", ONE_WORD, actor="ann"),  # active, not substantive
        repeated,
        repeated,  # a redelivery: counted once
        ev(day + 4, "share", None, actor="bob"),  # bare share: active only
        ev(day + 5, "like", post="p1", actor="cat"),  # likes and follows make no row
        ev(day + 6, "follow", actor="cat"),
        ev(day + DAY_MS + 1, "share", "read this now", actor="ann"),  # the next day
        ev(day + 7, "comment", "same day other brand", actor="ann", account="other"),
    ]
    for event in events:
        e.process(event)
    e.process(ev(day - 2 * DAY_MS, "comment", "far too late", actor="ann"))  # late: no row
    rows = sorted(e.drain().follower_days, key=lambda r: (r.account_id, r.actor_id, r.day_ms))
    assert rows == [
        FollowerDay("brand", "ann", "x", day, substantive=2, active=3),
        FollowerDay("brand", "ann", "x", day + DAY_MS, substantive=1, active=1),
        FollowerDay("brand", "bob", "x", day, substantive=0, active=1),
        FollowerDay("other", "ann", "x", day, substantive=1, active=1),
    ]
    assert e.drain().follower_days == []  # deltas since the previous drain
