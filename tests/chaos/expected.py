"""What a chaos run must end with, counted from the events alone (never from the engine).

The per-pair windows, per-minute account counters and scores come from the brute-force oracle of the
property tests (:mod:`tests.unit.engagement.oracle`, written independently of the engine); the
per-minute post counters are counted here. Every event is accepted: the chaos streams arrive in
order within a few minutes, well inside the allowed lateness, so none may be judged late, and a run
that dead-letters any event fails.

Drop alerts: the hourly substantive totals per account and the hours with any event at all are
counted here from the oracle's per-minute counters; the alerts are what the pure detector
(:class:`~streams.engagement.drops.DropDetector`, whose statistics its own unit tests check) says
when fed those totals in one pass, hour by hour, as :func:`tests.drop_streams.reference` does. What the
run checks is that the worker's two stages (stage 1's partials and heartbeats through Kafka, stage 2's
hour closing, its table and its replays) reproduce that pass exactly however they are interrupted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from streams.engagement.drops import DropDetector, DropRule
from streams.engagement.model import HOUR_MS
from streams.events import Interaction
from streams.settings import Settings
from tests.unit.engagement.oracle import recount, substantive

# (account, actor, kind, at_ms, count): a transition as the oracle states it
Transition = tuple[str, str, str, int, int]
AccountMinute = tuple[str, int]  # account, minute (unix seconds)
PostMinute = tuple[str, str, int]  # account, post, minute (unix seconds)
# (account, kind, state, at_ms, observed, baseline, opened_at_ms): an alert's content
Alert = tuple[str, str, str, int, float, float, int]
ALERT_FIELDS = ("account_id", "kind", "state", "at", "observed", "baseline", "opened_at")
ACCOUNT_COLUMNS = (
    "like",
    "comment",
    "share",
    "follow",
    "unfollow",
    "substantive",
    "active",
    "passive",
    "engaged",
    "lapsed",
)
POST_COLUMNS = ("likes", "comments", "substantive_comments", "shares")


@dataclass
class Expected:
    transitions: set[Transition]
    accounts: dict[AccountMinute, tuple[int, ...]]  # ACCOUNT_COLUMNS, rows with any non-zero
    posts: dict[PostMinute, tuple[int, ...]]  # POST_COLUMNS
    scores: dict[tuple[str, str], tuple[float, int]]  # (score, as_of_ms)
    alerts: set[Alert]
    events: int  # unique events


def expected(events: list[Interaction], settings: Settings) -> Expected:
    unique: dict[str, Interaction] = {}
    for event in events:
        unique.setdefault(event.event_id, event)
    accepted = list(unique.values())
    rule_n, window, min_words = settings.engaged_threshold, settings.window_ms, settings.min_words
    half = window // 4  # the rule's default score half-life
    found = recount(accepted, rule_n, window, min_words, half, settings.like_weight)
    transitions = {(account, actor, kind, at, count) for at, account, actor, kind, count in found.transitions}
    accounts = {
        (account, minute * 60): tuple(counter[c] for c in ACCOUNT_COLUMNS)
        for (account, minute), counter in found.counters.items()
        if any(counter.values())
    }
    posts: dict[PostMinute, Counter[str]] = defaultdict(Counter)
    for e in accepted:
        if e.post_id is None or e.type not in ("like", "comment", "share"):
            continue
        row = posts[(e.account_id, e.post_id, e.occurred_at_ms // 60_000 * 60)]
        row["likes"] += e.type == "like"
        row["comments"] += e.type == "comment"
        row["substantive_comments"] += e.type == "comment" and substantive(e, min_words)
        row["shares"] += e.type == "share"
    scores = {key: (score, as_of) for key, (score, as_of, _) in found.scores.items()}
    return Expected(
        transitions,
        accounts,
        {key: tuple(row[c] for c in POST_COLUMNS) for key, row in posts.items()},
        scores,
        drop_alerts(found.counters, DropRule.from_settings(settings), until_ms=max_time(events)),
        len(accepted),
    )


def max_time(events: list[Interaction]) -> int:
    """The last event time that is not a far-future sentinel's (those only close the hours before)."""
    return max(e.occurred_at_ms for e in events if not e.account_id.startswith("sentinel"))


def drop_alerts(counters: dict[tuple[str, int], Counter[str]], rule: DropRule, until_ms: int) -> set[Alert]:
    """The detector fed every hour up to ``until_ms``'s: an hour with any event is closed (its accounts'
    substantive totals observed, every other known account a zero), one without any is a gap."""
    active: set[int] = set()
    substantive: dict[int, Counter[str]] = defaultdict(Counter)
    for (account, minute), row in counters.items():
        hour = minute * 60_000 // HOUR_MS
        if any(row[kind] for kind in ("like", "comment", "share", "follow", "unfollow")):
            active.add(hour)
        if row["substantive"]:
            substantive[hour][account] += row["substantive"]
    detector = DropDetector(rule)
    found = []
    for hour in range(min(active), until_ms // HOUR_MS + 1):
        start = hour * HOUR_MS
        if hour not in active:
            found += detector.skip_hour(start)
            continue
        for account in sorted(substantive[hour]):
            found += detector.observe(account, start, substantive[hour][account])
        found += detector.close_hour(start)
    return {(a.account_id, a.kind, a.state, a.at_ms, a.observed, a.baseline, a.opened_at_ms) for a in found}
