"""The engaged rule, bullet by bullet, from parameter tables (N=3, W=1000 ms unless a case says so)."""

from __future__ import annotations

import pytest

from streams.engagement import DUPLICATE, LATE, OK, PartitionEngine, Rule
from streams.events import Interaction

from .factory import ONE_WORD, SUBSTANTIVE, ev, feed

W = 1000
FAR = 10**7
DAY = 86_400_000


def c(at: int, text: str | None = SUBSTANTIVE, **kw: str) -> Interaction:
    return ev(at, "comment", text, **kw)


def s(at: int, text: str | None = SUBSTANTIVE, **kw: str) -> Interaction:
    return ev(at, "share", text, **kw)


CASES: list[tuple[str, list[Interaction], list[tuple[str, int, int]]]] = [
    (
        "three in the window engage at the third",
        [c(0), c(100), c(200)],
        [("engaged", 200, 3), ("lapsed", 1000, 2)],
    ),
    ("two are not enough", [c(0), c(100)], []),
    ("exactly W old no longer counts", [c(0), c(500), c(1000)], []),
    (
        "one ms younger than W still counts",
        [c(1), c(500), c(1000)],
        [("engaged", 1000, 3), ("lapsed", 1001, 2)],
    ),
    (
        "an interaction exactly at the lapse time keeps the pair engaged",
        [c(0), c(100), c(200), c(1000)],
        [("engaged", 200, 3), ("lapsed", 1100, 2)],
    ),
    (
        "one ms after the lapse time is too late to keep it",
        [c(0), c(100), c(200), c(1001)],
        [("engaged", 200, 3), ("lapsed", 1000, 2), ("engaged", 1001, 3), ("lapsed", 1100, 2)],
    ),
    (
        "engage, lapse, re-engage",
        [c(0), c(100), c(200), c(2000), c(2100), c(2200)],
        [("engaged", 200, 3), ("lapsed", 1000, 2), ("engaged", 2200, 3), ("lapsed", 3000, 2)],
    ),
    (
        "a steady stream stays engaged; the lapse waits for the last three",
        [c(t) for t in range(0, 3000, 300)],
        [("engaged", 600, 3), ("lapsed", 3100, 2)],
    ),
    ("one-word comments never count", [c(0, ONE_WORD), c(1, ONE_WORD), c(2, ONE_WORD)], []),
    ("emoji-only comments never count", [c(0, "🔥🔥 👏"), c(1, "🔥🔥 👏"), c(2, "🔥🔥 👏")], []),
    (
        "non-Latin scripts count",
        [c(0, "Ça marche"), c(1, "Отличный пост"), c(2, "很好 谢谢")],
        [("engaged", 2, 3), ("lapsed", 1000, 2)],
    ),
    (
        "Devanagari counts",
        [c(0, "यह अच्छा है"), c(1, "बहुत बढ़िया"), c(2, "ठीक है")],
        [("engaged", 2, 3), ("lapsed", 1000, 2)],
    ),
    ("shares with commentary count", [s(0), s(1), c(2)], [("engaged", 2, 3), ("lapsed", 1000, 2)]),
    ("bare shares do not", [s(0, None), s(1, None), s(2, "wow")], []),
    (
        "likes and follows never count",
        [ev(0, "like"), ev(1, "like"), ev(2, "follow"), ev(3, "like"), c(4), c(5)],
        [],
    ),
    (
        "a substantive comment of one pair does not count for another account",
        [c(0), c(1), c(2, account="other")],
        [],
    ),
]


@pytest.mark.parametrize(("name", "events", "expected"), CASES, ids=[case[0] for case in CASES])
def test_rule_table(name: str, events: list[Interaction], expected: list[tuple[str, int, int]]) -> None:
    engine = PartitionEngine(Rule(window_ms=W, allowed_lateness_ms=0))
    run = feed(engine, events, finish_at=FAR)
    assert run.statuses == [OK] * len(events)
    assert run.kinds() == expected
    assert {t.platform for t in run.transitions} <= {"x"}


def test_simultaneous_interactions_both_count() -> None:
    engine = PartitionEngine(Rule(window_ms=W, allowed_lateness_ms=0))
    run = feed(engine, [c(0), c(5), c(5), c(5)], finish_at=FAR)
    assert run.kinds() == [("engaged", 5, 4), ("lapsed", 1005, 0)]


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ((0, DAY, 30 * DAY), []),  # the first is exactly 30 days old at the third
        ((1, DAY, 30 * DAY), [("engaged", 30 * DAY, 3), ("lapsed", 30 * DAY + 1, 2)]),
        ((0, 10 * DAY, 20 * DAY), [("engaged", 20 * DAY, 3), ("lapsed", 30 * DAY, 2)]),
    ],
)
def test_default_rule_exact_30_day_boundary(
    times: tuple[int, ...], expected: list[tuple[str, int, int]]
) -> None:
    engine = PartitionEngine(Rule())
    run = feed(engine, [c(t) for t in times], finish_at=10**12)
    assert run.kinds() == expected


