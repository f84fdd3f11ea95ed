"""deploy/clickhouse/cluster: valid SQL, and the same contract (names, columns, answers) as the single node.

chDB has no Keeper and no cluster, so the replicated/distributed DDL cannot run here as written. The test
parses every statement, then runs a local rewrite of it — Replicated*MergeTree → *MergeTree, Distributed →
Merge over the *_local table, no ON CLUSTER — and checks that the contract tables and views have the same
columns and give the same answers as the single-node schema on the same data.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.events import schema_dir
from streams.sinks.clickhouse import ClickHouseSink
from streams.sinks.clickhouse_migrations import Migrator, discover, split_statements

from . import fixture_data as fx
from .conftest import Query

CLUSTER_DIR = schema_dir().parent / "deploy" / "clickhouse" / "cluster"


def _local_rewrite(sql: str) -> str:
    sql = sql.replace(" ON CLUSTER '{cluster}'", "")
    sql = re.sub(r"Replicated(\w*)MergeTree\('[^']*', '\{replica\}'(?:, )?", r"\1MergeTree(", sql)
    return re.sub(
        r"ENGINE = Distributed\('\{cluster\}', currentDatabase\(\), (\w+), [^;]*?\);",
        r"ENGINE = Merge(currentDatabase(), '^\1$');",
        sql,
    )


@pytest.fixture
def cluster_db(ch_client: Any, tmp_path: Path) -> Iterator[str]:
    directory = tmp_path / "cluster-local"
    directory.mkdir()
    for migration in discover(CLUSTER_DIR):
        (directory / migration.filename).write_text(_local_rewrite(migration.sql))
    name = f"c_{uuid.uuid4().hex[:10]}"
    Migrator(ch_client, name, directory).migrate()
    yield name
    ch_client.command(f"DROP DATABASE IF EXISTS {name}")


def test_every_cluster_statement_parses(ch_client: Any) -> None:
    assert [m.filename for m in discover(CLUSTER_DIR)] == [m.filename for m in discover()]
    statements = [s for m in discover(CLUSTER_DIR) for s in m.statements]
    assert len(statements) > 20
    for statement in statements:
        ch_client.query(f"EXPLAIN AST {statement}")
        assert "ON CLUSTER '{cluster}'" in statement


def test_the_rewrite_removes_every_cluster_construct() -> None:
    for migration in discover(CLUSTER_DIR):
        local = "\n".join(split_statements(_local_rewrite(migration.sql)))
        assert not re.search(r"Replicated|Distributed|ON CLUSTER|\{shard\}|\{replica\}", local), (
            migration.filename
        )


def _contract(q: Query) -> dict[str, list[tuple[str, str]]]:
    rows = q.rows(
        "SELECT table, name, type FROM system.columns WHERE database = {db:String} "
        "AND table NOT LIKE '%\\_local' AND table != 'schema_migrations' ORDER BY table, position",
        db=q.database,
    )
    out: dict[str, list[tuple[str, str]]] = {}
    for table, name, type_ in rows:
        out.setdefault(str(table), []).append((str(name), str(type_)))
    return out


def test_same_contract_and_answers_as_a_single_node(
    ch_client: Any, sink: ClickHouseSink, q: Query, cluster_db: str
) -> None:
    cq = Query(ch_client, cluster_db)
    assert _contract(cq) == _contract(q)

    fx.load(sink, q)
    tables = [t for t in _contract(q) if not t.startswith("v_")]
    for table in tables:
        target = table if table == "account_baseline" else f"{table}_local"
        cq.command(f"INSERT INTO DB.{target} SELECT * FROM `{q.database}`.{table}")
    for view in (t for t in _contract(q) if t.startswith("v_")):
        columns = "* EXCEPT (score_now)" if view == "v_top_advocates" else "*"  # decays with the clock
        sql = f"SELECT {columns} FROM DB.{view} ORDER BY ALL"
        single, cluster = q.rows(sql), cq.rows(sql)
        assert cluster == single, view
        assert single, f"{view} is empty on the fixture: the comparison would prove nothing"
