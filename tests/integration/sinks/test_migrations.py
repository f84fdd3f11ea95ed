from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from streams.errors import FatalSinkError
from streams.sinks.clickhouse_migrations import MIGRATIONS_TABLE, Migrator, default_directory, discover
from streams.sinks.rows import TABLES

from .conftest import Query

CONTRACT_TABLES = {
    "account_activity_1m",
    "post_activity_1m",
    "engagement_transitions",
    "engaged_followers",
    "follower_scores",
    "engagement_alerts",
    "account_baseline",
    "follower_activity_1d",
}
CONTRACT_VIEWS = {
    "v_account_activity_1m",
    "v_post_activity_1m",
    "v_engagement_transitions",
    "v_engaged_followers",
    "v_engaged_followers_now",
    "v_engagement_ratio",
    "v_top_advocates",
    "v_posts_unanswered",
    "v_engagement_alerts",
    "v_open_alerts",
    "v_follower_activity_1d",
}


def _objects(q: Query) -> dict[str, str]:
    rows = q.rows("SELECT name, engine FROM system.tables WHERE database = {db:String}", db=q.database)
    return {str(name): str(engine) for name, engine in rows}


def test_migrate_an_empty_database_then_again_is_a_no_op(ch_client: Any, ch_database: str, q: Query) -> None:
    first = Migrator(ch_client, ch_database).migrate()
    assert [m.filename for m in first.applied] == [m.filename for m in discover()]
    objects = _objects(q)
    assert {n for n, e in objects.items() if e == "View"} == CONTRACT_VIEWS
    assert {n for n, e in objects.items() if e != "View"} == CONTRACT_TABLES | {MIGRATIONS_TABLE}
    recorded = q.rows(f"SELECT version, name, checksum FROM DB.{MIGRATIONS_TABLE} ORDER BY version")
    assert recorded == [(m.version, m.name, m.checksum) for m in discover()]
    ddl = q.rows(
        "SELECT name, create_table_query FROM system.tables WHERE database = {db:String}", db=ch_database
    )

    second = Migrator(ch_client, ch_database).migrate()
    assert second.applied == [] and second.ttl_changes == []
    assert q.rows(f"SELECT count() FROM DB.{MIGRATIONS_TABLE}") == [(len(recorded),)]
    assert sorted(ddl) == sorted(
        q.rows(
            "SELECT name, create_table_query FROM system.tables WHERE database = {db:String}", db=ch_database
        )
    )
    assert {s.state for s in Migrator(ch_client, ch_database).status()} == {"applied"}


def test_migrate_creates_a_missing_database(ch_client: Any) -> None:
    name = f"new_{uuid.uuid4().hex[:10]}"
    try:
        assert len(Migrator(ch_client, name).migrate().applied) == len(discover())
        assert Query(ch_client, name).rows("SELECT count() FROM DB.v_engaged_followers_now") == [(0,)]
    finally:
        ch_client.command(f"DROP DATABASE IF EXISTS {name}")


def test_the_writer_columns_exist_in_the_tables(ch_client: Any, ch_database: str, q: Query) -> None:
    Migrator(ch_client, ch_database).migrate()
    for spec in TABLES:
        columns = {
            str(r[0])
            for r in q.rows(
                "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String}",
                db=ch_database,
                t=spec.name,
            )
        }
        assert set(spec.columns) <= columns, spec.name


def test_a_changed_applied_file_is_an_error(ch_client: Any, ch_database: str, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(default_directory(), directory)
    Migrator(ch_client, ch_database, directory).migrate()

    views = directory / "0004_views.sql"
    views.write_text(views.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(FatalSinkError, match=r"0004_views\.sql"):
        Migrator(ch_client, ch_database, directory).migrate()
    states = {s.version: s.state for s in Migrator(ch_client, ch_database, directory).status()}
    assert states == {1: "applied", 2: "applied", 3: "applied", 4: "changed", 5: "applied"}

    (directory / "0001_activity.sql").unlink()
    (directory / "0006_more.sql").write_text("CREATE OR REPLACE VIEW v_more AS SELECT 1 AS one;")
    states = {s.version: s.state for s in Migrator(ch_client, ch_database, directory).status()}
    assert states == {1: "missing", 2: "applied", 3: "applied", 4: "changed", 5: "applied", 6: "pending"}


def test_a_new_file_is_applied_and_a_failing_one_is_not_recorded(
    ch_client: Any, ch_database: str, tmp_path: Path, q: Query
) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(default_directory(), directory)
    Migrator(ch_client, ch_database, directory).migrate()
    broken = directory / "0006_broken.sql"
    broken.write_text(
        "CREATE OR REPLACE VIEW v_ok AS SELECT 1 AS one;\nCREATE VIEW v_bad AS SELECT nope FROM nowhere;"
    )
    with pytest.raises(FatalSinkError, match=r"0006_broken\.sql"):
        Migrator(ch_client, ch_database, directory).migrate()
    assert q.rows(f"SELECT max(version) FROM DB.{MIGRATIONS_TABLE}") == [(5,)]
    broken.write_text("CREATE OR REPLACE VIEW v_ok AS SELECT 1 AS one;")  # never applied: may still change
    result = Migrator(ch_client, ch_database, directory).migrate()
    assert [m.version for m in result.applied] == [6]
    assert q.rows("SELECT one FROM DB.v_ok") == [(1,)]


def test_activity_ttl_is_reconciled(ch_client: Any, ch_database: str) -> None:
    migrator = Migrator(ch_client, ch_database, ttl_days=None)
    migrator.migrate()
    assert migrator.ttl_days_by_table() == {
        "account_activity_1m": 400,
        "post_activity_1m": 400,
        "follower_activity_1d": 400,
    }
    assert Migrator(ch_client, ch_database, ttl_days=400).migrate().ttl_changes == []

    changed = Migrator(ch_client, ch_database, ttl_days=30).migrate()
    assert changed.applied == [] and len(changed.ttl_changes) == 3
    assert migrator.ttl_days_by_table() == {
        "account_activity_1m": 30,
        "post_activity_1m": 30,
        "follower_activity_1d": 30,
    }
    assert Migrator(ch_client, ch_database, ttl_days=30).migrate().ttl_changes == []

    Migrator(ch_client, ch_database, ttl_days=0).migrate()
    assert migrator.ttl_days_by_table() == {
        "account_activity_1m": None,
        "post_activity_1m": None,
        "follower_activity_1d": None,
    }
