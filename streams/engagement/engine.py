"""One source partition's engagement engine: events in; final transitions, aggregates, scores out.

Event time, bounded lateness, emitted only when final:

- ``watermark`` is the largest ``occurred_at`` accepted so far (or recognised as a duplicate, so a
  replay moves it as the first run did); ``final = watermark − allowed_lateness``.
- An event before ``final`` is *late*: not applied, returned as :data:`LATE` (the caller routes it to
  the dead-letter topic). Anything else is applied exactly as if it had arrived in order.
- A transition at event time ``t`` is emitted by :meth:`drain` only once ``t < final``: no acceptable
  event can arrive at or before ``t`` any more, so the emitted transitions are exactly those of the
  in-order history — never retracted, never twice. Flags therefore lag event time by the allowed
  lateness (plus the flush interval).
- Lapses are found by a timer index, so a pair that falls silent still lapses when ``final`` passes
  ``s_N + W``.

State lives in ``store`` (``actor_id`` → :func:`~streams.engagement.state.encode` bytes), normally the
worker's Faust table. Decoded states are cached (bounded by ``Rule.cache_max_actors`` between
flushes). Likes and other non-substantive events never decode state on the hot path: their score
contributions are summed per pair in a dict and folded in at :meth:`drain` / :meth:`dirty`.

Performance: the per-event path is an inlined loop (see :meth:`_ingest`); per commit interval the
cost follows the number of distinct followers touched (one fold, one encode, one score row each).
Pair times and pending contributions are tuples because a worker holding hundreds of thousands of
cached pairs otherwise spends more time in the cyclic GC's full passes than in the rule; the worker
process should also raise the GC thresholds (``gc.freeze()`` after start-up, then
``streams.runtime.WORKER_GC_THRESHOLDS``), which about doubles throughput (``tests/bench/bench_core.py``).

Per commit interval the worker calls ``drain()``, writes the outputs, then persists ``dirty()`` (changed
states, stamped with ``flush_seq``) before committing offsets: the protocol is described once, in
``streams.worker.flush``. After a crash, build the engine with the
``flush_seq`` and ``watermark_ms`` of the last *committed* interval and call :meth:`restore`; an actor
whose stored state carries that same ``flush_seq`` was already persisted by the interval being
replayed, so this interval's events are not applied to its pairs again (aggregates are still
counted; the sink's idempotency token absorbs the repeat).
"""

from __future__ import annotations

import math
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Final

from streams.engagement.aggregates import Aggregates
from streams.engagement.dedup import MinuteDedup, stable_hash64
from streams.engagement.model import (
    DAY_MS,
    ENGAGED,
    MINUTE_MS,
    AccountMinute,
    FollowerDay,
    FollowerScore,
    Outputs,
    PostMinute,
    Transition,
)
from streams.engagement.rule import COMMENT, FOLLOW, LIKE, SHARE, Rule, count_words
from streams.engagement.state import ActorState, PairState, decode, encode, event_hash
from streams.engagement.timers import TimerIndex
from streams.engagement.window import NEVER, advance, expired, next_due, prune
from streams.events import Interaction

OK: Final = "ok"
DUPLICATE: Final = "duplicate"
LATE: Final = "late"

_NO_WATERMARK: Final = -(2**62)


@dataclass(slots=True)
class Counts:
    """What :meth:`PartitionEngine.process_many` did with a batch; ``late`` are the refused events."""

    ok: int = 0
    duplicate: int = 0
    late: list[Interaction] = field(default_factory=list)


