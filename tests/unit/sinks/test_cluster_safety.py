"""A ClickHouse cluster is safe by default (issue 19, item 4), against a recording fake client.

A fake, because no ClickHouse cluster can run here. Before: a worker with the default
ENGAGE_MIGRATE_ON_START=true applied the single-server migrations to a cluster database, and inserts into
the Distributed tables relied on the writer's profile for ``distributed_foreground_insert``.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams.errors import FatalSinkError
from streams.metrics import Metrics
from streams.settings import Settings
from streams.sinks.clickhouse import CLUSTER_INSERT_SETTINGS, ClickHouseSink, migrator_for
from streams.sinks.rows import TABLES


@dataclass
class Result:
    result_rows: list[tuple[Any, ...]]


class FakeClickHouse:
    """Answers the schema probe with ``engine`` for the marker table; records commands and inserts."""

    def __init__(self, engine: str | None) -> None:
        self.engine = engine
        self.commands: list[str] = []
        self.inserts: list[dict[str, Any]] = []
        self.database: str | None = None

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Result:
        if "FROM system.tables" in sql and "engine" in sql and parameters and "table" in parameters:
            return Result([(self.engine,)] if self.engine else [])
        if "system.databases" in sql:
            return Result([(1,)])
        return Result([])

    def command(self, sql: str) -> None:
        self.commands.append(sql)

    def insert(
        self, table: str | None = None, data: Any = None, column_names: Any = None, **kwargs: Any
    ) -> None:
        context = kwargs.get("context")
        if context is not None:  # the writer's inserts (one reused context per table), not the migrator's
            self.inserts.append({"table": context.table, "settings": dict(context.settings)})

    def create_insert_context(self, table: str, **kwargs: Any) -> Any:
        return SimpleNamespace(table=table, settings={}, column_types=None)

    def close(self) -> None:
        pass


def _sink(client: FakeClickHouse, **env: str) -> ClickHouseSink:
    settings = Settings.from_env({"CLICKHOUSE_DSN": "https://w:p@ch.internal/engagement", **env})
    sink = ClickHouseSink.from_settings(settings, Metrics.create(CollectorRegistry()))
    sink._connect = lambda: client  # the fake instead of a server
    return sink


def test_single_server_migrations_are_refused_on_a_cluster_database() -> None:
    client = FakeClickHouse("Distributed")
    with pytest.raises(FatalSinkError, match="ENGAGE_CLICKHOUSE_CLUSTER") as caught:
        _sink(client).open()
    assert "ENGAGE_MIGRATE_ON_START=false" in str(caught.value)
    assert client.commands == []  # nothing was applied


def test_a_named_cluster_applies_the_cluster_ddl_on_cluster() -> None:
    migrator = migrator_for(FakeClickHouse(None), "engagement", 400, "prod")
    assert migrator.cluster == "prod" and migrator.directory is not None
    assert migrator.directory.name in ("cluster", "clickhouse-cluster")
    assert all(table.endswith("_local") for table in migrator.ttl_tables)
    client = FakeClickHouse(None)
    _sink(client, ENGAGE_CLICKHOUSE_CLUSTER="prod").open()
    assert client.commands and all(
        "ON CLUSTER 'prod'" in c for c in client.commands if c.startswith("CREATE")
    )


@pytest.mark.parametrize(
    ("engine", "env", "expected"),
    [
        ("Distributed", {"ENGAGE_CLICKHOUSE_CLUSTER": "prod"}, True),
        ("Distributed", {"ENGAGE_MIGRATE_ON_START": "false"}, True),  # told nothing, found the cluster
        ("SummingMergeTree", {"ENGAGE_MIGRATE_ON_START": "false"}, False),
    ],
)
def test_cluster_inserts_carry_the_settings_the_guarantee_needs(
    engine: str, env: dict[str, str], expected: bool
) -> None:
    client = FakeClickHouse(engine)
    sink = _sink(client, **{"ENGAGE_MIGRATE_ON_START": "false", **env})
    sink._insert(sink.open(), TABLES[0], [[1]], "token")
    (insert,) = client.inserts
    assert insert["settings"]["insert_deduplication_token"].startswith("token")
    assert (insert["settings"].get("distributed_foreground_insert") == 1) is expected
    assert (CLUSTER_INSERT_SETTINGS.items() <= insert["settings"].items()) is expected
