"""A labelled synthetic benchmark for the drop detector: seasonal Poisson accounts with injected events.

Each account has a daily curve (its own time zone, night floor and peak), weekday factors and a
weekend factor (quieter or busier), and over-dispersed Poisson noise (gamma-Poisson, shape 50).
After the first week, events are injected at random hours, at least 3 days apart:

* ``drop`` (positive): the rate × (1 − depth), depth 0.5–0.95, for 1–24 hours;
* ``silence`` (positive): no interaction at all for 1–6 hours;
* ``dip`` (negative): the rate × 0.7–0.85 for 3–24 hours, a holiday-like soft dip that is not a drop;
* ``spike`` (negative): the rate × 2–4 for 2–8 hours, a viral post (must not cause a drop after it).

An injected positive is *eligible* when the account's true rate at its first hour is at least
``min_baseline``; it is *caught within 2 h* when an alert opens at the end of its first or second hour.
An opened alert is a true positive when it opens during a positive event or in the hour after it.

Each positive also gets its *evidence*: how likely the counts realised in its first two hours are
under the account's true (undropped) rate and the generator's own noise model, as the smallest lower
tail of hour 1, hour 2 and their sum (an oracle that knows the true rate). Noise can make an injected
50% drop realise as a 25% one; such a case (evidence ≳ 1e-4) cannot be caught within 2 h by any
detector that does not page on ordinary noise, so :func:`misses` lists every miss with its evidence.

Run ``python -m tests.unit.engagement.drops.evaluation`` for the table (about 10 s).
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from statistics import median

from streams.engagement.drops import OPENED, RESOLVED, DropDetector, DropRule
from streams.engagement.model import HOUR_MS, Alert

MONDAY_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z, a Monday
WEEKS = 7
HOURS = WEEKS * 168
DISPERSION = 50.0  # gamma shape: variance = λ + λ²/50, a little noisier than Poisson
POSITIVE = ("drop", "silence")


@dataclass(frozen=True)
class Profile:
    """The true expected rate of an account, hour by hour."""

    peak: float
    trough_hour: int
    night_floor: float
    sharpness: float
    day_factors: tuple[float, ...]  # Monday..Sunday
    trend_per_week: float = 0.0

    def rate(self, hour: int) -> float:
        hour_of_day, day = hour % 24, (hour // 24) % 7
        phase = (1 - math.cos(2 * math.pi * (hour_of_day - self.trough_hour) / 24)) / 2
        daily = self.night_floor + (1 - self.night_floor) * phase**self.sharpness
        trend = (1 + self.trend_per_week) ** (hour / 168)
        return self.peak * daily * self.day_factors[day] * trend


@dataclass(frozen=True)
class Injected:
    kind: str  # drop | silence | dip | spike
    start: int  # first hour
    length: int
    factor: float  # rate multiplier while active
    rate_at_start: float  # the true rate of the first hour (before the factor)

    @property
    def end(self) -> int:
        return self.start + self.length - 1

    @property
    def depth(self) -> float:
        return 1 - self.factor


@dataclass
class Account:
    name: str
    profile: Profile
    events: list[Injected] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)


def random_profile(rng: random.Random, peak: float, trend_per_week: float = 0.0) -> Profile:
    weekend = rng.choice((0.35, 0.5, 0.7, 1.3))
    weekdays = tuple(rng.uniform(0.9, 1.1) for _ in range(5))
    return Profile(
        peak=peak,
        trough_hour=rng.randrange(24),
        night_floor=rng.uniform(0.05, 0.3),
        sharpness=rng.uniform(1.0, 2.0),
        day_factors=(*weekdays, weekend, weekend * rng.uniform(0.85, 1.15)),
        trend_per_week=trend_per_week,
    )


def inject(rng: random.Random, profile: Profile, kinds: tuple[str, ...]) -> list[Injected]:
    events: list[Injected] = []
    hour = 168 + rng.randrange(48)
    while hour < HOURS - 30:
        kind = rng.choice(kinds)
        if kind == "drop":
            length, factor = rng.choice((1, 2, 2, 3, 4, 6, 12, 24)), 1 - rng.uniform(0.5, 0.95)
        elif kind == "silence":
            length, factor = rng.choice((1, 2, 3, 6)), 0.0
        elif kind == "dip":
            length, factor = rng.choice((3, 6, 12, 24)), rng.uniform(0.7, 0.85)
        else:
            length, factor = rng.choice((2, 4, 8)), rng.uniform(2.0, 4.0)
        events.append(Injected(kind, hour, length, factor, profile.rate(hour)))
        hour += length + 72 + rng.randrange(48)
    return events


def poisson(rng: random.Random, lam: float) -> int:
    """Poisson variate: multiplication for small λ, Hörmann's PTRS (as numpy does) for λ ≥ 10."""
    if lam <= 0:
        return 0
    if lam < 10:
        limit, k, product = math.exp(-lam), 0, rng.random()
        while product > limit:
            k += 1
            product *= rng.random()
        return k
    slam, loglam = math.sqrt(lam), math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2)
    while True:
        u, v = rng.random() - 0.5, rng.random()
        us = 0.5 - abs(u)
        k = math.floor((2 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(inv_alpha) - math.log(a / (us * us) + b) <= (
            -lam + k * loglam - math.lgamma(k + 1)
        ):
            return k


def realise(rng: random.Random, account: Account, noise: bool = True, dispersion: float = DISPERSION) -> None:
    factors = [1.0] * HOURS
    for event in account.events:
        for hour in range(event.start, event.start + event.length):
            factors[hour] = event.factor
    counts = []
    for hour in range(HOURS):
        lam = account.profile.rate(hour) * factors[hour]
        if noise:
            if dispersion and lam > 0:
                lam = rng.gammavariate(dispersion, lam / dispersion)
            counts.append(poisson(rng, lam))
        else:
            counts.append(round(lam))
    account.counts = counts


def build(seed: int = 20260105, dispersion: float = DISPERSION) -> list[Account]:
    """The labelled set: injected accounts at nine volumes, plus pure-seasonality and trend accounts."""
    rng = random.Random(seed)
    accounts: list[Account] = []
    for peak in (15, 25, 40, 60, 100, 200, 500, 2000, 10_000):
        for i in range(5):
            profile = random_profile(rng, peak)
            kinds = ("drop", "drop", "drop", "silence", "dip", "spike")
            accounts.append(Account(f"inj-{peak}-{i}", profile, inject(rng, profile, kinds)))
        for i in range(2):
            accounts.append(Account(f"pure-{peak}-{i}", random_profile(rng, peak)))
        for trend in (-0.15, 0.15):
            accounts.append(Account(f"trend{trend:+.2f}-{peak}", random_profile(rng, peak, trend)))
    for account in accounts:
        realise(rng, account, dispersion=dispersion)
    return accounts


def run(accounts: Iterable[Account], rule: DropRule) -> dict[str, list[Alert]]:
    """Feed every account hour by hour the way the wiring does: observe the active ones, then close."""
    accounts = list(accounts)
    detector = DropDetector(rule)
    alerts: dict[str, list[Alert]] = defaultdict(list)
    for hour in range(HOURS):
        hour_ms = MONDAY_MS + hour * HOUR_MS
        for account in accounts:
            if account.counts[hour]:
                for alert in detector.observe(account.name, hour_ms, account.counts[hour]):
                    alerts[alert.account_id].append(alert)
        for alert in detector.close_hour(hour_ms):
            alerts[alert.account_id].append(alert)
    return alerts


def hour_of(alert: Alert) -> int:
    """The hour whose close decided the alert."""
    return (alert.at_ms - MONDAY_MS) // HOUR_MS - 1


@dataclass
class Outcome:
    event: Injected
    account: str
    eligible: bool
    caught_2h: bool
    caught: bool
    delay_h: int | None  # hours from the start of the event to the end of the deciding hour
    resolve_lag_h: int | None  # hours from the end of the event to the resolution
    evidence: float = 1.0  # oracle lower-tail probability of the first two hours (module docstring)
    counts: tuple[int, int] = (0, 0)  # realised counts of the first two hours
    rates: tuple[float, float] = (0.0, 0.0)  # true undropped rates of the first two hours


@dataclass
class Report:
    outcomes: list[Outcome]
    true_alerts: int
    false_alerts: dict[str, int]  # by where they happened: normal, dip, spike, pure, trend
    account_weeks: dict[str, float]
    alerts: dict[str, list[Alert]]


def lower_tail(k: int, lam: float, shape: float) -> float:
    """P(X ≤ k) for X Poisson(λ) (``shape`` 0) or gamma-Poisson with that gamma shape (negative binomial)."""
    if lam <= 0:
        return 1.0
    if shape:
        log_p, log_q = math.log(lam / (shape + lam)), math.log(shape / (shape + lam))
        base = shape * log_q - math.lgamma(shape)
        terms = [base + math.lgamma(i + shape) - math.lgamma(i + 1) + i * log_p for i in range(k + 1)]
    else:
        log_lam = math.log(lam)
        terms = [i * log_lam - lam - math.lgamma(i + 1) for i in range(k + 1)]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def evidence(account: Account, event: Injected, dispersion: float) -> float:
    """The oracle's evidence of a drop in the event's first two hours (smaller: clearer)."""
    (x0, x1), (r0, r1) = _first_two(account, event)
    # The sum of two gamma-Poisson hours, approximated by one with matching mean and variance.
    shape2 = dispersion * (r0 + r1) ** 2 / (r0 * r0 + r1 * r1) if dispersion and r0 + r1 > 0 else 0.0
    return min(
        lower_tail(x0, r0, dispersion), lower_tail(x1, r1, dispersion), lower_tail(x0 + x1, r0 + r1, shape2)
    )


def _first_two(account: Account, event: Injected) -> tuple[tuple[int, int], tuple[float, float]]:
    hours = (event.start, min(event.start + 1, HOURS - 1))
    counts = (account.counts[hours[0]], account.counts[hours[1]])
    return counts, (account.profile.rate(hours[0]), account.profile.rate(hours[1]))


def evaluate(
    accounts: list[Account], alerts: dict[str, list[Alert]], rule: DropRule, dispersion: float = 0.0
) -> Report:
    outcomes: list[Outcome] = []
    true_alerts = 0
    false_alerts: dict[str, int] = defaultdict(int)
    account_weeks: dict[str, float] = defaultdict(float)
    for account in accounts:
        group = account.name.split("-")[0].rstrip("+-.0123456789") or account.name
        account_weeks[group] += (WEEKS - 1) * 1.0
        opened = [a for a in alerts.get(account.name, []) if a.state == OPENED]
        resolved = [a for a in alerts.get(account.name, []) if a.state == RESOLVED]
        for alert in opened:
            hit = next((e for e in account.events if e.start <= hour_of(alert) <= e.end + 1), None)
            if hit is not None and hit.kind in POSITIVE:
                true_alerts += 1
            else:
                false_alerts[hit.kind if hit else ("normal" if group == "inj" else group)] += 1
        for event in account.events:
            if event.kind not in POSITIVE:
                continue
            hours = sorted(hour_of(a) for a in opened if event.start <= hour_of(a) <= event.end + 1)
            after = [hour_of(a) for a in resolved if hour_of(a) >= event.end]
            outcomes.append(
                Outcome(
                    event=event,
                    account=account.name,
                    eligible=event.rate_at_start >= rule.min_baseline,
                    caught_2h=bool(hours) and hours[0] <= event.start + 1,
                    caught=bool(hours),
                    delay_h=hours[0] - event.start + 1 if hours else None,
                    resolve_lag_h=min(after) - event.end if hours and after else None,
                    evidence=evidence(account, event, dispersion),
                    counts=_first_two(account, event)[0],
                    rates=_first_two(account, event)[1],
                )
            )
    return Report(outcomes, true_alerts, dict(false_alerts), dict(account_weeks), alerts)


VOLUMES = ("<20/h", "20-40/h", "40-100/h", "≥100/h")
KINDS = ("drop 50-65%", "drop 65-80%", "drop 80-95%", "silence")


def _bucket(outcome: Outcome) -> tuple[str, str]:
    event = outcome.event
    if event.kind == "silence":
        kind = "silence"
    else:
        kind = KINDS[0] if event.depth < 0.65 else (KINDS[1] if event.depth < 0.8 else KINDS[2])
    rate = event.rate_at_start
    volume = VOLUMES[(rate >= 20) + (rate >= 40) + (rate >= 100)]
    return kind, volume


def precision(report: Report) -> float:
    return report.true_alerts / max(1, report.true_alerts + sum(report.false_alerts.values()))


def table(report: Report, out: Callable[[str], None] = print) -> None:
    """Recall within 2 h (caught/n) by depth and true rate at the event's start, then the totals."""
    cells: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for outcome in report.outcomes:
        cells[_bucket(outcome)].append(outcome)
    out("caught within 2 h / injected, by true rate at the start:")
    out(f"{'':<13}" + "".join(f"{v:>12}" for v in VOLUMES))
    for kind in KINDS:
        row = "".join(
            f"{sum(o.caught_2h for o in cells[(kind, v)])}/{len(cells[(kind, v)])}".rjust(12) for v in VOLUMES
        )
        out(f"{kind:<13}{row}")
    eligible = [o for o in report.outcomes if o.eligible]
    caught = sum(o.caught_2h for o in eligible)
    delays = [o.delay_h for o in eligible if o.delay_h is not None]
    lags = [o.resolve_lag_h for o in eligible if o.resolve_lag_h is not None]
    false_total = sum(report.false_alerts.values())
    weeks = sum(report.account_weeks.values())
    share = caught / len(eligible)
    out(f"eligible (true rate ≥ min baseline): caught within 2 h {caught}/{len(eligible)} = {share:.3f}")
    if delays and lags:
        out(f"median hours to open {median(delays):.0f}, to resolve after the event ended {median(lags):.0f}")
    out(
        f"opened alerts: {report.true_alerts} true, {false_total} false → precision {precision(report):.3f}; "
        f"{false_total / weeks:.3f} false alerts per account-week"
    )
    out(f"false alerts by where they opened: {dict(sorted(report.false_alerts.items()))}")


def misses(report: Report, out: Callable[[str], None] = print) -> None:
    """Every eligible positive not caught within 2 h, with the oracle's evidence of its first two hours."""
    for o in sorted((o for o in report.outcomes if o.eligible and not o.caught_2h), key=lambda o: o.evidence):
        e = o.event
        rates = ", ".join(f"{r:.1f}" for r in o.rates)
        later = f"caught after {o.delay_h} h" if o.caught else "never caught"
        out(
            f"missed {o.account} {e.kind} {e.depth:.0%} × {e.length} h at hour {e.start}: true rate {rates}, "
            f"counts {o.counts[0]}, {o.counts[1]}, evidence {o.evidence:.1e}; {later}"
        )


def main() -> None:
    rule = DropRule()
    noises = (("Poisson", 0.0), (f"gamma-Poisson, shape {DISPERSION:g}", DISPERSION))
    for name, dispersion in noises:
        accounts = build(dispersion=dispersion)
        print(f"== {name} noise: {len(accounts)} accounts × {WEEKS} weeks")
        report = evaluate(accounts, run(accounts, rule), rule, dispersion)
        table(report)
        misses(report)


if __name__ == "__main__":
    main()