class PartitionEngine:
    """The engaged rule, scores and aggregates for the events of one source partition."""

    def __init__(
        self,
        rule: Rule,
        store: MutableMapping[str, bytes] | None = None,
        *,
        flush_seq: int = 0,
        watermark_ms: int | None = None,
        write_store: bool = True,
        auto_watermark: bool = True,
    ) -> None:
        """``auto_watermark=False``: events never move the watermark; the caller does, with
        :meth:`advance_watermark` (a worker reading several topics per partition takes the minimum
        over the topics that are still behind, so one topic racing ahead makes nothing late)."""
        self.rule = rule
        self.auto_watermark = auto_watermark
        self.store: MutableMapping[str, bytes] = {} if store is None else store
        self.write_store = write_store
        self.flush_seq = flush_seq
        self._wm = _NO_WATERMARK
        self._final = _NO_WATERMARK
        if watermark_ms is not None:
            self.advance_watermark(watermark_ms)
        self._k = math.log(2) / rule.half_life_ms  # score decay rate per millisecond
        self._cache: dict[str, ActorState] = {}
        self._dirty: set[str] = set()
        self._skip: set[str] = set()
        # Actors this interval's events changed (collected at drain from _changed_scores): one of them
        # left without pairs is written as an empty, stamped record, not deleted (see dirty()).
        self._touched: set[str] = set()
        # (actor, account) -> (decayed score sum, as of, interactions, platform), folded in at drain.
        # Tuples, not lists: untracked by the cyclic GC, so a busy interval does not feed full passes.
        self._pending: dict[tuple[str, str], tuple[float, int, int, str]] = {}
        self._changed_scores: dict[tuple[str, str], PairState] = {}
        self._transitions: list[Transition] = []
        self._aggregates = Aggregates()
        self._timers = TimerIndex()
        self._dedup = MinuteDedup(rule.dedup_max_entries)
        self._tracked = 0
        self._engaged = 0
        self.late_total = 0
        self.duplicate_total = 0

    # --- read-only views ----------------------------------------------------------------------

    @property
    def watermark_ms(self) -> int | None:
        return None if self._wm == _NO_WATERMARK else self._wm

    @property
    def final_ms(self) -> int | None:
        """Events before this are late; transitions before it have been (or will be) emitted."""
        return None if self._wm == _NO_WATERMARK else self._final

    @property
    def tracked_pairs(self) -> int:
        return self._tracked

    @property
    def engaged_pairs(self) -> int:
        return self._engaged

    @property
    def dedup_entries(self) -> int:
        return len(self._dedup)

    @property
    def dedup_evictions(self) -> int:
        return self._dedup.evicted

    def take_dedup_delta(self) -> dict[int, list[int]]:
        """Event-id hashes (by minute) learnt since the last call; persist them with the flush."""
        return self._dedup.take_fresh()

    def remember_dedup(self, minute: int, hashes: list[int]) -> None:
        """Reload hashes persisted by :meth:`take_dedup_delta` in an earlier process."""
        if minute + MINUTE_MS > self._final:
            self._dedup.remember(minute, hashes)

    @property
    def scheduled_actors(self) -> int:
        return len(self._timers)

    # --- input --------------------------------------------------------------------------------

    def advance_watermark(self, watermark_ms: int) -> None:
        """Move event time forward without an event (idle partitions, tests, end of a replay)."""
        if watermark_ms > self._wm:
            self._wm = watermark_ms
            self._final = watermark_ms - self.rule.allowed_lateness_ms

    def process(self, event: Interaction) -> str:
        """Apply one event: returns :data:`OK`, :data:`DUPLICATE` or :data:`LATE` (not applied)."""
        late: list[Interaction] = []
        ok = self._ingest((event,), late)[0]
        return OK if ok else (LATE if late else DUPLICATE)

    def process_many(self, events: Iterable[Interaction]) -> Counts:
        """Apply a batch (the fast path); the late events are returned for the dead-letter topic."""
        counts = Counts()
        counts.ok, counts.duplicate = self._ingest(events, counts.late)
        return counts

    def _ingest(self, events: Iterable[Interaction], late: list[Interaction]) -> tuple[int, int]:
        """The hot loop, inlined by hand: one pass, locals only, no state decoding for likes/follows."""
        rule = self.rule
        lateness, min_words = rule.allowed_lateness_ms, rule.min_words
        like_w, comment_w, share_w, follow_w = (
            rule.like_weight,
            rule.comment_weight,
            rule.share_weight,
            rule.follow_weight,
        )
        k = self._k
        exp = math.exp
        crc32, adler32 = zlib.crc32, zlib.adler32
        wm, final = self._wm, self._final
        auto = self.auto_watermark
        buckets, fresh = self._dedup.buckets, self._dedup.fresh
        accounts, posts = self._aggregates.accounts, self._aggregates.posts
        followers = self._aggregates.followers
        pending = self._pending
        ok = duplicate = remembered = 0
        for event in events:
            at = event.occurred_at_ms
            if at < final:
                late.append(event)
                continue
            kind = event.type
            minute = at - at % MINUTE_MS
            substantive = False
            if kind in (COMMENT, SHARE):
                if min_words > 0:
                    substantive = count_words(event.text, min_words) >= min_words
                else:
                    substantive = kind == COMMENT or bool(event.text and event.text.strip())
            if substantive:
                self._wm, self._final = wm, final
                if not self._substantive(event, at):
                    duplicate += 1
                    if auto and at > wm:  # see below: a duplicate moves event time too
                        wm, final = at, at - lateness
                    continue
            else:
                raw_id = event.event_id.encode()
                key = crc32(raw_id) | (adler32(raw_id) << 32)  # stable_hash64, inlined
                bucket = buckets.get(minute)
                if bucket is None:
                    bucket = buckets[minute] = set()
                elif key in bucket:
                    duplicate += 1
                    # Its first delivery moved event time, unless that was in an interval being
                    # replayed whose dedup record survived a crash: moving it again keeps the replay's
                    # lateness decisions those of the first run.
                    if auto and at > wm:
                        wm, final = at, at - lateness
                    continue
                bucket.add(key)
                learnt = fresh.get(minute)
                if learnt is None:
                    fresh[minute] = [key]
                else:
                    learnt.append(key)
                remembered += 1
                if kind == LIKE:
                    weight = like_w
                elif kind == COMMENT:
                    weight = comment_w
                elif kind == SHARE:
                    weight = share_w
                elif kind == FOLLOW:
                    weight = follow_w
                else:
                    weight = 0.0
                if weight > 0.0:
                    pair_key = (event.actor_id, event.account_id)
                    entry = pending.get(pair_key)
                    if entry is None:
                        pending[pair_key] = (weight, at, 1, event.platform)
                    else:
                        total, last, count, first_platform = entry
                        if at <= last:
                            total += weight * exp((at - last) * k)
                        else:
                            total = total * exp((last - at) * k) + weight
                            last = at
                        pending[pair_key] = (total, last, count + 1, first_platform)
            if auto and at > wm:
                wm = at
                final = at - lateness
            # Aggregates: the interval's AccountMinute / PostMinute rows, counted in place.
            account, platform = event.account_id, event.platform
            row_key = (account, platform, minute)
            row = accounts.get(row_key)
            if row is None:
                row = accounts[row_key] = AccountMinute(account, platform, minute)
            if kind == LIKE:
                row.likes += 1
                row.passive += 1
            elif kind == COMMENT:
                row.comments += 1
                row.active += 1
            elif kind == SHARE:
                row.shares += 1
                row.active += 1
            elif kind == FOLLOW:
                row.follows += 1
                row.passive += 1
            else:
                row.unfollows += 1
                ok += 1
                continue  # no post, never substantive
            if substantive:
                row.substantive += 1
            if kind in (COMMENT, SHARE):  # per-follower participation (FollowerDay)
                day = at - at % DAY_MS
                follower_key = (account, event.actor_id, platform, day)
                follower_row = followers.get(follower_key)
                if follower_row is None:
                    follower_row = followers[follower_key] = FollowerDay(
                        account, event.actor_id, platform, day
                    )
                follower_row.active += 1
                if substantive:
                    follower_row.substantive += 1
            post = event.post_id
            if post is not None and kind != FOLLOW:
                post_key = (account, platform, post, minute)
                post_row = posts.get(post_key)
                if post_row is None:
                    post_row = posts[post_key] = PostMinute(account, platform, post, minute)
                if kind == LIKE:
                    post_row.likes += 1
                elif kind == COMMENT:
                    post_row.comments += 1
                    if substantive:
                        post_row.substantive_comments += 1
                else:
                    post_row.shares += 1
            ok += 1
        self._wm, self._final = wm, final
        if remembered:
            self._dedup.grew(remembered)
        self.late_total += len(late)
        self.duplicate_total += duplicate
        return ok, duplicate

    def _substantive(self, event: Interaction, at: int) -> bool:
        """Apply a substantive interaction; False if it is a duplicate."""
        actor = event.actor_id
        state = self._load(actor)
        if actor in self._skip:
            # Already persisted by the interval being replayed: count it, apply nothing.
            return not self._dedup.seen(stable_hash64(event.event_id), at)
        account = event.account_id
        digest = event_hash(event.event_id)
        if state is None:
            # Nothing before the final horizon can arrive any more, but anything after it can: with an
            # externally driven watermark this event may be far ahead of it (a faster topic), and
            # older events of this actor may still come, so evaluation starts at the horizon.
            state = self._cache[actor] = ActorState(self._final)
        pair = state.pairs.get(account)
        if pair is None:
            pair = state.pairs[account] = PairState(account, event.platform)
            self._tracked += 1
        elif digest in pair.hashes:
            return False
        times, hashes = pair.times, pair.hashes
        index = bisect_right(times, at)
        pair.times = (*times[:index], at, *times[index:])
        pair.hashes = (*hashes[:index], digest, *hashes[index:])
        pair.raw = None
        self._add_score(pair, self.rule.weight(event.type, True), at, 1)
        self._dirty.add(actor)
        self._changed_scores[actor, account] = pair
        if pair.engaged or len(pair.times) >= self.rule.threshold:
            # A transition is possible at this time: evaluate it once final passes it.
            due = pair.due
            if due is not None and at < due:
                pair.due = at
            self._timers.schedule(actor, at)
        else:
            # Below N and not engaged: no transition until more times arrive (most pairs: one or two
            # comments); the next check is its expiry.
            due = pair.due = self._due(pair, self._final)
            self._timers.schedule(actor, due)
        return True

    def _add_score(self, pair: PairState, score: float, at: int, interactions: int) -> None:
        """Add a decayed sum ``score`` (as of ``at``) to the pair's; exact in any arrival order."""
        pair.raw = None
        if pair.interactions == 0:
            pair.score, pair.score_as_of = score, at
        elif at <= pair.score_as_of:
            pair.score += score * math.exp((at - pair.score_as_of) * self._k)
        else:
            pair.score = pair.score * math.exp((pair.score_as_of - at) * self._k) + score
            pair.score_as_of = at
        pair.interactions += interactions

    # --- state --------------------------------------------------------------------------------

    def _load(self, actor: str) -> ActorState | None:
        state = self._cache.get(actor)
        if state is not None:
            return state
        raw = self.store.get(actor)
        if raw is None:
            return None
        state = self._cache[actor] = decode(raw)
        if state.seq == self.flush_seq:
            self._skip.add(actor)
        return state

    def _fold_pending(self) -> None:
        pending = self._pending
        if not pending:
            return
        self._pending = {}
        cache, store, skip, dirty, changed = (
            self._cache,
            self.store,
            self._skip,
            self._dirty,
            self._changed_scores,
        )
        final, k, floor = self._final, self._k, self.rule.score_floor
        schedule = self._timers.schedule
        log, ceil = math.log, math.ceil
        for key, (score, at, interactions, platform) in pending.items():
            actor, account = key
            state = cache.get(actor)
            if state is None:
                if actor not in store:
                    # A follower not seen before (the common case for likes): nothing to decode, and
                    # one timer, for the score's expiry.
                    pair = PairState(account, platform, False, (), (), score, at, interactions)
                    state = cache[actor] = ActorState(final)
                    state.pairs[account] = pair
                    self._tracked += 1
                    dirty.add(actor)
                    changed[key] = pair
                    due = max(final, at + ceil(log(score / floor) / k)) if score >= floor else final
                    pair.due = due
                    schedule(actor, due)
                    continue
                state = self._load(actor)
                assert state is not None
            if actor in skip:
                continue
            known = state.pairs.get(account)
            if known is None:
                known = state.pairs[account] = PairState(account, platform)
                self._tracked += 1
                self._add_score(known, score, at, interactions)
                due = known.due = self._due(known, final)
                schedule(actor, due)
            else:
                self._add_score(known, score, at, interactions)
            dirty.add(actor)
            changed[key] = known

    def _due(self, pair: PairState, horizon: int) -> int:
        rule = self.rule
        return next_due(pair, horizon, rule.threshold, rule.window_ms, self._k, rule.score_floor)

    def _fire_timers(self) -> None:
        """Evaluate every actor due before ``final``.

        An actor is marked dirty only when the evaluation changed what a restart would compute: a
        transition (the verdict and ``checked`` must be persisted with it) or an expired pair. A
        pair evaluated without transition only advanced ``checked`` and shed times and hashes that
        can no longer matter; the stored value, with its older ``checked``, evaluates to the same
        verdicts after a restart (the points are re-checked, none flips), so rewriting it would
        cost an encode and a changelog record for nothing. It is written with the actor's next
        real change.
        """
        rule = self.rule
        final, k = self._final, self._k
        threshold, window, floor = rule.threshold, rule.window_ms, rule.score_floor
        transitions, aggregates = self._transitions, self._aggregates
        schedule, dirty = self._timers.schedule, self._dirty
        for actor in self._timers.pop_before(final):
            state = self._load(actor)
            if state is None:
                continue
            start = state.checked
            due = NEVER
            changed = False
            pairs = state.pairs
            for account, pair in list(pairs.items()):
                pair_due = pair.due
                if pair_due is not None and pair_due >= final:
                    # Planned for later: no point of this pair can flip its verdict before then.
                    if pair_due < due:
                        due = pair_due
                    continue
                times = pair.times
                # Below the threshold and not engaged, no point can flip the verdict.
                if times and (pair.engaged or len(times) >= threshold):
                    for kind, at, count in advance(pair, start, final, threshold, window):
                        transitions.append(Transition(account, actor, kind, at, count, pair.platform))
                        aggregates.add_transition(kind, account, pair.platform, at)
                        self._engaged += 1 if kind == ENGAGED else -1
                        changed = True
                prune(pair, final, threshold, window)
                if expired(pair, final, k, floor):
                    del pairs[account]
                    self._tracked -= 1
                    changed = True
                    # Its last change (kept in _changed_scores) is still emitted by drain(): whether
                    # it is must not depend on when flushes happened.
                    continue
                pair_due = pair.due = next_due(pair, final, threshold, window, k, floor)
                if pair_due < due:
                    due = pair_due
            state.checked = final
            if changed:
                dirty.add(actor)
            # An actor left without pairs stays cached, empty, until dirty() deletes it: reloading the
            # stale stored value meanwhile would resurrect what just expired.
            if pairs:
                schedule(actor, due)

    # --- output -------------------------------------------------------------------------------

    def drain(self) -> Outputs:
        """Final transitions, aggregate deltas and changed scores since the last drain."""
        self._fold_pending()
        self._fire_timers()
        self._dedup.expire(self._final)
        transitions = sorted(self._transitions, key=lambda t: (t.at_ms, t.account_id, t.actor_id))
        self._transitions = []
        account_minutes, post_minutes = self._aggregates.take()
        scores = [
            FollowerScore(account, actor, pair.platform, pair.score, pair.score_as_of, pair.interactions)
            for (actor, account), pair in self._changed_scores.items()
        ]
        self._touched.update([actor for actor, _ in self._changed_scores])
        self._changed_scores = {}
        follower_days = self._aggregates.take_followers()
        return Outputs(transitions, account_minutes, post_minutes, scores, follower_days=follower_days)

    def dirty(self) -> dict[str, bytes | None]:
        """Encoded states changed since the last call (``None``: delete), stamped with ``flush_seq``.

        Pending score contributions are folded in first, so the result is complete. With
        ``write_store`` (the default) the engine has already applied the result to ``store``;
        otherwise the caller must. Then ``flush_seq`` advances by one.

        A follower left without pairs is deleted, unless this interval's events changed it: a deletion
        carries no ``flush_seq`` stamp, so a replay of the interval would apply its events again, to an
        empty state. It is written empty and stamped instead, and deleted by the next call.
        """
        self._fold_pending()
        out: dict[str, bytes | None] = {}
        seq, watermark = self.flush_seq, self.watermark_ms
        touched, skip = self._touched, self._skip
        touched.update([actor for actor, _ in self._changed_scores])  # if not drained since
        kept: set[str] = set()
        for actor in self._dirty:
            state = self._cache.get(actor)
            if state is None or not state.pairs:
                self._timers.cancel(actor)
                if state is not None and (actor in touched or actor in skip):
                    state.seq = seq
                    state.watermark = watermark
                    out[actor] = encode(state, self._final)
                    kept.add(actor)
                else:
                    self._cache.pop(actor, None)
                    out[actor] = None
            else:
                state.seq = seq
                state.watermark = watermark
                out[actor] = encode(state, self._final)
        if self.write_store:
            store = self.store
            for actor, value in out.items():
                if value is None:
                    store.pop(actor, None)
                else:
                    store[actor] = value
        self._dirty = kept
        self._skip = set()
        self._touched = set()
        self.flush_seq += 1
        excess = len(self._cache) - self.rule.cache_max_actors
        if excess > 0:
            for actor in list(islice(self._cache, excess + self.rule.cache_max_actors // 4)):
                del self._cache[actor]
        return out

    def restore(self, owns: Callable[[str], bool] | None = None) -> None:
        """Rebuild timers and counters from ``store`` (after a restart or a partition assignment).

        ``owns(actor_id)`` selects this partition's actors when ``store`` is shared by several
        partitions (a Faust table holds every partition assigned to the worker); an engine must not
        run timers for another partition's followers. Without an explicit ``watermark_ms``, the
        watermark becomes the largest one stamped on a state of an already committed interval
        (``seq < flush_seq``).
        """
        self._timers = TimerIndex()
        self._cache.clear()
        self._dirty.clear()
        self._skip.clear()
        self._touched.clear()
        tracked = engaged = 0
        watermark = _NO_WATERMARK
        for actor, raw in self.store.items():
            if owns is not None and not owns(actor):
                continue
            state = decode(raw)
            if not state.pairs:
                self._dirty.add(actor)  # written empty by an interval that emptied it (see dirty())
            tracked += len(state.pairs)
            due: int | None = None
            for pair in state.pairs.values():
                engaged += pair.engaged
                pair_due = self._due(pair, state.checked)
                due = pair_due if due is None else min(due, pair_due)
            if due is not None:
                self._timers.schedule(actor, due)
            if state.watermark is not None and state.seq < self.flush_seq:
                watermark = max(watermark, state.watermark)
        self._tracked, self._engaged = tracked, engaged
        if self._wm == _NO_WATERMARK and watermark != _NO_WATERMARK:
            self.advance_watermark(watermark)
