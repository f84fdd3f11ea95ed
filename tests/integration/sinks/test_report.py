"""``engage report`` on the hand-computed fixture, through its command function and a chDB DSN."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import orjson
import pytest

from streams.commands import report
from streams.engagement.model import AccountMinute, FollowerDay, FollowerScore
from streams.settings import Settings
from streams.sinks.base import SinkBatch
from streams.sinks.clickhouse import ClickHouseSink

from . import fixture_data as fx
from .conftest import DAY, HOUR, MINUTE, Query


def _run(chdb_path: Path, database: str, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    report.register(parser.add_subparsers())
    args = parser.parse_args(["report", *argv])
    settings = Settings(clickhouse_dsn=f"chdb://{chdb_path}?database={database}")
    return report.run(args, settings, clock=lambda: fx.NOW_MS / 1000)


def test_report_json(
    sink: ClickHouseSink, q: Query, chdb_path: Path, ch_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fx.load(sink, q)
    assert _run(chdb_path, ch_database, "--account", "acme", "--json") == 0
    got = orjson.loads(capsys.readouterr().out)
    trend = got.pop("trend")
    assert len(trend) == 8 and {day["engaged_followers"] for day in trend} == {0}  # no engaged_new rows
    assert trend[-1]["followers"] == 105
    assert got == {
        "account_id": "acme",
        "as_of_ms": fx.NOW_MS,  # the account's latest event time: u9's score
        "since_ms": fx.NOW_MS - 7 * DAY,
        "engaged_followers": 2,
        "followers": 105,
        "ratio": pytest.approx(2 / 105),
        "baseline_followers": 100,
        "baseline_updated_ms": fx.BASELINE_AT,
        "activity": {
            "likes": 5,  # the 100 likes ten days ago are before --since
            "comments": 0,
            "shares": 0,
            "follows": 9,
            "unfollows": 1,
            "substantive": 0,
            "active": 0,
            "passive": 0,
            "engaged_new": 0,
            "lapsed": 0,
        },
        "top_advocates": [
            {
                "actor_id": "u9",
                "platform": "x",
                "score_now": 3.0,
                "score": 3.0,
                "as_of_ms": fx.NOW_MS,
                "interactions": 4,
                "engaged": False,
            },
            {
                "actor_id": "u1",
                "platform": "x",
                "score_now": 2.0,  # 8 after two half-lives
                "score": 8.0,
                "as_of_ms": fx.NOW_MS - 2 * fx.HALF_LIFE,
                "interactions": 12,
                "engaged": True,
            },
        ],
        "open_alerts": [
            {"kind": "silence", "opened_at_ms": fx.T0 + 2 * HOUR, "observed": 0.0, "baseline": 40.0}
        ],
        "active_share": None,  # the fixture's minutes have no active or passive counts
        # p2 and p4 had substantive comments; p1 and p3 only likes and a one-word comment.
        "unanswered_posts": 2,
        "unanswered": [
            {"post_id": "p1", "platform": "x", "likes": 3, "comments": 0, "last_activity_ms": fx.T0 + MINUTE},
            {"post_id": "p3", "platform": "x", "likes": 2, "comments": 1, "last_activity_ms": fx.T0},
        ],
        "participation": {
            "followers": 105,
            "followers_basis": "baseline",
            "top_followers": 21,  # more than took part: all of it comes from the top 20%
            "participating_followers": 2,  # u1 and u9 commented
            "substantive_interactions": 5,
            "top20_substantive_share": 1.0,
            "top20_score_share": 1.0,
            "never_beyond_likes_share": pytest.approx(1 - 2 / 105),
        },
    }


def test_report_since_and_unknown_account(
    sink: ClickHouseSink, q: Query, chdb_path: Path, ch_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fx.load(sink, q)
    assert _run(chdb_path, ch_database, "--account", "acme", "--json", "--since", "30d", "--top", "1") == 0
    got = orjson.loads(capsys.readouterr().out)
    assert got["activity"]["likes"] == 105
    assert [a["actor_id"] for a in got["top_advocates"]] == ["u9"]
    assert _run(chdb_path, ch_database, "--account", "globex", "--json") == 0
    got = orjson.loads(capsys.readouterr().out)
    assert (got["engaged_followers"], got["ratio"], got["followers"]) == (1, None, None)
    assert _run(chdb_path, ch_database, "--account", "nobody", "--json") == 0
    got = orjson.loads(capsys.readouterr().out)
    assert (got["engaged_followers"], got["top_advocates"], sum(got["activity"].values())) == (0, [], 0)


def test_report_for_people(
    sink: ClickHouseSink, q: Query, chdb_path: Path, ch_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fx.load(sink, q)
    assert _run(chdb_path, ch_database, "--account", "acme") == 0
    out = capsys.readouterr().out
    for text in ("engaged followers now", "1.90%", "105", "top advocates", "u9", "open alerts", "silence"):
        assert text in out, text


def test_report_answers_the_product_questions(
    sink: ClickHouseSink, q: Query, chdb_path: Path, ch_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Decay to the latest event time, concentration, active vs passive, the per-day trend."""
    d0 = fx.NOW_MS // DAY * DAY - 3 * DAY  # midnight, three days ago
    latest = d0 + 2 * DAY + 2 * HOUR
    sink.write(
        SinkBatch(
            "solo-1",
            account_minutes=[
                AccountMinute("solo", "x", d0 + HOUR, follows=10, engaged_new=2, active=3, passive=7),
                AccountMinute("solo", "x", d0 + DAY + HOUR, follows=2, unfollows=1, engaged_new=1, lapsed=1),
                AccountMinute("solo", "x", d0 + 2 * DAY + HOUR, likes=9, passive=9, active=1, lapsed=1),
                AccountMinute("fans", "x", d0 + HOUR, active=5, passive=5),
            ],
            # Ten followers who commented, 1..10 substantive interactions each (and one one-word comment
            # each); the score as much, as of the latest event time. With no baseline the top 20% are 2
            # of those 10: (10 + 9) / 55.
            scores=[FollowerScore("fans", f"f{n}", "x", float(n), latest, n) for n in range(1, 11)],
            follower_days=[
                FollowerDay("fans", f"f{n}", "x", d0 + 2 * DAY, substantive=n, active=n + 1)
                for n in range(1, 11)
            ],
        )
    )
    baseline = ["account_id", "followers", "updated"]
    q.client.insert(f"{q.database}.account_baseline", [["solo", 100, d0]], column_names=baseline)

    assert _run(chdb_path, ch_database, "--account", "solo", "--json", "--since", "2d") == 0
    solo = orjson.loads(capsys.readouterr().out)
    assert solo["as_of_ms"] == d0 + 2 * DAY + HOUR  # its latest activity minute, not the wall clock
    assert solo["active_share"] == pytest.approx(4 / 20)
    assert [(t["engaged_followers"], t["followers"]) for t in solo["trend"]] == [(2, 110), (2, 111), (1, 111)]
    assert solo["trend"][2]["ratio"] == pytest.approx(1 / 111)
    assert solo["participation"]["never_beyond_likes_share"] == 1.0  # nobody ever commented or shared

    assert _run(chdb_path, ch_database, "--account", "fans", "--json") == 0
    fans = orjson.loads(capsys.readouterr().out)
    assert fans["as_of_ms"] == latest
    assert fans["top_advocates"][0]["score_now"] == pytest.approx(10.0)  # not decayed to the wall clock
    part = fans["participation"]
    assert (part["followers"], part["top_followers"], part["participating_followers"]) == (10, 2, 10)
    assert part["substantive_interactions"] == 55
    assert part["top20_substantive_share"] == pytest.approx(19 / 55)
    assert part["top20_score_share"] == pytest.approx(19 / 55)
    assert part["never_beyond_likes_share"] is None  # needs a follower count

    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((latest + fx.HALF_LIFE) / 1000))
    assert _run(chdb_path, ch_database, "--account", "fans", "--json", "--as-of", later) == 0
    assert orjson.loads(capsys.readouterr().out)["top_advocates"][0]["score_now"] == pytest.approx(5.0)
    before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((d0 + 2 * DAY - 1) / 1000))
    assert _run(chdb_path, ch_database, "--account", "fans", "--json", "--as-of", before) == 0
    assert orjson.loads(capsys.readouterr().out)["participation"]["participating_followers"] == 0
    assert _run(chdb_path, ch_database, "--account", "fans", "--json", "--as-of", "now") == 0
    assert orjson.loads(capsys.readouterr().out)["as_of_ms"] == fx.NOW_MS  # the test's clock
    assert _run(chdb_path, ch_database, "--account", "solo") == 0
    out = capsys.readouterr().out
    for text in ("participation", "engaged followers per day", "never went beyond likes", "20.0%"):
        assert text in out, text
