"""Per-minute activity counters, accumulated between drains and handed out as partial deltas.

Counters accumulate directly in :class:`AccountMinute` / :class:`PostMinute` rows (mutable, slotted:
an attribute increment costs what a list index increment does), so :meth:`Aggregates.take` only hands
the rows over. Building the rows from counter lists at each drain was a cost per row, and the
benchmark mix makes nearly one row per event (README, "Performance"). Every row is a delta since the
previous ``take``: summing rows with equal keys, across drains, partitions and workers, gives the totals.

``active`` = comments + shares; ``passive`` = likes + follows. An unfollow is neither (it is a
withdrawal of attention, not an interaction) and only counts in ``unfollows``; the net follower delta
of an account over any period is ``sum(follows) − sum(unfollows)``.
"""

from __future__ import annotations

from streams.engagement.model import ENGAGED, MINUTE_MS, AccountMinute, FollowerDay, PostMinute

AccountKey = tuple[str, str, int]  # account_id, platform, minute_ms
PostKey = tuple[str, str, str, int]  # account_id, platform, post_id, minute_ms
FollowerKey = tuple[str, str, str, int]  # account_id, actor_id, platform, day_ms


class Aggregates:
    __slots__ = ("accounts", "followers", "posts")

    def __init__(self) -> None:
        self.accounts: dict[AccountKey, AccountMinute] = {}
        self.posts: dict[PostKey, PostMinute] = {}
        self.followers: dict[FollowerKey, FollowerDay] = {}

    def add_transition(self, kind: str, account_id: str, platform: str, at_ms: int) -> None:
        minute = at_ms - at_ms % MINUTE_MS
        key = (account_id, platform, minute)
        row = self.accounts.get(key)
        if row is None:
            row = self.accounts[key] = AccountMinute(account_id, platform, minute)
        if kind == ENGAGED:
            row.engaged_new += 1
        else:
            row.lapsed += 1

    def take(self) -> tuple[list[AccountMinute], list[PostMinute]]:
        """The rows accumulated since the last call; the counters restart from zero."""
        accounts, posts = list(self.accounts.values()), list(self.posts.values())
        self.accounts = {}
        self.posts = {}
        return accounts, posts

    def take_followers(self) -> list[FollowerDay]:
        """The per-follower day rows accumulated since the last call."""
        followers = list(self.followers.values())
        self.followers = {}
        return followers
