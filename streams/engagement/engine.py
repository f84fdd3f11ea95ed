"""One source partition's engagement engine: events in; final transitions, aggregates, scores out.

Event time, bounded lateness, emitted only when final:

- ``watermark`` is the largest ``occurred_at`` accepted so far; ``final = watermark − allowed_lateness``.
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

The flush protocol per commit interval is ``drain()`` → write outputs → ``dirty()`` (persists
changed states, stamping ``flush_seq``) → commit offsets. After a crash, build the engine with the
``flush_seq`` and ``watermark_ms`` of the last *committed* interval and call :meth:`restore`; an actor
whose stored state carries that same ``flush_seq`` was already persisted by the interval being
replayed, so this interval's events are not applied to its pairs again (aggregates are still
counted; the sink's idempotency token absorbs the repeat).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Final

from streams.engagement.aggregates import Aggregates
from streams.engagement.dedup import MinuteDedup
from streams.engagement.model import ENGAGED, FollowerScore, Outputs, Transition
from streams.engagement.rule import COMMENT, SHARE, Rule, count_words
from streams.engagement.state import ActorState, PairState, decode, encode, event_hash
from streams.engagement.timers import TimerIndex
from streams.engagement.window import advance, expired, next_due, prune
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
        self._pending: dict[tuple[str, str], list[float]] = {}
        self._pending_platform: dict[tuple[str, str], str] = {}
        self._changed_scores: set[tuple[str, str]] = set()
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
        at = event.occurred_at_ms
        if at < self._final:
            self.late_total += 1
            return LATE
        event_type = event.type
        substantive = False
        if event_type in (COMMENT, SHARE):
            min_words = self.rule.min_words
            if min_words > 0:
                substantive = count_words(event.text, min_words) >= min_words
            else:
                substantive = event_type == COMMENT or bool(event.text and event.text.strip())
        actor = event.actor_id
        if substantive:
            state = self._load(actor)
            if actor in self._skip:
                # Already persisted by the interval being replayed: count it, apply nothing.
                if self._dedup.seen(hash(event.event_id), at):
                    self.duplicate_total += 1
                    return DUPLICATE
            elif not self._apply_substantive(state, event, at):
                self.duplicate_total += 1
                return DUPLICATE
        else:
            if self._dedup.seen(hash(event.event_id), at):
                self.duplicate_total += 1
                return DUPLICATE
            weight = self.rule.weight(event_type, False)
            if weight > 0.0:
                self._add_pending(actor, event.account_id, event.platform, weight, at)
        if at > self._wm and self.auto_watermark:
            self._wm = at
            self._final = at - self.rule.allowed_lateness_ms
        self._aggregates.add_event(
            event_type, event.account_id, event.platform, event.post_id, at, substantive
        )
        return OK

    def process_many(self, events: Iterable[Interaction]) -> Counts:
        counts = Counts()
        process = self.process
        late = counts.late
        ok = duplicate = 0
        for event in events:
            outcome = process(event)
            if outcome is OK:
                ok += 1
            elif outcome is DUPLICATE:
                duplicate += 1
            else:
                late.append(event)
        counts.ok = ok
        counts.duplicate = duplicate
        return counts

    def _apply_substantive(self, state: ActorState | None, event: Interaction, at: int) -> bool:
        """Insert a substantive interaction into its pair; False if its event id is already there."""
        actor = event.actor_id
        account = event.account_id
        digest = event_hash(event.event_id)
        if state is None:
            # ``checked`` may be anything up to the first event point; the horizon after this event is.
            state = self._cache[actor] = ActorState(max(self._final, at - self.rule.allowed_lateness_ms))
        pair = state.pairs.get(account)
        if pair is None:
            pair = state.pairs[account] = PairState(account, event.platform)
            self._tracked += 1
        elif digest in pair.hashes:
            return False
        index = bisect_right(pair.times, at)
        pair.times.insert(index, at)
        pair.hashes.insert(index, digest)
        weight = self.rule.weight(event.type, True)
        self._add_score(pair, weight, at, 1)
        self._dirty.add(actor)
        self._changed_scores.add((actor, account))
        self._timers.schedule(actor, at)
        return True

    def _add_pending(self, actor: str, account: str, platform: str, weight: float, at: int) -> None:
        key = (actor, account)
        entry = self._pending.get(key)
        if entry is None:
            self._pending[key] = [weight, at, 1]
            self._pending_platform[key] = platform
        elif at <= entry[1]:
            entry[0] += weight * math.exp((at - entry[1]) * self._k)
            entry[2] += 1
        else:
            entry[0] = entry[0] * math.exp((entry[1] - at) * self._k) + weight
            entry[1] = at
            entry[2] += 1

    def _add_score(self, pair: PairState, score: float, at: int, interactions: int) -> None:
        """Add a decayed sum ``score`` (as of ``at``) to the pair's; exact in any arrival order."""
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
        pending, platforms = self._pending, self._pending_platform
        self._pending, self._pending_platform = {}, {}
        for key, (score, at, interactions) in pending.items():
            actor, account = key
            state = self._load(actor)
            if actor in self._skip:
                continue
            if state is None:
                state = self._cache[actor] = ActorState(self._final)
            pair = state.pairs.get(account)
            if pair is None:
                pair = state.pairs[account] = PairState(account, platforms[key])
                self._tracked += 1
                self._add_score(pair, score, int(at), int(interactions))
                self._timers.schedule(actor, self._due(pair, self._final))
            else:
                self._add_score(pair, score, int(at), int(interactions))
            self._dirty.add(actor)
            self._changed_scores.add(key)

    def _due(self, pair: PairState, horizon: int) -> int:
        rule = self.rule
        return next_due(pair, horizon, rule.threshold, rule.window_ms, self._k, rule.score_floor)

    def _fire_timers(self) -> None:
        rule = self.rule
        final = self._final
        threshold, window, floor = rule.threshold, rule.window_ms, rule.score_floor
        for actor in self._timers.pop_before(final):
            state = self._load(actor)
            if state is None:
                continue
            start = state.checked
            due: int | None = None
            for account, pair in list(state.pairs.items()):
                for kind, at, count in advance(pair, start, final, threshold, window):
                    self._transitions.append(Transition(account, actor, kind, at, count, pair.platform))
                    self._aggregates.add_transition(kind, account, pair.platform, at)
                    self._engaged += 1 if kind == ENGAGED else -1
                prune(pair, final, threshold, window)
                if expired(pair, final, self._k, floor):
                    del state.pairs[account]
                    self._tracked -= 1
                    self._changed_scores.discard((actor, account))
                    continue
                pair_due = self._due(pair, final)
                due = pair_due if due is None else min(due, pair_due)
            state.checked = final
            self._dirty.add(actor)
            # An actor left without pairs stays cached, empty, until dirty() deletes it: reloading the
            # stale stored value meanwhile would resurrect what just expired.
            if due is not None:
                self._timers.schedule(actor, due)

    # --- output -------------------------------------------------------------------------------

    def drain(self) -> Outputs:
        """Final transitions, aggregate deltas and changed scores since the last drain."""
        self._fold_pending()
        # Scores first: firing timers may expire a decayed pair, and its last change must still be
        # emitted (otherwise whether it is depends on when flushes happened).
        scores: list[FollowerScore] = []
        for actor, account in sorted(self._changed_scores):
            state = self._cache.get(actor)
            pair = state.pairs.get(account) if state is not None else None
            if pair is not None:
                scores.append(
                    FollowerScore(
                        account, actor, pair.platform, pair.score, pair.score_as_of, pair.interactions
                    )
                )
        self._changed_scores = set()
        self._fire_timers()
        self._dedup.expire(self._final)
        transitions = sorted(self._transitions, key=lambda t: (t.at_ms, t.account_id, t.actor_id))
        self._transitions = []
        account_minutes, post_minutes = self._aggregates.take()
        return Outputs(transitions, account_minutes, post_minutes, scores)

    def dirty(self) -> dict[str, bytes | None]:
        """Encoded states changed since the last call (``None``: delete), stamped with ``flush_seq``.

        Pending score contributions are folded in first, so the result is complete. With
        ``write_store`` (the default) the engine has already applied the result to ``store``;
        otherwise the caller must. Then ``flush_seq`` advances by one.
        """
        self._fold_pending()
        out: dict[str, bytes | None] = {}
        seq, watermark = self.flush_seq, self.watermark_ms
        for actor in self._dirty:
            state = self._cache.get(actor)
            if state is None or not state.pairs:
                self._cache.pop(actor, None)
                self._timers.cancel(actor)
                out[actor] = None
            else:
                state.seq = seq
                state.watermark = watermark
                out[actor] = encode(state)
        if self.write_store:
            store = self.store
            for actor, value in out.items():
                if value is None:
                    store.pop(actor, None)
                else:
                    store[actor] = value
        self._dirty = set()
        self._skip = set()
        self.flush_seq += 1
        excess = len(self._cache) - self.rule.cache_max_actors
        if excess > 0:
            for actor in list(islice(self._cache, excess + self.rule.cache_max_actors // 4)):
                del self._cache[actor]
        return out

    def restore(self) -> None:
        """Rebuild timers and counters from ``store`` (after a restart or a partition assignment).

        Without an explicit ``watermark_ms``, the watermark becomes the largest one stamped on a state
        of an already committed interval (``seq < flush_seq``).
        """
        self._timers = TimerIndex()
        self._cache.clear()
        self._dirty.clear()
        self._skip.clear()
        tracked = engaged = 0
        watermark = _NO_WATERMARK
        for actor, raw in self.store.items():
            state = decode(raw)
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
