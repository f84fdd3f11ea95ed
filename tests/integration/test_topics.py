"""Start-up topic check against the real Tansu broker: a missing interaction topic (creation off) or a
partition count other than ENGAGE_TOPIC_PARTITIONS stops a process with a clear error, before it routes
anything.

Before: topics were created if missing and never compared, so ingest routed events by a partition count the
topics did not have, silently.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from streams.embedded.broker import EmbeddedBroker, ensure_topics
from streams.errors import TopicMismatch
from streams.settings import Settings
from streams.topics import changelog_topics, prepare


def _settings(broker: EmbeddedBroker, **env: str) -> Settings:
    return Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "ENGAGE_TOPIC_PREFIX": f"tp{uuid.uuid4().hex[:6]}.",
            **env,
        }
    )


def test_missing_topics_with_creation_off_stop_with_a_clear_error(broker: EmbeddedBroker) -> None:
    settings = _settings(broker, ENGAGE_CREATE_TOPICS="false")
    with pytest.raises(TopicMismatch, match="missing") as caught:
        prepare(settings, broker.bootstrap)
    assert settings.topics.like in str(caught.value) and "ENGAGE_CREATE_TOPICS" in str(caught.value)


def test_topics_created_beforehand_pass_with_creation_off(broker: EmbeddedBroker) -> None:
    settings = _settings(broker, ENGAGE_CREATE_TOPICS="false", ENGAGE_TOPIC_PARTITIONS="3")
    ensure_topics(broker.bootstrap, settings.topics.interactions, partitions=3)
    assert prepare(settings, broker.bootstrap) == []


@pytest.mark.parametrize("create", ["true", "false"])
def test_a_partition_count_mismatch_stops_with_a_clear_error(broker: EmbeddedBroker, create: str) -> None:
    settings = _settings(broker, ENGAGE_CREATE_TOPICS=create, ENGAGE_TOPIC_PARTITIONS="4")
    ensure_topics(broker.bootstrap, settings.topics.interactions, partitions=2)
    with pytest.raises(TopicMismatch, match="ENGAGE_TOPIC_PARTITIONS=4") as caught:
        prepare(settings, broker.bootstrap)
    assert f"{settings.topics.like} has 2" in str(caught.value)


def test_creation_covers_faust_changelogs_with_the_prefix(broker: EmbeddedBroker) -> None:
    settings = _settings(broker, ENGAGE_TOPIC_PARTITIONS="2")
    created = prepare(settings, broker.bootstrap)
    assert set(changelog_topics(settings)) <= set(created)
    assert all(name.startswith(settings.topic_prefix) for name in created)


def test_ingest_stops_at_start_on_a_mismatch(broker: EmbeddedBroker, tmp_path: Path) -> None:
    settings = _settings(broker, ENGAGE_TOPIC_PARTITIONS="2")
    ensure_topics(broker.bootstrap, settings.topics.interactions, partitions=1)
    env = {
        "PATH": "/usr/bin:/bin",
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "ENGAGE_TOPIC_PREFIX": settings.topic_prefix,
        "ENGAGE_TOPIC_PARTITIONS": "2",
        "ENGAGE_DATA_DIR": str(tmp_path),
    }
    process = subprocess.run(
        [sys.executable, "-m", "streams.cli", "ingest", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 2, process.stderr[-2000:]
    assert "ENGAGE_TOPIC_PARTITIONS=2" in process.stderr


@pytest.mark.parametrize("command", ["replay", "send"])
def test_replay_and_send_stop_on_a_mismatch(
    broker: EmbeddedBroker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    from streams.cli import main

    settings = _settings(broker, ENGAGE_TOPIC_PARTITIONS="3")
    ensure_topics(broker.bootstrap, settings.topics.interactions, partitions=2)
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "ENGAGE_TOPIC_PREFIX", "ENGAGE_TOPIC_PARTITIONS"):
        monkeypatch.setenv(
            name,
            {
                "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
                "ENGAGE_TOPIC_PARTITIONS": "3",
                "ENGAGE_TOPIC_PREFIX": settings.topic_prefix,
            }[name],
        )
    path = tmp_path / "events.ndjson"
    path.write_text("")
    assert main([command, str(path)]) == 2
    assert "ENGAGE_TOPIC_PARTITIONS=3" in capsys.readouterr().err
