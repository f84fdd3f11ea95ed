"""The engaged rule's parameters and the one text judgement it needs: is an interaction substantive?

A *word* is a whitespace-separated token (``str.split()``: any Unicode whitespace) that contains at
least one letter or digit in the Unicode sense (``str.isalnum``). So ``"Nice!"`` is one word,
``"🔥🔥 👏"`` none, ``"Ça marche"`` two, ``"_ _"`` none (an underscore is punctuation here, although
the ``\\w`` class of regular expressions counts it). Scripts written without spaces (Chinese,
Japanese, Thai) are one word per space-separated run: the rule is about *whitespace* tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from streams.settings import Settings

COMMENT: Final = "comment"
SHARE: Final = "share"
LIKE: Final = "like"
FOLLOW: Final = "follow"
UNFOLLOW: Final = "unfollow"

DAY_MS: Final = 86_400_000

# `[^\W_]` is "a character \w matches, except the underscore", i.e. exactly str.isalnum() for str
# patterns; one C-level search per token is several times faster than a Python loop over characters.
_HAS_ALNUM: Final = re.compile(r"[^\W_]").search


def count_words(text: str | None, limit: int | None = None) -> int:
    """Words in ``text``; stops counting at ``limit`` (the caller only needs to know "at least")."""
    if not text:
        return 0
    if limit:
        # Common case first: the first ``limit`` tokens are all words. ``split(None, limit)`` stops
        # splitting there, so a long comment is not cut into a list of every token.
        head = text.split(None, limit)[:limit]
        for token in head:
            if _HAS_ALNUM(token) is None:
                break
        else:
            return len(head)
    words = 0
    for token in text.split():
        if _HAS_ALNUM(token) is not None:
            words += 1
            if words == limit:
                break
    return words


def is_substantive(event_type: str, text: str | None, min_words: int) -> bool:
    """A comment, or a share with commentary, whose text has at least ``min_words`` words."""
    if event_type not in (COMMENT, SHARE):
        return False
    if min_words <= 0:
        # With no word minimum any comment counts; a share still needs *some* commentary.
        return event_type == COMMENT or bool(text and text.strip())
    return count_words(text, min_words) >= min_words


@dataclass(frozen=True)
class Rule:
    """Everything the engine needs to know about the rule, the score and its own memory bounds.

    ``threshold`` (N) substantive interactions in the half-open event-time window
    ``(t − window_ms, t]`` make a pair engaged. Events more than ``allowed_lateness_ms`` behind the
    partition's watermark are late. The score weights are per interaction kind; the score halves
    every ``score_half_life_ms`` (default ``window_ms / 4``) and a pair whose score fell below
    ``score_floor`` (with nothing else to remember) is forgotten.
    """

    threshold: int = 3
    window_ms: int = 30 * DAY_MS
    min_words: int = 2
    allowed_lateness_ms: int = 3_600_000
    score_half_life_ms: int | None = None
    score_floor: float = 0.01
    like_weight: float = 0.0  # a like is attention, not engagement (like a follow); ENGAGE_LIKE_WEIGHT
    comment_weight: float = 0.2  # a comment that is not substantive ("Nice!", "🔥")
    substantive_comment_weight: float = 1.0
    share_weight: float = 0.5  # a bare share, or one whose commentary is not substantive
    substantive_share_weight: float = 1.5
    follow_weight: float = 0.0  # a follow is attention, not engagement; unfollows never score
    dedup_max_entries: int = 2_000_000
    cache_max_actors: int = 100_000

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ValueError("threshold must be at least 1")
        if self.window_ms <= 0:
            raise ValueError("window_ms must be positive")
        if self.allowed_lateness_ms < 0:
            raise ValueError("allowed_lateness_ms must not be negative")
        if self.score_half_life_ms is not None and self.score_half_life_ms <= 0:
            raise ValueError("score_half_life_ms must be positive")
        if self.score_floor <= 0:
            raise ValueError("score_floor must be positive")
        weights = (self.like_weight, self.comment_weight, self.substantive_comment_weight)
        if min((*weights, self.share_weight, self.substantive_share_weight, self.follow_weight)) < 0:
            raise ValueError("score weights must not be negative")

    @property
    def half_life_ms(self) -> int:
        """The score's half-life: ``score_half_life_ms`` or, by default, a quarter of the window."""
        if self.score_half_life_ms is not None:
            return self.score_half_life_ms
        return max(1, self.window_ms // 4)

    def weight(self, event_type: str, substantive: bool) -> float:
        """What one interaction adds to the pair's score."""
        if event_type == LIKE:
            return self.like_weight
        if event_type == COMMENT:
            return self.substantive_comment_weight if substantive else self.comment_weight
        if event_type == SHARE:
            return self.substantive_share_weight if substantive else self.share_weight
        if event_type == FOLLOW:
            return self.follow_weight
        return 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Rule:
        return cls(
            threshold=settings.engaged_threshold,
            window_ms=settings.window_ms,
            min_words=settings.min_words,
            allowed_lateness_ms=settings.allowed_lateness_ms,
            like_weight=settings.like_weight,
        )
