"""What a chaos run must end with, counted from the events alone (never from the engine).

The per-pair windows, per-minute account counters and scores come from the brute-force oracle of the
property tests (:mod:`tests.unit.engagement.oracle`, written independently of the engine); the
per-minute post counters are counted here. Every event is accepted: the chaos streams arrive in
order within a few minutes, well inside the allowed lateness, so none may be judged late, and a run
that dead-letters any event fails.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from streams.events import Interaction
from streams.settings import Settings
from tests.unit.engagement.oracle import recount, substantive

# (account, actor, kind, at_ms, count): a transition as the oracle states it
Transition = tuple[str, str, str, int, int]
AccountMinute = tuple[str, int]  # account, minute (unix seconds)
PostMinute = tuple[str, str, int]  # account, post, minute (unix seconds)
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
        len(accepted),
    )
