"""The engaged rule on one pair: evaluate event points, forget what can no longer matter, plan the next check.

``count(T)`` is the number of substantive times ``s`` with ``T − W < s ≤ T``. It is a step function
that rises only at substantive times and falls only at *drop points* ``s + W``, and a pair is engaged
exactly while ``count ≥ N``. So transitions happen only at those two kinds of *event points*: an
``engaged`` transition at a substantive time, a ``lapsed`` one at a drop point. When both fall on
the same instant the count includes the new interaction (no lapse). Times are integer milliseconds,
so "just before T" is ``T − 1``.

The engine evaluates a pair's event points in ``[checked, final)`` once ``final`` (the watermark
minus the allowed lateness) has passed them: no acceptable event can land at or before them any more,
so every transition is emitted exactly once and never retracted.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from typing import Final

from streams.engagement.model import ENGAGED, LAPSED
from streams.engagement.state import PairState

NEVER: Final = 2**62  # "no check needed" for the timer index


def count_at(times: tuple[int, ...], at: int, window: int) -> int:
    """Substantive times in ``(at − window, at]`` (``times`` ascending)."""
    return bisect_right(times, at) - bisect_right(times, at - window)


def advance(pair: PairState, start: int, end: int, threshold: int, window: int) -> list[tuple[str, int, int]]:
    """Evaluate the event points in ``[start, end)``; return the transitions ``(kind, at, count)``."""
    times = pair.times
    if not times or end <= start:
        return []
    points: set[int] = set()
    for s in times:
        if start <= s < end:
            points.add(s)
        drop = s + window
        if start <= drop < end:
            points.add(drop)
    if not points:
        return []
    out: list[tuple[str, int, int]] = []
    engaged = pair.engaged
    for at in sorted(points):
        count = bisect_right(times, at) - bisect_right(times, at - window)
        now = count >= threshold
        if now is not engaged:
            out.append((ENGAGED if now else LAPSED, at, count))
            engaged = now
    if out:
        pair.engaged = engaged
        pair.raw = None
    return out


def prune(pair: PairState, horizon: int, threshold: int, window: int) -> None:
    """Forget what cannot change any verdict at or after ``horizon`` (all points before it evaluated).

    - times before ``horizon − W``: their drop points are behind us;
    - of the times before ``horizon`` (final: nothing can be inserted among them any more), all but
      the ``threshold`` most recent: while those N are in the window the count is ≥ N whatever the
      older ones do, and once they have left, so have the older ones;
    - hashes of times before ``horizon``: a redelivery of those events would be late.
    """
    times = pair.times
    hashes = pair.hashes
    final = bisect_left(times, horizon)
    cut = max(bisect_left(times, horizon - window), final - threshold)
    if cut > 0:
        times = pair.times = times[cut:]
        hashes = hashes[cut:]
        final -= cut
        pair.raw = None
    if final and any(hashes[:final]):
        hashes = (0,) * final + hashes[final:]
        pair.raw = None
    pair.hashes = hashes


def decayed(pair: PairState, at: int, k: float) -> float:
    """The pair's score at event time ``at`` (never decayed backwards)."""
    if at <= pair.score_as_of:
        return pair.score
    return pair.score * math.exp(-(at - pair.score_as_of) * k)


def expired(pair: PairState, horizon: int, k: float, floor: float) -> bool:
    """Nothing left to remember: not engaged, no substantive time in reach, a negligible score."""
    return not pair.engaged and not pair.times and decayed(pair, horizon, k) < floor


def next_due(pair: PairState, horizon: int, threshold: int, window: int, k: float, floor: float) -> int:
    """The earliest event time at which this pair needs evaluating again (the timer's due time).

    The pair must be re-evaluated once ``final`` passes: its first unevaluated substantive time if
    it has at least N times (an engage candidate); if engaged, that time or its first lapse as far as
    known now (a later arrival can only postpone it — the timer then finds nothing and re-plans);
    else the time its state expires. A pair below N that is not engaged cannot change its verdict
    until more times arrive (each arrival plans its own check), so it waits for its expiry; the
    hashes of its times that became final meanwhile are left out of its stored record
    (:func:`~streams.engagement.state.encode` with a horizon), not dropped by a timer.
    """
    times = pair.times
    i = bisect_left(times, horizon)
    due = times[i] if i < len(times) else NEVER
    if pair.engaged:
        for s in times:
            drop = s + window
            if drop >= horizon and count_at(times, drop, window) < threshold:
                return min(due, drop)
        return due  # unreachable: the count is 0 after the last drop point
    if due != NEVER and len(times) >= threshold:
        return due
    expiry = times[-1] + window if times else horizon
    if pair.score >= floor:
        expiry = max(expiry, pair.score_as_of + math.ceil(math.log(pair.score / floor) / k))
    return max(expiry, horizon)
