"""The migrator's ON CLUSTER mode, against a recording fake client.

A fake, because no ClickHouse cluster (Keeper, several servers) can run here; the cluster DDL files
themselves are parsed and run in a local rewrite by tests/integration/sinks/test_cluster_ddl.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from streams.errors import ConfigError
from streams.events import schema_dir
from streams.sinks.clickhouse_migrations import TTL_TABLES, Migrator, discover


@dataclass
class Result:
    result_rows: list[tuple[Any, ...]]


class RecordingClient:
    def __init__(self) -> None:
        self.commands: list[str] = []
        self.inserts: list[tuple[str, list[list[Any]]]] = []
        self.database: str | None = None

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Result:
        if "system.databases" in sql:
            return Result([(1,)])
        if "engine_full" in sql:
            return Result(
                [(f"{t}_local", "... TTL minute + toIntervalDay(400) SETTINGS ...") for t in TTL_TABLES]
            )
        return Result([])  # nothing recorded yet

    def command(self, sql: str) -> None:
        self.commands.append(sql)

    def insert(self, table: str, data: list[list[Any]], column_names: list[str]) -> None:
        self.inserts.append((table, data))


def test_cluster_mode_ddl() -> None:
    client = RecordingClient()
    cluster_dir = schema_dir().parent / "deploy" / "clickhouse" / "cluster"
    migrator = Migrator(
        client,
        "engagement",
        cluster_dir,
        ttl_days=90,
        cluster="prod",
        ttl_tables=tuple(f"{t}_local" for t in TTL_TABLES),
        clock=lambda: datetime(2025, 1, 1, tzinfo=UTC),
    )
    result = migrator.migrate()
    assert [m.version for m in result.applied] == [m.version for m in discover(cluster_dir)]
    create_db, bookkeeping, *statements = client.commands
    assert create_db == "CREATE DATABASE IF NOT EXISTS `engagement` ON CLUSTER 'prod'"
    assert (
        "ON CLUSTER 'prod'" in bookkeeping and "ReplicatedMergeTree('/clickhouse/tables/all/" in bookkeeping
    )
    assert all("'{cluster}'" not in s for s in statements)
    assert any("Distributed('prod', currentDatabase(), account_activity_1m_local" in s for s in statements)
    ttl = " ON CLUSTER 'prod' MODIFY TTL minute + INTERVAL 90 DAY"
    assert statements[-3:] == [
        f"ALTER TABLE `engagement`.`account_activity_1m_local`{ttl}",
        f"ALTER TABLE `engagement`.`follower_activity_1d_local`{ttl.replace('minute', 'day')}",
        f"ALTER TABLE `engagement`.`post_activity_1m_local`{ttl}",
    ]
    assert [table for table, _ in client.inserts] == ["engagement.schema_migrations"] * len(result.applied)


def test_cluster_name_must_be_an_identifier() -> None:
    with pytest.raises(ConfigError):
        Migrator(RecordingClient(), "engagement", cluster="x' SETTINGS")
