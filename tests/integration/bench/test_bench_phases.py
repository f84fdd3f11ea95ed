"""The benchmark's live phases at a tiny size, on the session broker, so the code cannot rot.

Each starts real processes (`engage ingest`, a ClickHouse worker on its own chDB path, a recovering
worker), like `make bench` does; only the sizes and durations are small.
"""

from __future__ import annotations

from pathlib import Path

from streams.bench import latency, recovery
from streams.embedded.broker import EmbeddedBroker


def test_latency_finds_every_probe_and_counts_clickhouse_rows(broker: EmbeddedBroker, tmp_path: Path) -> None:
    found = latency.measure(broker.bootstrap, tmp_path, 3_000, burst_s=1.0, seconds=2.0, probe_every_s=0.2)
    lat, ch = found["latency"], found["clickhouse"]
    assert lat["probes"] >= 8
    assert lat["probes_found"] == lat["probes"] == len(lat["latencies_s"])
    assert 0 < lat["p50_s"] <= lat["p99_s"] <= lat["max_s"] < 60
    assert lat["failed_events"] == 0
    assert lat["max_events_per_s"] > 0 and lat["target_events_per_s"] == lat["max_events_per_s"] / 2
    # every event lands in a per-minute aggregate row; likes and comments also change a score row
    assert ch["events"] > 0
    assert set(ch["rows_per_event_by_table"]) >= {"account_activity_1m", "follower_scores"}
    assert 0 < ch["rows_per_event_by_table"]["account_activity_1m"] <= 1
    assert 0 < ch["rows_per_event"] < 5


def test_recovery_restores_every_pair_written_to_the_changelog(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    state, rec = recovery.measure(broker.bootstrap, tmp_path, 800, template=400)
    assert state["pairs_counted"] == 800
    assert rec["changelog_records"] == 800 // 4
    assert rec["partitions_recovered"] == recovery.PARTITIONS
    # the restored pairs plus one new pair per probe event
    assert rec["tracked_pairs"] >= 800 + recovery.PARTITIONS
    assert rec["tracked_pairs"] <= 800 + recovery.PARTITIONS * rec["probe_rounds"]
    assert 0 < rec["changelog_read_start_s"] <= rec["changelog_read_done_s"] <= rec["worker_ready_s"]
    assert rec["changelog_reader"] == "plain consumer"  # faust_adapter.fast_recovery, not Faust's loop
    assert 0 < rec["first_event_s"] <= rec["all_partitions_s"] < 120
