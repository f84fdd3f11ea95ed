from __future__ import annotations

import re
from pathlib import Path

import pytest

from streams.errors import ConfigError
from streams.sinks.clickhouse import database_of, redact, server_dsn
from streams.sinks.clickhouse_migrations import default_directory, discover, split_statements


def test_split_ignores_semicolons_in_strings_and_comments() -> None:
    sql = """
    -- a comment; with a semicolon
    CREATE TABLE a (x String DEFAULT 'a;b') ENGINE = Memory; /* block; comment */
    CREATE VIEW v AS SELECT 'it\\'s;' AS s;
    ;
    """
    assert split_statements(sql) == [
        "CREATE TABLE a (x String DEFAULT 'a;b') ENGINE = Memory",
        "CREATE VIEW v AS SELECT 'it\\'s;' AS s",
    ]


def test_shipped_migrations_are_numbered_from_one_without_gaps() -> None:
    migrations = discover()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert all(m.statements for m in migrations)
    for m in migrations:
        for statement in m.statements:
            # Idempotent statements, so an interrupted migration can be applied again.
            assert re.match(r"CREATE (TABLE IF NOT EXISTS|OR REPLACE VIEW) ", statement), statement


def test_discover_rejects_bad_names_and_duplicate_versions(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1")
    (tmp_path / "0001_b.sql").write_text("SELECT 2")
    with pytest.raises(ConfigError, match="version 1"):
        discover(tmp_path)
    (tmp_path / "0001_b.sql").unlink()
    (tmp_path / "2_bad.sql").write_text("SELECT 2")
    with pytest.raises(ConfigError, match="NNNN_"):
        discover(tmp_path)


def test_checksum_follows_the_text() -> None:
    first = discover(default_directory())[0]
    assert len(first.checksum) == 64
    assert first.checksum != type(first)(first.version, first.name, first.sql + " ").checksum


@pytest.mark.parametrize(
    ("dsn", "database", "server"),
    [
        ("chdb:///var/lib/engage/clickhouse", "engagement", "chdb:///var/lib/engage/clickhouse"),
        ("chdb:///data/ch?database=other", "other", "chdb:///data/ch"),
        ("http://u:p@ch:8123/analytics", "analytics", "http://u:p@ch:8123"),
        ("https://u:p@ch:8443", "engagement", "https://u:p@ch:8443"),
        ("https://ch:8443/?database=x&compress=lz4", "x", "https://ch:8443?compress=lz4"),
    ],
)
def test_database_from_the_dsn(dsn: str, database: str, server: str) -> None:
    assert database_of(dsn) == database
    assert server_dsn(dsn) == server


def test_bad_dsns_and_redaction() -> None:
    with pytest.raises(ConfigError):
        database_of("http://ch:8123/bad-name;DROP")
    with pytest.raises(ConfigError, match="CLICKHOUSE_DSN"):
        server_dsn("postgres://u:secret@h/db")
    assert redact("https://u:s3cret@ch:8443/db") == "https://u:***@ch:8443/db"
