from __future__ import annotations

import pytest

from streams.settings import Settings
from streams.sinks.backoff import Backoff


def test_full_jitter_doubles_the_ceiling_up_to_the_max() -> None:
    backoff = Backoff(base_s=0.1, max_s=1.0, rand=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_delay_is_the_random_fraction_of_the_ceiling() -> None:
    draws = iter([0.5, 0.0, 0.25])
    backoff = Backoff(base_s=0.2, max_s=10.0, rand=lambda: next(draws))
    assert [backoff.next_delay() for _ in range(3)] == pytest.approx([0.1, 0.0, 0.2])


def test_reset_starts_over_and_long_outages_do_not_overflow() -> None:
    backoff = Backoff(base_s=0.1, max_s=30.0, rand=lambda: 1.0)
    for _ in range(5000):
        assert 0.0 <= backoff.next_delay() <= 30.0
    assert backoff.ceiling() == 30.0
    backoff.reset()
    assert backoff.next_delay() == pytest.approx(0.1)


def test_max_comes_from_settings() -> None:
    backoff = Backoff.from_settings(Settings(sink_max_backoff_ms=2500), rand=lambda: 1.0)
    assert backoff.max_s == 2.5
    for _ in range(20):
        backoff.next_delay()
    assert backoff.next_delay() == pytest.approx(2.5)
