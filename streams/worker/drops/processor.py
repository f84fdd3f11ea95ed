"""The drop processor (stage 2): per-account hourly partials in, completed hours into the detector.

Pure: no Faust, no I/O (:mod:`streams.worker.drops.stage` drives it). One :class:`AccountHoursProcessor`
per partition *q* of ``engagement.account-hours`` consumes what the stream partitions publish at each
flush (see :mod:`streams.worker.drops.hours`):

- **partials**, keyed by account: ``hours = [[hour_ms, substantive, engaged_delta], ...]`` from
  source partition *p*'s flush ``(epoch, seq)``. They are added to the account's pending hours. A
  flush re-sent after a crash carries the same ``(epoch, seq)`` and is ignored (per account and
  source partition: same epoch and ``seq <= applied``); a new epoch (a source partition whose
  progress record was recreated) starts over.
- **heartbeats**, broadcast to every *q*: every event of *p* older than ``complete_before_ms`` is in
  *p*'s partials sent so far, and ``active_hours`` had events (of any kind, any account) on *p*.

**When an hour closes.** Hour *H* closes on *q* once every source partition reports
``complete_before_ms >= H + 1h``. By default (``wait_for_all_sources``) no hour closes before all
``partitions`` source partitions have been heard from at least once: at start-up, or when a replay
begins, one partition's first flush can cover days of event time before another has flushed at all,
and closing on the partitions heard from so far would turn the others' partials into late ones (and
their accounts' hours into false drops). The cost is that a source partition that never receives a
single event holds every hour back. Events are partitioned by follower, so in practice every
partition receives events within seconds; a deployment with so little traffic should use fewer
partitions. With ``wait_for_all_sources=False`` a partition that never sent anything does not hold
hours back (and its first partials, if it ever becomes active, may be late).

Either way, a source partition that has sent heartbeats and then goes **silent** (no events at all,
or its worker is down or lagging) holds hours back: no hour closes, so no alert opens or resolves,
until it sends again; then every pending hour closes at once, in order, with exact counts. Holding
back is right when the partition is lagging (its partials are still to come); for a partition that
is merely idle it delays alerts until its next event. Whole-stream idleness is described in the
README ("When nothing arrives").

**What a closed hour does.** If some source saw any event in *H* (``active_hours``), every account
of *q* with partials for *H* is observed with its total and its engaged-followers level, then
:meth:`DropDetector.close_hour` gives every other known account of *q* a zero (silence detection).
If no source saw anything in *H* (an ingest outage, or the gap before a replay's far sentinel), the
hour is a gap: :meth:`DropDetector.skip_hour`, neither zero nor evaluated.

**Late partials** (for an hour already closed) cannot happen while every source partition keeps
its promise; they can when a source partition becomes active only after hours closed without it,
or if stage-1 lateness were misconfigured. Their substantive counts are dropped (the hour's verdict
is final) and counted in ``late``; engaged-follower deltas still move the running level.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Final

from streams.engagement.drops import DropDetector, DropRule
from streams.engagement.drops.state import AccountState, as_stored, decode_state, encode_state
from streams.engagement.model import HOUR_MS, Alert
from streams.worker.drops.table import (
    AccountHours,
    HoursProgress,
    decode_account,
    encode_account,
    hours_progress_key,
    is_internal_key,
)

log = logging.getLogger(__name__)

# Decoded accounts kept in memory per partition between records, so the cache's memory is bounded (what a
# decoded account weighs: README, "Engagement-drop alerts"); beyond this many, the least recently loaded are
# dropped and decoded again when needed (each closed hour then decodes every account, as without a cache).
CACHE_MAX_ACCOUNTS: Final = 10_000


@dataclass
class Handled:
    """What one record did."""

    alerts: list[Alert] = field(default_factory=list)
    closed_hours: int = 0  # hours closed (observed or skipped) because of this record
    late: int = 0  # partial hours that arrived for an already closed hour
    duplicate: bool = False  # a replayed flush, ignored


@dataclass(slots=True)
class _Account:
    """One account's value in the table, decoded."""

    aux: AccountHours
    state: AccountState | None  # the detector's state (None: not observed yet, or forgotten)
    # ``state`` encoded, while it has not changed since (None: stale); a view into the value last read
    # or written, not a copy, so that a record changing only the bookkeeping does not encode it again
    detector_bytes: memoryview | None


