"""The writer on real chDB: totals equal the input exactly, and a replayed batch token changes nothing."""

from __future__ import annotations

import random
import socket
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from streams.engagement.model import (
    ENGAGED,
    LAPSED,
    AccountMinute,
    Alert,
    FollowerScore,
    PostMinute,
    Transition,
)
from streams.errors import FatalSinkError, SinkUnavailable
from streams.metrics import Metrics
from streams.settings import Settings
from streams.sinks.base import SinkBatch
from streams.sinks.clickhouse import ClickHouseSink
from streams.sinks.rows import TABLE_NAMES

from .conftest import MINUTE, MONTH_BOUNDARY_MS, Query

ACCOUNTS = ("acme", "globex", "initech")
PLATFORMS = ("x", "meta")
COUNTERS = ("likes", "comments", "shares", "follows", "unfollows", "substantive", "active", "passive")
POST_COUNTERS = ("likes", "comments", "substantive_comments", "shares")


def generate(seed: int, batches: int = 12) -> list[SinkBatch]:
    """Deltas around a month boundary, and transitions/scores/alerts inserted out of event-time order."""
    rng = random.Random(seed)
    out = [SinkBatch(f"grp/p{seed}/k{k}/tok") for k in range(batches)]
    minutes = [MONTH_BOUNDARY_MS + i * MINUTE for i in range(-90, 90, 7)]
    for batch in out:
        for _ in range(rng.randint(5, 40)):
            m = AccountMinute(rng.choice(ACCOUNTS), rng.choice(PLATFORMS), rng.choice(minutes))
            for c in (*COUNTERS, "engaged_new", "lapsed"):
                setattr(m, c, rng.randint(0, 5))
            batch.account_minutes.append(m)
        for _ in range(rng.randint(5, 30)):
            p = PostMinute(rng.choice(ACCOUNTS), "x", f"post{rng.randint(1, 8)}", rng.choice(minutes))
            for c in POST_COUNTERS:
                setattr(p, c, rng.randint(0, 4))
            batch.post_minutes.append(p)
    for account in ACCOUNTS:
        for f in range(15):
            actor = f"fan{f}"
            at = MONTH_BOUNDARY_MS - 3 * 86_400_000 + rng.randint(0, 10**6)
            for i in range(rng.randint(1, 4)):  # engaged, lapsed, engaged, ...
                at += rng.randint(1, 10**7)
                t = Transition(account, actor, ENGAGED if i % 2 == 0 else LAPSED, at, 3 - i % 2, "x")
                rng.choice(out).transitions.append(t)
                score = FollowerScore(account, actor, "x", rng.uniform(0.5, 20), at, rng.randint(1, 50))
                rng.choice(out).scores.append(score)
        opened = MONTH_BOUNDARY_MS - rng.randint(1, 100) * MINUTE
        out[0].alerts.append(Alert(account, "drop", "opened", opened, 3.0, 40.0, opened))
        if account != "acme":
            rng.choice(out[1:]).alerts.append(
                Alert(account, "drop", "resolved", opened + 3_600_000, 30.0, 40.0, opened)
            )
    return out


