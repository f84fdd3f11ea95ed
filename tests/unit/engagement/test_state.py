"""State encoding, expiry (bounded memory), the dedup bound and the timer index."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.engagement import ActorState, PairState, PartitionEngine, Rule, decode, encode
from streams.engagement.dedup import MinuteDedup
from streams.engagement.timers import TimerIndex

from .factory import ev

W = 1000

ids = st.text(min_size=1, max_size=40)
millis = st.integers(min_value=-(2**62), max_value=2**62)


@st.composite
def pairs(draw: st.DrawFn, account_id: str) -> PairState:
    times = sorted(draw(st.lists(millis, max_size=6)))
    settled = draw(st.integers(0, len(times)))
    hashes = [0] * settled + draw(
        st.lists(st.integers(1, 2**64 - 1), min_size=len(times) - settled, max_size=len(times) - settled)
    )
    return PairState(
        account_id,
        draw(st.sampled_from(["x", "instagram", "mastodon"])),
        engaged=draw(st.booleans()),
        times=tuple(times),
        hashes=tuple(hashes),
        score=draw(st.floats(allow_nan=False)),
        score_as_of=draw(millis),
        interactions=draw(st.integers(0, 2**32 - 1)),
    )


@st.composite
def actor_states(draw: st.DrawFn) -> ActorState:
    state = ActorState(draw(millis), draw(st.integers(0, 2**64 - 1)), draw(st.none() | millis))
    for account_id in draw(st.lists(ids, max_size=5, unique=True)):
        state.pairs[account_id] = draw(pairs(account_id))
    return state


@given(actor_states())
def test_encoding_round_trips(state: ActorState) -> None:
    assert decode(encode(state)) == state


def test_bytes_per_pair() -> None:
    state = ActorState(checked=1_700_000_000_000)
    state.pairs["brand_0001"] = PairState(
        "brand_0001", "x", engaged=True, times=(1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_002),
        hashes=(0, 0, 0),
        score=2.5, score_as_of=1_700_000_000_002, interactions=7,
    )  # fmt: skip
    one = len(encode(state))
    state.pairs["brand_0002"] = PairState("brand_0002", "x", score=0.1, score_as_of=1, interactions=1)
    two = len(encode(state))
    assert two - one == 2 + 10 + 30  # a like-only pair: no times
    assert one == 30 + 2 + 2 + 10 + 30 + 24  # header, platform, account, fixed, three times


def test_decode_rejects_unknown_versions_and_garbage() -> None:
    raw = encode(ActorState(0))
    with pytest.raises(ValueError, match="version"):
        decode(b"\x09" + raw[1:])
    with pytest.raises(ValueError, match="trailing"):
        decode(raw + b"\x00")
    with pytest.raises(struct.error):
        decode(raw[:5])


def test_expired_state_is_deleted() -> None:
    rule = Rule(window_ms=W, allowed_lateness_ms=0, score_floor=0.01, like_weight=0.1)
    e = PartitionEngine(rule)
    for t in (0, 10, 20):
        e.process(ev(t, "comment", "this is great"))
    e.process(ev(30, "like", actor="liker"))
    e.drain()
    written = e.dirty()
    assert set(written) == {"fan", "liker"} and all(written.values())
    assert set(e.store) == {"fan", "liker"} and e.tracked_pairs == 2
    # A like's 0.1 falls under 0.01 after log2(10) ≈ 3.32 half-lives (H = W/4 = 250 ms).
    e.advance_watermark(30 + 830)
    e.drain()
    assert e.dirty() == {}  # nothing due: the like is still worth ≥ 0.01, the lapse (1000) is ahead
    e.advance_watermark(30 + 832)
    e.drain()
    assert e.dirty() == {"liker": None}
    assert set(e.store) == {"fan"} and e.tracked_pairs == 1
    e.advance_watermark(20 + W + 1)
    assert [t.kind for t in e.drain().transitions] == ["lapsed"]
    e.dirty()
    # Lapsed; times 0..20 have left the window; the score (≈2.92 at t=20) needs log2(292) ≈ 8.2 half-lives.
    e.advance_watermark(20 + 8 * 250)
    e.drain()
    assert e.dirty() == {}
    e.advance_watermark(20 + 9 * 250)
    e.drain()
    assert e.dirty() == {"fan": None}
    assert dict(e.store) == {} and e.tracked_pairs == 0 and e.scheduled_actors == 0


def test_an_actor_that_expires_and_returns_in_the_same_interval_starts_afresh() -> None:
    e = PartitionEngine(Rule(window_ms=W, allowed_lateness_ms=0, like_weight=0.1))
    e.process(ev(0, "like"))
    e.drain()
    e.dirty()
    e.advance_watermark(10 * W)
    e.drain()  # expired, not yet deleted from the store
    e.process(ev(10 * W, "like"))
    [row] = e.drain().scores
    assert (row.score, row.interactions) == (pytest.approx(0.1), 1)
    assert e.dirty()["fan"] is not None and e.tracked_pairs == 1


def test_cache_is_bounded_and_state_survives_eviction() -> None:
    e = PartitionEngine(Rule(window_ms=W, allowed_lateness_ms=0, cache_max_actors=10))
    for i in range(100):
        e.process(ev(i, "comment", "great post here", actor=f"f{i % 50}"))
    e.drain()
    e.dirty()
    assert len(e._cache) <= 10
    for i in range(100, 150):
        e.process(ev(i, "comment", "great post here", actor=f"f{i % 50}"))
    e.advance_watermark(200)
    engaged = {t.actor_id for t in e.drain().transitions}
    assert engaged == {f"f{i}" for i in range(50)}


def test_minute_dedup_horizon_and_cap() -> None:
    dedup = MinuteDedup(max_entries=5)
    assert not dedup.seen(1, 0)
    assert dedup.seen(1, 59_999)
    assert not dedup.seen(1, 60_000)  # another minute, another bucket (ids carry their event time)
    dedup.expire(60_000)
    assert len(dedup) == 1 and not dedup.seen(1, 0)
    for key in range(10, 13):
        dedup.seen(key, 120_000)
    assert len(dedup) == 5 and dedup.evicted == 0
    dedup.seen(99, 120_000)  # over the cap: the oldest minutes go first
    assert dedup.evicted == 1 and len(dedup) == 5
    assert not dedup.seen(1, 0)


def test_engine_dedup_memory_follows_the_watermark() -> None:
    e = PartitionEngine(Rule(window_ms=W, allowed_lateness_ms=60_000))
    for i in range(1000):
        e.process(ev(i * 100, "like", actor=f"f{i % 7}"))
    e.drain()
    assert 0 < e.dedup_entries <= 1000
    e.advance_watermark(100_000 + 60_000 + 120_000)
    e.drain()
    assert e.dedup_entries == 0


def test_timer_index() -> None:
    timers = TimerIndex()
    timers.schedule("a", 50)
    timers.schedule("a", 70)  # later: ignored, 50 stays
    timers.schedule("b", 20)
    timers.schedule("a", 10)  # earlier: replaces
    assert timers.due("a") == 10 and len(timers) == 2
    assert list(timers.pop_before(20)) == ["a"]
    timers.cancel("b")
    assert list(timers.pop_before(100)) == [] and len(timers) == 0
