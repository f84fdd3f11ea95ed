from __future__ import annotations

import pytest

from streams.commands.report import parse_since
from streams.errors import ConfigError
from streams.settings import Settings

NOW = 1_700_000_000_000


def test_since_as_a_duration_or_an_instant() -> None:
    assert parse_since("7d", NOW) == NOW - 7 * 86_400_000
    assert parse_since("90m", NOW) == NOW - 90 * 60_000
    assert parse_since("2024-05-01", NOW) == 1_714_521_600_000
    assert parse_since("2024-05-01T12:00:00Z", NOW) == 1_714_564_800_000
    assert parse_since("2024-05-01T14:00:00+02:00", NOW) == 1_714_564_800_000
    with pytest.raises(ConfigError):
        parse_since("2024-13-45", NOW)
    with pytest.raises(ConfigError):
        parse_since("last tuesday", NOW)


def test_activity_ttl_is_whole_days() -> None:
    assert Settings.from_env({}).activity_ttl_ms == 400 * 86_400_000
    assert Settings.from_env({"ENGAGE_ACTIVITY_TTL": "0"}).activity_ttl_ms == 0
    with pytest.raises(ConfigError, match="ENGAGE_ACTIVITY_TTL"):
        Settings.from_env({"ENGAGE_ACTIVITY_TTL": "36h"})
