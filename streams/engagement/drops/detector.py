"""The drop detector: one completed hour folded into an account's state, alerts opened and resolved (pure).

:func:`step` is the rule for one account and hour; :class:`DropDetector` applies it to every account of a
store. What opens and resolves an alert is described once, in :mod:`streams.engagement.drops`.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Final

from streams.engagement.drops.rule import DropRule
from streams.engagement.drops.state import (
    DROP,
    KIND_NAMES,
    NONE,
    SILENCE,
    AccountState,
    decode_state,
    encode_state,
    peek_last_hour,
)
from streams.engagement.model import HOUR_MS, Alert

OPENED: Final = "opened"
RESOLVED: Final = "resolved"
_SPIKE_CAP: Final = 2.0


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
    encode on write here): a subclass may keep decoded states elsewhere (the worker's processor,
    :mod:`streams.worker.drops.processor`, keeps them in memory between records and encodes them once
    per record) without touching the rule.
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
