"""Dead letters, written and read back: the record format, then parse, select, summarise and plan a
re-drive (pure; ``engage dlq``).

A record on ``interactions.dlq`` (``schemas/events/dead_letter.v1.json``, made by :func:`dlq_record`)
says why (``reason``, ``detail``), where from (``source``: a topic/partition/offset from the worker, a
file/line from ``engage send``/``replay``, a platform from the webhook service) and carries the original
bytes. Nothing here touches Kafka: the writers produce the bytes, and the command reads the topic
(``streams/dlq_topic.py``) and hands the messages in.

**Re-driving and the dedup horizon.** A re-driven event keeps its ``event_id``. The worker drops a copy of
an event it already counted while the copy is within the allowed lateness of its watermark (exactly for
comments and shares, by hash for likes and follows), and refuses anything older as ``late`` — so a
re-drive never counts an event twice, but an event older than the horizon is not counted at all: it comes
straight back to the dead-letter topic. :func:`plan_redrive` sorts events into *ready* and *beyond the
horizon* against the newest event time on the interaction topics (the watermark can be no further), so
the command can say so before it sends anything.
"""

from __future__ import annotations

import base64
import functools
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import fastjsonschema
import orjson

from streams.errors import InvalidEvent, MalformedPayload
from streams.events import Interaction, Rejected, iter_message, load_schema

SCHEMA = "dead_letter.v1.json"


def dlq_record(reason: str, detail: str, raw: bytes, source: dict[str, Any] | None = None) -> bytes:
    """The dead-letter message: why, where from, and the original bytes (UTF-8 text when possible)."""
    try:
        original: Any = raw.decode()
        encoding = "utf-8"
    except UnicodeDecodeError:
        original, encoding = base64.b64encode(raw).decode(), "base64"
    return orjson.dumps(
        {
            "reason": reason,
            "detail": detail[:1000],
            "source": source or {},
            "original": original,
            "original_encoding": encoding,
        }
    )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message of the dead-letter topic, parsed."""

    partition: int  # of the dead-letter topic
    offset: int
    timestamp_ms: int  # Kafka timestamp of the dead-letter message: when it was dead-lettered
    reason: str
    detail: str
    source: dict[str, Any]
    original: bytes

    @property
    def ref(self) -> str:
        """How ``engage dlq show`` and ``--ref`` name it: ``partition:offset`` of the dead-letter topic."""
        return f"{self.partition}:{self.offset}"

    @property
    def source_topic(self) -> str:
        """The topic it was read from; ``file:NAME`` (send/replay) or ``webhook:SOURCE`` (ingest)."""
        if "topic" in self.source:
            return str(self.source["topic"])
        if "file" in self.source:
            return f"file:{self.source['file']}"
        if "source" in self.source or "platform" in self.source:
            return f"webhook:{self.source.get('source') or self.source.get('platform')}"
        return "-"

    @property
    def platform(self) -> str:
        """The platform the webhook service received it from, else the one the event names, else ``-``."""
        if isinstance(self.source.get("platform"), str):
            return str(self.source["platform"])
        try:
            parsed = orjson.loads(self.original)
        except orjson.JSONDecodeError:
            return "-"
        if isinstance(parsed, dict) and isinstance(parsed.get("platform"), str):
            return str(parsed["platform"])[:32]
        return "-"


def parse_dead_letter(partition: int, offset: int, timestamp_ms: int, value: bytes) -> DeadLetter:
    """A dead-letter message → :class:`DeadLetter`; :class:`MalformedPayload` if it breaks the schema."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise MalformedPayload(f"dead letter {partition}:{offset} is not JSON: {exc}") from None
    try:
        _validator()(doc)
    except fastjsonschema.JsonSchemaException as exc:
        raise MalformedPayload(f"dead letter {partition}:{offset}: {exc}") from None
    original: str = doc["original"]
    raw = original.encode() if doc["original_encoding"] == "utf-8" else base64.b64decode(original)
    return DeadLetter(partition, offset, timestamp_ms, doc["reason"], doc["detail"], doc["source"], raw)


@functools.cache
def _validator() -> Callable[[Any], Any]:
    # The schema file is the contract; fastjsonschema implements draft 7, whose keywords used here
    # mean the same as in 2020-12.
    schema = {**load_schema(SCHEMA), "$schema": "http://json-schema.org/draft-07/schema#"}
    validate: Callable[[Any], Any] = fastjsonschema.compile(schema)
    return validate


