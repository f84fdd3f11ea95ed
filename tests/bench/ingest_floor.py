"""The floor of the ingest stack: how many signed requests/s aiohttp + aiokafka allow at all (run it).

    .venv/bin/python -m tests.bench.ingest_floor [--seconds 8] [--rounds 2]

Issue 6 asks for 5,000 signed requests/s (100 events each) from one ingest process. This measures
what the decided components leave for our own code, with the very load generator, bodies and broker
of ``make bench``'s ingest row. Each level is a bare aiohttp server (this module, ``serve``) doing
strictly less than ``engage ingest`` does per request:

- ``http``: read the body, answer 200. aiohttp's request handling alone.
- ``verify``: + HMAC-SHA256 of the body compared in constant time, + ``orjson.loads`` of the body.
- ``kafka``: + one aiokafka produce of the body *as a single message* (acks=all, as ingest), awaited
  before the 200. The real service splits a request per topic and partition (≈20 messages here) and
  validates every event first, so this is a lower bound of its Kafka cost.

then the real ``engage ingest`` under the same load. The levels alternate over ``--rounds`` so host
speed drift hits all of them alike. Prints requests/s and ingest CPU µs/request per level.

It also times, in process, the two steps of a generic request that no server choice removes: validating
the 100 events (``GenericAdapter.map_canonical``, the ingest's own hot path) and grouping them per topic
and partition into encoded envelopes (``canonical_envelopes``), so that the CPU a request needs
*without any HTTP server* can be added up: verify (``verify`` − ``http``) + produce (``kafka`` −
``verify``) + validate + group/encode.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import hmac
import os
import sys
import time

import orjson
from aiohttp import web

from streams.bench.ingest import SECRET, bodies, measure_ingest
from streams.embedded.broker import EmbeddedBroker
from streams.ingest.adapters.generic import GenericAdapter
from streams.ingest.envelopes import ActorPartitions, canonical_envelopes, topic_map
from streams.runtime import INGEST_GC_THRESHOLDS
from streams.settings import Settings

LEVELS = ("http", "verify", "kafka")


async def _serve(level: str, host: str, port: int, bootstrap: str, topic: str) -> None:
    key = SECRET.encode()
    producer = None
    if level == "kafka":
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=1, max_batch_size=256 * 1024
        )
        await producer.start()

    async def events(request: web.Request) -> web.Response:
        body = await request.read()
        if level != "http":
            expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, request.headers.get("X-Signature-256", "")):
                return web.Response(status=401)
            orjson.loads(body)
        if producer is not None:
            await producer.send_and_wait(topic, body)
        return web.Response(status=200, body=b'{"accepted":100}', content_type="application/json")

    async def ready(request: web.Request) -> web.Response:
        return web.Response(status=200)

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/v1/events", events)
    app.router.add_get("/readyz", ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    gc.freeze()
    gc.set_threshold(*INGEST_GC_THRESHOLDS)  # as engage ingest does
    try:
        await asyncio.Event().wait()
    finally:
        if producer is not None:
            await producer.stop()


def serve() -> None:
    """The floor server, configured like ``engage ingest`` from the environment ``measure_ingest`` sets."""
    level = os.environ["FLOOR_LEVEL"]
    topic = os.environ["ENGAGE_TOPIC_PREFIX"] + "interactions.like"
    asyncio.run(
        _serve(
            level,
            os.environ["ENGAGE_INGEST_HOST"],
            int(os.environ["ENGAGE_INGEST_PORT"]),
            os.environ["KAFKA_BOOTSTRAP_SERVERS"],
            topic,
        )
    )


def in_process_us(events_per_request: int = 100, passes: int = 7) -> tuple[float, float]:
    """CPU µs per request of validation and of grouping + encoding, best of ``passes`` over 500 bodies."""
    adapter = GenericAdapter(tolerance_ms=300_000)
    topic_for = topic_map(Settings.from_env({}).topics)
    parsed = [orjson.loads(body) for body, _ in bodies(500, events_per_request)]
    validate = group = float("inf")
    partition_of = ActorPartitions(4)  # warm after the first pass: every actor's partition memoised
    for _ in range(passes):
        started = time.process_time()
        valid = [adapter.map_canonical(payload)[0] for payload in parsed]
        middle = time.process_time()
        for events in valid:
            canonical_envelopes(events, topic_for, partition_of)
        ended = time.process_time()
        validate = min(validate, (middle - started) / len(parsed) * 1e6)
        group = min(group, (ended - middle) / len(parsed) * 1e6)
    return validate, group


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    floor_command = [sys.executable, "-m", "tests.bench.ingest_floor", "serve"]
    results: dict[str, list[tuple[float, float]]] = {}
    with EmbeddedBroker() as broker:
        for round_ in range(args.rounds):
            for level in (*LEVELS, "engage ingest"):
                found = measure_ingest(
                    broker.bootstrap,
                    topic_prefix=f"floor{round_}{level.replace(' ', '')}.",
                    partitions=4,
                    seconds=args.seconds,
                    max_events=400_000,
                    command=None if level == "engage ingest" else floor_command,
                    extra_env={"FLOOR_LEVEL": level},
                )
                if set(found["statuses"]) != {"200"}:
                    raise RuntimeError(f"{level}: statuses {found['statuses']}")
                results.setdefault(level, []).append(
                    (found["requests_per_s"], found["ingest_cpu_us_per_request"])
                )
                print(
                    f"round {round_ + 1} {level:>13}: {found['requests_per_s']:6,.0f} requests/s, "
                    f"{found['ingest_cpu_us_per_request']:4.0f} CPU µs/request, "
                    f"p50 {found['p50_ms']:.1f} ms",
                    flush=True,
                )
    print("best of the rounds:")
    best = {level: max(runs) for level, runs in results.items()}
    for level, (rate, cpu) in best.items():
        print(f"  {level:>13}: {rate:6,.0f} requests/s at {cpu:4.0f} CPU µs/request")
    validate, group = in_process_us()
    verify = best["verify"][1] - best["http"][1]
    produce = best["kafka"][1] - best["verify"][1]
    need = verify + produce + validate + group
    print(
        f"in process, per 100-event request: validate {validate:.0f} µs, group + encode {group:.0f} µs; "
        f"with verify {verify:.0f} and one produce {produce:.0f}: {need:.0f} CPU µs before any HTTP "
        f"server, i.e. at most {1e6 / need:,.0f} requests/s on one core"
    )
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve()
    else:
        raise SystemExit(main())