@pytest.mark.parametrize(
    ("name", "events", "statuses", "expected"),
    [
        (
            "a redelivered comment counts once",
            [c(0, event_id="a"), c(0, event_id="a"), c(100), c(100, event_id="a")],
            [OK, DUPLICATE, OK, DUPLICATE],
            [],
        ),
        (
            "a redelivered like counts once",
            [ev(0, "like", event_id="l"), ev(0, "like", event_id="l")],
            [OK, DUPLICATE],
            [],
        ),
        (
            "distinct ids at the same time both count",
            [c(0, event_id="a"), c(0, event_id="b"), c(0, event_id="c")],
            [OK, OK, OK],
            [("engaged", 0, 3), ("lapsed", 1000, 0)],
        ),
    ],
)
def test_duplicates(
    name: str, events: list[Interaction], statuses: list[str], expected: list[tuple[str, int, int]]
) -> None:
    engine = PartitionEngine(Rule(window_ms=W, allowed_lateness_ms=500))
    run = feed(engine, events, finish_at=FAR)
    assert run.statuses == statuses
    assert run.kinds() == expected
    assert engine.duplicate_total == statuses.count(DUPLICATE)


@pytest.mark.parametrize(
    "arrival",
    [
        [200, 0, 100, 1500],
        [100, 200, 0, 1500],
        [1500, 1200, 200, 100, 0],  # 1200 reopens nothing: it is within the lateness of 1500
        [0, 100, 1500, 200, 1200],
    ],
)
def test_out_of_order_within_lateness_is_exact(arrival: list[int]) -> None:
    engine = PartitionEngine(Rule(window_ms=W, allowed_lateness_ms=1500))
    run = feed(engine, [c(t) for t in arrival], finish_at=FAR)
    assert run.statuses == [OK] * len(arrival)
    in_order = PartitionEngine(Rule(window_ms=W, allowed_lateness_ms=0))
    expected = feed(in_order, [c(t) for t in sorted(arrival)], finish_at=FAR).kinds()
    assert run.kinds() == expected
    assert expected[0] == ("engaged", 200, 3)


def test_too_late_events_are_refused_and_counted() -> None:
    engine = PartitionEngine(Rule(window_ms=W, allowed_lateness_ms=50))
    events = [c(0), c(100), c(1000), c(949), ev(950, "like"), ev(10, "like")]
    run = feed(engine, events, finish_at=FAR)
    assert run.statuses == [OK, OK, OK, LATE, OK, LATE]
    assert engine.late_total == 2
    # Accepted, 949 would have engaged the pair at 949 (0, 100, 949 in the window).
    assert run.kinds() == []
    counts = PartitionEngine(Rule(window_ms=W, allowed_lateness_ms=50)).process_many(events)
    assert (counts.ok, counts.duplicate, [e.occurred_at_ms for e in counts.late]) == (4, 0, [949, 10])


def test_transitions_are_emitted_only_once_final() -> None:
    engine = PartitionEngine(Rule(window_ms=W, allowed_lateness_ms=100))
    for t in (0, 100, 200):
        engine.process(c(t))
    assert engine.drain().transitions == []  # watermark 200, final 100
    engine.advance_watermark(300)  # final 200: an event at 200 could still arrive
    assert engine.drain().transitions == []
    engine.advance_watermark(301)
    assert [(t.kind, t.at_ms) for t in engine.drain().transitions] == [("engaged", 200)]
    engine.advance_watermark(1099)  # final 999
    assert engine.drain().transitions == []
    engine.advance_watermark(1101)
    assert [(t.kind, t.at_ms) for t in engine.drain().transitions] == [("lapsed", 1000)]
    assert engine.drain().transitions == []


def test_lapse_is_emitted_by_the_watermark_without_an_event_from_the_pair() -> None:
    engine = PartitionEngine(Rule(window_ms=W, allowed_lateness_ms=0))
    for t in (0, 100, 200):
        engine.process(c(t, actor="quiet"))
    engine.process(ev(500, "like", actor="other"))
    assert [t.kind for t in engine.drain().transitions] == ["engaged"]
    assert engine.engaged_pairs == 1
    engine.process(ev(999, "like", actor="other"))
    assert engine.drain().transitions == []
    engine.process(ev(1001, "like", actor="other"))
    lapses = engine.drain().transitions
    assert [(t.actor_id, t.kind, t.at_ms, t.count) for t in lapses] == [("quiet", "lapsed", 1000, 2)]
    assert engine.engaged_pairs == 0


def test_pairs_are_independent() -> None:
    engine = PartitionEngine(Rule(window_ms=W, allowed_lateness_ms=0))
    events = [c(t, account=a, actor=f) for t in (0, 10, 20) for a in ("b1", "b2") for f in ("f1", "f2")]
    run = feed(engine, events, finish_at=FAR)
    engaged = {(t.account_id, t.actor_id) for t in run.transitions if t.kind == "engaged"}
    assert engaged == {(a, f) for a in ("b1", "b2") for f in ("f1", "f2")}
    assert len(run.transitions) == 8
    assert len({t.transition_id for t in run.transitions}) == 8


def test_threshold_and_min_words_are_configurable() -> None:
    engine = PartitionEngine(Rule(threshold=1, min_words=1, window_ms=W, allowed_lateness_ms=0))
    run = feed(engine, [c(0, ONE_WORD), c(10, "🔥")], finish_at=FAR)
    assert run.kinds() == [("engaged", 0, 1), ("lapsed", 1000, 0)]
