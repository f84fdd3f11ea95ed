"""Per-minute activity counters, accumulated between drains and handed out as partial deltas.

Counters live in plain lists while they accumulate (an index increment is the cheapest thing
CPython does per event) and become :class:`AccountMinute` / :class:`PostMinute` rows on
:meth:`Aggregates.take`. Every row is a delta since the previous ``take``: summing rows with equal
keys, across drains, partitions and workers, gives the totals.

``active`` = comments + shares; ``passive`` = likes + follows. An unfollow is neither (it is a
withdrawal of attention, not an interaction) and only counts in ``unfollows``; the net follower delta
of an account over any period is ``sum(follows) − sum(unfollows)``.
"""

from __future__ import annotations

from typing import Final

from streams.engagement.model import ENGAGED, MINUTE_MS, AccountMinute, PostMinute

# AccountMinute counter positions, in field order after the key.
LIKES, COMMENTS, SHARES, FOLLOWS, UNFOLLOWS, SUBSTANTIVE, ACTIVE, PASSIVE, ENGAGED_NEW, LAPSED = range(10)
P_LIKES, P_COMMENTS, P_SUBSTANTIVE_COMMENTS, P_SHARES = range(4)

# What one event of each type increments (account counters; post counter or None).
ACCOUNT_FIELDS: Final[dict[str, tuple[int, ...]]] = {
    "like": (LIKES, PASSIVE),
    "comment": (COMMENTS, ACTIVE),
    "share": (SHARES, ACTIVE),
    "follow": (FOLLOWS, PASSIVE),
    "unfollow": (UNFOLLOWS,),
}
POST_FIELD: Final[dict[str, int]] = {"like": P_LIKES, "comment": P_COMMENTS, "share": P_SHARES}

AccountKey = tuple[str, str, int]  # account_id, platform, minute_ms
PostKey = tuple[str, str, str, int]  # account_id, platform, post_id, minute_ms


class Aggregates:
    __slots__ = ("accounts", "posts")

    def __init__(self) -> None:
        self.accounts: dict[AccountKey, list[int]] = {}
        self.posts: dict[PostKey, list[int]] = {}

    def add_event(
        self,
        event_type: str,
        account_id: str,
        platform: str,
        post_id: str | None,
        at_ms: int,
        substantive: bool,
    ) -> None:
        minute = at_ms - at_ms % MINUTE_MS
        key = (account_id, platform, minute)
        row = self.accounts.get(key)
        if row is None:
            row = self.accounts[key] = [0] * 10
        for index in ACCOUNT_FIELDS[event_type]:
            row[index] += 1
        if substantive:
            row[SUBSTANTIVE] += 1
        if post_id is not None:
            field = POST_FIELD.get(event_type)
            if field is not None:
                post_key = (account_id, platform, post_id, minute)
                post_row = self.posts.get(post_key)
                if post_row is None:
                    post_row = self.posts[post_key] = [0] * 4
                post_row[field] += 1
                if substantive and field == P_COMMENTS:
                    post_row[P_SUBSTANTIVE_COMMENTS] += 1

    def add_transition(self, kind: str, account_id: str, platform: str, at_ms: int) -> None:
        key = (account_id, platform, at_ms - at_ms % MINUTE_MS)
        row = self.accounts.get(key)
        if row is None:
            row = self.accounts[key] = [0] * 10
        row[ENGAGED_NEW if kind == ENGAGED else LAPSED] += 1

    def take(self) -> tuple[list[AccountMinute], list[PostMinute]]:
        """The rows accumulated since the last call; the counters restart from zero."""
        accounts = [AccountMinute(a, p, m, *row) for (a, p, m), row in self.accounts.items()]
        posts = [PostMinute(a, p, post, m, *row) for (a, p, post, m), row in self.posts.items()]
        self.accounts = {}
        self.posts = {}
        return accounts, posts
