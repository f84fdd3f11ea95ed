"""``engage generate --events N --out FILE.ndjson``: write a generated stream of canonical events.

Presets: ``bench`` (issue 4's mix, generic platform) and ``demo`` (every platform, a scheduled
engagement drop). The same preset, seed and start give the same file, line for line.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from streams.demo.generator import GeneratorConfig, TrafficGenerator
from streams.errors import ConfigError
from streams.events import parse_timestamp_ms
from streams.settings import Settings

_CHUNK = 20_000


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "generate", help="write a realistic generated stream of canonical events as NDJSON"
    )
    parser.add_argument("--events", type=int, required=True, help="how many lines (redeliveries included)")
    parser.add_argument("--out", required=True, help="output file ('-' for stdout)")
    parser.add_argument("--preset", choices=("bench", "demo"), default="bench")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--start",
        default=None,
        help="event time of the first event: RFC 3339, epoch ms or 'now' (default: the preset's own)",
    )
    parser.set_defaults(func=run)


def config_for(preset: str, seed: int, start: str | None, now_ms: int) -> GeneratorConfig:
    config = GeneratorConfig.demo(seed) if preset == "demo" else GeneratorConfig.bench(seed)
    if start is None:
        return config
    if start == "now":
        return replace(config, start_ms=now_ms)
    try:
        start_ms = parse_timestamp_ms(int(start) if start.isdigit() else start)
    except Exception as exc:
        raise ConfigError(f"--start: {exc}") from None
    return replace(config, start_ms=start_ms)


def write_ndjson(generator: TrafficGenerator, count: int, handle: Any) -> int:
    events = itertools.islice(generator, count)
    written = 0
    while chunk := list(itertools.islice(events, _CHUNK)):
        handle.write(
            b"".join(orjson.dumps(event.to_dict(), option=orjson.OPT_APPEND_NEWLINE) for event in chunk)
        )
        written += len(chunk)
    return written


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.events < 0:
        raise ConfigError("--events must not be negative")
    config = config_for(args.preset, args.seed, args.start, int(time.time() * 1000))
    generator = TrafficGenerator(config)
    started = time.perf_counter()
    if args.out == "-":
        written = write_ndjson(generator, args.events, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        with Path(args.out).open("wb") as handle:
            written = write_ndjson(generator, args.events, handle)
    elapsed = time.perf_counter() - started
    print(
        f"wrote {written} events ({args.preset} preset, seed {args.seed}) to {args.out} "
        f"in {elapsed:.1f}s ({written / max(elapsed, 1e-9):,.0f} events/s)",
        file=sys.stderr,
    )
    return 0