class AccountHoursProcessor:
    """Stage 2 for one partition ``partition`` of the account-hours topic.

    ``store`` holds this partition's keys only (accounts and the progress key), as bytes; all state lives
    there, so a processor rebuilt on the same store continues exactly where the last one stopped.

    **Cache.** The processor keeps the decoded progress record, the partition's account keys and up
    to ``cache_max_accounts`` decoded accounts in memory between records, and writes to ``store`` only
    the values a record changed, each encoded once, when the record is done (the progress record
    last). So the store always holds the state after the last record handled; in exchange the
    processor must be the only writer of its partition's keys while it lives, and :meth:`reset` (or a
    new processor) is needed whenever ``store`` changes behind it (a write discarded after a failed
    delivery, a partition recovered from its changelog). A record that raises resets it.
    """

    def __init__(
        self,
        rule: DropRule,
        store: MutableMapping[str, bytes],
        partition: int,
        partitions: int,
        *,
        wait_for_all_sources: bool = True,
        cache_max_accounts: int = CACHE_MAX_ACCOUNTS,
    ) -> None:
        self.store = store
        self.partition = partition
        self.partitions = partitions
        self.wait_for_all_sources = wait_for_all_sources
        self.cache_max_accounts = cache_max_accounts
        self.progress_key = hours_progress_key(partition, partitions)
        self.detector: DropDetector = _CachedDetector(rule, self)
        self.reset()

    def reset(self) -> None:
        """Forget everything cached: the next record reads ``store`` again."""
        self._cache: dict[str, _Account] = {}
        # accounts changed by the current record, in write order, and what to write (None: delete)
        self._dirty: dict[str, _Account | None] = {}
        self._progress_changed = False
        # every account key of the partition, in the store's order (the detector visits them in it)
        self._keys: dict[str, None] = dict.fromkeys(k for k in self.store if not is_internal_key(k))
        self._progress_raw = self.store.get(self.progress_key)
        self._progress = HoursProgress.decode(self._progress_raw)

    def progress(self) -> HoursProgress:
        """The partition's progress record after the last record (the processor's own copy: read only)."""
        return self._progress

    def handle(self, record: Mapping[str, Any]) -> Handled:
        try:
            handled = self._heartbeat(record) if record.get("heartbeat") else self._partials(record)
            self._write_back()
        except BaseException:
            self.reset()
            raise
        return handled

    # --- the cache ------------------------------------------------------------------------------

    def _account(self, account: str) -> _Account:
        found = self._cache.get(account)
        if found is None:
            if len(self._cache) >= self.cache_max_accounts:
                self._spill()
            if account in self._dirty:  # changed by this record and not written yet (None: deleted)
                found = self._dirty[account] or _Account(AccountHours(), None, memoryview(b""))
            else:
                raw = self.store.get(account)
                aux, detector = decode_account(raw)
                state = decode_state(detector) if detector else None
                found = _Account(aux, state, _tail(raw, len(detector)))
            self._cache[account] = found
        return found

    def _touch(self, account: str, found: _Account) -> None:
        """The account changed: write ``found`` when the record is done."""
        self._dirty[account] = found
        self._keys[account] = None

    def _delete(self, account: str) -> None:
        self._cache.pop(account, None)
        self._keys.pop(account, None)
        self._dirty[account] = None

    def _write_back(self) -> None:
        """The record is done: its changed accounts into ``store``, then the progress record if it changed."""
        self._write_accounts()
        if self._progress_changed:
            self._progress_changed = False
            encoded = self._progress.encode()
            if encoded != self._progress_raw:  # a repeated heartbeat changes nothing
                self.store[self.progress_key] = encoded
                self._progress_raw = encoded
        if len(self._cache) > self.cache_max_accounts:
            self._spill()

    def _write_accounts(self) -> None:
        store = self.store
        for account, found in self._dirty.items():
            if found is None:
                store.pop(account, None)
                continue
            detector = found.detector_bytes
            if detector is None:
                detector = memoryview(b"" if found.state is None else encode_state(found.state))
            value = store[account] = encode_account(found.aux, detector)
            found.detector_bytes = _tail(value, len(detector))
        self._dirty.clear()

    def _spill(self) -> None:
        """Bound the cache (also in the middle of a record that visits more accounts than it holds):
        write the changed accounts so far, then drop the least recently loaded quarter."""
        self._write_accounts()
        drop = len(self._cache) - self.cache_max_accounts + self.cache_max_accounts // 4 + 1
        for account in list(islice(self._cache, max(drop, 0))):
            del self._cache[account]

    def _accounts(self) -> list[str]:
        return list(self._keys)

    # --- partials -----------------------------------------------------------------------------

    def _partials(self, record: Mapping[str, Any]) -> Handled:
        account = str(record["account_id"])
        source, epoch, seq = int(record["source_partition"]), str(record["epoch"]), int(record["seq"])
        found = self._account(account)
        aux = found.aux
        applied = aux.applied.get(source)
        if applied is not None and applied[0] == epoch and seq <= applied[1]:
            return Handled(duplicate=True)
        aux.applied[source] = (epoch, seq)
        closed = self._progress.closed_through
        late = 0
        for hour, substantive, engaged_delta in record["hours"]:
            if closed is not None and hour <= closed:
                late += 1
                aux.engaged += engaged_delta
                continue
            slot = aux.pending.setdefault(int(hour), [0, 0])
            slot[0] += substantive
            slot[1] += engaged_delta
        self._touch(account, found)
        if late:
            self._progress.late_partials += late
            self._progress_changed = True
            log.warning(
                "account-hours partition %d: %d late partial hour(s) of %s from source partition %d "
                "(hours already closed through %d); substantive counts dropped",
                self.partition,
                late,
                account,
                source,
                closed,
            )
        return Handled(late=late)

    # --- heartbeats and closing -------------------------------------------------------------------

    def _heartbeat(self, record: Mapping[str, Any]) -> Handled:
        source, complete_before = int(record["source_partition"]), int(record["complete_before_ms"])
        progress = self._progress
        self._progress_changed = True
        progress.heartbeats[source] = max(progress.heartbeats.get(source, complete_before), complete_before)
        for hour in record.get("active_hours", ()):
            if progress.closed_through is None or hour > progress.closed_through:
                progress.active.add(int(hour))
        handled = Handled()
        last = self._last_closable(progress)
        if last is not None:
            handled.alerts, handled.closed_hours = self._close_through(progress, last)
        return handled

    def waiting_for(self) -> list[int]:
        """Source partitions not heard from yet (what holds hours back under ``wait_for_all_sources``)."""
        heard = self._progress.heartbeats
        return [p for p in range(self.partitions) if p not in heard]

    def _last_closable(self, progress: HoursProgress) -> int | None:
        if self.wait_for_all_sources and any(p not in progress.heartbeats for p in range(self.partitions)):
            return None
        if not progress.heartbeats:
            return None
        complete_before = min(progress.heartbeats.values())
        return complete_before - complete_before % HOUR_MS - HOUR_MS

    def _close_through(self, progress: HoursProgress, last: int) -> tuple[list[Alert], int]:
        """Close every hour up to ``last`` (inclusive) that is not closed yet."""
        if progress.closed_through is not None and progress.closed_through + HOUR_MS > last:
            # Nothing to close: most heartbeats (one per source partition per flush) end here, before
            # the scan of every account's pending hours, which would otherwise run once per heartbeat
            # (what it cost: README, "What made the worker what it is").
            return [], 0
        pending = self._pending_by_hour(last)
        if progress.closed_through is not None:
            first = progress.closed_through + HOUR_MS
        else:
            starts = progress.active | pending.keys()
            if not starts:
                return [], 0
            first = min(starts)
        if first > last:
            return [], 0
        with_data = progress.active | {h for h, accounts in pending.items() if any(s for _, s in accounts)}
        alerts: list[Alert] = []
        hour = first
        while hour <= last:
            if hour in with_data:
                alerts += self._close(hour, pending.get(hour, []))
                end = hour
            else:  # a run of hours nobody saw any event in: one gap
                end = hour
                while end + HOUR_MS <= last and end + HOUR_MS not in with_data:
                    end += HOUR_MS
                for h in range(hour, end + HOUR_MS, HOUR_MS):
                    for account, _ in pending.get(h, ()):
                        self._fold(h, account)
                alerts += self.detector.skip_hour(end)
            hour = end + HOUR_MS
        closed = (last - first) // HOUR_MS + 1
        progress.closed_through = last
        progress.active = {h for h in progress.active if h > last}
        return alerts, closed

    def _pending_by_hour(self, last: int) -> dict[int, list[tuple[str, int]]]:
        """``hour -> [(account, substantive)]`` of the pending hours up to ``last``, in account order."""
        by_hour: dict[int, list[tuple[str, int]]] = {}
        for key in sorted(self._keys):
            aux = self._account(key).aux
            for hour, (substantive, _delta) in aux.pending.items():
                if hour <= last:
                    by_hour.setdefault(hour, []).append((key, substantive))
        return by_hour

    def _fold(self, hour: int, account: str) -> AccountHours:
        """Remove ``hour`` from the account's pending hours; its engaged level absorbs the delta."""
        found = self._account(account)
        slot = found.aux.pending.pop(hour, None)
        if slot is not None:
            found.aux.engaged += slot[1]
            self._touch(account, found)
        return found.aux

    def _close(self, hour: int, accounts: list[tuple[str, int]]) -> list[Alert]:
        alerts: list[Alert] = []
        for account, substantive in accounts:
            aux = self._fold(hour, account)
            alerts += self.detector.observe(account, hour, substantive, max(0, aux.engaged))
        alerts += self.detector.close_hour(hour)
        return alerts


