"""A brute-force oracle of the engaged rule for the property tests (not a test module).

Written independently of the engine: it sorts the accepted events and recounts every window, minute
and score from scratch.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from streams.engagement.model import Outputs
from streams.events import Interaction

WEIGHTS = {  # likes weigh the scenario's like_weight
    ("comment", False): 0.2,
    ("comment", True): 1.0,
    ("share", False): 0.5,
    ("share", True): 1.5,
}


def oracle_words(text: str | None) -> int:
    return sum(1 for token in (text or "").split() if any(ch.isalnum() for ch in token))


def substantive(e: Interaction, min_words: int) -> bool:
    """The rule's definition: a comment or share with at least ``min_words`` words; with no minimum,
    every comment and a share with any text."""
    if e.type not in ("comment", "share"):
        return False
    if min_words <= 0:
        return e.type == "comment" or bool(e.text and e.text.strip())
    return oracle_words(e.text) >= min_words


@dataclass
class Oracle:
    statuses: list[str]
    transitions: list[tuple[int, str, str, str, int]]  # at, account, actor, kind, count
    counters: dict[tuple[str, int], Counter[str]]
    scores: dict[tuple[str, str], tuple[float, int, int]]


def oracle(
    arrivals: list[Interaction],
    n: int,
    window: int,
    lateness: int,
    min_words: int,
    half: int,
    like_weight: float,
) -> Oracle:
    """Statuses as an engine driving its own watermark gives them, then :func:`recount` of the accepted."""
    statuses: list[str] = []
    watermark: int | None = None
    seen: set[str] = set()
    accepted: list[Interaction] = []
    for event in arrivals:
        if watermark is not None and event.occurred_at_ms < watermark - lateness:
            statuses.append("late")
        elif event.event_id in seen:
            statuses.append("duplicate")
        else:
            seen.add(event.event_id)
            accepted.append(event)
            statuses.append("ok")
            watermark = event.occurred_at_ms if watermark is None else max(watermark, event.occurred_at_ms)
    return recount(accepted, n, window, min_words, half, like_weight, statuses)


def recount(
    accepted: list[Interaction],
    n: int,
    window: int,
    min_words: int,
    half: int,
    like_weight: float,
    statuses: list[str] | None = None,
) -> Oracle:
    """Transitions, per-minute counters and scores of the accepted events, counted from scratch."""
    times: dict[tuple[str, str], list[int]] = defaultdict(list)
    for e in accepted:
        if substantive(e, min_words):
            times[(e.account_id, e.actor_id)].append(e.occurred_at_ms)
    transitions = []
    for (account, actor), ts in times.items():
        points = sorted(set(ts) | {t + window for t in ts})
        engaged = False
        for p in points:
            count = sum(1 for t in ts if p - window < t <= p)
            if (count >= n) != engaged:
                engaged = count >= n
                transitions.append((p, account, actor, "engaged" if engaged else "lapsed", count))
    counters: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    for e in accepted:
        row = counters[(e.account_id, e.occurred_at_ms // 60_000)]
        row[e.type] += 1
        row["substantive"] += substantive(e, min_words)
        row["active"] += e.type in ("comment", "share")
        row["passive"] += e.type in ("like", "follow")
    for at, account, _, kind, _ in transitions:
        counters[(account, at // 60_000)][kind] += 1
    contributions: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for e in accepted:
        weight = like_weight if e.type == "like" else WEIGHTS.get((e.type, substantive(e, min_words)), 0.0)
        if weight:
            contributions[(e.account_id, e.actor_id)].append((e.occurred_at_ms, weight))
    scores = {}
    for key, items in contributions.items():
        as_of = max(t for t, _ in items)
        score = sum(w * 2 ** (-(as_of - t) / half) for t, w in items)
        scores[key] = (score, as_of, len(items))
    return Oracle(statuses or [], sorted(transitions), counters, scores)


def minute_counters(outputs: list[Outputs]) -> dict[tuple[str, int], Counter[str]]:
    """The engine's per-minute account rows summed per (account, minute), keyed as :func:`recount`'s."""
    counters: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    for out in outputs:
        for row in out.account_minutes:
            c = counters[(row.account_id, row.minute_ms // 60_000)]
            for name in ("likes", "comments", "shares", "follows", "unfollows"):
                c[name[:-1]] += getattr(row, name)
            for name in ("substantive", "active", "passive"):
                c[name] += getattr(row, name)
            c["engaged"] += row.engaged_new
            c["lapsed"] += row.lapsed
    return counters
