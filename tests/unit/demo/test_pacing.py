"""Wall-clock pacing with an injected clock: no sleeping in the tests."""

from __future__ import annotations

import pytest

from streams.demo.pacing import Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_rate_spaces_events() -> None:
    clock = FakeClock()
    pacer = Pacer(rate_events_per_s=100, clock=clock)
    waits = []
    for _ in range(5):
        wait = pacer.delay_s(0)
        waits.append(wait)
        clock.sleep(wait)
    assert waits == pytest.approx([0.0, 0.01, 0.01, 0.01, 0.01])


def test_rate_with_batches() -> None:
    clock = FakeClock()
    pacer = Pacer(rate_events_per_s=1000, clock=clock)
    assert pacer.delay_s(0, count=500) == 0.0
    assert pacer.delay_s(0, count=500) == pytest.approx(0.5)
    clock.sleep(2.0)  # the sender was slow: no burst beyond the schedule, and it says it is behind
    assert pacer.delay_s(0, count=500) == 0.0
    assert pacer.behind_s == pytest.approx(1.0)


def test_time_scale_follows_event_time() -> None:
    clock = FakeClock()
    pacer = Pacer(time_scale=3600, clock=clock)  # an event hour per wall second
    assert pacer.delay_s(1_000_000) == 0.0
    assert pacer.delay_s(1_000_000 + 1_800_000) == pytest.approx(0.5)
    # A late event (older event time) is due at once: pacing follows the newest event time seen.
    clock.sleep(0.5)
    assert pacer.delay_s(1_000_000 + 60_000) == 0.0


def test_both_take_the_later_deadline() -> None:
    clock = FakeClock()
    pacer = Pacer(rate_events_per_s=10, time_scale=1000, clock=clock)
    pacer.delay_s(0)
    assert pacer.delay_s(10_000) == pytest.approx(0.1)  # rate: 0.1 s; event time: 0.01 s
    assert pacer.delay_s(2_000_000) == pytest.approx(2.0)  # event time: 2 s; rate: 0.2 s


def test_no_targets_means_no_waiting() -> None:
    pacer = Pacer(clock=FakeClock())
    assert all(pacer.delay_s(t) == 0.0 for t in range(0, 10**9, 10**7))


@pytest.mark.parametrize("kwargs", [{"rate_events_per_s": 0}, {"time_scale": -1.0}])
def test_invalid_targets(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Pacer(**kwargs)  # type: ignore[arg-type]
