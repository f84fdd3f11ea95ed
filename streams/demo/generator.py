"""A realistic, seeded audience that yields canonical :class:`~streams.events.Interaction` events.

Pure: no I/O, no wall clock. The event clock starts at ``GeneratorConfig.start_ms`` and advances by
a Poisson process whose rate follows a daily rhythm; wall-clock pacing for live use is
:class:`streams.demo.pacing.Pacer`'s job. The same config (seed included) gives the same stream.

The model:

- **Accounts** (brands) have Zipf popularity; each posts new content over time (a Poisson stream of
  posts per account), and interactions favour recent posts (Zipf over recency rank).
- **Followers** follow the 90-9-1 rule: 90% lurk (likes, follows and unfollows only), 9% comment
  now and then, 1% comment often and write most of the comments (and become *engaged*). Each
  follower has a few favourite accounts (drawn by popularity) that get most of their interactions.
- **Texts** (``streams.demo.texts``): a configurable share of one-word and emoji-only comments, and
  of non-English ones; shares with and without commentary.
- **Delivery** imperfections, both bounded by ``max_lateness_ms`` of event time: a fraction of the
  events arrives late (out of order), and a fraction is redelivered (the same event, same
  ``event_id``, a second time).
- An optional **scheduled drop**: during ``[start, start + hours)`` one account loses a fraction
  of its substantive interactions (comments and shares whose text has >= 2 words), so the
  engagement-drop detector has something to find.

Speed (the bench wants millions of events): every categorical choice is one ``random()`` call into
a precomputed lookup table (``python -m tests.bench.bench_generator`` times it); ``make bench``
figures are in the README.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from streams.demo import platform_ids, texts
from streams.events import Interaction

HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS
DEFAULT_START_MS: Final = 1_767_571_200_000  # 2026-01-05T00:00:00Z, a Monday
TABLE_SIZE: Final = 10_000  # resolution of the lookup tables: weights are honoured to 1e-4

# Relative activity by hour of day (UTC of the audience), a typical social-media curve: quiet at
# night, a lunch bump, the peak in the evening. Normalised to mean 1 below.
_HOURLY: Final = (
    0.45, 0.30, 0.22, 0.18, 0.18, 0.25, 0.45, 0.75, 0.95, 1.05, 1.10, 1.20,
    1.30, 1.25, 1.15, 1.10, 1.15, 1.25, 1.40, 1.55, 1.60, 1.50, 1.15, 0.75,
)  # fmt: skip
DAILY_RHYTHM: Final[tuple[float, ...]] = tuple(h * 24 / sum(_HOURLY) for h in _HOURLY)

PLATFORMS: Final = ("generic", "facebook", "instagram", "x")
_LIKE, _COMMENT, _SHARE, _FOLLOW, _UNFOLLOW = range(5)
_TYPE_NAMES: Final = ("like", "comment", "share", "follow", "unfollow")


@dataclass(frozen=True)
class Mix:
    """What followers do, as shares of all events, and what they write."""

    like: float = 0.55
    comment: float = 0.25
    share: float = 0.10
    follow: float = 0.10  # follows and unfollows together
    unfollow_share: float = 0.25  # of the follow/unfollow events
    one_word_share: float = 0.5  # of comments: one word or emoji only (never substantive)
    emoji_share: float = 0.3  # of those short comments: emoji only
    share_commentary: float = 0.6  # of shares: with a text
    commentary_substantive: float = 0.8  # of those texts: >= 2 words (else one word)
    non_english_share: float = 0.25  # of every text pool

    def validate(self) -> None:
        weights = (self.like, self.comment, self.share, self.follow)
        if min(weights) < 0 or not math.isclose(sum(weights), 1.0, abs_tol=1e-6):
            raise ValueError(f"event mix must be non-negative and sum to 1, got {weights}")
        for name in (
            "unfollow_share",
            "one_word_share",
            "emoji_share",
            "share_commentary",
            "commentary_substantive",
            "non_english_share",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")


@dataclass(frozen=True)
class Audience:
    """Who the followers are: 90-9-1 participation and per-follower favourite accounts."""

    followers: int = 200_000
    heavy_fraction: float = 0.01  # the 1%: comment often
    occasional_fraction: float = 0.09  # the 9%: comment sometimes
    heavy_content_share: float = 0.75  # of comments and shares, written by the 1% (rest: the 9%)
    favourites: int = 3  # favourite accounts per follower (drawn by popularity, may repeat)
    loyalty: float = 0.85  # chance an interaction goes to one of the follower's favourites

    def validate(self) -> None:
        if self.followers < 100:
            raise ValueError("at least 100 followers")
        if self.heavy_fraction <= 0 or self.occasional_fraction < 0:
            raise ValueError("participation fractions must be positive")
        if self.heavy_fraction + self.occasional_fraction >= 1:
            raise ValueError("heavy + occasional fractions must leave room for lurkers")
        if self.favourites < 1:
            raise ValueError("favourites must be at least 1")


@dataclass(frozen=True)
class Drop:
    """From ``start_hour`` (event-time hours after the stream start) for ``hours``, the account of
    popularity rank ``account_rank`` (0 = most popular) loses ``factor`` of its substantive
    interactions."""

    start_hour: float
    hours: float = 6.0
    factor: float = 0.8
    account_rank: int = 0


@dataclass(frozen=True)
class GeneratorConfig:
    seed: int = 0
    start_ms: int = DEFAULT_START_MS
    accounts: int = 50
    account_zipf: float = 1.0
    platforms: dict[str, float] = field(default_factory=lambda: {"generic": 1.0})
    events_per_hour: float = 6_000.0  # mean event-time rate; the daily rhythm modulates it
    rhythm: float = 1.0  # 0: flat rate, 1: the full DAILY_RHYTHM curve
    utc_offset_hours: int = 0  # where the audience lives, for the rhythm
    posts_per_day: float = 4.0  # new posts per account per event-time day
    initial_posts: int = 5
    recency_zipf: float = 1.2  # how strongly interactions favour the newest posts
    live_posts: int = 30  # posts older than this many (per account) get no more interactions
    mix: Mix = field(default_factory=Mix)
    audience: Audience = field(default_factory=Audience)
    duplicate_rate: float = 0.01  # events redelivered a second time
    late_fraction: float = 0.05  # events that arrive out of order
    max_lateness_ms: int = 5 * 60_000  # bound on both: arrival is at most this far behind event time
    drop: Drop | None = None

    def validate(self) -> None:
        self.mix.validate()
        self.audience.validate()
        if self.accounts < 1:
            raise ValueError("at least one account")
        if self.events_per_hour <= 0:
            raise ValueError("events_per_hour must be positive")
        if not 0 <= self.rhythm <= 1:
            raise ValueError("rhythm must be between 0 and 1")
        if self.duplicate_rate < 0 or self.late_fraction < 0 or self.duplicate_rate + self.late_fraction > 1:
            raise ValueError("duplicate_rate and late_fraction must be fractions summing to at most 1")
        if self.max_lateness_ms < 0:
            raise ValueError("max_lateness_ms must not be negative")
        unknown = set(self.platforms) - set(PLATFORMS)
        if unknown or not self.platforms or min(self.platforms.values()) < 0:
            raise ValueError(f"platforms: weights over {PLATFORMS}, got {self.platforms}")
        if self.drop is not None and not 0 <= self.drop.account_rank < self.accounts:
            raise ValueError("drop.account_rank must name an account")
        if self.initial_posts < 1 or self.live_posts < 1:
            raise ValueError("initial_posts and live_posts must be at least 1")

    @classmethod
    def bench(cls, seed: int = 0, **overrides: object) -> GeneratorConfig:
        """Issue 4's benchmark mix: ~55% likes, 25% comments (half one-word), 10% shares, 10%
        follows/unfollows; 50 Zipf accounts, 200k followers; about a week of event time per 1M."""
        return replace(cls(seed=seed), **overrides)  # type: ignore[arg-type]

    @classmethod
    def demo(
        cls,
        seed: int = 0,
        *,
        rate_events_per_s: float = 2_000.0,
        time_scale: float = 3_600.0,
        **overrides: object,
    ) -> GeneratorConfig:
        """The live demo: every platform, a drop on the top account on day 8 (after a week of
        baseline), and an event rate that matches a :class:`Pacer` of the same rate and time scale
        (``time_scale`` event seconds per wall second; 3600: an event-time hour per second)."""
        base = cls(
            seed=seed,
            platforms={"generic": 0.25, "facebook": 0.25, "instagram": 0.2, "x": 0.3},
            events_per_hour=rate_events_per_s * 3600.0 / time_scale,
            drop=Drop(start_hour=7 * 24 + 12, hours=6.0),
        )
        return replace(base, **overrides)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Account:
    rank: int  # popularity rank, 0 = most popular
    account_id: str
    platform: str
    weight: float  # share of the interactions the account receives (Zipf)


def lookup_table(weights: Sequence[float], size: int = TABLE_SIZE) -> list[int]:
    """``size`` indices, each index ``i`` repeated in proportion to ``weights[i]`` (largest remainder).

    ``table[int(random() * size)]`` then samples the distribution with one call.
    """
    total = float(sum(weights))
    exact = [w / total * size for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: size - sum(counts)]:
        counts[i] += 1
    return [i for i, count in enumerate(counts) for _ in range(count)]


def zipf_weights(n: int, s: float) -> list[float]:
    raw = [1.0 / (rank + 1) ** s for rank in range(n)]
    total = sum(raw)
    return [w / total for w in raw]


def _scramble(n: int) -> int:
    """A bijection on [0, 2**31 - 1) so ids do not reveal a follower's tier (MINSTD multiplier)."""
    return (n + 1) * 48271 % 2_147_483_647


