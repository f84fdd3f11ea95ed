from __future__ import annotations

from streams.engagement.model import AccountMinute, Alert, FollowerScore, PostMinute, Transition
from streams.sinks.base import SinkBatch
from streams.sinks.rows import TABLE_NAMES, TABLES, dedup_token

BATCH = SinkBatch(
    "grp/p3/k7/abc",
    transitions=[
        Transition("a", "u", "engaged", 1_700_000_000_123, 3, "x"),
        Transition("a", "v", "lapsed", 5, 2, "y"),
    ],
    account_minutes=[AccountMinute("a", "x", 1_700_000_040_000, likes=2, passive=2)],
    post_minutes=[PostMinute("a", "x", "p1", 1_700_000_040_000, comments=1)],
    scores=[FollowerScore("a", "u", "x", 2.5, 1_700_000_000_123, 4)],
    alerts=[Alert("a", "drop", "opened", 10, 1.0, 30.0, 10)],
)


def _table(name: str) -> dict[str, list[object]]:
    spec = next(s for s in TABLES if s.name == name)
    columns = spec.columns_of(BATCH, 648_000_000)
    assert len(columns) == len(spec.columns)
    return dict(zip(spec.columns, columns, strict=True))


def test_every_table_is_covered_once() -> None:
    assert sorted(TABLE_NAMES) == sorted(
        {
            "account_activity_1m",
            "post_activity_1m",
            "engagement_transitions",
            "engaged_followers",
            "follower_scores",
            "engagement_alerts",
            "follower_activity_1d",
        }
    )


def test_times_are_integers_in_the_column_units() -> None:
    assert _table("account_activity_1m")["minute"] == [1_700_000_040]  # DateTime: seconds
    assert _table("engagement_transitions")["at"] == [1_700_000_000_123, 5]  # DateTime64(3): ms
    assert _table("follower_scores")["as_of"] == [1_700_000_000_123]


def test_transitions_feed_the_state_table() -> None:
    state = _table("engaged_followers")
    assert state["engaged"] == [1, 0]
    assert state["since"] == [1_700_000_000_123, 5]
    assert _table("engagement_transitions")["transition_id"] == [t.transition_id for t in BATCH.transitions]


def test_scores_carry_the_half_life_and_alerts_their_id() -> None:
    assert _table("follower_scores")["half_life_ms"] == [648_000_000]
    assert _table("engagement_alerts")["alert_id"] == [BATCH.alerts[0].alert_id]
    assert _table("account_activity_1m")["likes"] == [2]


def test_empty_batch_gives_empty_columns() -> None:
    for spec in TABLES:
        columns = spec.columns_of(SinkBatch("t"), 1)
        assert columns == [[] for _ in spec.columns]


def test_dedup_token_names_the_table() -> None:
    assert dedup_token("grp/p3/k7/abc", "post_activity_1m") == "grp/p3/k7/abc:post_activity_1m"
