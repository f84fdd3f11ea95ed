"""The ClickHouse writer: ``write(SinkBatch)`` as one idempotent insert per table, over clickhouse-connect.

Works unchanged with ``chdb:///path`` (embedded, the default) and ``http(s)://user:pass@host:port/db`` (TLS
options: :mod:`streams.sinks.clickhouse_dsn`). The
database is the DSN's path (``?database=`` for chDB), ``engagement`` when the DSN names none; it is created
by the migrations if missing.

Idempotency: each table's insert carries ``insert_deduplication_token = "<batch.token>:<table>"``, and the
tables keep a deduplication window (``schemas/clickhouse/0001_activity.sql``), so writing a batch again —
after a crash between insert and offset commit, or a retry after a half-failed write — changes nothing.

Failures are never retried here: ``write`` raises :class:`~streams.errors.SinkUnavailable` (the caller backs
off with :class:`~streams.sinks.backoff.Backoff`, keeps the batch and tries again) or
:class:`~streams.errors.FatalSinkError` (stop). Connecting is lazy, so a worker starts while ClickHouse is
down and its first write simply reports it unavailable.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlparse, urlunparse

from streams.errors import ConfigError, EngageError, FatalSinkError, SinkUnavailable
from streams.events import cluster_migrations_dir
from streams.metrics import Metrics
from streams.settings import Settings
from streams.sinks.base import SinkBatch
from streams.sinks.clickhouse_dsn import cleartext_warning, client_kwargs, redact
from streams.sinks.clickhouse_errors import CHDB_ENGINE_BUSY, FATAL, RETRYABLE, translate
from streams.sinks.clickhouse_migrations import TTL_TABLES, Migrator, quote_ident
from streams.sinks.rows import TABLES, TableSpec, dedup_token

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "engagement"
DAY_MS = 86_400_000


def database_of(dsn: str, default: str = DEFAULT_DATABASE) -> str:
    """The database a DSN names: its path (``?database=`` for ``chdb:///path``), else ``default``."""
    parsed = urlparse(dsn)
    query = dict(parse_qsl(parsed.query))
    if "database" in query:
        name = query["database"]
    elif parsed.scheme == "chdb" and not parsed.netloc:
        name = ""  # chdb:///abs/path: the path is the data directory
    else:
        name = unquote(parsed.path.strip("/").split("/")[0])
    name = name or default
    quote_ident(name)  # validates
    return name


def server_dsn(dsn: str) -> str:
    """The DSN without its database, so connecting works before the database exists."""
    parsed = urlparse(dsn)
    query = urlencode([(k, v) for k, v in parse_qsl(parsed.query) if k != "database"])
    if parsed.scheme == "chdb":
        if parsed.netloc:  # chdb://memory/db
            return urlunparse(parsed._replace(path="", query=query))
        return f"chdb://{parsed.path}" + (f"?{query}" if query else "")  # urlunparse drops the empty host
    if parsed.scheme not in ("http", "https"):
        raise ConfigError(
            f"CLICKHOUSE_DSN must be chdb:///path or http(s)://user:pass@host:port/db, not {redact(dsn)}"
        )
    return urlunparse(parsed._replace(path="", query=query))


def connect(dsn: str, *, timeout_s: float | None = None) -> Any:
    """A clickhouse-connect client for ``dsn`` (no database selected). Raises driver exceptions.

    ``http(s)://`` DSNs are mapped by :func:`streams.sinks.clickhouse_dsn.client_kwargs` (the scheme decides
    TLS, whatever the port); ``chdb://`` goes to clickhouse-connect as it is. ``timeout_s`` bounds how long
    any one request of the client (its start-up queries included) waits for the server's answer, unless the
    DSN sets ``send_receive_timeout`` itself; None keeps clickhouse-connect's default (300 s), which suits
    an operator's report better than a worker's insert.
    """
    import clickhouse_connect

    dsn = server_dsn(dsn)
    if urlparse(dsn).scheme == "chdb":
        return clickhouse_connect.get_client(dsn=dsn)
    warning = cleartext_warning(dsn)
    if warning:
        log.warning(warning)
    kwargs = client_kwargs(dsn)
    if timeout_s is not None:
        kwargs.setdefault("send_receive_timeout", max(1, round(timeout_s)))
    return clickhouse_connect.get_client(**kwargs)


#: What an insert into the cluster schema's ``Distributed`` tables needs for effectively-once writes, set on
#: every insert rather than trusted to the writer's user profile: the insert waits until every shard wrote
#: its part (a failure reaches the worker, which retries the batch, instead of a background queue), so the
#: shards' ``Replicated*`` tables see the ``insert_deduplication_token`` and drop a repeat
#: (``deploy/clickhouse/README.md``, "Why it is correct").
CLUSTER_INSERT_SETTINGS: dict[str, Any] = {"distributed_foreground_insert": 1, "insert_deduplicate": 1}

#: A table whose engine tells the cluster schema (``Distributed``) from the single-server one.
_MARKER_TABLE = "account_activity_1m"


def holds_cluster_schema(client: Any, database: str) -> bool:
    """Whether ``database`` holds the cluster schema (its tables are ``Distributed``)."""
    rows = client.query(
        "SELECT engine FROM system.tables WHERE database = {database:String} AND name = {table:String}",
        parameters={"database": database, "table": _MARKER_TABLE},
    ).result_rows
    return bool(rows) and rows[0][0] == "Distributed"


def migrator_for(client: Any, database: str, ttl_days: int | None, cluster: str | None) -> Migrator:
    """The worker's migrations: the single-server schema, or the cluster DDL ``ON CLUSTER`` ``cluster``."""
    if not cluster:
        return Migrator(client, database, ttl_days=ttl_days)
    return Migrator(
        client,
        database,
        cluster_migrations_dir(),
        ttl_days=ttl_days,
        cluster=cluster,
        ttl_tables=tuple(f"{table}_local" for table in TTL_TABLES),
    )


def describe(settings: Settings) -> str:
    """Where the data is, for messages: the redacted DSN."""
    return redact(settings.effective_clickhouse_dsn)


@contextlib.contextmanager
def open_client(settings: Settings, *, must_exist: bool = False) -> Iterator[tuple[Any, str]]:
    """A connected client and the database name, for commands (``engage db``, ``engage report``).

    ``must_exist``: for an embedded chDB, refuse a data directory that does not exist yet instead of
    creating an empty one. Errors become :class:`SinkUnavailable` / :class:`FatalSinkError` with a message
    that says what to do, e.g. when a running worker holds the chDB directory.
    """
    dsn = settings.effective_clickhouse_dsn
    database = database_of(dsn)
    parsed = urlparse(dsn)
    if parsed.scheme == "chdb" and not parsed.netloc and must_exist and not Path(parsed.path).is_dir():
        raise ConfigError(
            f"no embedded ClickHouse data at {parsed.path}: run a worker or `engage db migrate`"
        )
    try:
        client = connect(dsn)
    except Exception as exc:
        error = translate(exc, f"connecting to {redact(dsn)}")
        if CHDB_ENGINE_BUSY in str(exc):
            error = SinkUnavailable(
                f"the embedded ClickHouse at {parsed.path} is in use by another process (a running "
                "`engage worker` or `engage demo`?). chDB allows one process per data directory: stop that "
                "process, or run ClickHouse as a server and set CLICKHOUSE_DSN."
            )
        raise error from exc
    try:
        yield client, database
    except EngageError:
        raise
    except Exception as exc:
        raise translate(exc, f"a query on {redact(dsn)}, database {database}") from exc
    finally:
        client.close()


def ttl_days(settings: Settings) -> int:
    return settings.activity_ttl_ms // DAY_MS


class ClickHouseSink:
    """The :class:`~streams.sinks.base.Sink` for ClickHouse. Thread-safe: writes are serialised.

    Build it with :meth:`from_settings` (a DSN; connects lazily, migrates first when configured) or
    :meth:`for_client` (an existing client, e.g. the tests' shared chDB client, and a database name).
    ``score_half_life_ms`` is stored with each score row (W/4, see ``FollowerScore``).
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        database: str,
        metrics: Metrics,
        *,
        score_half_life_ms: int,
        migrator: Callable[[Any], Migrator] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        owns_client: bool = True,
        cluster: str | None = None,
        refuse_cluster_schema: bool = False,
    ) -> None:
        """``cluster``: the tables are ``Distributed`` over this cluster (inserts then carry
        :data:`CLUSTER_INSERT_SETTINGS`). ``refuse_cluster_schema``: stop, at the first connection, if the
        database holds the cluster schema (the single-server migrations were about to run on it)."""
        if score_half_life_ms <= 0:
            raise ConfigError("score half-life must be positive")
        self._connect = connect
        self.database = database
        self.metrics = metrics
        self.score_half_life_ms = score_half_life_ms
        self._migrator = migrator
        self._clock = clock
        self._owns_client = owns_client
        self.cluster = cluster
        self._refuse_cluster_schema = refuse_cluster_schema
        self._insert_settings: dict[str, Any] = dict(CLUSTER_INSERT_SETTINGS) if cluster else {}
        self._client: Any = None
        self._contexts: dict[str, Any] = {}
        # The tables the latest batch token was already inserted into: its retry after a partial
        # failure skips them (the server would drop them by token), so no rows count twice.
        self._written: tuple[str, set[str]] = ("", set())
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, metrics: Metrics, *, migrate: bool | None = None
    ) -> ClickHouseSink:
        """The worker's writer: ``CLICKHOUSE_DSN`` (or the embedded chDB), migrating first if configured:
        the cluster DDL ``ON CLUSTER`` when ``ENGAGE_CLICKHOUSE_CLUSTER`` names one, else the single-server
        schema, which is refused on a database that holds the cluster schema."""
        return cls.from_dsn(
            settings.effective_clickhouse_dsn,
            metrics,
            score_half_life_ms=settings.window_ms // 4,
            migrate=settings.migrate_on_start if migrate is None else migrate,
            ttl_days=ttl_days(settings),
            cluster=settings.clickhouse_cluster or None,
            timeout_s=settings.sink_timeout_ms / 1000,
        )

    @classmethod
    def from_dsn(
        cls,
        dsn: str,
        metrics: Metrics,
        *,
        score_half_life_ms: int,
        migrate: bool = False,
        ttl_days: int | None = None,
        cluster: str | None = None,
        timeout_s: float | None = None,
    ) -> ClickHouseSink:
        """A writer for ``dsn``; connects (and migrates, if asked) on first use.

        ``timeout_s`` bounds each request (see :func:`connect`): an insert that hangs must end as
        :class:`SinkUnavailable` and be retried, or the retry loop (which a revocation interrupts) would sit
        behind one request for clickhouse-connect's 300 s, and the next owner's first write behind it.
        """
        database = database_of(dsn)
        server_dsn(dsn)  # validates the scheme now rather than at the first write
        return cls(
            lambda: connect(dsn, timeout_s=timeout_s),
            database,
            metrics,
            score_half_life_ms=score_half_life_ms,
            migrator=(lambda client: migrator_for(client, database, ttl_days, cluster)) if migrate else None,
            cluster=cluster,
            refuse_cluster_schema=migrate and not cluster,
        )

    @classmethod
    def for_client(
        cls,
        client: Any,
        database: str,
        metrics: Metrics,
        *,
        score_half_life_ms: int = 30 * DAY_MS // 4,
        migrate: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> ClickHouseSink:
        return cls(
            lambda: client,
            database,
            metrics,
            score_half_life_ms=score_half_life_ms,
            migrator=(lambda c: Migrator(c, database)) if migrate else None,
            clock=clock,
            owns_client=False,
        )

    # --- connection ---------------------------------------------------------------------------------

    def open(self) -> Any:
        """Connect (and migrate) if not done yet; raises SinkUnavailable / FatalSinkError."""
        if self._client is not None:
            return self._client
        try:
            client = self._connect()
        except Exception as exc:
            raise translate(exc, f"connect to ClickHouse (database {self.database})") from exc
        if self.cluster is None:
            try:
                cluster_schema = holds_cluster_schema(client, self.database)
            except Exception as exc:
                if self._owns_client:
                    client.close()
                raise translate(exc, f"reading the schema of database {self.database}") from exc
            if cluster_schema and self._refuse_cluster_schema:
                if self._owns_client:
                    client.close()
                raise FatalSinkError(
                    f"database {self.database} holds the ClickHouse cluster schema (Distributed tables), but "
                    "ENGAGE_CLICKHOUSE_CLUSTER is empty, so this worker would apply the single-server "
                    "migrations to it. Set ENGAGE_CLICKHOUSE_CLUSTER to the cluster name (the worker then "
                    "applies deploy/clickhouse/cluster ON CLUSTER), or ENGAGE_MIGRATE_ON_START=false"
                )
            if cluster_schema:  # told nothing, but inserting into Distributed tables: keep the guarantee
                self._insert_settings = dict(CLUSTER_INSERT_SETTINGS)
        if self._migrator is not None:
            try:
                result = self._migrator(client).migrate()
            except Exception as exc:
                if self._owns_client:
                    client.close()
                raise translate(exc, f"migrating database {self.database}") from exc
            for migration in result.applied:
                log.info("applied ClickHouse migration %s", migration.filename)
        self._client = client
        return client

    def close(self) -> None:
        with self._lock:
            if self._client is not None and self._owns_client:
                self._client.close()
            self._client = None
            self._contexts.clear()

    # --- writing ------------------------------------------------------------------------------------

    def write(self, batch: SinkBatch) -> None:
        """Insert every non-empty table of ``batch``; idempotent by ``batch.token``."""
        with self._lock:
            client = self.open()
            token, written = self._written
            if token != batch.token:
                written = set()
                self._written = (batch.token, written)
            for spec in TABLES:
                if spec.name in written:
                    continue
                columns = spec.columns_of(batch, self.score_half_life_ms)
                if columns[0]:
                    self._insert(client, spec, columns, batch.token)
                written.add(spec.name)

    def query_rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """A read on the writer's own connection, serialised with its writes.

        chDB lets one process open a data path, so a process that writes can read only through this
        connection (the benchmark checks here when its latency probes became visible)."""
        with self._lock:
            client = self.open()
            try:
                return [tuple(row) for row in client.query(sql, parameters=parameters).result_rows]
            except Exception as exc:
                raise translate(exc, f"a query on database {self.database}") from exc

    def _insert(self, client: Any, spec: TableSpec, columns: list[list[Any]], token: str) -> None:
        rows = len(columns[0])
        what = f"insert of {rows} rows into {self.database}.{spec.name}"
        started = self._clock()
        try:
            context = self._context(client, spec)
            context.settings.update(self._insert_settings)  # on a cluster: CLUSTER_INSERT_SETTINGS
            context.settings["insert_deduplication_token"] = dedup_token(token, spec.name)
            client.insert(data=columns, context=context)
        except Exception as exc:
            error = translate(exc, what)
            kind = RETRYABLE if isinstance(error, SinkUnavailable) else FATAL
            self.metrics.insert_failures.labels(spec.name, kind).inc()
            if isinstance(error, FatalSinkError):
                self._contexts.pop(spec.name, None)
            raise error from exc
        self.metrics.flush_latency.labels(spec.name).observe(self._clock() - started)
        self.metrics.rows_written.labels(spec.name).inc(rows)
        self.metrics.batches_written.labels(spec.name).inc()

    def _context(self, client: Any, spec: TableSpec) -> Any:
        """The table's insert context, made once and reused for every insert.

        Reuse saves a DESCRIBE round trip per insert, and it bounds memory: clickhouse-connect 1.13 keeps
        an insert's columns in its context after the insert (``data = None`` clears ``_data`` but not
        ``_block_columns``) and the context refers to itself (``_next_block_data`` is its bound method),
        so a context per insert was garbage held until a full collection, with every row's Python
        objects. The worker collects rarely (``streams.runtime.WORKER_GC_THRESHOLDS``): its RSS grew
        steadily in the demo (issue 17; README, "Performance"). Reused, a table's context holds its last
        batch only.
        """
        context = self._contexts.get(spec.name)
        if context is None:
            context = self._contexts[spec.name] = client.create_insert_context(
                table=spec.name, column_names=list(spec.columns), database=self.database, column_oriented=True
            )
        return context
