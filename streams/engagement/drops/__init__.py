"""Drop detection, the pure core: per-account engagement-drop and silence detection over completed
event-time hours. No Kafka, Faust or ClickHouse.

Modules: :mod:`.rule` (:class:`DropRule`: parameters and the baseline), :mod:`.detector` (:func:`step`,
:class:`DropDetector`: opening and resolving alerts), :mod:`.state` (:class:`AccountState` and its
compact bytes, a table value). How the worker feeds it completed hours from partitioned streams is
:mod:`streams.worker.drops`.

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

from streams.engagement.drops.detector import OPENED, RESOLVED, AccountView, DropDetector, step
from streams.engagement.drops.rule import DropRule
from streams.engagement.drops.state import AccountState, decode_state, encode_state

__all__ = [
    "OPENED",
    "RESOLVED",
    "AccountState",
    "AccountView",
    "DropDetector",
    "DropRule",
    "decode_state",
    "encode_state",
    "step",
]
