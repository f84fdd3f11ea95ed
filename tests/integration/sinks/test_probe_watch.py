"""The writer's own read connection, and the benchmark's probe watcher on it (real chDB)."""

from __future__ import annotations

import io

import orjson

from streams.bench.probe_worker import PROBE_PREFIX, ProbeWatchSink
from streams.engagement.model import AccountMinute
from streams.sinks.base import SinkBatch
from streams.sinks.clickhouse import ClickHouseSink

from .conftest import NOW_MS


def test_query_rows_reads_what_the_writer_wrote(sink: ClickHouseSink) -> None:
    minute = AccountMinute("acme", "x", NOW_MS)
    minute.likes = 3
    sink.write(SinkBatch("tok/1", account_minutes=[minute]))
    rows = sink.query_rows(
        f"SELECT account_id, sum(likes) FROM `{sink.database}`.account_activity_1m GROUP BY account_id"
    )
    assert rows == [("acme", 3)]


def test_probe_watch_logs_each_probe_once_visible_and_ignores_other_accounts(sink: ClickHouseSink) -> None:
    out = io.BytesIO()
    watch = ProbeWatchSink(sink, out, clock=lambda: 1234.5)
    probes = [AccountMinute(f"{PROBE_PREFIX}run-{i}", "generic", NOW_MS) for i in range(3)]
    for probe in probes:
        probe.likes = 1
    watch.write(SinkBatch("tok/a", account_minutes=[AccountMinute("acme", "x", NOW_MS)]))
    assert out.getvalue() == b""
    watch.write(SinkBatch("tok/b", account_minutes=[*probes, AccountMinute("acme", "x", NOW_MS)]))
    logged = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(entry["account"] for entry in logged) == sorted(p.account_id for p in probes)
    assert {entry["visible_at"] for entry in logged} == {1234.5}
