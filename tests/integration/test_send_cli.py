"""`engage send FILE.ndjson` as a user runs it, against the real broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from streams.embedded.broker import EmbeddedBroker
from streams.events import Interaction, iter_message
from streams.runtime import create_topics
from streams.settings import Settings
from tests.integration.worker.harness import read_topic


def test_send_publishes_valid_lines_and_dead_letters_the_bad_one(
    broker: EmbeddedBroker, tmp_path: Path, topic_name: str
) -> None:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "ENGAGE_TOPIC_PREFIX": f"{topic_name}.",
        "ENGAGE_TOPIC_PARTITIONS": "2",
    }
    settings = Settings.from_env({k: v for k, v in env.items() if k.startswith(("ENGAGE_", "KAFKA_"))})
    create_topics(settings, broker.bootstrap)
    good = [
        Interaction(
            f"s{i}",
            "comment",
            "generic",
            "brand",
            f"fan{i}",
            "p1",
            "really good stuff",
            1_790_000_000_000 + i,
        )
        for i in range(5)
    ]
    lines = [e.to_json() for e in good[:3]]
    lines.append(
        b'{"event_id": "bad", "type": "comment", "platform": "generic", "account_id": "brand", '
        b'"actor_id": "fan", "post_id": null, "text": "hi there", "occurred_at": 1}'
    )
    lines += [e.to_json() for e in good[3:]]
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")

    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "send", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1, result.stderr
    assert f"{path}:4: schema: post_id" in result.stderr
    assert "sent 5 events" in result.stdout
    received = read_topic(
        broker.bootstrap,
        settings.topics.comment,
        30,
        until=lambda records: sum(len(r) if isinstance(r, list) else 1 for r in records) >= 5,
    )
    events = [item for record in received for item in iter_message(orjson.dumps(record))]
    assert sorted(e.event_id for e in events if isinstance(e, Interaction)) == sorted(
        e.event_id for e in good
    )
    (dead,) = read_topic(broker.bootstrap, settings.topics.dlq, 20, until=lambda records: len(records) >= 1)
    assert dead["reason"] == "schema" and dead["source"]["line"] == 4
    assert orjson.loads(dead["original"])["event_id"] == "bad"
