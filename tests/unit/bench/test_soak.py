"""The soak's verdict: RSS slope over the last third of the samples taken while the traffic ran."""

from __future__ import annotations

from streams.bench.soak import Sample, render, slope_per_min, verdict


def _samples(worker: list[float], broker: list[float], lag: float = 10.0) -> list[Sample]:
    return [
        Sample(elapsed_s=60.0 * i, rss_mb={"worker": w, "broker": b}, lag=lag)
        for i, (w, b) in enumerate(zip(worker, broker, strict=True))
    ]


def test_slope_per_minute() -> None:
    assert slope_per_min([(0, 100), (60, 110), (120, 120)]) == 10.0
    assert slope_per_min([(0, 5)]) == 0.0


def test_a_flat_tail_levelled_off_and_a_rising_one_did_not() -> None:
    worker = [100, 200, 300, 310, 305, 310, 308, 309, 310]  # grows, then levels off
    broker = [10.0 * i for i in range(9)]  # grows all along
    result = verdict(_samples(worker, broker), flat_mb_per_min=2.0, max_lag=100, duration_s=480)
    assert result.flat == {"worker": True, "broker": False}
    assert result.lag_ok
    assert "STILL GROWING" in render(_samples(worker, broker), result, "header")


def test_samples_after_the_traffic_stopped_do_not_count() -> None:
    samples = _samples([100] * 9, [50] * 9, lag=0)
    samples.append(Sample(elapsed_s=600, rss_mb={"worker": 5.0, "broker": 5.0}, lag=99_999))
    result = verdict(samples, flat_mb_per_min=2.0, max_lag=100, duration_s=480)
    assert all(result.flat.values()) and result.lag_ok
