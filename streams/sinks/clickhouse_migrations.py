"""Versioned ClickHouse schema: ``schemas/clickhouse/NNNN_name.sql`` applied in order, each once.

The migrator keeps a table ``schema_migrations`` (version, name, checksum, applied_at) in the target
database. ``migrate()`` applies every file whose version is not recorded, in version order, and records it
(with the SHA-256 of the file) after all its statements succeeded; running it again is a no-op. A recorded
file whose text changed since it was applied is an error: a released migration is immutable, a change is a
new file. Statements should be idempotent (``CREATE TABLE IF NOT EXISTS``, ``CREATE OR REPLACE VIEW``) so a
migration interrupted half-way can simply be applied again.

Files contain plain ClickHouse SQL with unqualified table names; the migrator runs them with the target
database as the session's current database. After the files it reconciles one setting, the activity TTL
(``ENGAGE_ACTIVITY_TTL``), on every table whose TTL is ``minute + INTERVAL n DAY``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.errors import ConfigError, FatalSinkError
from streams.sinks.clickhouse_errors import RETRYABLE, classify, translate

MIGRATIONS_TABLE = "schema_migrations"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The tables whose retention ENGAGE_ACTIVITY_TTL controls (their TTL is `minute + INTERVAL n DAY`).
TTL_TABLES: tuple[str, ...] = ("account_activity_1m", "post_activity_1m", "follower_activity_1d")
# Each table's TTL column: the *_1m tables' minute, follower_activity_1d's day.
_TTL_COLUMN = {"follower_activity_1d": "day"}
_TTL = re.compile(r"\bTTL (?:minute|day) \+ toIntervalDay\((\d+)\)")


def default_directory() -> Path:
    """``schemas/clickhouse`` beside the package (a checkout or an editable install)."""
    from streams.events import schema_dir

    return schema_dir() / "clickhouse"


def quote_ident(name: str) -> str:
    """A database or table name as a backquoted identifier; only plain names are accepted."""
    if not _IDENT.match(name):
        raise ConfigError(f"not a plain ClickHouse identifier: {name!r}")
    return f"`{name}`"


def _neutral_database(client: Any) -> str | None:
    """What to switch back to after migrating: a chDB handle keeps its last USE even when the client's
    database is set to None, and the migrated database may be dropped later, so it returns to ``default``."""
    return "default" if type(client).__name__ == "ChdbClient" else None


def split_statements(sql: str) -> list[str]:
    """Split a file into statements at ``;``, ignoring ``;`` inside quotes and comments."""
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"`":
            end = i + 1
            while end < n and sql[end] != ch:
                end += 2 if sql[end] == "\\" else 1
            current.append(sql[i : end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch == ";":
            statements.append("".join(current).strip())
            current = []
            i += 1
        else:
            current.append(ch)
            i += 1
    statements.append("".join(current).strip())
    return [s for s in statements if s]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def filename(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"

    @property
    def statements(self) -> list[str]:
        return split_statements(self.sql)


def discover(directory: Path | None = None) -> list[Migration]:
    """Every ``NNNN_name.sql`` in ``directory``, by version. Any other ``.sql`` file is an error."""
    root = directory or default_directory()
    if not root.is_dir():
        raise ConfigError(f"no migrations directory at {root}")
    found: dict[int, Migration] = {}
    for path in sorted(root.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise ConfigError(f"{path}: migration files are named NNNN_lowercase_name.sql")
        version = int(match.group(1))
        if version in found:
            raise ConfigError(f"{path}: version {version} is used by {found[version].filename} too")
        found[version] = Migration(version, match.group(2), path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


@dataclass(frozen=True)
class Status:
    """One migration as the database sees it: ``applied``, ``pending``, ``changed`` or ``missing``."""

    version: int
    name: str
    state: str
    applied_at: datetime | None = None


@dataclass(frozen=True)
class MigrateResult:
    applied: list[Migration]
    ttl_changes: list[str]


class Migrator:
    """Applies :func:`discover`'s migrations to ``database`` through a clickhouse-connect client.

    ``ttl_days`` is the activity retention to enforce (0: none; ``None``: leave the tables' TTL alone).
    ``cluster``, if set, creates the database and bookkeeping table ``ON CLUSTER`` (replicated), replaces the
    ``'{cluster}'`` macro in statements with it and alters TTLs on the cluster; with the cluster DDL
    (deploy/clickhouse/cluster) pass the ``*_local`` tables as ``ttl_tables``.
    """

    def __init__(
        self,
        client: Any,
        database: str,
        directory: Path | None = None,
        *,
        ttl_days: int | None = None,
        cluster: str | None = None,
        ttl_tables: tuple[str, ...] = TTL_TABLES,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.database = database
        self.directory = directory
        self.ttl_days = ttl_days
        self.cluster = cluster
        self.ttl_tables = ttl_tables
        self.clock = clock
        self._db = quote_ident(database)
        if cluster:
            quote_ident(cluster)

    # --- bookkeeping ------------------------------------------------------------------------------

    def _on_cluster(self) -> str:
        return f" ON CLUSTER '{self.cluster}'" if self.cluster else ""

    def _prepare(self) -> None:
        exists = self.client.query(
            "SELECT count() FROM system.databases WHERE name = {db:String}", parameters={"db": self.database}
        ).result_rows[0][0]
        if not exists or self.cluster:  # on a cluster, other nodes may lack it
            self.client.command(f"CREATE DATABASE IF NOT EXISTS {self._db}{self._on_cluster()}")
        if self.cluster:
            # No {shard} in the path: every node of every shard shares the one record.
            engine = "ReplicatedMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}')"
        else:
            engine = "MergeTree"
        self.client.command(
            f"CREATE TABLE IF NOT EXISTS {self._db}.{MIGRATIONS_TABLE}{self._on_cluster()} "
            "(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC')) "
            f"ENGINE = {engine} ORDER BY version"
        )

    def _recorded(self) -> dict[int, tuple[str, str, datetime]]:
        rows = self.client.query(
            f"SELECT version, argMax(name, applied_at), argMax(checksum, applied_at), max(applied_at) "
            f"FROM {self._db}.{MIGRATIONS_TABLE} GROUP BY version"
        ).result_rows
        return {int(v): (str(name), str(checksum), at) for v, name, checksum, at in rows}

    def status(self) -> list[Status]:
        """Every migration on disk or in the database, in version order, without changing anything."""
        exists = self.client.query(
            "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
            parameters={"db": self.database, "t": MIGRATIONS_TABLE},
        ).result_rows[0][0]
        recorded = self._recorded() if exists else {}
        on_disk = {m.version: m for m in discover(self.directory)}
        result: list[Status] = []
        for version in sorted(set(recorded) | set(on_disk)):
            migration = on_disk.get(version)
            if version not in recorded:
                assert migration is not None
                result.append(Status(version, migration.name, "pending"))
                continue
            name, checksum, at = recorded[version]
            if migration is None:
                result.append(Status(version, name, "missing", at))
            elif migration.checksum != checksum:
                result.append(Status(version, migration.name, "changed", at))
            else:
                result.append(Status(version, migration.name, "applied", at))
        return result

    # --- applying ---------------------------------------------------------------------------------

    def migrate(self) -> MigrateResult:
        """Apply what is pending; raise :class:`FatalSinkError` if an applied file changed."""
        migrations = discover(self.directory)
        self._prepare()
        recorded = self._recorded()
        changed = [
            m.filename for m in migrations if m.version in recorded and m.checksum != recorded[m.version][1]
        ]
        if changed:
            raise FatalSinkError(
                f"already-applied migration(s) changed on disk: {', '.join(changed)} "
                f"(database {self.database}). Restore the original file and put the change in a new one."
            )
        applied: list[Migration] = []
        previous = self.client.database
        self.client.database = self.database
        try:
            for migration in migrations:
                if migration.version in recorded:
                    continue
                for statement in migration.statements:
                    if self.cluster:
                        statement = statement.replace("'{cluster}'", f"'{self.cluster}'")
                    try:
                        self.client.command(statement)
                    except Exception as exc:
                        if classify(exc) == RETRYABLE:  # the server went away: try the migration again later
                            raise translate(exc, f"migration {migration.filename}") from exc
                        raise FatalSinkError(
                            f"migration {migration.filename} failed: {exc}\nstatement:\n{statement}"
                        ) from exc
                self.client.insert(
                    f"{self.database}.{MIGRATIONS_TABLE}",
                    [[migration.version, migration.name, migration.checksum, self.clock()]],
                    column_names=["version", "name", "checksum", "applied_at"],
                )
                applied.append(migration)
        finally:
            self.client.database = previous or _neutral_database(self.client)
        ttl_changes = self._reconcile_ttl() if self.ttl_days is not None else []
        return MigrateResult(applied, ttl_changes)

    def ttl_days_by_table(self) -> dict[str, int | None]:
        """The activity TTL in days of each existing table of ``ttl_tables`` (``None``: no TTL)."""
        rows = self.client.query(
            "SELECT name, engine_full FROM system.tables "
            "WHERE database = {db:String} AND has({t:Array(String)}, name)",
            parameters={"db": self.database, "t": list(self.ttl_tables)},
        ).result_rows
        result: dict[str, int | None] = {}
        for name, engine_full in rows:
            match = _TTL.search(engine_full)
            result[str(name)] = int(match.group(1)) if match else None
        return result

    def _reconcile_ttl(self) -> list[str]:
        changes: list[str] = []
        for table, days in sorted(self.ttl_days_by_table().items()):
            wanted = self.ttl_days or None
            if days == wanted:
                continue
            column = _TTL_COLUMN.get(table.removesuffix("_local"), "minute")
            clause = f"MODIFY TTL {column} + INTERVAL {wanted} DAY" if wanted else "REMOVE TTL"
            self.client.command(f"ALTER TABLE {self._db}.{quote_ident(table)}{self._on_cluster()} {clause}")
            changes.append(f"{table}: {clause}")
        return changes