def actor_id(platform: str, follower: int) -> str:
    """A follower's id on a platform: numeric for Meta and X (page-/app-scoped ids are numbers)."""
    scrambled = _scramble(follower)
    if platform == "facebook":
        return str(2_400_000_000_000_000 + scrambled)
    if platform == "instagram":
        return str(17_841_000_000_000_000 + scrambled)
    if platform == "x":
        return str(1_200_000_000_000_000_000 + scrambled)
    return f"u{scrambled:010d}"


def _account_id(platform: str, rank: int) -> str:
    if platform == "facebook":
        return str(104_000_000_000_000 + 7_919 * (rank + 1))
    if platform == "instagram":
        return str(17_841_400_000_000_000 + 7_919 * (rank + 1))
    if platform == "x":
        return str(1_100_000_000 + 7_919 * (rank + 1))
    return f"brand-{rank:03d}"


class TrafficGenerator:
    """Iterate to get events in arrival order. The stream is endless (use ``itertools.islice`` or
    :meth:`take`), and every iteration starts the same stream afresh."""

    def __init__(self, config: GeneratorConfig) -> None:
        config.validate()
        self.config = config
        rng = random.Random(f"world:{config.seed}")
        popularity = zipf_weights(config.accounts, config.account_zipf)
        names = list(config.platforms)
        platform_table = lookup_table([config.platforms[n] for n in names], 1000)
        self.accounts: tuple[Account, ...] = tuple(
            Account(rank, _account_id(platform, rank), platform, popularity[rank])
            for rank, platform in (
                (r, names[platform_table[int(rng.random() * 1000)]]) for r in range(config.accounts)
            )
        )
        self._rng_seed = config.seed
        self._account_table = lookup_table(popularity)
        audience = config.audience
        self.heavy = max(1, round(audience.followers * audience.heavy_fraction))
        self.occasional = round(audience.followers * audience.occasional_fraction)
        table = self._account_table
        self._favourites = [
            table[int(rng.random() * TABLE_SIZE)] for _ in range(audience.followers * audience.favourites)
        ]
        mix = config.mix
        self._pool_substantive = texts.mixed_pool(
            rng,
            texts.english_substantive(rng, 2000),
            texts.SUBSTANTIVE_FOREIGN,
            mix.non_english_share,
            4000,
        )
        self._pool_one_word = texts.mixed_pool(
            rng, texts.ONE_WORD, texts.ONE_WORD_FOREIGN, mix.non_english_share, 1000
        )
        self._pool_emoji = list(texts.EMOJI_ONLY)
        self._type_table = lookup_table(
            [
                mix.like,
                mix.comment,
                mix.share,
                mix.follow * (1 - mix.unfollow_share),
                mix.follow * mix.unfollow_share,
            ]
        )
        self._rank_table = lookup_table(zipf_weights(config.live_posts, config.recency_zipf))

    @property
    def drop_account(self) -> Account | None:
        drop = self.config.drop
        return None if drop is None else self.accounts[drop.account_rank]

    def follower_tier(self, follower: int) -> str:
        """``heavy`` (the 1%), ``occasional`` (the 9%) or ``lurker``; followers are numbered by tier."""
        if follower < self.heavy:
            return "heavy"
        return "occasional" if follower < self.heavy + self.occasional else "lurker"

    def followers_per_account(self) -> dict[str, int]:
        """Followers of each account: the audience members who have it among their favourites (the
        ones who give it most of their attention). The demo's engagement-ratio denominator."""
        n_fav = self.config.audience.favourites
        favourites = self._favourites
        counts = [0] * len(self.accounts)
        for start in range(0, len(favourites), n_fav):
            for account in set(favourites[start : start + n_fav]):
                counts[account] += 1
        return {account.account_id: counts[account.rank] for account in self.accounts}

    def actor_ids(self, platform: str) -> list[str]:
        """Every follower's actor id on ``platform``, indexed by follower number."""
        return [actor_id(platform, f) for f in range(self.config.audience.followers)]

    def __iter__(self) -> Iterator[Interaction]:
        return self._run()

    def take(self, n: int) -> list[Interaction]:
        return list(itertools.islice(self._run(), n))

    def _run(self) -> Iterator[Interaction]:
        cfg = self.config
        mix = cfg.mix
        rng = random.Random(f"stream:{cfg.seed}")
        rnd = rng.random
        log = math.log
        push, pop = heapq.heappush, heapq.heappop
        size = TABLE_SIZE

        accounts = self.accounts
        n_accounts = len(accounts)
        account_ids = [a.account_id for a in accounts]
        platform_of = [a.platform for a in accounts]
        platform_code = [PLATFORMS.index(a.platform) for a in accounts]
        followers = cfg.audience.followers
        # Actor ids per platform code, filled on first use (most followers of a short stream never act).
        actors: list[list[str | None]] = [[None] * followers for _ in PLATFORMS]
        account_table = self._account_table
        favourites = self._favourites
        n_fav = cfg.audience.favourites
        loyalty = cfg.audience.loyalty
        heavy, occasional = self.heavy, self.occasional
        heavy_share = cfg.audience.heavy_content_share
        type_table = self._type_table
        rank_table = self._rank_table
        substantive_pool, one_word_pool, emoji_pool = (
            self._pool_substantive,
            self._pool_one_word,
            self._pool_emoji,
        )
        n_sub, n_one, n_emoji = len(substantive_pool), len(one_word_pool), len(emoji_pool)
        one_word_share, emoji_share = mix.one_word_share, mix.emoji_share
        share_commentary, commentary_substantive = mix.share_commentary, mix.commentary_substantive
        late_fraction, max_late = cfg.late_fraction, cfg.max_lateness_ms
        dup_threshold = 1.0 - cfg.duplicate_rate if cfg.duplicate_rate > 0 else 2.0
        inf = math.inf
        type_names = _TYPE_NAMES
        native_id = platform_ids.event_id
        native = [[name in platform_ids.NATIVE[p] for name in _TYPE_NAMES] for p in PLATFORMS]

        drop = cfg.drop
        drop_account = drop.account_rank if drop is not None else -1
        drop_start = cfg.start_ms + drop.start_hour * HOUR_MS if drop is not None else 0.0
        drop_end = drop_start + drop.hours * HOUR_MS if drop is not None else 0.0
        drop_factor = drop.factor if drop is not None else 0.0

        rhythm = [1.0 + cfg.rhythm * (m - 1.0) for m in DAILY_RHYTHM]
        mean_gap_ms = HOUR_MS / cfg.events_per_hour
        offset_ms = cfg.utc_offset_hours * HOUR_MS

        # Posts: per account the ids of its live posts, newest last; a heap of next-post times.
        post_gap_ms = DAY_MS / cfg.posts_per_day if cfg.posts_per_day > 0 else math.inf
        serial = itertools.count(1)
        posts = [
            [
                _post_id(platform_of[rank], account_ids[rank], next(serial), cfg.start_ms - (k + 1) * HOUR_MS)
                for k in reversed(range(cfg.initial_posts))
            ]
            for rank in range(n_accounts)
        ]
        next_posts = [(cfg.start_ms + rng.expovariate(1.0) * post_gap_ms, rank) for rank in range(n_accounts)]
        heapq.heapify(next_posts)
        next_post_t = next_posts[0][0]
        live = cfg.live_posts

        prefix = f"ev-{cfg.seed:x}-"
        pending: list[tuple[float, int, Interaction]] = []  # (arrival, seq, event): late and redelivered
        next_due = inf  # arrival time of the first pending event
        t = float(cfg.start_ms)
        hour_end = t
        gap = mean_gap_ms
        n = 0
        while True:
            t -= log(1.0 - rnd()) * gap
            if t >= hour_end:  # a new hour of the day: its rate
                hour_start = t - (t + offset_ms) % HOUR_MS
                hour_end = hour_start + HOUR_MS
                gap = mean_gap_ms / rhythm[int((hour_start + offset_ms) // HOUR_MS) % 24]
            while t >= next_post_t:
                when, rank = next_posts[0]
                ps = posts[rank]
                ps.append(_post_id(platform_of[rank], account_ids[rank], next(serial), int(when)))
                if len(ps) > live:
                    del ps[0]
                heapq.heapreplace(next_posts, (when + rng.expovariate(1.0) * post_gap_ms, rank))
                next_post_t = next_posts[0][0]

            # Kinds: 0 like, 1 comment, 2 share, 3 follow, 4 unfollow (literals: the fastest compare).
            kind = type_table[int(rnd() * size)]
            text: str | None = None
            substantive = False
            if kind == 1 or kind == 2:
                # Comments and shares come from the 1% and the 9%; lurkers never write.
                follower = int(rnd() * heavy) if rnd() < heavy_share else heavy + int(rnd() * occasional)
                if kind == 1:
                    if rnd() < one_word_share:
                        if rnd() < emoji_share:
                            text = emoji_pool[int(rnd() * n_emoji)]
                        else:
                            text = one_word_pool[int(rnd() * n_one)]
                    else:
                        text = substantive_pool[int(rnd() * n_sub)]
                        substantive = True
                elif rnd() < share_commentary:
                    if rnd() < commentary_substantive:
                        text = substantive_pool[int(rnd() * n_sub)]
                        substantive = True
                    else:
                        text = one_word_pool[int(rnd() * n_one)]
            else:
                follower = int(rnd() * followers)
            if rnd() < loyalty:
                account = favourites[follower * n_fav + int(rnd() * n_fav)]
            else:
                account = account_table[int(rnd() * size)]
            if substantive and account == drop_account and drop_start <= t < drop_end and rnd() < drop_factor:
                continue

            if kind <= 2:
                ps = posts[account]
                recency = rank_table[int(rnd() * size)]
                post_id: str | None = ps[-1 - recency] if recency < len(ps) else ps[0]
            else:
                post_id = None
            n += 1
            t_ms = int(t)
            code = platform_code[account]
            actor = actors[code][follower]
            if actor is None:
                actor = actors[code][follower] = actor_id(PLATFORMS[code], follower)
            if code == 0:
                event_id = prefix + str(n)
            else:
                if code <= 2:  # Meta timestamps have whole seconds
                    t_ms -= t_ms % 1000
                if native[code][kind]:
                    event_id = native_id(
                        PLATFORMS[code], type_names[kind], n, t_ms, account_ids[account], actor, post_id
                    )
                else:
                    event_id = prefix + str(n)
            event = Interaction(
                event_id,
                type_names[kind],
                platform_of[account],
                account_ids[account],
                actor,
                post_id,
                text,
                t_ms,
            )

            if t >= next_due:
                while pending and pending[0][0] <= t:
                    yield pop(pending)[2]
                next_due = pending[0][0] if pending else inf
            # One draw decides the delivery: late (u < late_fraction), redelivered later as well
            # (u >= 1 - duplicate_rate), or on time; late and redelivered are disjoint.
            u = rnd()
            if u < late_fraction:
                push(pending, (t + rnd() * max_late, n, event))
                next_due = pending[0][0]
            else:
                yield event
                if u >= dup_threshold:
                    push(pending, (t + rnd() * max_late, -n, event))
                    next_due = pending[0][0]


def _post_id(platform: str, account_id: str, serial: int, created_ms: int) -> str:
    if platform == "facebook":
        return f"{account_id}_{100_000_000_000_000 + serial}"  # Graph API post ids: {page-id}_{post-id}
    if platform == "instagram":
        return str(17_900_000_000_000_000 + serial)  # IG media ids are numeric
    if platform == "x":
        return platform_ids.snowflake(created_ms, serial)
    return f"{account_id}-p{serial}"
