"""Every ClickHouse query of every Grafana dashboard runs on chDB with the migrated schema.

Macros are expanded as the grafana-clickhouse-datasource plugin does (tests/grafana.py), the
database is migrated from ``schemas/clickhouse`` and seeded with a small, known data set, and each
query must return exactly the columns its panel expects — and, where the data set makes the answer
obvious, that answer.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.grafana import TimeRange, all_queries, clickhouse_sql
from tests.tools import ROOT

MIGRATIONS = ROOT / "schemas" / "clickhouse"
# The seeded data sits around BASE: yesterday, on the hour. Recent on purpose: the activity tables
# have a TTL (400 days by default) that drops older rows on insert.
BASE = int(time.time()) // 3600 * 3600 - 86_400
RANGE = TimeRange(from_s=BASE - 3600, to_s=BASE + 3600, interval_s=600)
VARIABLES = {"account": "acme"}

# Panel title → the columns Grafana gets (names and order are what the panels' field options use).
EXPECTED_COLUMNS: dict[str, list[str]] = {
    "Engaged followers": ["engaged_followers"],
    "Engagement ratio": ["ratio", "engaged_followers", "followers"],
    "Substantive interactions in range": ["substantive"],
    "Open drop alerts": ["open_alerts"],
    "Active vs passive interactions": ["time", "active", "passive"],
    "Interactions by type": ["time", "likes", "comments", "shares", "substantive", "net_follows"],
    "Followers becoming engaged / lapsing": ["time", "engaged", "lapsed"],
    "Engaged followers per account": ["account_id", "engaged_followers", "followers", "ratio"],
    "Top advocates": ["actor_id", "platform", "score", "interactions", "engaged"],
    "Posts nobody answered": ["post_id", "platform", "likes", "comments", "shares", "last_activity"],
    "Engaged followers and ratio per day": ["time", "engaged", "ratio"],
    "Substantive interactions from the top 20% of followers": ["top20_share"],
    "Followers who never went beyond likes and follows": ["never_beyond_likes"],
    "Active share in range": ["active_share"],
    "Open alerts (all accounts)": ["account_id", "kind", "opened_at", "observed", "baseline"],
    "Alert history": ["at", "kind", "state", "observed", "baseline", "opened_at"],
    "Recent transitions": ["at", "actor_id", "platform", "kind", "count"],
    "$account": ["account_id"],
}

CH_QUERIES = [q for q in all_queries() if q.datasource_type == "grafana-clickhouse-datasource"]


def _statements(sql: str) -> list[str]:
    """Statements of a migration file. Comments go first: they contain `;` (the files have no `--`
    inside string literals)."""
    without_comments = re.sub(r"--[^\n]*", "", sql)
    return [s.strip() for s in without_comments.split(";") if s.strip()]


def _migrate(client: Any, database: str) -> None:
    try:  # the sink's migrator, once merged: the same path `engage db migrate` takes
        from streams.sinks.clickhouse_migrations import Migrator
    except ImportError:  # not in this branch yet: apply the files in order, as it would
        _apply_files(client, database)
        return
    Migrator(client, database, MIGRATIONS).migrate()


def _apply_files(client: Any, database: str) -> None:
    files = sorted(MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    assert files, f"no migrations in {MIGRATIONS}"
    client.database = database
    try:
        for path in files:
            for statement in _statements(path.read_text()):
                client.command(statement)
    finally:
        client.database = "default"  # a chDB handle keeps its last database; the test db is dropped later


def _t(offset_s: int) -> str:
    return datetime.fromtimestamp(BASE + offset_s, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _seed(client: Any, db: str) -> None:
    inserts = [
        # acme: 3 minutes of activity in range, one hour before the range (not counted).
        f"""INSERT INTO {db}.account_activity_1m
            (account_id, platform, minute, likes, comments, shares, follows, unfollows,
             substantive, active, passive, engaged_new, lapsed) VALUES
            ('acme', 'meta', '{_t(-600)}', 10, 4, 1, 5, 1, 3, 5, 15, 1, 0),
            ('acme', 'meta', '{_t(0)}',     6, 2, 2, 0, 0, 4, 4,  6, 1, 0),
            ('acme', 'x',    '{_t(600)}',   2, 1, 0, 0, 0, 1, 1,  2, 0, 1),
            ('acme', 'meta', '{_t(-7200)}', 99, 9, 9, 0, 0, 9, 18, 99, 0, 0),
            ('beta', 'meta', '{_t(0)}',     1, 1, 0, 0, 0, 1, 1,  1, 0, 0)""",
        f"""INSERT INTO {db}.post_activity_1m
            (account_id, platform, post_id, minute, likes, comments, substantive_comments, shares) VALUES
            ('acme', 'meta', 'p-liked-only', '{_t(0)}', 12, 1, 0, 0),
            ('acme', 'meta', 'p-discussed',  '{_t(0)}',  3, 2, 2, 1)""",
        f"""INSERT INTO {db}.engaged_followers (account_id, actor_id, platform, engaged, since, count) VALUES
            ('acme', 'alice', 'meta', 1, '{_t(-600)}', 3),
            ('acme', 'bob',   'meta', 1, '{_t(0)}',    4),
            ('acme', 'carol', 'x',    0, '{_t(600)}',  2),
            ('beta', 'dave',  'meta', 1, '{_t(0)}',    3)""",
        f"""INSERT INTO {db}.engagement_transitions
            (transition_id, account_id, actor_id, platform, kind, at, count) VALUES
            ('t1', 'acme', 'alice', 'meta', 'engaged', '{_t(-600)}', 3),
            ('t2', 'acme', 'bob',   'meta', 'engaged', '{_t(0)}',    3),
            ('t3', 'acme', 'carol', 'x',    'lapsed',  '{_t(600)}',  2)""",
        f"""INSERT INTO {db}.follower_scores
            (account_id, actor_id, platform, score, as_of, half_life_ms, interactions) VALUES
            ('acme', 'alice', 'meta', 9.5, '{_t(0)}', 648000000, 7),
            ('acme', 'bob',   'meta', 4.0, '{_t(0)}', 648000000, 4),
            ('acme', 'carol', 'x',    1.0, '{_t(0)}', 648000000, 2)""",
        f"""INSERT INTO {db}.engagement_alerts
            (alert_id, account_id, kind, state, at, observed, baseline, opened_at) VALUES
            ('a1', 'acme', 'drop',    'opened',   '{_t(0)}',   4, 20, '{_t(0)}'),
            ('a2', 'beta', 'silence', 'opened',   '{_t(-900)}', 0, 25, '{_t(-900)}'),
            ('a3', 'beta', 'silence', 'resolved', '{_t(300)}', 22, 25, '{_t(-900)}')""",
        f"""INSERT INTO {db}.follower_activity_1d
            (account_id, actor_id, platform, day, substantive, active) VALUES
            ('acme', 'alice', 'meta', toStartOfDay(toDateTime('{_t(0)}')), 3, 4),
            ('acme', 'bob',   'meta', toStartOfDay(toDateTime('{_t(0)}')), 2, 2),
            ('acme', 'carol', 'x',    toStartOfDay(toDateTime('{_t(0)}')), 0, 1),
            ('beta', 'b1', 'meta', toStartOfDay(toDateTime('{_t(0)}')), 6, 6),
            ('beta', 'b2', 'meta', toStartOfDay(toDateTime('{_t(0)}')), 1, 1),
            ('beta', 'b3', 'meta', toStartOfDay(toDateTime('{_t(0)}')), 1, 1),
            ('beta', 'b4', 'meta', toStartOfDay(toDateTime('{_t(0)}')), 1, 1),
            ('beta', 'b5', 'meta', toStartOfDay(toDateTime('{_t(0)}')), 1, 2)""",
        f"""INSERT INTO {db}.account_baseline (account_id, followers, updated) VALUES
            ('acme', 100, '{_t(-3000)}')""",
    ]
    for statement in inserts:
        client.command(statement)


@pytest.fixture(scope="module")
def dashboard_db(ch_client: Any) -> Iterator[str]:
    """One migrated, seeded database for all dashboard queries (they only read)."""
    name = f"t_dash_{uuid.uuid4().hex[:10]}"
    ch_client.command(f"CREATE DATABASE {name}")
    try:
        _migrate(ch_client, name)
        _seed(ch_client, name)
        yield name
    finally:
        ch_client.database = "default"
        ch_client.command(f"DROP DATABASE IF EXISTS {name}")


def _run(client: Any, database: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    client.database = database  # Grafana's datasource has defaultDatabase; the queries are unqualified
    try:
        result = client.query(sql)
        return list(result.column_names), [tuple(row) for row in result.result_rows]
    finally:
        client.database = "default"


def test_every_clickhouse_query_has_an_expectation() -> None:
    titles = {q.panel for q in CH_QUERIES}
    assert len(CH_QUERIES) >= 10
    assert titles == set(EXPECTED_COLUMNS), titles ^ set(EXPECTED_COLUMNS)


@pytest.mark.parametrize("query", CH_QUERIES, ids=[f"{q.dashboard}:{q.panel}" for q in CH_QUERIES])
def test_query_runs_and_returns_the_expected_columns(ch_client: Any, dashboard_db: str, query: Any) -> None:
    sql = clickhouse_sql(query.text, RANGE, VARIABLES)
    columns, rows = _run(ch_client, dashboard_db, sql)
    assert columns == EXPECTED_COLUMNS[query.panel]
    assert rows, f"{query.panel}: no rows on the seeded data"


def _rows(ch_client: Any, db: str, title: str) -> list[tuple[Any, ...]]:
    (query,) = [q for q in CH_QUERIES if q.panel == title]
    return _run(ch_client, db, clickhouse_sql(query.text, RANGE, VARIABLES))[1]


def test_answers_on_the_seeded_data(ch_client: Any, dashboard_db: str) -> None:
    def rows(title: str) -> list[tuple[Any, ...]]:
        return _rows(ch_client, dashboard_db, title)

    assert rows("Engaged followers") == [(2,)]  # alice, bob (carol lapsed)
    ((ratio, engaged, followers),) = rows("Engagement ratio")
    assert (engaged, followers) == (2, 104)  # baseline 100 + 5 follows - 1 unfollow since it
    assert ratio == pytest.approx(2 / 104)
    assert rows("Substantive interactions in range") == [(8,)]  # the -2h row is outside the range
    assert rows("Open drop alerts") == [(1,)]
    assert [r[1:] for r in rows("Active vs passive interactions")] == [(5, 15), (4, 6), (1, 2)]
    assert [r[0] for r in rows("Engaged followers per account")] == ["acme", "beta"]
    assert [r[0] for r in rows("Top advocates")] == ["alice", "bob", "carol"]
    assert [r[0] for r in rows("Posts nobody answered")] == ["p-liked-only"]
    # End of the last day: alice and bob engaged, carol lapsed; 100 + 5 follows - 1 unfollow.
    *_, (_, engaged_today, ratio_today) = rows("Engaged followers and ratio per day")
    assert (engaged_today, ratio_today) == (1, pytest.approx(1 / 104))
    # 104 followers: the top 20% are 21, more than the 3 who commented, so all of it is theirs.
    assert rows("Substantive interactions from the top 20% of followers") == [(1.0,)]
    ((never,),) = rows("Followers who never went beyond likes and follows")
    assert never == pytest.approx(1 - 3 / 104)  # alice, bob and carol commented
    ((beta_top,),) = _run(
        ch_client,
        dashboard_db,
        clickhouse_sql(
            next(q.text for q in CH_QUERIES if q.panel.startswith("Substantive interactions from the top")),
            RANGE,
            {"account": "beta"},
        ),
    )[1]
    assert beta_top == pytest.approx(6 / 10)  # no baseline: top 20% of 5 participants is 1, with 6 of 10
    ((active_share,),) = rows("Active share in range")
    assert active_share == pytest.approx(10 / 33)
    assert [(r[0], r[1]) for r in rows("Open alerts (all accounts)")] == [("acme", "drop")]
    assert [r[3] for r in rows("Recent transitions")] == ["lapsed", "engaged", "engaged"]
    assert rows("$account") == [("acme",), ("beta",)]


def test_macros_expand_like_the_plugin() -> None:
    sql = clickhouse_sql(
        "SELECT $__timeInterval(minute) AS t FROM x WHERE $__timeFilter(minute) AND a = '${account}' "
        "AND b >= $__fromTime AND c < $__toTime AND d = $__interval_s",
        TimeRange(100, 200, 30),
        {"account": "acme"},
    )
    assert sql == (
        "SELECT toStartOfInterval(toDateTime(minute), INTERVAL 30 second) AS t FROM x "
        "WHERE minute >= toDateTime(100) AND minute <= toDateTime(200) AND a = 'acme' "
        "AND b >= toDateTime(100) AND c < toDateTime(200) AND d = 30"
    )
    with pytest.raises(ValueError, match="unexpanded"):
        clickhouse_sql("SELECT $__unknownMacro(x)", TimeRange(1, 2), {})
