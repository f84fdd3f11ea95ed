"""The naive Faust baseline: one event at a time into a tumbling windowed table.

What a first Faust implementation looks like (a Record per message, a windowed Table update per
event, Faust's own acking). Run by ``streams.bench`` as ``faust -A streams.bench.naive_faust worker``
with ``BENCH_*`` variables; it prints one line when it has counted ``BENCH_EVENTS`` events.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from typing import Any

import faust
import orjson

BOOTSTRAP = os.environ.get("BENCH_BOOTSTRAP", "127.0.0.1:9092")
TOPIC = os.environ.get("BENCH_TOPIC", "bench.naive")
TARGET = int(os.environ.get("BENCH_EVENTS", "50000"))

app = faust.App(
    f"naive-{TOPIC}",
    broker=f"kafka://{BOOTSTRAP}",
    store="memory://",
    web_enabled=False,
    broker_session_timeout=10.0,
    broker_rebalance_timeout=10.0,
    broker_heartbeat_interval=1.0,
    topic_partitions=int(os.environ.get("BENCH_PARTITIONS", "4")),
    topic_replication_factor=1,
)


class Event(faust.Record, serializer="json"):
    event_id: str
    type: str
    platform: str
    account_id: str
    actor_id: str
    occurred_at: int
    post_id: str | None = None
    text: str | None = None


source = app.topic(TOPIC, value_type=Event)
per_minute = app.Table(
    "naive-per-minute", default=int, partitions=int(os.environ.get("BENCH_PARTITIONS", "4"))
).tumbling(timedelta(minutes=1), expires=timedelta(hours=1))
state: dict[str, Any] = {"n": 0, "t0": None}


@app.agent(source)
async def count(stream: Any) -> None:
    async for event in stream:
        if state["t0"] is None:
            state["t0"] = time.perf_counter()
        per_minute[event.account_id] += 1
        state["n"] += 1
        if state["n"] >= TARGET:
            elapsed = time.perf_counter() - state["t0"]
            sys.stdout.write(orjson.dumps({"events": state["n"], "seconds": elapsed}).decode() + "\n")
            sys.stdout.flush()
            os._exit(0)