@dataclass(frozen=True)
class Selection:
    """Which dead letters a command acts on; an empty field does not filter."""

    reasons: frozenset[str] = frozenset()
    source_topics: frozenset[str] = frozenset()
    platforms: frozenset[str] = frozenset()
    since_ms: int | None = None  # dead-lettered at or after
    until_ms: int | None = None  # dead-lettered before
    refs: frozenset[str] = frozenset()
    topic_prefix: str = ""  # ``interactions.like`` also matches ``<prefix>interactions.like``

    def matches(self, letter: DeadLetter) -> bool:
        if self.reasons and letter.reason not in self.reasons:
            return False
        if self.source_topics:
            topic = letter.source_topic
            short = (
                topic[len(self.topic_prefix) :]
                if self.topic_prefix and topic.startswith(self.topic_prefix)
                else topic
            )
            if topic not in self.source_topics and short not in self.source_topics:
                return False
        if self.platforms and letter.platform not in self.platforms:
            return False
        if self.since_ms is not None and letter.timestamp_ms < self.since_ms:
            return False
        if self.until_ms is not None and letter.timestamp_ms >= self.until_ms:
            return False
        return not self.refs or letter.ref in self.refs

    @property
    def is_empty(self) -> bool:
        return (
            not (self.reasons or self.source_topics or self.platforms or self.refs)
            and self.since_ms is None
            and self.until_ms is None
        )


@dataclass(frozen=True)
class Summary:
    total: int
    by_reason: dict[str, int]
    by_source_topic: dict[str, int]
    by_platform: dict[str, int]
    first_ms: int | None
    last_ms: int | None


def summarise(letters: Iterable[DeadLetter]) -> Summary:
    """Counts by reason, source topic and platform (largest first), and the time range."""
    reasons: Counter[str] = Counter()
    topics: Counter[str] = Counter()
    platforms: Counter[str] = Counter()
    times: list[int] = []
    for letter in letters:
        reasons[letter.reason] += 1
        topics[letter.source_topic] += 1
        platforms[letter.platform] += 1
        times.append(letter.timestamp_ms)
    return Summary(
        total=len(times),
        by_reason=dict(reasons.most_common()),
        by_source_topic=dict(topics.most_common()),
        by_platform=dict(platforms.most_common()),
        first_ms=min(times) if times else None,
        last_ms=max(times) if times else None,
    )


@dataclass
class RedrivePlan:
    """What a re-drive would do with each event it was given."""

    ready: list[Interaction] = field(default_factory=list)  # valid, within the horizon: sent
    beyond_horizon: list[Interaction] = field(default_factory=list)  # valid but would be late again
    invalid: list[tuple[str, InvalidEvent]] = field(default_factory=list)  # (label, why): still invalid
    repeated: int = 0  # the same event_id more than once in the selection: sent once
    horizon_ms: int | None = None  # events at or after this are within the dedup horizon


def plan_redrive(
    originals: Iterable[tuple[str, bytes]], *, newest_event_ms: int | None, allowed_lateness_ms: int
) -> RedrivePlan:
    """Re-validate ``(label, original bytes)`` pairs and sort the events by what the worker will do.

    ``newest_event_ms`` is the newest event time on the interaction topics (None: they are empty). The
    worker's watermark is at most that, so an event older than it minus the allowed lateness is late
    once the worker has caught up: it would not be counted (nor counted twice), only dead-lettered again.
    """
    horizon = None if newest_event_ms is None else newest_event_ms - allowed_lateness_ms
    plan = RedrivePlan(horizon_ms=horizon)
    seen: set[str] = set()
    for label, raw in originals:
        for item in iter_message(raw):
            if isinstance(item, Rejected):
                plan.invalid.append((label, item.error))
                continue
            if item.event_id in seen:
                plan.repeated += 1
                continue
            seen.add(item.event_id)
            if horizon is not None and item.occurred_at_ms < horizon:
                plan.beyond_horizon.append(item)
            else:
                plan.ready.append(item)
    return plan


def export_lines(letter: DeadLetter) -> list[bytes]:
    """The original as NDJSON lines to fix by hand: one per event of an envelope, as is otherwise.

    An original that is not JSON is exported as a JSON string, so the file stays one document per line
    and the person fixing it sees what arrived.
    """
    try:
        parsed = orjson.loads(letter.original)
    except orjson.JSONDecodeError:
        return [orjson.dumps(letter.original.decode(errors="replace"))]
    items = parsed if isinstance(parsed, list) else [parsed]
    return [orjson.dumps(item) for item in items]
