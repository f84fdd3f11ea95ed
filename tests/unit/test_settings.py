from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from streams.errors import ConfigError
from streams.settings import ENV_VARS, Settings, parse_duration_ms


def test_defaults_are_the_embedded_stack() -> None:
    s = Settings.from_env({})
    assert s.embedded_kafka
    assert s.effective_clickhouse_dsn.startswith("chdb://")
    assert (s.engaged_threshold, s.window_ms, s.min_words) == (3, 30 * 86_400_000, 2)
    assert s.allowed_lateness_ms == 3_600_000


def test_every_default_parses_to_the_dataclass_default() -> None:
    assert Settings.from_env({}) == Settings()


def test_environment_overrides() -> None:
    s = Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
            "CLICKHOUSE_DSN": "http://u:p@ch:8123/db",
            "ENGAGE_WINDOW": "7d",
            "ENGAGE_TOPIC_PREFIX": "prod.",
            "ENGAGE_DATA_DIR": "/var/lib/engage",
            "ENGAGE_WEBHOOK_SECRETS": "generic=abc, meta=def",
        }
    )
    assert not s.embedded_kafka
    assert s.effective_clickhouse_dsn == "http://u:p@ch:8123/db"
    assert s.window_ms == 7 * 86_400_000
    assert s.topics.comment == "prod.interactions.comment"
    assert s.topics.for_type("unfollow") == "prod.interactions.follow"
    assert s.data_dir == Path("/var/lib/engage")
    assert s.webhook_secrets == {"generic": "abc", "meta": "def"}


def test_secrets_are_not_in_repr_or_errors() -> None:
    s = Settings.from_env({"ENGAGE_WEBHOOK_SECRETS": "generic=topsecret"})
    assert "topsecret" not in repr(s)
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"ENGAGE_WEBHOOK_SECRETS": "nopairs-topsecret"})
    assert "topsecret" not in str(info.value)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"ENGAGE_WINDOW": "soon"}, "ENGAGE_WINDOW"),
        ({"ENGAGE_ENGAGED_THRESHOLD": "0"}, "THRESHOLD"),
        ({"ENGAGE_TOPIC_PARTITIONS": "many"}, "ENGAGE_TOPIC_PARTITIONS"),
        ({"ENGAGE_WINDOWW": "1d"}, "unknown setting"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("500ms", 500),
        ("90s", 90_000),
        ("15m", 900_000),
        ("30d", 2_592_000_000),
        ("2", 2000),
        ("1.5h", 5_400_000),
    ],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().window_ms = 1  # type: ignore[misc]


def test_every_setting_is_declared_once_with_help() -> None:
    names = [var.name for var in ENV_VARS]
    assert len(ENV_VARS) == len(fields(Settings)), "every Settings field is declared with setting()"
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
    assert [var.name for var in ENV_VARS if not var.help.strip()] == []
    assert [n for n in names if not re.fullmatch(r"(ENGAGE|KAFKA|CLICKHOUSE)_[A-Z0-9_]+", n)] == []


def _readme_row(name: str, default: str, help_text: str) -> str:
    return f"| `{name}` | {f'`{default}`' if default else '(empty)'} | {help_text} |"


def test_the_readme_table_is_the_declaration() -> None:
    """Each row of the README's configuration table says what the declaration says, and no row outlives
    its setting."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("| variable | default | meaning |\n|---|---|---|\n", 1)[1].split("\n\n", 1)[0]
    rows = {line.split("`")[1]: line for line in table.splitlines()}
    expected = {var.name: _readme_row(var.name, var.default, var.help) for var in ENV_VARS}
    assert sorted(set(expected) - set(rows)) == [], "README configuration table lacks these"
    assert sorted(set(rows) - set(expected)) == [], "README documents settings that no longer exist"
    assert {name: rows[name] for name in expected if rows[name] != expected[name]} == {}
