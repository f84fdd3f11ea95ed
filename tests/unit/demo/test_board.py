"""What the demo shows, from real metric text and flag/alert records: pure, no I/O."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from streams.demo.board import Board, Rates, parse_samples, pipeline_numbers
from streams.metrics import Metrics


def exposition(fill: object) -> str:
    metrics = Metrics.create(CollectorRegistry())
    assert callable(fill)
    fill(metrics)
    return generate_latest(metrics.registry).decode()


def test_pipeline_numbers_from_the_declared_metrics() -> None:
    def worker(m: Metrics) -> None:
        m.events_consumed.labels("like").inc(70)  # every valid event read, duplicates and late included
        m.events_consumed.labels("comment").inc(30)
        m.events_deduplicated.inc(2)
        m.events_rejected.labels("late").inc(3)
        m.events_rejected.labels("schema").inc(5)
        m.dlq_messages.labels("late").inc(3)
        m.consumer_lag.labels("interactions.like", "0").set(5)
        m.consumer_lag.labels("interactions.like", "1").set(7)
        m.transitions.labels("engaged").inc(9)
        m.transitions.labels("lapsed").inc(4)
        m.engaged_followers.set(5)
        m.watermark.labels("0").set(1_700_000_100)
        m.watermark.labels("1").set(1_700_000_000)
        m.rows_written.labels("account_activity_1m").inc(11)
        m.open_drop_alerts.set(1)

    def ingest(m: Metrics) -> None:
        m.webhook_events.labels("generic", "accepted").inc(60)  # (the 5 invalid ones came through Kafka)
        m.webhook_events.labels("meta", "accepted").inc(45)
        m.webhook_events.labels("meta", "dlq").inc(1)
        m.dlq_messages.labels("unmappable").inc(1)

    numbers = pipeline_numbers(parse_samples(exposition(worker)), parse_samples(exposition(ingest)))
    assert numbers.accepted == 105 and numbers.ingest_dead_lettered == 1
    assert numbers.processed == 100 and numbers.deduplicated == 2
    assert numbers.rejected == 8 and numbers.invalid == 5
    assert numbers.handled == 105
    assert numbers.lag == 12
    assert (numbers.engaged, numbers.lapsed, numbers.engaged_now) == (9, 4, 5)
    assert numbers.watermark_ms == 1_700_000_000_000  # the slowest partition
    assert numbers.sink_rows == 11 and numbers.alerts_open == 1
    assert numbers.dlq == {"late": 3, "unmappable": 1}
    assert numbers.worker_up and numbers.ingest_up


def test_an_endpoint_that_did_not_answer() -> None:
    numbers = pipeline_numbers(None, parse_samples(exposition(lambda m: None)))
    assert not numbers.worker_up and numbers.ingest_up
    assert numbers.processed == 0 and numbers.watermark_ms is None and numbers.dlq == {}


def test_rates_over_a_window() -> None:
    rates = Rates(window_s=3.0)
    assert rates.rate("sent") == 0.0
    for second in range(10):
        rates.add(float(second), {"sent": 100.0 * second, "flat": 5.0})
    assert rates.rate("sent") == pytest.approx(100.0)
    assert rates.rate("flat") == 0.0 and rates.rate("unknown") == 0.0
    rates.add(10.0, {"sent": 0.0})  # a restarted counter never shows a negative rate
    assert rates.rate("sent") == 0.0


def flag(actor: str, kind: str, at: int, account: str = "acme") -> dict[str, object]:
    return {"account_id": account, "actor_id": actor, "kind": kind, "at": at, "count": 3}


def test_board_counts_engaged_pairs_from_transitions() -> None:
    board = Board([("acme", "generic", 200), ("beta", "x", 100)], recent=3)
    board.add_flag(flag("a", "engaged", 10))
    board.add_flag(flag("b", "engaged", 11))
    board.add_flag(flag("c", "engaged", 12, account="beta"))
    board.add_flag(flag("a", "lapsed", 20))
    board.add_flag(flag("a", "engaged", 30))
    assert board.engaged("acme") == 2 and board.engaged("beta") == 1 and board.engaged_total == 3
    assert board.counts == {"engaged": 4, "lapsed": 1}
    rows = board.rows(5)
    assert [(r.account_id, r.engaged, r.followers) for r in rows] == [("acme", 2, 200), ("beta", 1, 100)]
    assert rows[0].ratio == pytest.approx(0.01)
    assert [t.at_ms for t in board.transitions] == [12, 20, 30]  # the newest three


def test_board_ignores_replayed_and_older_transitions() -> None:
    board = Board([("acme", "generic", 10)])
    board.add_flag(flag("a", "engaged", 10))
    board.add_flag(flag("a", "lapsed", 20))
    board.add_flag(flag("a", "engaged", 10))  # a replay re-emits the older record: the newer stands
    board.add_flag(flag("a", "lapsed", 20))  # and the same record again counts once
    assert board.engaged("acme") == 0
    assert board.counts == {"engaged": 1, "lapsed": 1}
    assert board.flags_read == 4


def test_board_alerts_open_and_resolve_once() -> None:
    board = Board([])
    opened = {
        "alert_id": "1" * 32,
        "account_id": "acme",
        "kind": "drop",
        "state": "opened",
        "at": 100,
        "opened_at": 100,
        "observed": 4.0,
        "baseline": 40.0,
    }
    board.add_alert(opened)
    board.add_alert(opened)  # a replayed record
    assert list(board.open_alerts) == [("acme", "drop")] and len(board.alerts) == 1
    board.add_alert({**opened, "alert_id": "2" * 32, "state": "resolved", "at": 200})
    assert board.open_alerts == {} and [a.state for a in board.alerts] == ["opened", "resolved"]
    assert board.alerts_total == 2 and board.alerts_read == 3
