"""The drop processor (stage 2, pure): replays, hour closing, silences, gaps, late partials, restarts."""

from __future__ import annotations

import random
from typing import Any

import pytest

from streams.engagement.drops import DropRule
from streams.engagement.drops.state import decode_state
from streams.engagement.model import HOUR_MS, Alert
from streams.worker.drops.processor import AccountHoursProcessor
from streams.worker.drops.store import StagedStore
from streams.worker.drops.table import (
    decode_account,
)
from tests.drop_streams import counts, hour_ms, key, messages, reference

RULE = DropRule()
H0 = hour_ms(0)


def partials(
    account: str, source: int, seq: int, hours: list[list[int]], epoch: str = "e1"
) -> dict[str, Any]:
    return {"account_id": account, "source_partition": source, "epoch": epoch, "seq": seq, "hours": hours}


def heartbeat(source: int, complete_before: int, active: list[int] = (), seq: int = 0) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "heartbeat": True,
        "source_partition": source,
        "epoch": "e1",
        "seq": seq,
        "complete_before_ms": complete_before,
        "active_hours": list(active),
    }


def run(proc: AccountHoursProcessor, msgs: list[dict[str, Any]]) -> list[Alert]:
    alerts: list[Alert] = []
    for message in msgs:
        alerts += proc.handle(message).alerts
    return alerts


# --- replays and epochs ---------------------------------------------------------------------------


def test_a_replayed_flush_is_ignored_and_a_new_epoch_is_accepted() -> None:
    store: dict[str, bytes] = {}
    proc = AccountHoursProcessor(RULE, store, 0, 2)
    assert not proc.handle(partials("acme", 0, 3, [[H0, 10, 1]])).duplicate
    assert proc.handle(partials("acme", 0, 3, [[H0, 10, 1]])).duplicate  # the same flush re-sent
    assert proc.handle(partials("acme", 0, 2, [[H0, 7, 0]])).duplicate  # an older one
    assert not proc.handle(partials("acme", 1, 0, [[H0, 5, 0]])).duplicate  # another source, own seqs
    assert not proc.handle(partials("acme", 0, 4, [[H0, 1, 0]])).duplicate
    aux, _ = decode_account(store["acme"])
    assert aux.pending == {H0: [16, 1]}
    # the source partition's progress record was recreated: its flush numbers start again
    assert not proc.handle(partials("acme", 0, 0, [[H0, 2, 0]], epoch="e2")).duplicate
    assert proc.handle(partials("acme", 0, 0, [[H0, 2, 0]], epoch="e2")).duplicate
    aux, _ = decode_account(store["acme"])
    assert aux.pending == {H0: [18, 1]}
    assert aux.applied == {0: ("e2", 0), 1: ("e1", 0)}


# --- closing -------------------------------------------------------------------------------------


def test_an_hour_closes_only_when_every_source_is_past_it() -> None:
    store: dict[str, bytes] = {}
    proc = AccountHoursProcessor(RULE, store, 0, 3)
    proc.handle(partials("acme", 0, 0, [[H0, 10, 2]]))
    assert proc.handle(heartbeat(0, H0 + 2 * HOUR_MS, [H0])).closed_hours == 0
    assert proc.handle(heartbeat(1, H0 + 2 * HOUR_MS, [H0])).closed_hours == 0
    assert proc.waiting_for() == [2]  # never heard from: holds hours back (wait_for_all_sources)
    assert proc.handle(heartbeat(2, H0 + HOUR_MS - 1)).closed_hours == 0  # one ms short
    proc.handle(partials("acme", 2, 0, [[H0, 5, 0]]))  # still in time
    handled = proc.handle(heartbeat(2, H0 + HOUR_MS))
    assert handled.closed_hours == 1
    assert proc.progress().closed_through == H0
    view = proc.detector.view("acme")
    assert view is not None and view.last_hour_ms == H0 and view.engaged_followers == 2
    assert decode_account(store["acme"])[0].pending == {}
    # the next hour needs every source past it again; the slowest one decides
    assert proc.handle(heartbeat(0, H0 + 5 * HOUR_MS, [H0 + HOUR_MS])).closed_hours == 0
    assert proc.handle(heartbeat(2, H0 + 3 * HOUR_MS)).closed_hours == 1  # source 1 is at +2h
    assert proc.progress().closed_through == H0 + HOUR_MS


