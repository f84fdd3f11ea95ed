"""Stage 2 (the ``drops`` agent) CPU per event, in process, without a broker (not a test: run it).

    .venv/bin/python -m tests.bench.drops_profile [--events 1000000] [--interval 64000] [--cprofile FILE]

Runs stage 1 as :mod:`tests.bench.stage_profile` does (one :class:`PartitionRunner` per partition over
the benchmark envelopes, a flush every ``--interval`` events: the worker flushes once per commit
interval, 1 s at ~64k events/s), capturing the ``engagement.account-hours`` records each flush
publishes: records keyed by account go to their partition, the heartbeat to every partition, as
:class:`~streams.worker.faust_adapter.outputs.FaustOutputs` routes them. After each flush, stage 2
(:class:`~streams.worker.drops.stage.DropStage` over a plain dict table, alerts counted) processes
what that flush published, in batches as the agent takes them, with a :meth:`DropStage.sync` per
batch. Only stage 2 is timed (``time.process_time``); prints CPU µs per input event and per record.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import time
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from streams.engagement.drops import DropRule
from streams.metrics import Metrics
from streams.partitioning import partition_for
from streams.settings import Settings
from streams.sinks.backoff import Backoff
from streams.sinks.base import MemorySink
from streams.worker.changelog import ChangelogBuffer, Record
from streams.worker.drops.stage import DropStage
from streams.worker.drops.table import decode_account, encode_account
from streams.worker.flush import flush
from streams.worker.sink_retry import SinkWriter
from tests.bench.stage_profile import PARTITIONS, envelopes, run_as_worker, stage1

BATCH = 100  # the agent's noack_take(100, within=0.2)


class CapturingPort:
    """Stage 1's output port: keeps the account-hour records per stage-2 partition, drops the rest."""

    def __init__(self, changelog: ChangelogBuffer) -> None:
        self._buffer = changelog
        self.pending: list[tuple[int, bytes]] = []  # (account-hours partition, value), in send order

    async def send_flags(self, records: list[tuple[bytes, bytes]]) -> None:
        pass

    async def send_dlq(self, records: list[bytes], partition: int = 0) -> None:
        pass

    async def send_account_hours(self, records: list[tuple[bytes, bytes]], heartbeat: bytes | None) -> None:
        self.pending += [(partition_for(key, PARTITIONS), value) for key, value in records]
        if heartbeat is not None:
            self.pending += [(p, heartbeat) for p in range(PARTITIONS)]

    async def sync_state(self, partition: int) -> None:
        self._buffer.take(partition)


class AlertCounter:
    """Stage 2's alert port: counts the alerts and the state syncs."""

    def __init__(self) -> None:
        self.alerts = self.syncs = self.changelog = 0
        self.digest = hashlib.sha256()

    async def send_alerts(self, records: list[tuple[bytes, bytes]]) -> None:
        self.alerts += len(records)
        for key, value in records:
            self.digest.update(key + value)

    async def sync_state(self, records: list[Record]) -> None:
        self.syncs += 1
        self.changelog += len(records)


def digest(alerts: bytes, table: dict[bytes, bytes]) -> str:
    """What stage 2 decided (alerts, final table), without the source partitions' random epochs."""
    out = hashlib.sha256(alerts)
    for key, value in sorted(table.items()):
        if not key.startswith(b"\x00"):
            aux, detector = decode_account(value)
            aux.applied = {p: ("", seq) for p, (_, seq) in aux.applied.items()}
            value = encode_account(aux, detector)
        out.update(key + value)
    return out.hexdigest()[:16]


async def run(messages: list[tuple[int, str, bytes]], interval: int, settings: Settings) -> dict[str, Any]:
    metrics = Metrics.create(CollectorRegistry())
    runners, views, changelog = stage1(messages, settings, metrics)
    port, sink, backoff = CapturingPort(changelog), MemorySink(), Backoff()

    alerts = AlertCounter()
    drops_table: dict[bytes, bytes] = {}
    drop_rule = DropRule.from_settings(settings)
    stage = DropStage(
        drop_rule, PARTITIONS, drops_table, alerts, SinkWriter(MemorySink(), Backoff(), metrics), metrics
    )
    process = time.process_time
    stage2_s = 0.0
    records = heartbeats = 0

    async def stage2() -> None:
        nonlocal stage2_s, records, heartbeats
        batch, port.pending = port.pending, []
        started = process()
        # The agent takes up to BATCH messages (of any partition), processes them, syncs, acks.
        for i in range(0, len(batch), BATCH):
            for partition, value in batch[i : i + BATCH]:
                await stage.process(partition, value)
            await stage.sync()
        stage2_s += process() - started
        hb = sum(1 for _, value in batch if value.startswith(b'{"heartbeat"'))
        heartbeats += hb
        records += len(batch) - hb

    async def flush_all() -> None:
        for runner, view in zip(runners, views, strict=True):
            await flush(runner, view, port, SinkWriter(sink, backoff, metrics))
        await stage2()

    offsets: dict[tuple[int, str], int] = {}
    since = events = 0
    for partition, topic, value in messages:
        offset = offsets[partition, topic] = offsets.get((partition, topic), -1) + 1
        runners[partition].feed(topic, offset, value, None)
        since += value.count(b'"event_id"')
        if since >= interval:
            events += since
            since = 0
            await flush_all()
    events += since
    await flush_all()
    return {
        "events": events,
        "stage2_s": stage2_s,
        "records": records,
        "heartbeats": heartbeats,
        "alerts": alerts.alerts,
        "changelog": alerts.changelog,
        "accounts": sum(1 for key in drops_table if not key.startswith(b"\x00")),
        "table_bytes": sum(len(v) for v in drops_table.values()),
        # what stage 2 decided: identical before and after a change that must not alter results
        "table": drops_table,
        "digest": digest(alerts.digest.digest(), drops_table),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--interval", type=int, default=64_000, help="events between flushes")
    parser.add_argument("--cprofile", help="write a cProfile of the run to this file")
    parser.add_argument("--dump", help="write the final drop-state table (JSON, hex values) to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    settings = Settings.from_env({})
    messages = envelopes(args.events, settings)
    result = run_as_worker(run(messages, args.interval, settings), args.cprofile)
    if args.dump:
        table = {k.hex(): v.hex() for k, v in sorted(result["table"].items())}
        with open(args.dump, "wb") as out:
            out.write(orjson.dumps(table))
    n, s = result["events"], result["stage2_s"]
    messages_in = result["records"] + result["heartbeats"]
    print(
        f"{n:,.0f} events → {result['records']:,.0f} account-hour records + {result['heartbeats']:,.0f} "
        f"heartbeats: stage 2 {s:.3f} CPU s = {s / n * 1e6:.3f} µs/event, "
        f"{s / messages_in * 1e6:.1f} µs/message; alerts {result['alerts']:,.0f}, "
        f"changelog records {result['changelog']:,.0f}, "
        f"accounts {result['accounts']:,.0f}, table {result['table_bytes'] / 1e6:.1f} MB; "
        f"result digest {result['digest']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