def expected(batches: list[SinkBatch]) -> dict[str, Any]:
    activity: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * 10)
    posts: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * 4)
    latest: dict[tuple[str, str], Transition] = {}
    scores: dict[tuple[str, str], FollowerScore] = {}
    transitions: set[str] = set()
    alerts: dict[tuple[str, int], set[str]] = defaultdict(set)
    for b in batches:
        for m in b.account_minutes:
            row = activity[(m.account_id, m.platform, m.minute_ms // 1000)]
            for i, c in enumerate((*COUNTERS, "engaged_new", "lapsed")):
                row[i] += getattr(m, c)
        for p in b.post_minutes:
            prow = posts[(p.account_id, p.platform, p.post_id, p.minute_ms // 1000)]
            for i, c in enumerate(POST_COUNTERS):
                prow[i] += getattr(p, c)
        for t in b.transitions:
            transitions.add(t.transition_id)
            if (t.account_id, t.actor_id) not in latest or t.at_ms > latest[(t.account_id, t.actor_id)].at_ms:
                latest[(t.account_id, t.actor_id)] = t
        for s in b.scores:
            if (s.account_id, s.actor_id) not in scores or s.as_of_ms > scores[
                (s.account_id, s.actor_id)
            ].as_of_ms:
                scores[(s.account_id, s.actor_id)] = s
        for a in b.alerts:
            alerts[(a.account_id, a.opened_at_ms)].add(a.state)
    engaged = {pair for pair, t in latest.items() if t.kind == ENGAGED}
    per_account: dict[str, int] = defaultdict(int)
    for account, _ in engaged:
        per_account[account] += 1
    return {
        "activity": {k: tuple(v) for k, v in activity.items() if any(v)},
        "posts": {k: tuple(v) for k, v in posts.items() if any(v)},
        "transitions": transitions,
        "engaged": engaged,
        "engaged_now": dict(per_account),
        "scores": {pair: (s.score, s.as_of_ms, s.interactions) for pair, s in scores.items()},
        "open_alerts": {key for key, states in alerts.items() if states == {"opened"}},
    }


def snapshot(q: Query) -> dict[str, Any]:
    counters = ", ".join((*COUNTERS, "engaged_new", "lapsed"))
    return {
        "activity": {
            (a, p, int(m)): tuple(v)
            for a, p, m, *v in q.rows(
                f"SELECT account_id, platform, toUnixTimestamp(minute), {counters} "
                "FROM DB.v_account_activity_1m"
            )
        },
        "posts": {
            (a, pl, p, int(m)): tuple(v)
            for a, pl, p, m, *v in q.rows(
                "SELECT account_id, platform, post_id, toUnixTimestamp(minute), "
                "likes, comments, substantive_comments, shares FROM DB.v_post_activity_1m"
            )
        },
        "transitions": {r[0] for r in q.rows("SELECT transition_id FROM DB.v_engagement_transitions")},
        "transition_rows": q.rows("SELECT count() FROM DB.v_engagement_transitions")[0][0],
        "engaged": set(q.rows("SELECT account_id, actor_id FROM DB.v_engaged_followers")),
        "engaged_now": dict(q.rows("SELECT account_id, engaged_followers FROM DB.v_engaged_followers_now")),
        "scores": {
            (a, f): (s, int(at), n)
            for a, f, s, at, n in q.rows(
                "SELECT account_id, actor_id, score, toUnixTimestamp64Milli(as_of), interactions "
                "FROM DB.v_top_advocates"
            )
        },
        "open_alerts": {
            (a, int(o))
            for a, o in q.rows("SELECT account_id, toUnixTimestamp64Milli(opened_at) FROM DB.v_open_alerts")
        },
    }


def _without_count(snap: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in snap.items() if k != "transition_rows"}


def test_totals_equal_the_input_and_replays_change_nothing(sink: ClickHouseSink, q: Query) -> None:
    batches = generate(seed=7)
    want = expected(batches)
    assert len({m.minute_ms >= MONTH_BOUNDARY_MS for b in batches for m in b.account_minutes}) == 2
    for batch in batches:
        sink.write(batch)
    first = snapshot(q)
    assert _without_count(first) == want
    assert first["transition_rows"] == len(want["transitions"])

    # Crash after insert, before commit: the same batches (same tokens) again, in another order.
    for batch in reversed(batches):
        sink.write(batch)
    assert snapshot(q) == first

    # Merged parts still remember the tokens.
    for table in TABLE_NAMES:
        q.command(f"OPTIMIZE TABLE DB.{table} FINAL")
    sink.write(batches[3])
    assert snapshot(q) == first
    assert q.rows("SELECT count() FROM DB.account_activity_1m") == [(len(want["activity"]),)]


def test_the_token_decides_not_the_content(sink: ClickHouseSink, q: Query) -> None:
    """The same rows under a new token are new data (a later interval that happened to look the same)."""
    batch = SinkBatch(
        "t1",
        account_minutes=[
            AccountMinute("acme", "x", MONTH_BOUNDARY_MS - MINUTE, likes=2),
            AccountMinute("acme", "x", MONTH_BOUNDARY_MS, likes=5),  # next month's partition
        ],
    )
    sink.write(batch)
    sink.write(batch)
    assert q.rows("SELECT sum(likes), count() FROM DB.v_account_activity_1m") == [(7, 2)]
    sink.write(SinkBatch("t2", account_minutes=batch.account_minutes))
    assert q.rows("SELECT sum(likes), count() FROM DB.v_account_activity_1m") == [(14, 2)]


def test_metrics_per_table(sink: ClickHouseSink, metrics: Metrics) -> None:
    batches = generate(seed=3, batches=4)
    for batch in batches:
        sink.write(batch)

    def value(name: str, **labels: str) -> float:
        got = metrics.registry.get_sample_value(name, labels)
        return 0.0 if got is None else got

    rows = sum(len(b.account_minutes) for b in batches)
    assert value("engage_sink_rows_written_total", table="account_activity_1m") == rows
    assert value("engage_sink_batches_written_total", table="account_activity_1m") == 4
    assert value("engage_sink_flush_duration_seconds_count", table="post_activity_1m") == 4
    assert value("engage_sink_batches_written_total", table="engagement_alerts") == sum(
        1 for b in batches if b.alerts
    )


def test_a_half_written_batch_is_completed_by_the_retry(
    sink: ClickHouseSink, q: Query, metrics: Metrics
) -> None:
    batches = generate(seed=11, batches=3)
    want = expected(batches)
    sink.write(batches[0])
    q.command("RENAME TABLE DB.post_activity_1m TO DB.post_activity_1m_away")
    with pytest.raises(FatalSinkError, match="post_activity_1m"):
        sink.write(batches[1])  # transitions, state, scores, account activity went in; posts did not
    assert (
        metrics.registry.get_sample_value(
            "engage_sink_insert_failures_total", {"table": "post_activity_1m", "kind": "fatal"}
        )
        == 1
    )
    q.command("RENAME TABLE DB.post_activity_1m_away TO DB.post_activity_1m")
    for batch in batches[1:]:
        sink.write(batch)
    assert _without_count(snapshot(q)) == want


def test_too_many_parts_is_retryable_and_the_retry_is_exact(
    sink: ClickHouseSink, q: Query, metrics: Metrics
) -> None:
    batches = generate(seed=5, batches=2)
    want = expected(batches)
    sink.write(batches[0])
    q.command("SYSTEM STOP MERGES DB.account_activity_1m")
    q.command(
        "ALTER TABLE DB.account_activity_1m MODIFY SETTING parts_to_throw_insert = 1, "
        "parts_to_delay_insert = 1, max_delay_to_insert = 0"
    )
    with pytest.raises(SinkUnavailable, match="TOO_MANY_PARTS"):
        sink.write(batches[1])
    with pytest.raises(SinkUnavailable):
        sink.write(batches[1])  # still pushing back: the caller keeps the batch and backs off
    assert (
        metrics.registry.get_sample_value(
            "engage_sink_insert_failures_total", {"table": "account_activity_1m", "kind": "retryable"}
        )
        == 2
    )
    q.command(
        "ALTER TABLE DB.account_activity_1m "
        "RESET SETTING parts_to_throw_insert, parts_to_delay_insert, max_delay_to_insert"
    )
    sink.write(batches[1])
    assert _without_count(snapshot(q)) == want


def test_insert_into_a_dropped_table_is_fatal(sink: ClickHouseSink, q: Query) -> None:
    alert = Alert("acme", "drop", "opened", MONTH_BOUNDARY_MS, 1.0, 30.0, MONTH_BOUNDARY_MS)
    sink.write(SinkBatch("a1", alerts=[alert]))
    q.command("DROP TABLE DB.engagement_alerts")
    with pytest.raises(FatalSinkError, match="UNKNOWN_TABLE") as info:
        sink.write(SinkBatch("a2", alerts=[alert]))
    assert "engagement_alerts" in str(info.value) and "engage db migrate" in str(info.value)


def test_a_missing_column_is_fatal(ch_client: Any, ch_database: str, q: Query, metrics: Metrics) -> None:
    sink = ClickHouseSink.for_client(ch_client, ch_database, metrics, migrate=True)
    sink.open()
    q.command("ALTER TABLE DB.post_activity_1m DROP COLUMN shares")
    with pytest.raises(FatalSinkError, match="shares"):
        sink.write(SinkBatch("b", post_minutes=[PostMinute("acme", "x", "p", MONTH_BOUNDARY_MS, likes=1)]))


def test_an_unreachable_server_is_retryable(metrics: Metrics) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(clickhouse_dsn=f"http://default:s3cr3t-pw@127.0.0.1:{port}/engagement")
    sink = ClickHouseSink.from_settings(settings, metrics)  # connecting is lazy: no error yet
    batch = SinkBatch("t", account_minutes=[AccountMinute("acme", "x", MONTH_BOUNDARY_MS, likes=1)])
    for _ in range(2):
        with pytest.raises(SinkUnavailable, match="Connection refused") as info:
            sink.write(batch)
        assert "s3cr3t-pw" not in str(info.value)


def test_a_server_that_never_answers_is_retryable_within_the_sink_timeout(metrics: Metrics) -> None:
    """A ClickHouse that takes the request and never answers (a hung server, a black-holed load balancer)
    is unavailable after ENGAGE_SINK_TIMEOUT, not after clickhouse-connect's 300 s: the worker's retry loop
    and the next owner's first write must not sit behind it. No ClickHouse server runs here: the other end
    is a real loopback listener that accepts the connection, reads the request and says nothing."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def swallow() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)  # kept open, never answered

    thread = threading.Thread(target=swallow, daemon=True)
    thread.start()
    dsn = f"http://default:s3cr3t-pw@127.0.0.1:{port}/engagement"
    settings = Settings.from_env({"CLICKHOUSE_DSN": dsn, "ENGAGE_SINK_TIMEOUT": "1s"})
    sink = ClickHouseSink.from_settings(settings, metrics)
    batch = SinkBatch("t", account_minutes=[AccountMinute("acme", "x", MONTH_BOUNDARY_MS, likes=1)])
    try:
        started = time.monotonic()
        with pytest.raises(SinkUnavailable) as info:
            sink.write(batch)
        waited = time.monotonic() - started
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()
    assert held, "the client never reached the listener"
    # clickhouse-connect retries a read timeout on an idempotent request at most once more: ~2 x 1 s.
    assert waited < 20, f"the hung request held the write for {waited:.0f}s"
    assert "s3cr3t-pw" not in str(info.value)


def test_a_chdb_dsn_creates_and_migrates_the_database_on_first_write(
    ch_client: Any, chdb_path: Path, metrics: Metrics
) -> None:
    database = f"dsn_{uuid.uuid4().hex[:10]}"
    settings = Settings(clickhouse_dsn=f"chdb://{chdb_path}?database={database}")
    assert settings.migrate_on_start
    sink = ClickHouseSink.from_settings(settings, metrics)
    try:
        sink.write(SinkBatch("t", account_minutes=[AccountMinute("acme", "x", MONTH_BOUNDARY_MS, likes=4)]))
        assert Query(ch_client, database).rows("SELECT sum(likes) FROM DB.v_account_activity_1m") == [(4,)]
    finally:
        sink.close()
        ch_client.command(f"DROP DATABASE IF EXISTS {database}")


def test_a_retried_batch_counts_each_table_once(sink: ClickHouseSink, q: Query, metrics: Metrics) -> None:
    """Tables the failed attempt did write are dropped by their token on the retry: not rows written again."""
    batches = generate(seed=5, batches=2)
    q.command("SYSTEM STOP MERGES DB.account_activity_1m")
    sink.write(batches[0])
    q.command(
        "ALTER TABLE DB.account_activity_1m MODIFY SETTING parts_to_throw_insert = 1, "
        "parts_to_delay_insert = 1, max_delay_to_insert = 0"
    )
    with pytest.raises(SinkUnavailable, match="TOO_MANY_PARTS"):
        sink.write(batches[1])  # transitions, state and scores went in, account activity did not
    q.command(
        "ALTER TABLE DB.account_activity_1m "
        "RESET SETTING parts_to_throw_insert, parts_to_delay_insert, max_delay_to_insert"
    )
    sink.write(batches[1])

    def value(name: str, table: str) -> float:
        got = metrics.registry.get_sample_value(name, {"table": table})
        return 0.0 if got is None else got

    assert sum(len(b.transitions) for b in batches) > 0
    for table, rows in (
        ("engagement_transitions", sum(len(b.transitions) for b in batches)),
        ("account_activity_1m", sum(len(b.account_minutes) for b in batches)),
    ):
        assert value("engage_sink_rows_written_total", table) == rows
        assert value("engage_sink_batches_written_total", table) == 2
    assert q.rows("SELECT count() FROM DB.engagement_transitions") == [
        (sum(len(b.transitions) for b in batches),)
    ]


def test_writes_leave_no_garbage_behind(sink: ClickHouseSink, q: Query) -> None:
    """Issue 17: every insert left its clickhouse-connect insert context, with all of the batch's rows
    as Python objects, in a reference cycle; the worker, which collects rarely, grew by ~60 MB a minute.
    Written with the collector off, the batches must leave nothing that only a collection frees."""
    import gc

    batches = generate(seed=9, batches=6)
    gc.collect()
    gc.disable()
    try:
        for batch in batches:
            sink.write(batch)
        leaked = gc.collect()
    finally:
        gc.enable()
    assert leaked == 0
    assert q.rows("SELECT count() FROM DB.follower_scores")[0][0] > 0
