"""``engage ingest``: the webhook service, until Ctrl-C or SIGTERM.

Kafka is ``KAFKA_BOOTSTRAP_SERVERS``; with ``--embedded`` and no servers configured, an embedded Tansu
broker is started for the lifetime of the command (for trying it out; production points at Kafka).
Binds ``ENGAGE_INGEST_HOST:ENGAGE_INGEST_PORT`` unless ``--host`` / ``--port`` say otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
from typing import Any

from streams import runtime
from streams.errors import ConfigError
from streams.settings import Settings


def register(sub: Any) -> None:
    parser = sub.add_parser("ingest", help="run the webhook ingestion service (platform webhooks → Kafka)")
    parser.add_argument("--host", help="bind address (default: ENGAGE_INGEST_HOST)")
    parser.add_argument("--port", type=int, help="port (default: ENGAGE_INGEST_PORT; 0: a free one)")
    parser.add_argument(
        "--embedded",
        action="store_true",
        help="start an embedded Tansu broker when KAFKA_BOOTSTRAP_SERVERS is empty",
    )
    parser.set_defaults(func=run)


async def _serve(settings: Settings, bootstrap: str) -> None:
    from streams.ingest.app import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(
        settings,
        bootstrap,
        stop=stop,
        on_started=lambda url: print(f"ingest listening on {url} (Kafka {bootstrap})", flush=True),
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    if settings.embedded_kafka and not args.embedded:
        raise ConfigError("set KAFKA_BOOTSTRAP_SERVERS, or pass --embedded to start an embedded broker")
    overrides: dict[str, Any] = {}
    if args.host:
        overrides["ingest_host"] = args.host
    if args.port is not None:
        overrides["ingest_port"] = args.port
    settings = dataclasses.replace(settings, **overrides)
    with runtime.kafka(settings) as bootstrap, contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings, bootstrap))
    print("ingest stopped", flush=True)
    return 0
