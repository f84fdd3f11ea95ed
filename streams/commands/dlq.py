"""``engage dlq``: inspect dead letters, and send them back once their cause is fixed.

Sub-commands: ``summary``, ``list``, ``show REF``, ``export`` (the originals as NDJSON, to fix by hand)
and ``redrive`` (re-validate, then produce to the interaction topics with their event ids). The pure
part is :mod:`streams.deadletters`; this module reads the topic and prints.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from streams.commands.report import parse_since
from streams.deadletters import (
    DeadLetter,
    Selection,
    export_lines,
    parse_dead_letter,
    plan_redrive,
    summarise,
)
from streams.errors import ConfigError, InvalidEvent
from streams.settings import Settings

_EPILOG = """\
REF is partition:offset on the dead-letter topic, as `engage dlq list` prints it.

A typical session:
  engage dlq summary                         # how many, why, from where
  engage dlq list --reason schema            # which ones
  engage dlq show 0:42                       # one of them, with the bytes that arrived
  engage dlq export --reason schema --out fix.ndjson
  (edit fix.ndjson)
  engage dlq redrive --file fix.ndjson       # validated again, then sent with their event ids
  engage dlq redrive --reason late           # or: send the originals as they are, once the cause is fixed

Re-driving is safe to repeat: events keep their event_id, and the worker drops a copy of an event it has
already counted, as long as the event is within the allowed lateness (ENGAGE_ALLOWED_LATENESS) of the
newest event time. An older event would be refused as late again, so it is not sent unless you pass
--include-late; the command tells you how many there are.
"""


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", action="append", default=[], help="only this reason (repeatable)")
    parser.add_argument(
        "--topic", action="append", default=[], help="only from this source topic, e.g. interactions.like"
    )
    parser.add_argument("--platform", action="append", default=[], help="only this platform (repeatable)")
    parser.add_argument("--since", help="dead-lettered since: 24h, 7d or an ISO date/time (UTC)")
    parser.add_argument("--until", help="dead-lettered before: 1h (ago) or an ISO date/time (UTC)")
    parser.add_argument("--ref", action="append", default=[], help="only this dead letter, partition:offset")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "dlq",
        help="inspect dead-lettered events and send them back once fixed",
        description="Inspect the events the pipeline refused (the dead-letter topic) and re-drive them.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")

    summary = verbs.add_parser("summary", help="count dead letters by reason, source topic and platform")
    _add_filters(summary)
    summary.add_argument("--json", action="store_true", help="print JSON")

    listing = verbs.add_parser("list", help="one line per dead letter, newest last")
    _add_filters(listing)
    listing.add_argument("--limit", type=int, default=50, help="show at most the newest N (0: all)")
    listing.add_argument("--json", action="store_true", help="print JSON lines")

    show = verbs.add_parser("show", help="one dead letter: why, where from, and the original bytes")
    show.add_argument("ref", help="partition:offset on the dead-letter topic")
    show.add_argument("--raw", action="store_true", help="write only the original bytes, exactly")

    export = verbs.add_parser("export", help="write the selected originals as NDJSON, to fix by hand")
    _add_filters(export)
    export.add_argument("--out", default="-", help="file to write ('-': stdout)")

    redrive = verbs.add_parser(
        "redrive", help="validate again and send to the interaction topics, event ids kept"
    )
    _add_filters(redrive)
    redrive.add_argument("--file", help="send the fixed events of this NDJSON file instead of the originals")
    redrive.add_argument("--all", action="store_true", help="re-drive every dead letter (no filter given)")
    redrive.add_argument(
        "--include-late",
        action="store_true",
        help="also send events older than the dedup horizon (the worker will dead-letter them as late)",
    )
    redrive.add_argument("--dry-run", action="store_true", help="say what would be sent, send nothing")
    parser.set_defaults(func=run)


def selection(args: argparse.Namespace, settings: Settings, now_ms: int) -> Selection:
    return Selection(
        reasons=frozenset(args.reason),
        source_topics=frozenset(args.topic),
        platforms=frozenset(args.platform),
        since_ms=None if args.since is None else parse_since(args.since, now_ms),
        until_ms=None if args.until is None else parse_since(args.until, now_ms),
        refs=frozenset(args.ref),
        topic_prefix=settings.topic_prefix,
    )


def read_dead_letters(settings: Settings) -> tuple[list[DeadLetter], int]:
    """Every dead letter on the topic, and how many messages there were that are not dead letters."""
    from streams.dlq_topic import read_topic

    letters: list[DeadLetter] = []
    unreadable = 0
    for message in read_topic(
        settings.kafka_bootstrap_servers, settings.topics.dlq, security=settings.kafka_security
    ):
        try:
            letters.append(
                parse_dead_letter(message.partition, message.offset, message.timestamp_ms, message.value)
            )
        except InvalidEvent:
            unreadable += 1
    return letters, unreadable


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _print_json(document: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


def _letter_dict(letter: DeadLetter) -> dict[str, Any]:
    return {
        "ref": letter.ref,
        "dead_lettered_at": _when(letter.timestamp_ms),
        "reason": letter.reason,
        "detail": letter.detail,
        "source_topic": letter.source_topic,
        "platform": letter.platform,
        "source": letter.source,
    }


def run(args: argparse.Namespace, settings: Settings, clock: Callable[[], float] = time.time) -> int:
    if settings.embedded_kafka:
        raise ConfigError("set KAFKA_BOOTSTRAP_SERVERS (printed by `engage broker` or `engage demo`)")
    command = args.dlq_command
    if command == "show":
        return _show(args, settings)
    chosen = selection(args, settings, int(clock() * 1000))
    if command == "redrive" and args.file:
        return _redrive_file(args, settings)
    if command == "redrive" and chosen.is_empty and not args.all:
        raise ConfigError("redrive: choose dead letters (--reason, --topic, --ref, ...) or pass --all")
    letters, unreadable = read_dead_letters(settings)
    picked = [letter for letter in letters if chosen.matches(letter)]
    if unreadable:
        print(
            f"note: {unreadable} message(s) on {settings.topics.dlq} are not dead-letter records",
            file=sys.stderr,
        )
    if command == "summary":
        return _summary(args, picked, len(letters))
    if command == "list":
        shown = picked[-args.limit :] if args.limit > 0 else picked
        if args.json:
            for letter in shown:
                sys.stdout.buffer.write(orjson.dumps(_letter_dict(letter)) + b"\n")
            sys.stdout.flush()
        else:
            for letter in shown:
                print(
                    f"{letter.ref:>10}  {_when(letter.timestamp_ms)}  {letter.reason:<12} "
                    f"{letter.source_topic:<28} {letter.platform:<10} {letter.detail[:80]}"
                )
            print(f"{len(shown)} shown of {len(picked)} selected ({len(letters)} on {settings.topics.dlq})")
        return 0
    if command == "export":
        return _export(args, picked)
    platform_payloads = {letter.ref for letter in picked if letter.source_topic.startswith("webhook:")}
    return _redrive(args, settings, [(letter.ref, letter.original) for letter in picked], platform_payloads)


def _summary(args: argparse.Namespace, picked: list[DeadLetter], total: int) -> int:
    summary = summarise(picked)
    if args.json:
        _print_json({**summary.__dict__, "on_topic": total})
        return 0
    print(
        f"{summary.total} dead letter(s) selected of {total}, "
        f"dead-lettered {_when(summary.first_ms)} .. {_when(summary.last_ms)}"
    )
    for title, counts in (
        ("by reason", summary.by_reason),
        ("by source topic", summary.by_source_topic),
        ("by platform", summary.by_platform),
    ):
        print(f"{title}:")
        for name, count in counts.items():
            print(f"  {count:>8,}  {name}")
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    letters, _ = read_dead_letters(settings)
    found = [letter for letter in letters if letter.ref == args.ref]
    if not found:
        print(f"engage dlq: no dead letter {args.ref} on {settings.topics.dlq}", file=sys.stderr)
        return 1
    letter = found[0]
    if args.raw:
        sys.stdout.buffer.write(letter.original)
        sys.stdout.flush()
        return 0
    for name, value in _letter_dict(letter).items():
        print(f"{name:>16}: {value if not isinstance(value, dict) else orjson.dumps(value).decode()}")
    print(f"{'original':>16}: ({len(letter.original)} bytes)")
    print(letter.original.decode(errors="backslashreplace"))
    return 0


def _export(args: argparse.Namespace, picked: list[DeadLetter]) -> int:
    lines = [line for letter in picked for line in export_lines(letter)]
    payload = b"".join(line + b"\n" for line in lines)
    if args.out == "-":
        sys.stdout.buffer.write(payload)
        sys.stdout.flush()
    else:
        Path(args.out).write_bytes(payload)
        print(f"wrote {len(lines)} event(s) from {len(picked)} dead letter(s) to {args.out}", file=sys.stderr)
    return 0


def _redrive_file(args: argparse.Namespace, settings: Settings) -> int:
    with Path(args.file).open("rb") as handle:
        originals = [
            (f"{args.file}:{number}", line.rstrip(b"\n"))
            for number, line in enumerate(handle, start=1)
            if line.strip()
        ]
    return _redrive(args, settings, originals)


def _redrive(
    args: argparse.Namespace,
    settings: Settings,
    originals: list[tuple[str, bytes]],
    platform_payloads: frozenset[str] | set[str] = frozenset(),
) -> int:
    from streams.dlq_topic import newest_event_ms

    newest = newest_event_ms(
        settings.kafka_bootstrap_servers, settings.topics.interactions, security=settings.kafka_security
    )
    plan = plan_redrive(originals, newest_event_ms=newest, allowed_lateness_ms=settings.allowed_lateness_ms)
    for label, error in plan.invalid:
        hint = ""
        if label in platform_payloads:
            # The webhook service dead-letters what it could not map: a platform's payload, not an event.
            hint = " (a platform's webhook payload: post it to the webhook again once the adapter is fixed)"
        print(f"{label}: still invalid, not sent: {error.reason}: {error}{hint}", file=sys.stderr)
    to_send = plan.ready + (plan.beyond_horizon if args.include_late else [])
    if plan.beyond_horizon:
        print(
            f"{len(plan.beyond_horizon)} event(s) are older than the dedup horizon "
            f"({_when(plan.horizon_ms)}: the newest event time minus ENGAGE_ALLOWED_LATENESS). The worker "
            "cannot tell whether they were counted before and refuses them as late: "
            + (
                "sent anyway, they will come back to the dead-letter topic."
                if args.include_late
                else "not sent."
            ),
            file=sys.stderr,
        )
    if plan.repeated:
        print(f"{plan.repeated} repeated event id(s) in the selection: each sent once", file=sys.stderr)
    verb = "would send" if args.dry_run else "sent"
    if to_send and not args.dry_run:
        from streams import topics
        from streams.producer import KafkaEventPublisher

        topics.prepare(settings, settings.kafka_bootstrap_servers)  # routed by ENGAGE_TOPIC_PARTITIONS

        with KafkaEventPublisher(
            settings.kafka_bootstrap_servers,
            settings.topics,
            settings.topic_partitions,
            security=settings.kafka_security,
        ) as publisher:
            publisher.send(to_send)
    print(
        f"{verb} {len(to_send)} event(s) with their original event ids; a copy of one already counted is "
        f"dropped by the worker. {len(plan.invalid)} still invalid, {len(plan.beyond_horizon)} beyond the "
        "dedup horizon."
    )
    return 1 if plan.invalid else 0