def _tail(value: bytes | None, length: int) -> memoryview:
    """The last ``length`` bytes of ``value``, without copying them."""
    view = memoryview(value or b"")
    return view[len(view) - length :]


class _CachedDetector(DropDetector):
    """The detector over the processor's cache: an account's state and bookkeeping are one value."""

    def __init__(self, rule: DropRule, processor: AccountHoursProcessor) -> None:
        super().__init__(rule, {})  # every state access goes through the methods below
        self._processor = processor

    def _get(self, account_id: str) -> AccountState | None:
        return self._processor._account(account_id).state

    def _save(self, account_id: str, state: AccountState) -> None:
        found = self._processor._account(account_id)
        # as a decode of its encoding would be: the next hour starts from the same float32 values
        found.state, found.detector_bytes = as_stored(state), None
        self._processor._touch(account_id, found)

    def _forget(self, account_id: str) -> None:
        """Keep the account's bookkeeping only if it still matters."""
        processor = self._processor
        found = processor._account(account_id)
        if found.aux.pending or found.aux.engaged:
            found.state, found.detector_bytes = None, memoryview(b"")
            processor._touch(account_id, found)
        else:
            processor._delete(account_id)

    def _behind(self, hour: int) -> list[str]:
        behind = []
        for account_id in self._processor._accounts():
            state = self._processor._account(account_id).state
            if state is not None and state.last_hour < hour:
                behind.append(account_id)
        return behind

    def _states(self) -> Iterator[tuple[str, AccountState]]:
        for account_id in self._processor._accounts():
            state = self._processor._account(account_id).state
            if state is not None:
                yield account_id, state
