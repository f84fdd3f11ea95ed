"""Per-account engagement-drop and silence detection over completed event-time hours (pure).

**Input.** One observation per (account, hour) once the hour is final: the substantive interactions of
that hour (and optionally the engaged-followers count). The wiring calls :meth:`DropDetector.observe`
for accounts that had events and then :meth:`DropDetector.close_hour`, which feeds an explicit zero to
every other known account; :meth:`DropDetector.skip_hour` instead declares an hour with no data at all.

**Baseline** (expected count for hour *t*): ``B = S × L``.

* ``S``, the seasonal reference: for each of the previous ``weeks`` (4) weeks, the count at the same
  hour of the week, smoothed 1/4-1/2-1/4 with its neighbouring hours but never above the sample
  itself (so a trough, or Sunday 23:00 next to Monday 00:00, is not lifted) nor more than its Poisson
  noise ``√n`` below it (so an outage in the neighbouring hour does not drag it); then the *mean of the
  weeks consistent with their lower median* (with 2 weeks the smaller, with 4 the second smallest;
  consistent: within 1.5× + 3√n of it). Same hour-of-week carries both daily and weekly seasonality
  (weekend nights compare with weekend nights); the lower median ignores a past outage, holiday or viral
  spike and errs on the side of not paging, and averaging the weeks that agree with it removes most of
  one sample's noise. While only one reference week exists, ``S`` is the median of that week's sample
  and the same hour on each of the previous six days scaled by day totals (that day vs. this weekday
  last week): one week is a single noisy sample per hour, six days of the same daily shape are more.
* ``L``, the level: an EWMA (half-life ``level_half_life_hours``, 72 h) of recent counts over an
  EWMA of their seasonal references, clamped to ``level_bounds`` and shrunk towards 1 until the EWMA
  has seen enough hours. It follows growth or decline faster than the four-week median; counts are
  capped at 2 × reference so a viral hour cannot inflate it, and it is frozen while an alert is open,
  so a long drop does not teach itself to be normal.

**Noise.** Besides Poisson noise, each account learns its relative noise ρ² (EWMA of squared
residuals beyond Poisson over squared baselines, each residual capped at ``threshold × B`` so a viral
hour or a drop not yet alerted is not taken for noise; frozen while an alert is open), starting from
``dispersion`` (0.2) and never below ``min_dispersion`` (0.1): noisy accounts need more evidence.

**Opening** (only after ``warmup_hours`` of history, in hours whose baseline ≥ ``min_baseline``):

* *silence* when the hour has no substantive interaction at all;
* *drop* when the hour itself is not recovered (``x ≤ resolve_ratio × B``) and, over the last hour
  or the last two hours (count ``X``, baselines ``Bᵢ``, ``B = ΣBᵢ``), ``X`` is both what a rate at
  ``(1 − threshold)`` of the baseline plausibly yields (``X ≤ λ₁ + z_drop·√λ₁``, ``λ₁ = (1 −
  threshold)·B``) and implausibly low for the baseline (``X ≤ B − z_normal·√(B + ρ²·ΣBᵢ²)``). The
  threshold is a statement about the *rate*: the allowance ``z_drop·√λ₁`` shrinks as 1/√volume, so
  large accounts alert at almost exactly ``threshold`` and small or noisy ones need stronger
  evidence. Two hours is the detection deadline, hence the one- and two-hour windows; the two-hour
  sum is the cumulative test (a persisting drop halves twice the count, far less likely as noise).
  The two-hour window only needs its *mean* baseline ≥ ``min_baseline`` (and its first hour's), so a
  drop whose second hour's baseline dips just under the minimum still opens.

**Resolving** (hysteresis): a drop resolves after ``resolve_hours`` consecutive eligible hours at
≥ ``resolve_ratio × B``; a silence resolves at the first hour with an interaction (and may hand over
to a drop in the same hour when the account came back low). An open alert also resolves after
``idle_resolve_hours`` consecutive hours with a baseline under ``min_baseline`` (the account stopped
being alertable, e.g. it went quiet for weeks and the baseline followed). One episode per account at
a time: a drop that becomes a silence (or back) emits ``resolved`` for the old kind and ``opened`` for
the new one at the same instant.

``at_ms`` of an alert is the *end* of the hour that decided it (when the evidence was complete).
The engaged-followers count is tracked (last value and a one-week EWMA) for display; it is a 30-day
window level that lags a drop by days, so alerts are on the hourly substantive rate.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from streams.engagement.drop_state import (
    DROP,
    HOURS_PER_WEEK,
    KIND_NAMES,
    NONE,
    SILENCE,
    AccountState,
    decode_state,
    encode_state,
    peek_last_hour,
)
from streams.engagement.model import HOUR_MS, Alert

if TYPE_CHECKING:
    from streams.settings import Settings

OPENED: Final = "opened"
RESOLVED: Final = "resolved"
_SMOOTHING: Final = ((-1, 0.25), (0, 0.5), (1, 0.25))
_SPIKE_CAP: Final = 2.0
_CONSISTENT_RATIO: Final = 1.5  # two weekly references further apart than this (+3√n) disagree
_DAILY_UNTIL_WEEKS: Final = 2  # blend in the previous days' same hour while fewer reference weeks exist


@dataclass(frozen=True)
class DropRule:
    """Parameters of the detector (see the module docstring for what each one does)."""

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
        """Evidence over one or more hours that the rate fell by at least ``threshold`` (module docstring)."""
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


def _hour_end_ms(hour: int) -> int:
    return (hour + 1) * HOUR_MS


def step(
    rule: DropRule, account_id: str, state: AccountState, hour: int, observed: int | None
) -> list[Alert]:
    """Fold one completed hour (``observed`` None: a gap) into ``state``; return the alert changes.

    ``hour`` must be ``state.last_hour + 1``; the caller fills longer gaps hour by hour.
    """
    if observed is None:
        state.put(hour, None)
        state.prev_baseline = 0.0
        return []
    seasonal = rule.seasonal(state, hour)
    baseline = rule._scaled(state, seasonal)
    warm = baseline is not None and hour - state.first_hour >= rule.warmup_hours
    alerts = []
    if warm and baseline is not None:
        alerts = _evaluate(rule, account_id, state, hour, observed, baseline)
    if seasonal and baseline and state.kind == NONE and rule.level_half_life_hours > 0:
        alpha = 1 - 2 ** (-1 / rule.level_half_life_hours)
        state.level_num += alpha * (min(observed, _SPIKE_CAP * seasonal) - state.level_num)
        state.level_den += alpha * (seasonal - state.level_den)
        state.level_weight += alpha * (1 - state.level_weight)
        # Squared residual beyond Poisson noise, capped at the threshold: an hour further off than that
        # is an event (a viral post, a drop not yet alerted), not noise, and must not blunt the detector.
        excess = min((observed - baseline) ** 2, (rule.threshold * baseline) ** 2) - baseline
        state.noise_num += alpha * (excess - state.noise_num)
        state.noise_den += alpha * (baseline**2 - state.noise_den)
    state.put(hour, observed)
    state.prev_baseline = baseline if warm and baseline is not None else 0.0
    return alerts


def _evaluate(
    rule: DropRule, account_id: str, state: AccountState, hour: int, observed: int, baseline: float
) -> list[Alert]:
    eligible = baseline >= rule.min_baseline
    alerts: list[Alert] = []
    after_silence = False

    def change(kind: int, new_state: str) -> None:
        if new_state == OPENED:
            state.kind, state.opened_hour, state.recover_run, state.idle_run = kind, hour, 0, 0
            state.opened_observed, state.opened_baseline = observed, baseline
        else:
            state.kind = NONE
        alerts.append(
            Alert(
                account_id=account_id,
                kind=KIND_NAMES[kind],
                state=new_state,
                at_ms=_hour_end_ms(hour),
                observed=float(observed),
                baseline=round(baseline, 3),
                opened_at_ms=_hour_end_ms(state.opened_hour),
            )
        )

    if state.kind != NONE:
        state.idle_run = 0 if eligible else state.idle_run + 1
        if state.idle_run >= rule.idle_resolve_hours:
            change(state.kind, RESOLVED)
            return alerts
        if state.kind == SILENCE:
            if observed == 0:
                return alerts
            change(SILENCE, RESOLVED)
            after_silence = True
        elif eligible and observed == 0:
            change(DROP, RESOLVED)
            change(SILENCE, OPENED)
            return alerts
        elif eligible:
            state.recover_run = state.recover_run + 1 if observed >= rule.resolve_ratio * baseline else 0
            if state.recover_run >= rule.resolve_hours:
                change(DROP, RESOLVED)
            return alerts
        else:
            return alerts

    if not eligible:
        # The two-hour window is judged on its own expected volume: an hour whose baseline dips just
        # under the minimum, after one above it, still completes a two-hour drop averaging above it.
        if (
            not after_silence
            and 0 < observed <= rule.resolve_ratio * baseline
            and state.prev_baseline >= rule.min_baseline
            and baseline + state.prev_baseline >= 2 * rule.min_baseline
            and _two_hours_low(rule, state, observed, baseline)
        ):
            change(DROP, OPENED)
        return alerts
    if observed == 0:
        change(SILENCE, OPENED)
    elif observed <= rule.resolve_ratio * baseline:
        two_hours = not after_silence and _two_hours_low(rule, state, observed, baseline)
        if two_hours or rule.is_low(observed, (baseline,), rule.dispersion2(state)):
            change(DROP, OPENED)
    return alerts


def _two_hours_low(rule: DropRule, state: AccountState, observed: int, baseline: float) -> bool:
    previous = state.count_at(state.last_hour)
    if previous is None or state.prev_baseline <= 0:
        return False
    return rule.is_low(observed + previous, (baseline, state.prev_baseline), rule.dispersion2(state))


@dataclass(frozen=True)
class AccountView:
    """What the detector currently holds for one account (for dashboards, debugging and tests)."""

    account_id: str
    last_hour_ms: int
    open_kind: str | None
    opened_at_ms: int | None
    level: float
    next_baseline: float | None  # the baseline the next hour will be compared with
    engaged_followers: int | None
    engaged_baseline: float | None
    state_bytes: int


class DropDetector:
    """Applies :func:`step` to accounts whose encoded states live in ``store``.

    ``store`` is any ``MutableMapping[str, bytes]`` keyed by account id — a dict, or a Faust table
    (changelog-backed). Hours must be fed in order per account; an hour at or before an account's
    last hour is ignored, so a replay after a restart is harmless.

    Every access to the states goes through the five methods under "state access" (decode on read,
    encode on write here): a subclass may keep decoded states elsewhere (stage 2 of the worker keeps
    them in memory between records and encodes them once per record) without touching the rule.
    """

    def __init__(self, rule: DropRule, store: MutableMapping[str, bytes] | None = None) -> None:
        self.rule = rule
        self.store: MutableMapping[str, bytes] = {} if store is None else store

    def observe(
        self, account_id: str, hour_start_ms: int, substantive: int, engaged_followers: int | None = None
    ) -> list[Alert]:
        """Fold the final count of one (account, hour); missing hours since the last one count as zeros."""
        hour = hour_start_ms // HOUR_MS
        state = self._load(account_id, hour)
        if hour <= state.last_hour:
            return []
        alerts = self._fill(account_id, state, hour, 0)
        alerts += step(self.rule, account_id, state, hour, max(0, substantive))
        if engaged_followers is not None:
            self._track_engaged(state, engaged_followers)
        self._save(account_id, state)
        return alerts

    def close_hour(self, hour_start_ms: int) -> list[Alert]:
        """The hour is final: every known account not observed in it gets a zero (silence detection)."""
        return self._advance_all(hour_start_ms, 0)

    def skip_hour(self, hour_start_ms: int) -> list[Alert]:
        """The hour had no data at all (e.g. an ingest outage): a gap, neither zero nor evaluated."""
        return self._advance_all(hour_start_ms, None)

    def open_alerts(self) -> Iterator[Alert]:
        """Every currently open alert, as its ``opened`` record (to refresh an Alertmanager)."""
        for account_id, state in self._states():
            if state.kind != NONE:
                at = _hour_end_ms(state.opened_hour)
                observed, baseline = float(state.opened_observed), round(state.opened_baseline, 3)
                yield Alert(account_id, KIND_NAMES[state.kind], OPENED, at, observed, baseline, at)

    def view(self, account_id: str) -> AccountView | None:
        state = self._get(account_id)
        if state is None:
            return None
        return AccountView(
            account_id=account_id,
            last_hour_ms=state.last_hour * HOUR_MS,
            open_kind=KIND_NAMES.get(state.kind),
            opened_at_ms=_hour_end_ms(state.opened_hour) if state.kind != NONE else None,
            level=state.level,
            next_baseline=self.rule.baseline(state, state.last_hour + 1),
            engaged_followers=state.engaged_last if state.engaged_last >= 0 else None,
            engaged_baseline=state.engaged_ewma if state.engaged_last >= 0 else None,
            state_bytes=len(encode_state(state)),
        )

    def _advance_all(self, hour_start_ms: int, fill: int | None) -> list[Alert]:
        hour = hour_start_ms // HOUR_MS
        alerts: list[Alert] = []
        for account_id in self._behind(hour):
            state = self._load(account_id, hour)
            alerts += self._fill(account_id, state, hour + 1, fill)
            if state.kind == NONE and hour - state.last_active_hour >= self.rule.ring_hours:
                self._forget(account_id)  # a month without activity: forget the account
            else:
                self._save(account_id, state)
        return alerts

    def _fill(self, account_id: str, state: AccountState, until_hour: int, fill: int | None) -> list[Alert]:
        """Fold ``fill`` into every hour after ``last_hour`` and before ``until_hour``."""
        alerts: list[Alert] = []
        start = max(state.last_hour + 1, until_hour - self.rule.ring_hours)
        if start > state.last_hour + 1:  # longer than the ring: only its last ring_hours hours matter
            state.jump_to(start - 1, fill)
        for gap_hour in range(start, until_hour):
            alerts += step(self.rule, account_id, state, gap_hour, fill)
        return alerts

    def _track_engaged(self, state: AccountState, engaged: int) -> None:
        if state.engaged_last < 0:
            state.engaged_ewma = float(engaged)
        else:
            alpha = 1 - 2 ** (-1 / self.rule.engaged_half_life_hours)
            state.engaged_ewma += alpha * (engaged - state.engaged_ewma)
        state.engaged_last = engaged

    def _load(self, account_id: str, hour: int) -> AccountState:
        state = self._get(account_id)
        if state is None:
            return AccountState.new(hour, self.rule.ring_hours)
        return state.resized(self.rule.ring_hours)

    # --- state access (overridable) -----------------------------------------------------------------

    def _get(self, account_id: str) -> AccountState | None:
        """The account's state, or None if unknown. The caller may change it, then :meth:`_save` it."""
        data = self.store.get(account_id)
        return None if data is None else decode_state(data)

    def _save(self, account_id: str, state: AccountState) -> None:
        self.store[account_id] = encode_state(state)

    def _forget(self, account_id: str) -> None:
        del self.store[account_id]

    def _behind(self, hour: int) -> list[str]:
        """The known accounts whose last hour is before ``hour``, in the store's order."""
        return [account_id for account_id, data in list(self.store.items()) if peek_last_hour(data) < hour]

    def _states(self) -> Iterator[tuple[str, AccountState]]:
        for account_id, data in list(self.store.items()):
            yield account_id, decode_state(data)
