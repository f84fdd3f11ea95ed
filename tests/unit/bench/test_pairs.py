"""The state-size measurement at a tiny size: every pair created is counted, the figures are sane."""

from __future__ import annotations

import pytest

from streams.bench import pairs
from streams.bench.report import render_markdown
from streams.engagement import PartitionEngine
from streams.engagement.state import decode


def test_measure_counts_every_pair_created_through_the_engine_and_the_copies() -> None:
    result, store, seq, watermark = pairs.measure(2_000, template_pairs=800)
    assert result["pairs_counted"] == 2_000
    assert result["actors"] == 2_000 // pairs.PAIRS_PER_ACTOR
    assert len(store) == result["actors"]
    # like-only pairs take 42 bytes, engaged ones 66 (README), plus the 30-byte actor header per 4 pairs
    assert 42 < result["bytes_per_pair"] < 80
    assert result["peak_rss_mb"] >= result["rss_at_start_mb"] > 0
    # a tenth of the template's pairs got three substantive comments (those final by the end are
    # engaged); the partial copy takes actors in store order, which varies with string hashing
    assert 0.05 * 2_000 <= result["engaged_pairs"] <= 0.15 * 2_000
    assert seq > 0 and watermark == pairs.END_MS


def test_copies_are_distinct_states_of_their_own_actors() -> None:
    store, _, _ = pairs.build_store(400, template_pairs=200)
    copied = [actor for actor in store if actor.startswith("c001")]
    assert len(copied) == 50
    original = copied[0][4:]
    assert store[copied[0]] == store[original] and store[copied[0]] is not store[original]
    assert len(decode(store[copied[0]]).pairs) == pairs.PAIRS_PER_ACTOR


def test_events_create_exactly_the_pairs_asked_for() -> None:
    engine = PartitionEngine(pairs.rule())
    for batch in pairs.pair_events(1_000):
        engine.process_many(batch)
    engine.drain()
    assert engine.tracked_pairs == 1_000


def test_sizes_must_fill_whole_followers() -> None:
    with pytest.raises(ValueError, match="multiple"):
        pairs.build_store(1_001)


def test_report_has_a_row_per_state_size() -> None:
    result, *_ = pairs.measure(400, template_pairs=200)
    table = render_markdown({"state": {"400": result}})
    assert "| state: 400 pairs |" in table
    assert f"{result['bytes_per_pair']:.1f} bytes/pair" in table