def test_without_waiting_for_all_sources_a_silent_partition_does_not_hold_hours() -> None:
    store: dict[str, bytes] = {}
    proc = AccountHoursProcessor(RULE, store, 0, 3, wait_for_all_sources=False)
    proc.handle(partials("acme", 0, 0, [[H0, 10, 0]]))
    assert proc.handle(heartbeat(0, H0 + HOUR_MS, [H0])).closed_hours == 1
    # source 1 becomes active afterwards: its partials of the closed hour are late, counted, dropped
    handled = proc.handle(partials("acme", 1, 0, [[H0, 4, 1], [H0 + HOUR_MS, 3, 0]]))
    assert handled.late == 1
    aux, _ = decode_account(store["acme"])
    assert aux.pending == {H0 + HOUR_MS: [3, 0]} and aux.engaged == 1
    assert proc.progress().late_partials == 1
    # partials alone do not make a source "heard from"; its first heartbeat does, and from then on
    # it holds hours back like every other one
    assert proc.handle(heartbeat(0, H0 + 3 * HOUR_MS, [H0 + HOUR_MS])).closed_hours == 2
    assert proc.handle(heartbeat(1, H0 + 3 * HOUR_MS)).closed_hours == 0
    assert proc.handle(heartbeat(0, H0 + 6 * HOUR_MS, [H0 + 3 * HOUR_MS])).closed_hours == 0
    assert proc.handle(heartbeat(1, H0 + 4 * HOUR_MS)).closed_hours == 1
    assert proc.progress().closed_through == H0 + 3 * HOUR_MS


def test_silent_accounts_get_zeros_and_hours_nobody_saw_are_gaps() -> None:
    # two accounts, a week and a day of warm-up at ~40/h each, then "quiet" gets nothing for an hour
    hours = 8 * 24
    hourly = counts({"loud": 40, "quiet": 40}, hours + 3, seed=3)
    hourly[hours].pop("quiet", None)  # silence: the stream flows, this account gets nothing
    hourly[hours + 2] = {}  # nobody anywhere: a gap, no alert
    proc = AccountHoursProcessor(RULE, {}, 0, 2)
    alerts = run(proc, messages(hourly, 2, seed=4))
    assert [(a.account_id, a.kind, a.state, a.at_ms) for a in alerts] == [
        ("quiet", "silence", "opened", hour_ms(hours + 1)),
        ("quiet", "silence", "resolved", hour_ms(hours + 2)),
    ]
    assert sorted(alerts, key=key) == reference(hourly)
    assert proc.progress().closed_through == hour_ms(hours + 2)
    view = proc.detector.view("loud")
    assert view is not None and view.last_hour_ms == hour_ms(hours + 2)


