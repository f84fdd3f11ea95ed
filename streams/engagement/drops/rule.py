"""The baseline of the drop detector: :class:`DropRule`, its parameters and the seasonal reference (pure).

How the reference, the level and the noise are combined is described once, in :mod:`streams.engagement.drops`.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from streams.engagement.drops.state import HOURS_PER_WEEK, AccountState

if TYPE_CHECKING:
    from streams.settings import Settings

_SMOOTHING: Final = ((-1, 0.25), (0, 0.5), (1, 0.25))
_CONSISTENT_RATIO: Final = 1.5  # two weekly references further apart than this (+3√n) disagree
_DAILY_UNTIL_WEEKS: Final = 2  # blend in the previous days' same hour while fewer reference weeks exist


@dataclass(frozen=True)
class DropRule:
    """Parameters of the detector (what each one does: :mod:`streams.engagement.drops`)."""

    threshold: float = 0.5
    min_baseline: float = 20.0
    weeks: int = 4
    warmup_hours: int = HOURS_PER_WEEK
    z_drop: float = 1.645
    z_normal: float = 3.25
    dispersion: float = 0.2
    min_dispersion: float = 0.1
    resolve_ratio: float = 0.75
    resolve_hours: int = 2
    idle_resolve_hours: int = 36
    level_half_life_hours: float = 72.0
    level_bounds: tuple[float, float] = (0.7, 1.4)
    engaged_half_life_hours: float = 168.0

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1:
            raise ValueError("threshold must be between 0 and 1")
        if not 1 - self.threshold < self.resolve_ratio <= 1:
            raise ValueError("resolve_ratio must lie between 1 - threshold and 1 (hysteresis)")
        if self.weeks < 1 or self.resolve_hours < 1 or self.warmup_hours < HOURS_PER_WEEK:
            raise ValueError("need weeks >= 1, resolve_hours >= 1 and warmup_hours >= one week")
        if self.min_baseline <= 0:
            raise ValueError("min_baseline must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> DropRule:
        return cls(threshold=settings.drop_threshold, min_baseline=settings.drop_min_baseline)

    @property
    def ring_hours(self) -> int:
        return self.weeks * HOURS_PER_WEEK

    def seasonal(self, state: AccountState, hour: int) -> float | None:
        """The seasonal reference ``S`` for ``hour`` from the ring, or None without a previous week."""
        per_week = [
            ref
            for week in range(1, self.weeks + 1)
            if (ref := _reference(state, hour - week * HOURS_PER_WEEK)) is not None
        ]
        if not per_week:
            return None
        centre = _consistent_mean(per_week)
        if len(per_week) >= _DAILY_UNTIL_WEEKS:
            return centre
        # One reference week is one noisy sample per hour. Until a second week exists, the same hour of
        # the previous six days, each scaled by how that weekday's total compares with this weekday's
        # last week, are six more samples of the same daily shape: their median with the week's sample.
        daily = _daily_references(state, hour)
        if len(daily) < 3:
            return centre
        return statistics.median([centre, *daily])

    def baseline(self, state: AccountState, hour: int) -> float | None:
        """The baseline ``B = S × L`` for ``hour``, or None without a previous week."""
        return self._scaled(state, self.seasonal(state, hour))

    def _scaled(self, state: AccountState, seasonal: float | None) -> float | None:
        if seasonal is None:
            return None
        low, high = self.level_bounds
        return seasonal * min(max(state.level, low), high)

    def is_low(self, observed: float, baselines: tuple[float, ...], dispersion2: float) -> bool:
        """Evidence over one or more hours that the rate fell by ``threshold`` or more (package docstring)."""
        expected = sum(baselines)
        dropped = (1 - self.threshold) * expected
        spread = math.sqrt(expected + dispersion2 * sum(b * b for b in baselines))
        return (
            observed <= dropped + self.z_drop * math.sqrt(dropped)
            and observed <= expected - self.z_normal * spread
        )

    def dispersion2(self, state: AccountState) -> float:
        """The account's relative noise², learnt from its residuals, shrunk to ``dispersion`` early on."""
        learnt = max(0.0, state.noise_num / state.noise_den) if state.noise_den > 0 else 0.0
        prior = self.dispersion**2
        return max(self.min_dispersion**2, state.level_weight * learnt + (1 - state.level_weight) * prior)


def _reference(state: AccountState, centre: int) -> float | None:
    """One week's sample at ``centre``, smoothed 1/4-1/2-1/4 with its neighbouring hours, or None."""
    total = weight = 0.0
    for offset, w in _SMOOTHING:
        value = state.count_at(centre + offset)
        if value is not None:
            total += w * value
            weight += w
    if weight < 0.5:
        return None
    # Smoothing halves the noise of one sample but would lift a trough, or the hour before a step
    # up (Sunday 23:00 next to Monday 00:00), above its true level: never exceed the sample itself.
    # Nor go more than the sample's own Poisson noise (√n) below it: an outage in the neighbouring
    # hour of that week must not drag the reference down.
    sample = state.count_at(centre)
    smoothed = total / weight
    if sample is not None:
        smoothed = max(sample - math.sqrt(sample), min(sample, smoothed))
    return smoothed


def _consistent(low: float, high: float) -> bool:
    """Whether two references of the same hour could be the same rate (not a spike or an outage)."""
    return high <= _CONSISTENT_RATIO * low + 3 * math.sqrt(low)


def _consistent_mean(values: list[float]) -> float:
    """The mean of the weekly references consistent with their lower median.

    The lower median (with two weeks the smaller, with four the second smallest) is robust: one week's
    spike cannot make a normal hour look like a drop, and once half the weeks are low the account has
    changed. Averaging it with every week that could be the same rate (a spike or an outage could not)
    then takes the noise of a single sample out of the reference.
    """
    ordered = sorted(values)
    centre = ordered[(len(ordered) - 1) // 2]
    kept = [v for v in ordered if _consistent(min(v, centre), max(v, centre))]
    return sum(kept) / len(kept)


def _day_total(state: AccountState, day: int) -> int | None:
    """Substantive interactions of the UTC day ``day``, or None unless all 24 hours are known.

    The sum of ``count_at`` over the day's hours, read from the ring in one slice: each hour is known iff
    it lies in the ring's window and after the first hour (true for all 24 iff for the first and the
    last) and its slot is not ``missing``.
    """
    first, last = day * 24, day * 24 + 23
    counts = state.counts
    size = len(counts)
    if last > state.last_hour or first <= state.last_hour - size or first < state.first_hour:
        return None
    start, end = first % size, first % size + 24
    values = counts[start:end] if end <= size else counts[start:] + counts[: end - size]
    if state.missing in values:
        return None
    return sum(values)


def _daily_references(state: AccountState, hour: int) -> list[float]:
    """The same hour on each of the previous six days, scaled to this weekday by day totals."""
    day = hour // 24
    this_weekday = _day_total(state, day - 7)
    if not this_weekday:
        return []
    references = []
    for back in range(1, 7):
        total = _day_total(state, day - back)
        reference = _reference(state, hour - 24 * back) if total else None
        if total and reference is not None:
            references.append(reference * this_weekday / total)
    return references
