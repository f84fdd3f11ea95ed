"""``engage replay FILE.ndjson [--rate R] [--batch N]``: send a recorded stream through the pipeline.

Like ``engage send`` (same validation, same dead-lettering of invalid lines with their reason), but
streaming: the file is read in steps, each step is produced and acknowledged before the next, at
most ``--rate`` events per second (and, with ``--time-scale``, no faster than event time allows),
with a progress bar on a terminal.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from streams import topics
from streams.commands.send import read_ndjson
from streams.deadletters import dlq_record
from streams.demo.pacing import Pacer
from streams.errors import ConfigError, InvalidEvent
from streams.producer import KafkaEventPublisher
from streams.settings import Settings

_MAX_STEP = 20_000  # events per produce-and-acknowledge step when the rate does not ask for fewer


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "replay", help="send a recorded NDJSON stream to the pipeline, paced, with progress"
    )
    parser.add_argument("file", help="NDJSON file of canonical events ('-' for stdin)")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="at most R events per second (default: as fast as Kafka takes them)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=None,
        help="event seconds per wall second (e.g. 3600: an hour per second)",
    )
    parser.add_argument("--batch", type=int, default=500, help="events per Kafka message (envelope)")
    parser.set_defaults(func=run)


def step_size(rate: float | None, batch: int) -> int:
    """Events per step: about ten steps a second at the target rate, so pacing stays smooth."""
    largest = max(batch, _MAX_STEP)
    if rate is None:
        return largest
    return max(1, min(largest, int(rate / 10)))


def numbered_steps(lines: IO[bytes], size: int) -> Iterator[tuple[int, list[bytes], int]]:
    """``(first line number, lines, bytes)`` in steps of ``size`` lines."""
    first = 1
    while chunk := list(itertools.islice(lines, size)):
        yield first, chunk, sum(len(line) for line in chunk)
        first += len(chunk)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if settings.embedded_kafka:
        raise ConfigError("set KAFKA_BOOTSTRAP_SERVERS (printed by `engage broker` or `engage demo`)")
    if args.batch < 1:
        raise ConfigError("--batch must be at least 1")
    # Events are routed by ENGAGE_TOPIC_PARTITIONS: the topics must have that many partitions.
    topics.prepare(settings, settings.kafka_bootstrap_servers)
    pacer = Pacer(args.rate, args.time_scale)
    console = Console(stderr=True)
    step = step_size(args.rate, args.batch)
    sent = messages = 0
    invalid: list[tuple[int, InvalidEvent]] = []
    started = time.monotonic()
    handle: IO[bytes] = sys.stdin.buffer if args.file == "-" else Path(args.file).open("rb")  # noqa: SIM115
    total = None if args.file == "-" else Path(args.file).stat().st_size
    progress = Progress(
        TextColumn("[bold]replay"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[events]:,} events, {task.fields[rate]:,.0f}/s, {task.fields[bad]} invalid"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    try:
        with (
            progress,
            KafkaEventPublisher(
                settings.kafka_bootstrap_servers,
                settings.topics,
                settings.topic_partitions,
                max_batch=args.batch,
                security=settings.kafka_security,
            ) as publisher,
        ):
            task = progress.add_task("replay", total=total, events=0, rate=0.0, bad=0)
            for first, lines, size in numbered_steps(handle, step):
                events, bad = read_ndjson(lines)
                if events:
                    wait = pacer.delay_s(max(event.occurred_at_ms for event in events), len(events))
                    if wait > 0:
                        time.sleep(wait)
                    messages += publisher.send(events)
                    sent += len(events)
                if bad:
                    publisher.send_dlq(
                        dlq_record(exc.reason, str(exc), raw, {"file": args.file, "line": first - 1 + number})
                        for number, exc, raw in bad
                    )
                    invalid.extend((first - 1 + number, exc) for number, exc, _ in bad)
                elapsed = max(time.monotonic() - started, 1e-9)
                progress.update(task, advance=size, events=sent, rate=sent / elapsed, bad=len(invalid))
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()
    for number, exc in invalid:
        print(f"{args.file}:{number}: {exc.reason}: {exc}", file=sys.stderr)
    elapsed = max(time.monotonic() - started, 1e-9)
    print(
        f"replayed {sent} events in {messages} messages in {elapsed:.1f}s ({sent / elapsed:,.0f} events/s); "
        f"{len(invalid)} invalid line(s) to the DLQ"
    )
    return 1 if invalid else 0
