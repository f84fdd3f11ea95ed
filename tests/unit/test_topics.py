"""The topic rules without a broker: replication defaults, the owned topic list, the start-up check."""

from __future__ import annotations

import pytest

from streams.errors import TopicMismatch
from streams.settings import Settings
from streams.topics import BROKER_DEFAULT_REPLICATION, check, replication, topic_configs


def test_replication_is_the_broker_default_on_a_real_cluster() -> None:
    assert replication(Settings.from_env({})) == 1  # the embedded broker: one node
    real = {"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"}
    assert replication(Settings.from_env(real)) == BROKER_DEFAULT_REPLICATION == -1
    assert replication(Settings.from_env({**real, "ENGAGE_TOPIC_REPLICATION": "3"})) == 3


def test_every_owned_topic_carries_the_prefix_and_changelogs_are_compacted() -> None:
    settings = Settings.from_env({"ENGAGE_TOPIC_PREFIX": "prod.", "ENGAGE_TOPIC_RETENTION": "2d"})
    owned = topic_configs(settings)
    assert len(owned) == 10 and all(name.startswith("prod.") for name in owned)
    assert owned["prod.interactions.like"] == {"retention.ms": str(2 * 86_400_000)}
    assert owned["prod.engagement-streams-engagement-state-changelog"] == {"cleanup.policy": "compact"}


def test_check_names_what_is_wrong() -> None:
    settings = Settings.from_env({"ENGAGE_TOPIC_PARTITIONS": "4"})
    good = {name: 4 for name in settings.topics.interactions}
    check(settings, good)
    with pytest.raises(TopicMismatch, match=r"missing: interactions\.share"):
        check(settings, {k: v for k, v in good.items() if k != "interactions.share"})
    with pytest.raises(TopicMismatch, match=r"interactions\.follow has 8"):
        check(settings, {**good, "interactions.follow": 8})
