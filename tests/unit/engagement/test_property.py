"""The incremental engine against a brute-force oracle written independently here.

Events arrive in any order with bounded disorder (some beyond the allowed lateness, some
redelivered); drains, flushes and restarts happen at random points. The oracle sorts what was
accepted and recounts every window from scratch.
"""

from __future__ import annotations

import copy
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engagement import PartitionEngine, Rule, decode
from streams.engagement.state import ActorState
from streams.events import Interaction
from tests.unit.engagement.oracle import minute_counters, oracle

BASE = 59_000  # events straddle a UTC minute boundary
TEXTS = [None, "", "Nice!", "🔥🔥 👏", "_ _", "love this", "Ça marche", "很好 谢谢", "three whole words"]
PLATFORM = {"b1": "x", "b2": "x", "b3": "mastodon"}


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, object]:
    n = draw(st.integers(1, 4))
    window = draw(st.integers(50, 600))
    lateness = draw(st.integers(0, 200))
    min_words = draw(st.integers(1, 3))
    raw = draw(
        st.lists(
            st.tuples(
                st.integers(0, 1500),
                st.sampled_from(["comment", "comment", "share", "like", "follow", "unfollow"]),
                st.sampled_from(TEXTS),
                st.sampled_from(["f1", "f2", "f3"]),
                st.sampled_from(["b1", "b2", "b3"]),
                st.integers(0, lateness + 80),  # arrival delay: beyond `lateness` may be late
                st.integers(0, 6),  # 0: redeliver this event later
            ),
            max_size=70,
        )
    )
    events: list[tuple[int, Interaction]] = []
    for i, (t, kind, text, actor, account, delay, dup) in enumerate(raw):
        event = Interaction(
            f"id{i}", kind, PLATFORM[account], account, actor,
            None if kind in ("follow", "unfollow") else f"p{t % 3}", text, BASE + t,
        )  # fmt: skip
        events.append((BASE + t + delay, event))
        if dup == 0:
            events.append((BASE + t + delay + draw(st.integers(0, 300)), event))
    events.sort(key=lambda pair: pair[0])
    arrivals = [e for _, e in events]
    ops = draw(
        st.lists(
            st.sampled_from(["", "", "", "drain", "flush", "restart"]),
            min_size=len(arrivals),
            max_size=len(arrivals),
        )
    )
    return {
        "rule": Rule(
            threshold=n, window_ms=window, allowed_lateness_ms=lateness, min_words=min_words,
            score_floor=1e-30, cache_max_actors=draw(st.sampled_from([1, 2, 1000])),
            like_weight=draw(st.sampled_from([0.0, 0.1])),
        ),
        "arrivals": arrivals,
        "ops": ops,
    }  # fmt: skip


def _from(state: ActorState, final: int) -> ActorState:
    """``state`` with the hashes of times before ``final`` zeroed."""
    for pair in state.pairs.values():
        pair.hashes = tuple(0 if at < final else h for at, h in zip(pair.times, pair.hashes, strict=True))
    return state


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_engine_matches_the_oracle(scenario: dict[str, object]) -> None:
    rule = scenario["rule"]
    arrivals = scenario["arrivals"]
    ops = scenario["ops"]
    assert isinstance(rule, Rule) and isinstance(arrivals, list) and isinstance(ops, list)
    store: dict[str, bytes] = {}
    engine = PartitionEngine(rule, store)
    statuses: list[str] = []
    outputs = []
    restarted = False
    for event, op in zip(arrivals, ops, strict=True):
        statuses.append(engine.process(event))
        if op == "drain":
            outputs.append(engine.drain())
        elif op == "flush":
            outputs.append(engine.drain())
            written = engine.dirty()
            # What was written is what the engine holds (cached pair records were invalidated on change).
            # A timer that changed no verdict leaves its actor unwritten: only what was written is compared.
            # Hashes of times before the final horizon may be left out of the record or the memory
            # (never needed again): compared from the horizon on.
            final = engine.final_ms
            assert final is not None
            for actor, value in written.items():
                if value is not None and actor in engine._cache:
                    assert _from(decode(store[actor]), final) == _from(
                        copy.deepcopy(engine._cache[actor]), final
                    )
        elif op == "restart":
            outputs.append(engine.drain())
            engine.dirty()
            engine = PartitionEngine(
                rule, store, flush_seq=engine.flush_seq, watermark_ms=engine.watermark_ms
            )
            engine.restore()
            restarted = True
    last = max((e.occurred_at_ms for e in arrivals), default=0)
    engine.advance_watermark(last + rule.window_ms + rule.allowed_lateness_ms + 1)
    outputs.append(engine.drain())
    engine.dirty()

    expected = oracle(
        arrivals,
        rule.threshold,
        rule.window_ms,
        rule.allowed_lateness_ms,
        rule.min_words,
        rule.half_life_ms,
        rule.like_weight,
    )
    got = [(t.at_ms, t.account_id, t.actor_id, t.kind, t.count) for out in outputs for t in out.transitions]
    # Emitted in event-time order across drains, never twice, exactly the oracle's.
    assert [g[0] for g in got] == sorted(g[0] for g in got)
    assert sorted(got) == expected.transitions
    assert all(t.platform == PLATFORM[t.account_id] for out in outputs for t in out.transitions)
    assert engine.engaged_pairs == 0

    assert all(row.platform == PLATFORM[row.account_id] for out in outputs for row in out.account_minutes)
    counters = minute_counters(outputs)
    if not restarted:
        # A restart forgets the in-memory dedup set of non-substantive ids (by design, see dedup.py).
        assert statuses == expected.statuses
        assert {k: +v for k, v in counters.items() if +v} == {
            k: +v for k, v in expected.counters.items() if +v
        }
        last_scores = {(s.account_id, s.actor_id): s for out in outputs for s in out.scores}
        assert set(last_scores) == set(expected.scores)
        for key, (score, as_of, interactions) in expected.scores.items():
            row = last_scores[key]
            assert (row.as_of_ms, row.interactions) == (as_of, interactions)
            assert math.isclose(row.score, score, rel_tol=1e-9)
    else:
        assert [s for s in statuses if s == "late"] == [s for s in expected.statuses if s == "late"]
        subst = {k: v["substantive"] for k, v in counters.items() if v["substantive"]}
        assert subst == {k: v["substantive"] for k, v in expected.counters.items() if v["substantive"]}

    # Everything expires once event time has moved on far enough: memory is bounded.
    engine.advance_watermark(last + 10**7)
    engine.drain()
    engine.dirty()
    assert store == {} and engine.tracked_pairs == 0 and engine.scheduled_actors == 0
