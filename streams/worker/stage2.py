"""Stage 2 of drop detection: per-account hourly partials in, completed hours into the detector.

No Faust here (the agent is :mod:`streams.worker.drop_wiring`). One :class:`AccountHoursProcessor`
per partition *q* of ``engagement.account-hours`` consumes what the stream partitions publish at each
flush (see :mod:`streams.worker.account_hours`):

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
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from streams.engagement.drops import DropDetector, DropRule
from streams.engagement.model import HOUR_MS, Alert
from streams.worker.stage2_state import (
    AccountHours,
    DetectorStore,
    HoursMeta,
    decode_account,
    encode_account,
    hours_meta_key,
    is_internal_key,
)

log = logging.getLogger(__name__)


@dataclass
class Handled:
    """What one record did."""

    alerts: list[Alert] = field(default_factory=list)
    closed_hours: int = 0  # hours closed (observed or skipped) because of this record
    late: int = 0  # partial hours that arrived for an already closed hour
    duplicate: bool = False  # a replayed flush, ignored


class AccountHoursProcessor:
    """Stage 2 for one partition ``partition`` of the account-hours topic.

    ``store`` holds this partition's keys only (accounts and the meta key), as bytes; all state lives
    there, so a processor rebuilt on the same store continues exactly where the last one stopped.
    """

    def __init__(
        self,
        rule: DropRule,
        store: MutableMapping[str, bytes],
        partition: int,
        partitions: int,
        *,
        wait_for_all_sources: bool = True,
    ) -> None:
        self.store = store
        self.partition = partition
        self.partitions = partitions
        self.wait_for_all_sources = wait_for_all_sources
        self.meta_key = hours_meta_key(partition, partitions)
        self.detector = DropDetector(rule, DetectorStore(store))

    def meta(self) -> HoursMeta:
        return HoursMeta.decode(self.store.get(self.meta_key))

    def handle(self, record: Mapping[str, Any]) -> Handled:
        if record.get("heartbeat"):
            return self._heartbeat(record)
        return self._partials(record)

    # --- partials -----------------------------------------------------------------------------

    def _partials(self, record: Mapping[str, Any]) -> Handled:
        account = str(record["account_id"])
        source, epoch, seq = int(record["source_partition"]), str(record["epoch"]), int(record["seq"])
        aux, detector = decode_account(self.store.get(account))
        applied = aux.applied.get(source)
        if applied is not None and applied[0] == epoch and seq <= applied[1]:
            return Handled(duplicate=True)
        aux.applied[source] = (epoch, seq)
        closed = self.meta().closed_through
        late = 0
        for hour, substantive, engaged_delta in record["hours"]:
            if closed is not None and hour <= closed:
                late += 1
                aux.engaged += engaged_delta
                continue
            slot = aux.pending.setdefault(int(hour), [0, 0])
            slot[0] += substantive
            slot[1] += engaged_delta
        self.store[account] = encode_account(aux, detector)
        if late:
            meta = self.meta()
            meta.late_partials += late
            self.store[self.meta_key] = meta.encode()
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
        meta = self.meta()
        meta.heartbeats[source] = max(meta.heartbeats.get(source, complete_before), complete_before)
        for hour in record.get("active_hours", ()):
            if meta.closed_through is None or hour > meta.closed_through:
                meta.active.add(int(hour))
        handled = Handled()
        last = self._last_closable(meta)
        if last is not None:
            handled.alerts, handled.closed_hours = self._close_through(meta, last)
        encoded = meta.encode()
        if encoded != self.store.get(self.meta_key):  # a repeated heartbeat changes nothing
            self.store[self.meta_key] = encoded
        return handled

    def waiting_for(self) -> list[int]:
        """Source partitions not heard from yet (what holds hours back under ``wait_for_all_sources``)."""
        heard = self.meta().heartbeats
        return [p for p in range(self.partitions) if p not in heard]

    def _last_closable(self, meta: HoursMeta) -> int | None:
        if self.wait_for_all_sources and any(p not in meta.heartbeats for p in range(self.partitions)):
            return None
        if not meta.heartbeats:
            return None
        complete_before = min(meta.heartbeats.values())
        return complete_before - complete_before % HOUR_MS - HOUR_MS

    def _close_through(self, meta: HoursMeta, last: int) -> tuple[list[Alert], int]:
        """Close every hour up to ``last`` (inclusive) that is not closed yet."""
        if meta.closed_through is not None and meta.closed_through + HOUR_MS > last:
            # Nothing to close: most heartbeats (one per source partition per flush) end here, before
            # the scan of every account's pending hours (that scan was 6% of the worker's time).
            return [], 0
        pending = self._pending_by_hour(last)
        if meta.closed_through is not None:
            first = meta.closed_through + HOUR_MS
        else:
            starts = meta.active | pending.keys()
            if not starts:
                return [], 0
            first = min(starts)
        if first > last:
            return [], 0
        with_data = meta.active | {h for h, accounts in pending.items() if any(s for _, s in accounts)}
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
        meta.closed_through = last
        meta.active = {h for h in meta.active if h > last}
        return alerts, closed

    def _pending_by_hour(self, last: int) -> dict[int, list[tuple[str, int]]]:
        """``hour -> [(account, substantive)]`` of the pending hours up to ``last``, in account order."""
        by_hour: dict[int, list[tuple[str, int]]] = {}
        for key in sorted(self.store):
            if is_internal_key(key):
                continue
            aux, _ = decode_account(self.store.get(key))
            for hour, (substantive, _delta) in aux.pending.items():
                if hour <= last:
                    by_hour.setdefault(hour, []).append((key, substantive))
        return by_hour

    def _fold(self, hour: int, account: str) -> AccountHours:
        """Remove ``hour`` from the account's pending hours; its engaged level absorbs the delta."""
        aux, detector = decode_account(self.store.get(account))
        slot = aux.pending.pop(hour, None)
        if slot is not None:
            aux.engaged += slot[1]
        self.store[account] = encode_account(aux, detector)
        return aux

    def _close(self, hour: int, accounts: list[tuple[str, int]]) -> list[Alert]:
        alerts: list[Alert] = []
        for account, substantive in accounts:
            aux = self._fold(hour, account)
            alerts += self.detector.observe(account, hour, substantive, max(0, aux.engaged))
        alerts += self.detector.close_hour(hour)
        return alerts
