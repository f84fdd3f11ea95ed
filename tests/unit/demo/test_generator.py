"""The traffic generator: deterministic, the bench mix, Zipf, 90-9-1, delivery bounds, the drop."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import replace
from functools import cache

import pytest

from streams.demo import texts
from streams.demo.generator import (
    DAILY_RHYTHM,
    HOUR_MS,
    Audience,
    Drop,
    GeneratorConfig,
    Mix,
    TrafficGenerator,
    lookup_table,
)
from streams.events import Interaction, decode_object

N = 100_000


@cache
def bench_events(n: int = N, seed: int = 0) -> tuple[Interaction, ...]:
    return tuple(TrafficGenerator(GeneratorConfig.bench(seed)).take(n))


def until_hour(config: GeneratorConfig, hours: float) -> list[Interaction]:
    """Every event up to ``hours`` of event time (then a margin for late arrivals)."""
    end = config.start_ms + hours * HOUR_MS
    out = []
    for event in TrafficGenerator(config):
        if event.occurred_at_ms >= end + config.max_lateness_ms:
            break
        if event.occurred_at_ms < end:
            out.append(event)
    return out


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    first = [e.to_dict() for e in TrafficGenerator(GeneratorConfig.demo(7)).take(5000)]
    again = [e.to_dict() for e in TrafficGenerator(GeneratorConfig.demo(7)).take(5000)]
    other = [e.to_dict() for e in TrafficGenerator(GeneratorConfig.demo(8)).take(5000)]
    assert first == again
    assert first != other
    assert len({e["event_id"] for e in first} & {e["event_id"] for e in other}) < 50  # only shared-shape ids


def test_start_time_is_injected() -> None:
    start = 1_900_000_000_000
    events = TrafficGenerator(GeneratorConfig.bench(start_ms=start)).take(1000)
    assert min(e.occurred_at_ms for e in events) >= start
    assert max(e.occurred_at_ms for e in events) < start + 24 * HOUR_MS


@pytest.mark.parametrize("preset", ["bench", "demo"])
def test_every_event_decodes_to_itself(preset: str) -> None:
    config = GeneratorConfig.bench(3) if preset == "bench" else GeneratorConfig.demo(3)
    for event in TrafficGenerator(config).take(20_000):
        assert decode_object(event.to_dict()) == event


def test_bench_mix_proportions() -> None:
    events = bench_events()
    types = Counter(e.type for e in events)
    share = {t: c / len(events) for t, c in types.items()}
    assert share["like"] == pytest.approx(0.55, abs=0.01)
    assert share["comment"] == pytest.approx(0.25, abs=0.01)
    assert share["share"] == pytest.approx(0.10, abs=0.01)
    assert share["follow"] + share["unfollow"] == pytest.approx(0.10, abs=0.01)
    assert share["unfollow"] > 0.01
    comments = [e for e in events if e.type == "comment"]
    short = sum(1 for e in comments if texts.word_count(e.text or "") < 2)
    assert short / len(comments) == pytest.approx(0.5, abs=0.02)
    emoji_only = sum(1 for e in comments if texts.word_count(e.text or "") == 0)
    assert emoji_only / len(comments) == pytest.approx(0.5 * 0.3, abs=0.02)
    shares = [e for e in events if e.type == "share"]
    with_text = sum(1 for e in shares if e.text is not None)
    assert with_text / len(shares) == pytest.approx(0.6, abs=0.03)
    assert all(e.post_id is None and e.text is None for e in events if e.type in ("follow", "unfollow"))
    assert all(e.post_id is not None for e in events if e.type in ("like", "comment", "share"))


def test_non_english_and_one_word_texts_are_present() -> None:
    written = [e.text for e in bench_events() if e.text is not None]
    substantive = [t for t in written if texts.word_count(t) >= 2]
    foreign = sum(1 for t in substantive if t in texts.SUBSTANTIVE_FOREIGN)
    assert foreign / len(substantive) == pytest.approx(0.25, abs=0.03)
    seen = set(written)
    for sample in ("Me encanta, ¿cuándo llega a México?", "رائع جدا أحب هذا المنتج", "बहुत बढ़िया उत्पाद है"):
        assert sample in seen
    assert {"Nice!", "🔥", "wow"} <= seen


def test_text_pools_are_classified_by_the_word_rule() -> None:
    assert all(texts.word_count(t) >= 2 for t in texts.SUBSTANTIVE_FOREIGN)
    assert all(texts.word_count(t) == 1 for t in texts.ONE_WORD + texts.ONE_WORD_FOREIGN)
    assert all(texts.word_count(t) == 0 for t in texts.EMOJI_ONLY)
    import random

    assert all(texts.word_count(t) >= 2 for t in texts.english_substantive(random.Random(1), 500))


def test_accounts_are_zipf_popular() -> None:
    generator = TrafficGenerator(GeneratorConfig.bench())
    counts = Counter(e.account_id for e in bench_events())
    by_rank = [counts[a.account_id] for a in generator.accounts]
    total = sum(by_rank)
    assert by_rank[0] / total == pytest.approx(generator.accounts[0].weight, rel=0.15)
    # Zipf with s = 1: rank 1 about ten times rank 10, about fifty times rank 50.
    assert 6 < by_rank[0] / by_rank[9] < 15
    assert by_rank[0] / by_rank[49] > 25
    slope = (math.log(by_rank[39]) - math.log(by_rank[1])) / (math.log(40) - math.log(2))
    assert slope == pytest.approx(-1.0, abs=0.25)


def test_participation_is_90_9_1() -> None:
    generator = TrafficGenerator(GeneratorConfig.bench())
    follower_of = {actor: f for f, actor in enumerate(generator.actor_ids("generic"))}
    events = bench_events()
    writers = Counter(follower_of[e.actor_id] for e in events if e.type in ("comment", "share"))
    # Lurkers never write.
    assert all(generator.follower_tier(f) != "lurker" for f in writers)
    # The 1% write most of it.
    heavy_written = sum(c for f, c in writers.items() if generator.follower_tier(f) == "heavy")
    assert heavy_written / sum(writers.values()) == pytest.approx(0.75, abs=0.02)
    # Few followers have >= 3 substantive comments in the window (~17 event-time hours here): the
    # heavy commenters and a handful of occasional ones. Small, but not zero.
    substantive = Counter(
        follower_of[e.actor_id] for e in events if e.type == "comment" and texts.word_count(e.text or "") >= 2
    )
    engaged = [f for f, c in substantive.items() if c >= 3]
    fraction = len(engaged) / generator.config.audience.followers
    assert 0.005 < fraction < 0.03
    assert any(generator.follower_tier(f) == "occasional" for f in engaged)
    # Everyone may like: likes come from all tiers, mostly lurkers.
    likers = Counter(generator.follower_tier(follower_of[e.actor_id]) for e in events if e.type == "like")
    assert likers["lurker"] / sum(likers.values()) == pytest.approx(0.9, abs=0.01)


def test_followers_stick_to_a_few_favourite_accounts() -> None:
    events = bench_events()
    per_heavy: dict[str, Counter[str]] = {}
    for e in events:
        if e.type == "comment":
            per_heavy.setdefault(e.actor_id, Counter())[e.account_id] += 1
    busy = [c for c in per_heavy.values() if sum(c.values()) >= 20]
    assert busy
    top3 = [sum(n for _, n in c.most_common(3)) / sum(c.values()) for c in busy]
    assert sum(top3) / len(top3) > 0.8


def test_duplicates_and_lateness_are_bounded() -> None:
    config = GeneratorConfig.bench(duplicate_rate=0.02, late_fraction=0.1, max_lateness_ms=60_000)
    events = TrafficGenerator(config).take(50_000)
    seen: dict[str, Interaction] = {}
    duplicates = 0
    watermark = 0
    out_of_order = 0
    for event in events:
        if event.event_id in seen:
            duplicates += 1
            assert seen[event.event_id] == event  # a redelivery is the same event
        seen[event.event_id] = event
        assert event.occurred_at_ms >= watermark - config.max_lateness_ms
        out_of_order += event.occurred_at_ms < watermark
        watermark = max(watermark, event.occurred_at_ms)
    assert duplicates / len(events) == pytest.approx(0.02, abs=0.004)
    assert out_of_order / len(events) == pytest.approx(0.1, abs=0.03)  # late ones (+ redeliveries)


def test_without_imperfections_the_stream_is_ordered_and_unique() -> None:
    events = TrafficGenerator(GeneratorConfig.bench(duplicate_rate=0.0, late_fraction=0.0)).take(20_000)
    times = [e.occurred_at_ms for e in events]
    assert times == sorted(times)
    assert len({e.event_id for e in events}) == len(events)


def test_daily_rhythm() -> None:
    config = GeneratorConfig.bench(events_per_hour=1000.0)
    per_hour = Counter((e.occurred_at_ms // HOUR_MS) % 24 for e in until_hour(config, 48))
    assert per_hour[20] / per_hour[3] == pytest.approx(DAILY_RHYTHM[20] / DAILY_RHYTHM[3], rel=0.25)
    flat = Counter((e.occurred_at_ms // HOUR_MS) % 24 for e in until_hour(replace(config, rhythm=0.0), 48))
    assert max(flat.values()) / min(flat.values()) < 1.3
    shifted = Counter(
        (e.occurred_at_ms // HOUR_MS) % 24 for e in until_hour(replace(config, utc_offset_hours=-5), 48)
    )
    assert shifted[(20 + 5) % 24] > shifted[20]  # evening peak five hours later in UTC


def test_new_posts_appear_and_recent_posts_get_the_attention() -> None:
    config = GeneratorConfig.bench(events_per_hour=3000.0)
    events = until_hour(config, 48)
    top = TrafficGenerator(config).accounts[0].account_id
    first_day = {
        e.post_id for e in events if e.account_id == top and e.occurred_at_ms < config.start_ms + 2 * HOUR_MS
    }
    late = [e for e in events if e.account_id == top and e.occurred_at_ms > config.start_ms + 40 * HOUR_MS]
    late_posts = Counter(e.post_id for e in late if e.post_id is not None)
    assert set(late_posts) - first_day  # posts created after the start
    newest = max(late_posts, key=lambda p: int(p.rpartition("-p")[2]))
    assert late_posts.most_common(1)[0][1] >= late_posts[newest] > 0


def test_scheduled_drop_is_visible_in_its_hours() -> None:
    base = GeneratorConfig.bench(1, events_per_hour=6000.0)
    drop = Drop(start_hour=10, hours=4, factor=0.8, account_rank=0)
    with_drop, without = until_hour(replace(base, drop=drop), 18), until_hour(base, 18)
    dropped = TrafficGenerator(replace(base, drop=drop)).drop_account
    assert dropped is not None

    def substantive(events: list[Interaction], account: str, lo: float, hi: float) -> int:
        lo_ms, hi_ms = base.start_ms + lo * HOUR_MS, base.start_ms + hi * HOUR_MS
        return sum(
            1
            for e in events
            if e.account_id == account
            and lo_ms <= e.occurred_at_ms < hi_ms
            and e.type in ("comment", "share")
            and texts.word_count(e.text or "") >= 2
        )

    during = substantive(with_drop, dropped.account_id, 10, 14)
    normal = substantive(without, dropped.account_id, 10, 14)
    assert normal > 300  # enough volume for a detector's minimum baseline (20/h)
    assert during / normal == pytest.approx(0.2, abs=0.07)
    assert substantive(with_drop, dropped.account_id, 0, 10) == substantive(
        without, dropped.account_id, 0, 10
    )
    assert substantive(with_drop, dropped.account_id, 14, 18) / substantive(
        without, dropped.account_id, 14, 18
    ) == (pytest.approx(1.0, abs=0.2))
    other = TrafficGenerator(base).accounts[1].account_id
    assert substantive(with_drop, other, 10, 14) / substantive(without, other, 10, 14) == pytest.approx(
        1.0, abs=0.2
    )
    likes = [
        sum(1 for e in s if e.account_id == dropped.account_id and e.type == "like")
        for s in (with_drop, without)
    ]
    assert likes[0] / likes[1] == pytest.approx(1.0, abs=0.05)  # only substantive interactions fall


def test_demo_preset_spans_every_platform_and_matches_the_pacer_rate() -> None:
    config = GeneratorConfig.demo(rate_events_per_s=1000, time_scale=3600)
    assert config.events_per_hour == pytest.approx(1000)
    generator = TrafficGenerator(config)
    assert {a.platform for a in generator.accounts} == {"generic", "facebook", "instagram", "x"}
    assert generator.drop_account is generator.accounts[0]
    events = generator.take(20_000)
    assert {e.platform for e in events} == {"generic", "facebook", "instagram", "x"}
    # Meta timestamps have whole seconds.
    assert all(e.occurred_at_ms % 1000 == 0 for e in events if e.platform in ("facebook", "instagram"))


def test_lookup_table_is_exact() -> None:
    table = lookup_table([0.55, 0.25, 0.1, 0.075, 0.025], 10_000)
    assert len(table) == 10_000
    assert Counter(table) == {0: 5500, 1: 2500, 2: 1000, 3: 750, 4: 250}


@pytest.mark.parametrize(
    "config",
    [
        GeneratorConfig(mix=Mix(like=0.6)),
        GeneratorConfig(audience=Audience(heavy_fraction=0.5, occasional_fraction=0.5)),
        GeneratorConfig(platforms={"myspace": 1.0}),
        GeneratorConfig(drop=Drop(start_hour=1, account_rank=50)),
        GeneratorConfig(duplicate_rate=0.6, late_fraction=0.6),
        GeneratorConfig(events_per_hour=0),
    ],
)
def test_invalid_configs_are_refused(config: GeneratorConfig) -> None:
    with pytest.raises(ValueError):
        TrafficGenerator(config)


def test_the_stream_is_endless() -> None:
    config = GeneratorConfig.bench(audience=Audience(followers=1000), accounts=3)
    assert sum(1 for _ in itertools.islice(TrafficGenerator(config), 30_000)) == 30_000
