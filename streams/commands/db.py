"""``engage db migrate`` / ``engage db status``: the versioned ClickHouse schema (``schemas/clickhouse``).

``migrate`` applies pending migrations and the activity TTL (``ENGAGE_ACTIVITY_TTL``); running it again
is a no-op. ``status`` lists every migration as applied, pending, changed (the file differs from what was
applied: an error) or missing (applied, but the file is gone), and exits 1 on changed or missing.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from streams.events import cluster_migrations_dir
from streams.settings import Settings
from streams.sinks.clickhouse_migrations import TTL_TABLES, Migrator


def register(sub: Any) -> None:
    parser = sub.add_parser("db", help="ClickHouse schema: migrate, status")
    actions = parser.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    for name, text in (
        ("migrate", "apply pending migrations (a no-op when up to date)"),
        ("status", "list migrations and whether they are applied"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument(
            "--dir", type=Path, default=None, help="migrations directory (default: schemas/clickhouse)"
        )
        action.add_argument(
            "--cluster",
            default=None,
            help="cluster name: apply the ON CLUSTER variant (default --dir: deploy/clickhouse/cluster)",
        )
        action.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.sinks.clickhouse import describe, open_client

    if args.cluster is None and settings.clickhouse_cluster:
        args.cluster = settings.clickhouse_cluster
    with open_client(settings) as (client, database):
        ttl_tables = tuple(f"{t}_local" for t in TTL_TABLES) if args.cluster else TTL_TABLES
        directory = args.dir
        if args.cluster and directory is None:
            directory = cluster_migrations_dir()
        migrator = Migrator(
            client,
            database,
            directory,
            ttl_days=settings.activity_ttl_ms // 86_400_000,
            cluster=args.cluster,
            ttl_tables=ttl_tables,
        )
        where = f"{describe(settings)}, database {database}"
        if args.db_command == "migrate":
            result = migrator.migrate()
            for migration in result.applied:
                print(f"applied {migration.filename}")
            for change in result.ttl_changes:
                print(f"ttl {change}")
            if not result.applied and not result.ttl_changes:
                print(f"up to date ({where})")
            else:
                print(f"migrated {where}")
            return 0
        statuses = migrator.status()
        for status in statuses:
            at = status.applied_at.isoformat(sep=" ", timespec="seconds") if status.applied_at else ""
            print(f"{status.version:04d}  {status.name:<28} {status.state:<8} {at}".rstrip())
        for table, days in sorted(migrator.ttl_days_by_table().items()):
            print(f"ttl {table}: {'none' if days is None else f'{days} days'}")
        print(where)
        return 1 if any(s.state in ("changed", "missing") for s in statuses) else 0
