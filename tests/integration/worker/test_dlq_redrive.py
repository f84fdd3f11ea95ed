"""A dead-letter round trip on the real broker with a real worker, through ``engage dlq`` as a user runs it:
bad events in, listed, exported, fixed, re-driven (twice), counted once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson

from streams.deadletters import dlq_record
from streams.embedded.broker import EmbeddedBroker
from streams.events import Interaction
from streams.partitioning import partition_for
from streams.runtime import create_topics
from streams.settings import Settings
from tests.integration.worker.harness import REPO_ROOT, WorkerEnv, WorkerProcess, read_topic, wait_for
from tests.integration.worker.test_dead_letters import _produce, _watermark_s

T = 1_790_000_000_000
HOUR = 3_600_000


def _engage(cfg: WorkerEnv, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "dlq", *args],
        env=cfg.env(0),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_dead_letters_listed_fixed_redriven_and_counted_once(broker: EmbeddedBroker, tmp_path: Path) -> None:
    cfg = WorkerEnv(broker.bootstrap, tmp_path / "data")
    settings = Settings.from_env(cfg.env(0))
    topics = settings.topics
    create_topics(settings, broker.bootstrap)
    actor = "dlq-fan"
    key, p = actor.encode(), partition_for(actor.encode(), cfg.partitions)

    def comment(event_id: str, at: int) -> dict[str, object]:
        return Interaction(event_id, "comment", "x", "acme", actor, "p1", "a fine comment here", at).to_dict()

    counted = comment("counted", T)
    # Two substantive comments a producer got wrong: a float timestamp and no account.
    float_time = {**comment("fix-time", T + 1), "occurred_at": T + 1.5}
    no_account = {k: v for k, v in comment("fix-account", T + 2).items() if k != "account_id"}
    too_old = comment("too-old", T - 2 * HOUR)  # beyond the 10 min allowed lateness once T is seen

    worker = WorkerProcess(cfg)
    try:
        asyncio.run(_produce(broker.bootstrap, [(topics.comment, p, key, orjson.dumps(counted))]))
        wait_for(
            lambda: worker.metric("engage_substantive_interactions_total") == 1, 60, what="the first count"
        )
        # Once the idle topics stop holding it back, the watermark is T and older events are late.
        wait_for(lambda: _watermark_s(worker, p) >= T / 1000, 60, what="the watermark to reach T")
        asyncio.run(
            _produce(
                broker.bootstrap,
                [
                    (topics.comment, p, key, orjson.dumps(float_time)),
                    (topics.comment, p, key, orjson.dumps([no_account, counted])),
                    (topics.comment, p, key, orjson.dumps(too_old)),
                ],
            )
        )
        # What the webhook service dead-letters: a platform payload it could not map.
        webhook_payload = dlq_record(
            "unmappable", "entry without a page id", b'{"object":"page","entry":[{}]}',
            {"platform": "meta", "source": "meta", "received_at": 1.0},
        )  # fmt: skip
        asyncio.run(_produce(broker.bootstrap, [(topics.dlq, 0, b"meta", webhook_payload)]))
        read_topic(broker.bootstrap, topics.dlq, 60, until=lambda records: len(records) >= 4)

        summary = _engage(cfg, "summary", "--json")
        assert summary.returncode == 0, summary.stderr
        doc = orjson.loads(summary.stdout)
        assert doc["total"] == 4 and doc["by_reason"] == {"schema": 2, "late": 1, "unmappable": 1}, doc
        assert doc["by_source_topic"] == {topics.comment: 3, "webhook:meta": 1}
        assert doc["by_platform"] == {"x": 3, "meta": 1}
        recent = _engage(cfg, "list", "--since", "10m", "--json").stdout.splitlines()
        assert len(recent) == 4 and _engage(cfg, "list", "--until", "10m", "--json").stdout == ""
        meta = _engage(cfg, "redrive", "--platform", "meta")
        assert meta.returncode == 1 and "platform's webhook payload" in meta.stderr, meta

        listing = _engage(cfg, "list", "--reason", "schema", "--json")
        rows = [orjson.loads(line) for line in listing.stdout.splitlines()]
        assert [r["reason"] for r in rows] == ["schema", "schema"], listing.stdout
        shown = _engage(cfg, "show", rows[1]["ref"], "--raw")
        assert orjson.loads(shown.stdout) == no_account  # an envelope element, re-encoded

        # Re-driving the originals as they are changes nothing: they are still invalid.
        unchanged = _engage(cfg, "redrive", "--reason", "schema")
        assert unchanged.returncode == 1 and "still invalid" in unchanged.stderr, unchanged

        fix = tmp_path / "fix.ndjson"
        exported = _engage(cfg, "export", "--reason", "schema", "--out", str(fix))
        assert exported.returncode == 0, exported.stderr
        lines = [orjson.loads(line) for line in fix.read_bytes().splitlines()]
        assert [line["event_id"] for line in lines] == ["fix-time", "fix-account"]
        lines[0]["occurred_at"] = T + 1
        lines[1]["account_id"] = "acme"
        # The already counted event rides along, as a careless fix would send it: it must count once.
        fix.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in [*lines, counted]))

        # Duplicates so far: `counted` in the envelope. The first re-drive adds one (`counted`), the
        # second three (all of them), and only the two fixed events are new.
        for attempt, duplicates in ((1, 2), (2, 5)):  # a re-drive repeated by mistake counts nothing twice
            redriven = _engage(cfg, "redrive", "--file", str(fix))
            assert redriven.returncode == 0, redriven.stderr
            assert "sent 3 event(s)" in redriven.stdout, redriven.stdout
            wait_for(
                lambda d=duplicates: worker.metric("engage_events_deduplicated_total") == d,  # type: ignore[misc]
                60,
                what=f"re-drive {attempt} to be processed",
            )
            wait_for(
                lambda: worker.metric("engage_substantive_interactions_total") == 3,
                30,
                what=f"the fixed events counted once after re-drive {attempt}",
            )

        # The too-old event cannot be deduplicated any more: the command says so and does not send it.
        late = _engage(cfg, "redrive", "--reason", "late")
        assert late.returncode == 0, late.stderr
        assert "older than the dedup horizon" in late.stderr and "sent 0 event(s)" in late.stdout, late
    finally:
        assert worker.stop() in (0, -15), worker.log()[-3000:]
