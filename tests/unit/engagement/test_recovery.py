"""Restarts: a new engine over the same store continues exactly; a replayed interval is not applied twice."""

from __future__ import annotations

import random
from collections.abc import MutableMapping

import pytest

from streams.engagement import Outputs, PartitionEngine, Rule, decode
from streams.engagement.state import ActorState
from streams.engagement.window import prune
from streams.events import Interaction

from .factory import ev

W = 10_000
RULE = Rule(window_ms=W, allowed_lateness_ms=500, like_weight=0.1)
COUNTERS = ("likes", "comments", "shares", "follows", "unfollows")
COUNTERS += ("substantive", "active", "passive", "engaged_new", "lapsed")


def stream(seed: int, count: int) -> list[Interaction]:
    """Unique events over 50 actors and 4 accounts, arriving up to 400 ms out of order."""
    rng = random.Random(seed)
    texts = [None, "Nice!", "love this one", "great idea here"]
    events = []
    for i in range(count):
        t = i * 20 + rng.randrange(400)
        kind = rng.choice(["comment", "comment", "share", "like", "like", "follow", "unfollow"])
        events.append(
            ev(t, kind, rng.choice(texts), actor=f"f{rng.randrange(50)}", account=f"b{rng.randrange(4)}")
        )
    return events


def run(engine: PartitionEngine, events: list[Interaction], chunk: int) -> list[Outputs]:
    outputs = []
    for start in range(0, len(events), chunk):
        for event in events[start : start + chunk]:
            engine.process(event)
        outputs.append(engine.drain())
        engine.dirty()
    return outputs


def finish(engine: PartitionEngine, at: int) -> Outputs:
    engine.advance_watermark(at)
    out = engine.drain()
    engine.dirty()
    return out


def merged(outputs: list[Outputs]) -> tuple[list[object], dict[object, list[int]], dict[object, object]]:
    transitions = [t for out in outputs for t in out.transitions]
    totals: dict[object, list[int]] = {}
    for out in outputs:
        for row in out.account_minutes:
            values = [getattr(row, name) for name in COUNTERS]
            key = (row.account_id, row.minute_ms)
            totals[key] = [a + b for a, b in zip(totals.get(key, [0] * 10), values, strict=True)]
    scores = {
        (s.account_id, s.actor_id): (s.score, s.as_of_ms, s.interactions)
        for out in outputs
        for s in out.scores
    }
    return transitions, totals, scores


def _settled(store: MutableMapping[str, bytes], final: int) -> dict[str, ActorState]:
    """Every stored state decoded and pruned at ``final`` as a timer would (see window.prune)."""
    states = {actor: decode(raw) for actor, raw in store.items()}
    for state in states.values():
        for pair in state.pairs.values():
            prune(pair, final, RULE.threshold, RULE.window_ms)
            pair.raw = None
    return states


@pytest.mark.parametrize("explicit_watermark", [True, False])
def test_restart_continues_exactly(explicit_watermark: bool) -> None:
    events = stream(7, 3000)
    end = 3000 * 20 + W + 2000
    uninterrupted = PartitionEngine(RULE)
    reference = [*run(uninterrupted, events, 250), finish(uninterrupted, end)]

    store: dict[str, bytes] = {}
    first = PartitionEngine(RULE, store)
    outputs = run(first, events[:1500], 250)
    assert store and first.flush_seq == 6
    second = PartitionEngine(
        RULE,
        store,
        flush_seq=first.flush_seq,
        watermark_ms=first.watermark_ms if explicit_watermark else None,
    )
    second.restore()
    assert second.watermark_ms == first.watermark_ms
    assert (second.tracked_pairs, second.engaged_pairs) == (first.tracked_pairs, first.engaged_pairs)
    outputs += [*run(second, events[1500:], 250), finish(second, end)]

    assert merged(outputs) == merged(reference)
    assert any(t.kind == "lapsed" for t in merged(reference)[0])  # the scenario exercises lapses
    # The same states: keys, pairs, verdicts, scores, and the times and hashes that can still matter.
    # Times out of every future window and hashes of final times are shed when a record is next
    # written or its pair next evaluated, which depends on when flushes and restarts happened.
    final = second.final_ms
    assert final is not None and store
    assert _settled(store, final) == _settled(uninterrupted.store, final)
    finish(second, end + 20 * W)
    finish(uninterrupted, end + 20 * W)
    assert store == uninterrupted.store == {}  # everything expires once event time has moved on


