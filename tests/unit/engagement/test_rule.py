from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engagement import Rule, count_words, is_substantive
from streams.settings import Settings


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Nice!", 1),
        ("🔥🔥 👏", 0),
        ("Ça marche", 2),
        ("love this product", 3),
        ("  spaced\tout\nwords  ", 3),
        ("", 0),
        (None, 0),
        ("_ __ ___", 0),  # underscores are not letters, although regex \w matches them
        ("a_b", 1),
        ("!!! ??? ...", 0),
        ("🔥wow🔥 👏", 1),
        ("Отличный пост", 2),
        ("यह अच्छा है", 3),  # Devanagari: letters plus combining vowel signs
        ("很好 谢谢", 2),
        ("非常好的产品", 1),  # no whitespace: one token
        ("١٢٣ ٤٥", 2),  # Arabic-Indic digits are digits
        ("5 stars", 2),
        ("non\u00a0breaking\u3000spaces", 3),  # NBSP and ideographic space separate words
        ("e\u0301 ok", 2),
    ],
)
def test_count_words(text: str | None, words: int) -> None:
    assert count_words(text) == words


def test_count_words_stops_at_the_limit() -> None:
    assert count_words("one two three four", 2) == 2


_TOKENS = st.sampled_from(["word", "Ça", "🔥", "!!!", "_", "5", "a_b", "很好", "", "e\u0301"])
_SPACES = st.sampled_from([" ", "  ", "\t", "\n", "\u00a0", "\u3000", "\x1c"])


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(_TOKENS, _SPACES), max_size=8), st.integers(min_value=0, max_value=5), st.text())
def test_count_words_with_a_limit_is_the_full_count_capped(
    parts: list[tuple[str, str]], limit: int, noise: str
) -> None:
    # The limited count takes a shortcut when the first tokens are all words; it must agree with the
    # full count everywhere, whitespace of every kind and non-words in any position included.
    for text in ("".join(token + space for token, space in parts), noise):
        assert count_words(text, limit or None) == (
            min(count_words(text), limit) if limit else count_words(text)
        )


@pytest.mark.parametrize(
    ("event_type", "text", "min_words", "expected"),
    [
        ("comment", "love this", 2, True),
        ("comment", "Nice!", 2, False),
        ("comment", "🔥🔥 👏", 2, False),
        ("comment", "Ça marche", 2, True),
        ("comment", None, 2, False),
        ("share", "must read", 2, True),
        ("share", None, 2, False),  # bare share
        ("share", "wow", 2, False),
        ("like", "love this a lot", 2, False),  # text on a like is ignored
        ("follow", "hello there", 2, False),
        ("unfollow", "bye bye", 2, False),
        ("comment", "Nice!", 1, True),
        ("comment", "one two", 3, False),
        ("comment", "🔥", 0, True),  # no minimum: every comment
        ("share", None, 0, False),  # ... but a share still needs commentary
        ("share", " ", 0, False),
        ("share", "👏", 0, True),
    ],
)
def test_is_substantive(event_type: str, text: str | None, min_words: int, expected: bool) -> None:
    assert is_substantive(event_type, text, min_words) is expected


def test_rule_defaults_and_settings() -> None:
    rule = Rule()
    assert (rule.threshold, rule.window_ms, rule.min_words, rule.allowed_lateness_ms) == (
        3,
        30 * 86_400_000,
        2,
        3_600_000,
    )
    assert rule.half_life_ms == rule.window_ms // 4
    settings = Settings(
        engaged_threshold=5, window_ms=7 * 86_400_000, min_words=3, allowed_lateness_ms=60_000
    )
    derived = Rule.from_settings(settings)
    assert (derived.threshold, derived.window_ms, derived.min_words, derived.allowed_lateness_ms) == (
        5,
        7 * 86_400_000,
        3,
        60_000,
    )
    assert Rule(score_half_life_ms=1000).half_life_ms == 1000


@pytest.mark.parametrize(
    ("event_type", "substantive", "weight"),
    [
        ("like", False, 0.0),  # a like is not engagement, as a follow is not (ENGAGE_LIKE_WEIGHT)
        ("comment", False, 0.2),
        ("comment", True, 1.0),
        ("share", False, 0.5),
        ("share", True, 1.5),
        ("follow", False, 0.0),
        ("unfollow", False, 0.0),
    ],
)
def test_score_weights(event_type: str, substantive: bool, weight: float) -> None:
    assert Rule().weight(event_type, substantive) == weight


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 0},
        {"window_ms": 0},
        {"allowed_lateness_ms": -1},
        {"score_half_life_ms": 0},
        {"score_floor": 0.0},
        {"like_weight": -0.1},
    ],
)
def test_rule_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Rule(**kwargs)  # type: ignore[arg-type]
