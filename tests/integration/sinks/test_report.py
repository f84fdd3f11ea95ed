"""``engage report`` on the hand-computed fixture, through its command function and a chDB DSN."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
import pytest

from streams.commands import report
from streams.settings import Settings
from streams.sinks.clickhouse import ClickHouseSink

from . import fixture_data as fx
from .conftest import DAY, HOUR, Query


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
    assert got == {
        "account_id": "acme",
        "now_ms": fx.NOW_MS,
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