def test_a_replayed_interval_is_not_applied_twice() -> None:
    """Crash after the table write of interval k but before its offsets were committed."""
    events = stream(11, 1200)
    before, interval, after = events[:400], events[400:800], events[800:]
    end = 1200 * 20 + W + 2000
    reference = PartitionEngine(RULE)
    ref_out = [*run(reference, before + interval + after, 400), finish(reference, end)]

    store: dict[str, bytes] = {}
    crashed = PartitionEngine(RULE, store)
    outputs = run(crashed, before, 400)
    committed_seq, committed_watermark = crashed.flush_seq, crashed.watermark_ms
    replay_out = run(crashed, interval, 400)  # written to the table ... then the worker died
    assert replay_out[0].transitions  # something was emitted (and produced) before the crash
    crashed_store = dict(store)

    replayer = PartitionEngine(RULE, store, flush_seq=committed_seq, watermark_ms=committed_watermark)
    replayer.restore()
    replayed = run(replayer, interval, 400)
    # Every follower the interval touched was persisted with its seq stamp: nothing is applied or
    # emitted twice, and the table ends up as if the interval had run once.
    assert replayed[0].transitions == []
    assert store == crashed_store == reference_store_after(before + interval)
    assert replayed[0].account_minutes  # aggregates are still counted (the sink token absorbs them)
    outputs += [*replay_out, *run(replayer, after, 400), finish(replayer, end)]
    transitions, _, scores = merged(outputs)
    ref_transitions, _, ref_scores = merged(ref_out)
    assert transitions == ref_transitions
    assert scores == ref_scores


def reference_store_after(events: list[Interaction]) -> dict[str, bytes]:
    engine = PartitionEngine(RULE)
    run(engine, events, 400)
    return dict(engine.store)


def test_without_the_seq_stamp_a_replay_would_double_count() -> None:
    """Control for the test above: replaying with the wrong flush_seq applies the likes twice."""
    rule = Rule(window_ms=W, allowed_lateness_ms=500, like_weight=0.1)
    likes = [ev(100 + i, "like", event_id=f"l{i}") for i in range(3)]
    store: dict[str, bytes] = {}
    engine = PartitionEngine(rule, store)
    engine.process_many(likes)
    [once] = engine.drain().scores
    engine.dirty()
    for seq, expected in ((0, once.score), (1, 2 * once.score)):
        replay = PartitionEngine(rule, dict(store), flush_seq=seq)
        replay.restore()
        replay.process_many(likes)
        outs = replay.drain().scores
        assert (outs[0].score if outs else once.score) == pytest.approx(expected)


def test_restore_without_a_watermark_uses_committed_stamps_only() -> None:
    store: dict[str, bytes] = {}
    engine = PartitionEngine(RULE, store)
    engine.process(ev(1000, "like", actor="a"))
    engine.dirty()  # seq 0, watermark 1000
    engine.process(ev(5000, "like", actor="b"))
    engine.dirty()  # seq 1, watermark 5000: not committed in this story
    restored = PartitionEngine(RULE, store, flush_seq=1)
    restored.restore()
    assert restored.watermark_ms == 1000
    assert restored.tracked_pairs == 2 and restored.scheduled_actors == 2


def test_restore_only_indexes_the_partitions_own_followers() -> None:
    shared: dict[str, bytes] = {}
    for actor in ("a1", "a2", "b1"):
        engine = PartitionEngine(RULE, shared)
        for t in (0, 10, 20):
            engine.process(ev(t, "comment", "good stuff here", actor=actor))
        engine.dirty()
    mine = PartitionEngine(RULE, shared, flush_seq=1, watermark_ms=20)
    mine.restore(owns=lambda actor: actor.startswith("a"))
    assert (mine.tracked_pairs, mine.scheduled_actors) == (2, 2)
    mine.advance_watermark(10_000)
    assert sorted(t.actor_id for t in mine.drain().transitions) == ["a1", "a2"]


