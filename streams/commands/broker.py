"""``engage broker``: run the embedded Tansu broker with the project's topics until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from streams import runtime
from streams.embedded.broker import EmbeddedBroker
from streams.settings import Settings


def register(sub: Any) -> None:
    parser = sub.add_parser("broker", help="run the embedded Kafka (Tansu) broker with the topics created")
    parser.add_argument("--port", type=int, default=0, help="loopback port (default: a free one)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with EmbeddedBroker(port=args.port or None) as broker:
        created = runtime.create_topics(settings, broker.bootstrap)
        print(
            f"embedded Kafka on {broker.bootstrap} (pid {broker.pid}); created {len(created)} topics",
            flush=True,
        )
        print(f"export KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}", flush=True)
        stop.wait()
    print("broker stopped", flush=True)
    return 0
