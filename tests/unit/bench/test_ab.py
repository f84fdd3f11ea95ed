"""The A/B report: medians per side and head ÷ base, from the runs as recorded."""

from __future__ import annotations

import pytest

from streams.bench.ab import _STAGE, render


def test_medians_and_ratio_per_measure() -> None:
    runs = [
        {"round": 1, "side": "base", "worker_eps": 100.0, "stage_us": 10.0},
        {"round": 1, "side": "head", "worker_eps": 90.0, "stage_us": 11.0},
        {"round": 2, "side": "head", "worker_eps": 110.0, "stage_us": 9.0},
        {"round": 2, "side": "base", "worker_eps": 120.0, "stage_us": None},
    ]
    table, summary = render("abc123", runs)
    worker = summary["worker_eps"]
    assert (worker["base"], worker["head"]) == (110.0, 100.0)  # medians
    assert worker["round_ratios"] == [0.9, 110.0 / 120.0]  # within each round: order drift cancels
    assert worker["head_over_base"] == pytest.approx((0.9 * 110.0 / 120.0) ** 0.5)
    assert summary["stage_us"]["round_ratios"] == [1.1]  # round 2 has no base stage figure
    assert "geometric mean 0.908" in table
    assert "| 2 | base | 120 | — |" in table


def test_the_stage_profile_line_is_parsed() -> None:
    line = "500,000 events: feed 5.10 µs/event, flush 3.20 µs/event, total 8.30 (120,482 events/s); flags 1"
    found = _STAGE.search(line)
    assert found is not None and float(found.group(1)) == 8.30