def test_the_caller_can_write_the_store() -> None:
    store: dict[str, bytes] = {}
    engine = PartitionEngine(RULE, store, write_store=False)
    engine.process(ev(0, "like"))
    changes = engine.dirty()
    assert store == {} and set(changes) == {"fan"}
    store.update({k: v for k, v in changes.items() if v is not None})
    engine.process(ev(1, "like"))
    engine.drain()
    assert engine.dirty()["fan"] != store["fan"]


def test_a_replay_whose_dedup_record_survived_moves_the_watermark_as_the_first_run_did() -> None:
    """Crash after the dedup record of interval k, before its progress record (engine-driven watermark).

    The replayed likes are now known duplicates; they must still move event time as they did the
    first time, or an event the uninterrupted run refuses as late is applied after the replay.
    """
    rule = Rule(threshold=1, window_ms=1000, allowed_lateness_ms=0)
    first, like, late = ev(0, actor="a"), ev(500, "like", actor="b"), ev(400, actor="a")

    reference = PartitionEngine(rule)
    assert [reference.process(e) for e in (first, like, late)] == ["ok", "ok", "late"]
    expected = [(t.kind, t.at_ms) for t in finish(reference, 5000).transitions]
    assert expected == [("engaged", 0), ("lapsed", 1000)]

    store: dict[str, bytes] = {}
    crashed = PartitionEngine(rule, store)
    crashed.process(first)
    crashed.drain()
    crashed.dirty()
    dedup = crashed.take_dedup_delta()
    committed_seq, committed_watermark = crashed.flush_seq, crashed.watermark_ms
    crashed.process(like)
    crashed.drain()
    crashed.dirty()
    for minute, hashes in crashed.take_dedup_delta().items():  # the dedup record was written ...
        dedup.setdefault(minute, []).extend(hashes)
    # ... and the worker died before the progress record: interval k is replayed.
    replayer = PartitionEngine(rule, store, flush_seq=committed_seq, watermark_ms=committed_watermark)
    replayer.restore()
    for minute, hashes in dedup.items():
        replayer.remember_dedup(minute, hashes)
    assert replayer.process(like) == "duplicate"
    replayer.drain()
    replayer.dirty()
    assert replayer.watermark_ms == crashed.watermark_ms == 500
    assert replayer.process(late) == "late"
    assert [(t.kind, t.at_ms) for t in finish(replayer, 5000).transitions] == [("lapsed", 1000)]


def test_a_follower_deleted_by_the_interval_being_replayed_is_not_rebuilt_from_that_interval_alone() -> None:
    """Interval k touches a follower and, event time having moved past its window and score, forgets it.

    The crash comes after the table write (the follower's deletion) and before the commit. A deletion
    carries no ``flush_seq`` stamp: without one, the replay applied interval k's events to an empty
    state and emitted an ``engaged`` the uninterrupted run never had (at 20, from 10 and 20 alone).
    """
    rule = Rule(threshold=2, window_ms=100, allowed_lateness_ms=0)
    committed_part = [ev(0, actor="fan")]
    interval = [ev(10, actor="fan"), ev(20, actor="fan"), ev(10_000, "like", actor="other")]

    reference = PartitionEngine(rule)
    expected = run(reference, committed_part, 10) + run(reference, interval, 10)
    flags = [(t.kind, t.at_ms) for out in expected for t in out.transitions]
    assert flags == [("engaged", 10), ("lapsed", 110)]

    store: dict[str, bytes] = {}
    crashed = PartitionEngine(rule, store)
    outputs = run(crashed, committed_part, 10)
    committed_seq, committed_watermark = crashed.flush_seq, crashed.watermark_ms
    outputs += run(crashed, interval, 10)  # flags produced, the follower deleted ... then the worker died
    assert "fan" not in {actor for actor, raw in store.items() if decode(raw).pairs}

    replayer = PartitionEngine(rule, store, flush_seq=committed_seq, watermark_ms=committed_watermark)
    replayer.restore()
    outputs += run(replayer, interval, 10)
    outputs.append(finish(replayer, 100_000))
    # Flags are deduplicated by transition_id downstream: the replay may repeat one, never add one.
    ids = {t.transition_id: (t.kind, t.at_ms) for out in outputs for t in out.transitions}
    assert sorted(ids.values(), key=lambda kind_at: kind_at[1]) == flags
    assert store == {}
