"""``engage send FILE.ndjson``: validate canonical events and produce them to the interaction topics.

Invalid lines are reported with their line number and field, and written to the dead-letter topic
with the reason: nothing is silently dropped. Exit status 1 when any line was invalid.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from streams import topics
from streams.deadletters import dlq_record
from streams.errors import ConfigError, InvalidEvent
from streams.events import Interaction, decode_event
from streams.producer import KafkaEventPublisher
from streams.settings import Settings


def register(sub: Any) -> None:
    parser = sub.add_parser("send", help="produce an NDJSON file of canonical events ('-' for stdin)")
    parser.add_argument("file", help="NDJSON file, one canonical event per line")
    parser.add_argument("--batch", type=int, default=500, help="events per Kafka message (envelope)")
    parser.set_defaults(func=run)


def read_ndjson(lines: Any) -> tuple[list[Interaction], list[tuple[int, InvalidEvent, bytes]]]:
    events: list[Interaction] = []
    invalid: list[tuple[int, InvalidEvent, bytes]] = []
    for number, line in enumerate(lines, start=1):
        raw = line if isinstance(line, bytes) else line.encode()
        if not raw.strip():
            continue
        try:
            events.append(decode_event(raw))
        except InvalidEvent as exc:
            invalid.append((number, exc, raw.rstrip(b"\n")))
    return events, invalid


def run(args: argparse.Namespace, settings: Settings) -> int:
    if settings.embedded_kafka:
        raise ConfigError("set KAFKA_BOOTSTRAP_SERVERS (printed by `engage broker` or `engage demo`)")
    topics.prepare(settings, settings.kafka_bootstrap_servers)  # routed by ENGAGE_TOPIC_PARTITIONS
    if args.file == "-":
        events, invalid = read_ndjson(sys.stdin.buffer)
    else:
        with Path(args.file).open("rb") as handle:
            events, invalid = read_ndjson(handle)
    with KafkaEventPublisher(
        settings.kafka_bootstrap_servers,
        settings.topics,
        settings.topic_partitions,
        max_batch=args.batch,
        security=settings.kafka_security,
    ) as publisher:
        messages = publisher.send(events)
        publisher.send_dlq(
            dlq_record(exc.reason, str(exc), raw, {"file": args.file, "line": number})
            for number, exc, raw in invalid
        )
    for number, exc, _ in invalid:
        print(f"{args.file}:{number}: {exc.reason}: {exc}", file=sys.stderr)
    print(f"sent {len(events)} events in {messages} messages; {len(invalid)} invalid line(s) to the DLQ")
    return 1 if invalid else 0