def test_hours_with_only_lapses_are_gaps_and_the_lapses_still_count() -> None:
    store: dict[str, bytes] = {}
    proc = AccountHoursProcessor(RULE, store, 0, 1)
    proc.handle(partials("acme", 0, 0, [[H0, 10, 2]]))
    proc.handle(heartbeat(0, H0 + HOUR_MS, [H0]))
    # a lapse fired by a timer in an hour nobody wrote in: a partial, but no event anywhere
    proc.handle(partials("acme", 0, 1, [[H0 + HOUR_MS, 0, -1]]))
    assert proc.handle(heartbeat(0, H0 + 3 * HOUR_MS, [], seq=1)).closed_hours == 2
    aux, detector = decode_account(store["acme"])
    assert aux.pending == {} and aux.engaged == 1
    state = decode_state(detector)
    assert state.last_hour * HOUR_MS == H0 + 2 * HOUR_MS
    assert state.count_at(H0 // HOUR_MS) == 10 and state.count_at(H0 // HOUR_MS + 1) is None  # a gap


def test_a_cut_account_opens_and_resolves_exactly_once_as_the_pure_detector_says() -> None:
    hours = 9 * 24
    cut_start = 8 * 24 + 10
    hourly = counts(
        {"a": 60, "b": 40, "cut": 45, "small": 3}, hours, seed=11, cut=("cut", cut_start, cut_start + 3, 0.1)
    )
    proc = AccountHoursProcessor(RULE, {}, 0, 4)
    alerts = run(proc, messages(hourly, 4, seed=12))
    expected = reference(hourly)
    assert sorted(alerts, key=key) == expected
    assert [(a.account_id, a.kind, a.state) for a in expected] == [
        ("cut", "drop", "opened"),
        ("cut", "drop", "resolved"),
    ]
    opened, resolved = expected
    assert hour_ms(cut_start + 1) <= opened.at_ms <= hour_ms(cut_start + 2)  # within 2 event-time hours
    assert resolved.at_ms > hour_ms(cut_start + 4) and resolved.opened_at_ms == opened.at_ms


# --- restarts and crashes ----------------------------------------------------------------------------


def _stream(seed: int) -> tuple[list[dict[str, int]], list[dict[str, Any]]]:
    hours = 8 * 24 + 12
    hourly = counts({"a": 50, "b": 30, "c": 35}, hours, seed=seed, cut=("b", 8 * 24 + 2, 8 * 24 + 6, 0.0))
    return hourly, messages(hourly, 3, seed=seed + 1)


def test_a_processor_rebuilt_from_its_store_decides_identically() -> None:
    hourly, msgs = _stream(21)
    uninterrupted = run(AccountHoursProcessor(RULE, {}, 0, 3), msgs)
    assert {(a.kind, a.state) for a in uninterrupted} >= {("silence", "opened"), ("silence", "resolved")}
    store: dict[str, bytes] = {}
    restarted: list[Alert] = []
    rng = random.Random(5)
    proc = AccountHoursProcessor(RULE, store, 0, 3)
    for message in msgs:
        if rng.random() < 0.02:
            store = dict(store)  # a new process: only what the table holds
            proc = AccountHoursProcessor(RULE, store, 0, 3)
        restarted += proc.handle(message).alerts
    assert restarted == uninterrupted
    assert sorted(uninterrupted, key=key) == reference(hourly)


@pytest.mark.parametrize("cache_max_accounts", [1, 2])
def test_a_cache_smaller_than_the_partition_decides_and_stores_identically(cache_max_accounts: int) -> None:
    """The processor keeps decoded accounts between records; with fewer slots than accounts it writes
    and evicts in the middle of a record (each hour closed visits every account), with no effect."""
    hourly, msgs = _stream(23)
    full: dict[str, bytes] = {}
    expected = run(AccountHoursProcessor(RULE, full, 0, 3), msgs)
    small: dict[str, bytes] = {}
    proc = AccountHoursProcessor(RULE, small, 0, 3, cache_max_accounts=cache_max_accounts)
    assert run(proc, msgs) == expected
    assert small == full
    assert len(proc._cache) <= cache_max_accounts
    assert sorted(expected, key=key) == reference(hourly)


@pytest.mark.parametrize("seed", [31, 32])
def test_crashes_before_or_during_the_state_write_replay_into_the_same_alerts(seed: int) -> None:
    """Like the wiring: handle against a staged overlay, deliver, then commit. A crash either discards
    the staged writes (before the commit) or keeps a prefix of them (a changelog flushed half-way),
    and the message is handled again. Alerts may repeat, never change, never go missing."""
    _, msgs = _stream(seed)
    expected = run(AccountHoursProcessor(RULE, {}, 0, 3), msgs)
    rng = random.Random(seed)
    durable: dict[str, bytes] = {}
    delivered: list[Alert] = []
    crashes = 0
    i = 0
    while i < len(msgs):
        staged = StagedStore(durable)
        proc = AccountHoursProcessor(RULE, staged, 0, 3)
        handled = proc.handle(msgs[i])
        delivered += handled.alerts
        if handled.closed_hours and rng.random() < 0.3:
            crashes += 1
            writes = list(staged._writes.items())
            progress_last = sorted(writes, key=lambda kv: kv[0] == proc.progress_key)
            for k, v in progress_last[: rng.randrange(len(progress_last) + 1)]:
                if v is None:
                    durable.pop(k, None)
                else:
                    durable[k] = v
            continue  # the message is consumed again
        staged.commit(last=proc.progress_key)
        if rng.random() < 0.1:  # a crash after the state write, before the offset commit
            replayed = AccountHoursProcessor(RULE, durable, 0, 3).handle(msgs[i])
            assert replayed.alerts == [] and replayed.closed_hours == 0
            assert replayed.duplicate or "heartbeat" in msgs[i]
        i += 1
    assert crashes > 10
    unique = {a.alert_id: a for a in delivered}
    assert sorted(unique.values(), key=key) == sorted({a.alert_id: a for a in expected}.values(), key=key)
    assert len(unique) == len(expected)
