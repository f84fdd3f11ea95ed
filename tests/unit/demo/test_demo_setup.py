"""The demo's pure set-up: run continuity, child environments, its window/lateness/secret choices."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import orjson
import pytest

from streams.cli import build_parser
from streams.commands.demo import demo_durations, demo_overrides, webhook_secrets
from streams.demo.generator import GeneratorConfig, TrafficGenerator
from streams.demo.orchestrator import child_env, cpu_seconds, port_or_free
from streams.demo.runs import DAY_MS, LEAD_DAYS, RunRecord, midnight, next_start_ms
from streams.errors import ConfigError
from streams.settings import Settings

NOW = 1_795_000_000_000 + 12_345  # some afternoon


def test_the_first_run_starts_two_weeks_back_at_midnight() -> None:
    start = next_start_ms(None, NOW)
    assert start == midnight(NOW) - LEAD_DAYS * DAY_MS and start % DAY_MS == 0


def test_a_rerun_continues_after_the_previous_run() -> None:
    last = midnight(NOW) - 3 * DAY_MS + 5 * 3_600_000
    assert next_start_ms(last, NOW) == midnight(NOW) - 2 * DAY_MS
    last_future = midnight(NOW) + 9 * DAY_MS + 1  # long runs go past today: keep going forward
    assert next_start_ms(last_future, NOW) == midnight(NOW) + 10 * DAY_MS
    long_ago = midnight(NOW) - 400 * DAY_MS  # a year later: no need to crawl through the gap
    assert next_start_ms(long_ago, NOW) == midnight(NOW) - LEAD_DAYS * DAY_MS


def test_run_record_round_trip_and_damage(tmp_path: Path) -> None:
    assert RunRecord.load(tmp_path) == RunRecord()
    RunRecord(3, 1_700_000_000_000, 1_699_000_000_000).save(tmp_path / "data")
    assert RunRecord.load(tmp_path / "data") == RunRecord(3, 1_700_000_000_000, 1_699_000_000_000)
    (tmp_path / "data" / "demo.json").write_text('{"runs": 1, "last_event_ms": 5}')  # an older record
    assert RunRecord.load(tmp_path / "data") == RunRecord(1, 5, None)
    (tmp_path / "data" / "demo.json").write_text("[1, 2]")
    assert RunRecord.load(tmp_path / "data") == RunRecord()
    (tmp_path / "data" / "demo.json").write_text("{not json")
    assert RunRecord.load(tmp_path / "data") == RunRecord()


def test_child_env_accepts_settings_only() -> None:
    env = child_env({"PATH": "/bin", "ENGAGE_WINDOW": "30d"}, {"ENGAGE_WINDOW": "2d", "X": "1"})
    assert env == {"PATH": "/bin", "ENGAGE_WINDOW": "2d", "X": "1", "PYTHONUNBUFFERED": "1"}
    with pytest.raises(ValueError, match="ENGAGE_WINDOWS"):
        child_env({}, {"ENGAGE_WINDOWS": "2d"})


def test_port_or_free() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        other = port_or_free("127.0.0.1", taken)
        assert other != taken and other > 0
    assert port_or_free("127.0.0.1", 0) > 0


def test_cpu_seconds_of_a_live_and_a_missing_process() -> None:
    assert (cpu_seconds(os.getpid()) or 0.0) > 0.0
    assert cpu_seconds(2**22 + 1) is None  # above the kernel's pid_max default: never a process


def test_demo_defaults_shorten_the_window_and_scale_the_lateness() -> None:
    settings = Settings()
    window, note, lateness = demo_durations({}, settings, None, None, 3600.0)
    assert window == 2 * DAY_MS and "30d" in note
    assert lateness == 10 * 3_600_000  # 10 wall seconds at an hour per second
    assert demo_durations({}, settings, None, None, 60.0)[2] == 3_600_000  # never below 1h
    assert demo_durations({}, settings, None, None, 500.0)[2] == 2 * 3_600_000  # whole hours, rounded up
    env = {"ENGAGE_WINDOW": "7d", "ENGAGE_ALLOWED_LATENESS": "2h"}
    configured = Settings.from_env(env)
    assert demo_durations(env, configured, None, None, 3600.0) == (7 * DAY_MS, "ENGAGE_WINDOW", 7_200_000)
    assert demo_durations(env, configured, "1d", "30m", 3600.0) == (DAY_MS, "--window", 1_800_000)


def test_secrets_generated_per_run_or_taken_from_the_settings() -> None:
    first, generated = webhook_secrets(Settings())
    second, _ = webhook_secrets(Settings())
    assert generated and set(first) == {"generic", "meta", "x"} and first != second
    configured = Settings(webhook_secrets={"generic": "a", "meta": "b", "x": "c"})
    assert webhook_secrets(configured) == ({"generic": "a", "meta": "b", "x": "c"}, False)
    with pytest.raises(ConfigError, match="x"):
        webhook_secrets(Settings(webhook_secrets={"generic": "a", "meta": "b"}))


def test_followers_per_account_follow_popularity() -> None:
    generator = TrafficGenerator(GeneratorConfig.demo(0))
    followers = generator.followers_per_account()
    counts = [followers[a.account_id] for a in generator.accounts]
    audience = generator.config.audience.followers
    assert counts[0] > counts[10] > counts[-1] > 0
    # Each follower has up to `favourites` distinct accounts: the counts add up to at most that many.
    assert audience <= sum(counts) <= audience * generator.config.audience.favourites


def test_demo_is_a_command() -> None:
    args = build_parser().parse_args(["demo", "--duration", "5", "--plain", "--rate", "500"])
    assert args.duration == 5 and args.plain and args.rate == 500 and args.time_scale == 3600


def test_the_demos_ingest_accepts_the_demos_event_clock_ahead_of_the_wall() -> None:
    """At ×3600 from LEAD_DAYS back, the demo's events are dated ahead of now after ~6 minutes; with the
    product's 15-minute far-future check its own ingest dead-lettered them all as "future"."""
    from tests.unit.ingest.conftest import Harness
    from tests.webhooks import signature_headers

    overrides = demo_overrides({}, 172_800_000, 3_600_000)
    demo = Settings.from_env(overrides)
    ahead_ms = (LEAD_DAYS + 40) * 86_400_000  # an hour's run of event time, at the default scale
    assert demo.ingest_max_future_skew_ms > ahead_ms
    assert Settings.from_env({}).ingest_max_future_skew_ms < ahead_ms  # the product's check is untouched
    assert (
        demo_overrides({"ENGAGE_INGEST_MAX_FUTURE_SKEW": "1h"}, 1, 1).get("ENGAGE_INGEST_MAX_FUTURE_SKEW")
        is None
    )  # a value in the environment wins

    for skew, accepted in ((demo.ingest_max_future_skew_ms, 1), (Settings().ingest_max_future_skew_ms, 0)):
        harness = Harness(ingest_max_future_skew_ms=skew)
        event = {
            "event_id": "crm:1",
            "platform": "linkedin",
            "type": "comment",
            "account_id": "brand-1",
            "actor_id": "u-1",
            "post_id": "p-1",
            "occurred_at": harness.now + ahead_ms,
            "text": "well said, thank you",
        }
        body = orjson.dumps(event)
        reply = harness.deliver("generic", signature_headers("generic", body), body)
        assert orjson.loads(reply.body)["accepted"] == accepted, (skew, reply.body)


def test_on_the_embedded_broker_the_demos_worker_fetches_less_often_unless_told() -> None:
    """Tansu lists every batch a partition ever stored on each fetch that finds data (README, Soak): the
    demo's worker waits longer per fetch. Not on a configured Kafka, and never over the environment."""
    product = Settings.from_env({})
    embedded = Settings.from_env(demo_overrides({}, 172_800_000, 3_600_000))
    assert embedded.fetch_max_wait_ms > product.fetch_max_wait_ms
    assert "ENGAGE_FETCH_MAX_WAIT" not in demo_overrides({}, 172_800_000, 3_600_000, embedded_kafka=False)
    told = demo_overrides({"ENGAGE_FETCH_MAX_WAIT": "50ms"}, 172_800_000, 3_600_000)
    assert "ENGAGE_FETCH_MAX_WAIT" not in told
