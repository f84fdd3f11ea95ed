"""The canonical interaction event: model, decoding and validation.

``schemas/events/interaction.v1.json`` is the single source of truth. The checks below read their
limits (required fields, the type enum, lengths, the platform pattern) from that file at import, and
``tests/unit/test_schema_contract.py`` runs the schema itself (compiled with fastjsonschema) against
this decoder on every example and on generated documents, so the two cannot drift apart.

Hand-written checks instead of a generic validator on the hot path: a worker decodes every event, and
these run in about a microsecond where a compiled schema validator takes several.

A Kafka message value is one event object or a JSON array of them (a *batch envelope*, which the
ingest service and ``engage send`` produce so that per-message overhead is paid once per batch).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final

import orjson

from streams.errors import InvalidEvent, MalformedPayload, SchemaViolation


def schema_dir() -> Path:
    """Where the schemas are: ``streams/schemas`` in an installed wheel (``setup.py`` copies ``schemas/``
    there when it builds one), else ``schemas/`` beside the package (a checkout, an editable install)."""
    package = Path(str(resources.files("streams")))
    bundled = package / "schemas"
    return bundled if bundled.is_dir() else package.parent / "schemas"


def cluster_migrations_dir() -> Path:
    """The ClickHouse cluster DDL: ``deploy/clickhouse/cluster`` in a checkout, bundled in a wheel."""
    bundled = schema_dir() / "clickhouse-cluster"
    return bundled if bundled.is_dir() else schema_dir().parent / "deploy" / "clickhouse" / "cluster"


def load_schema(name: str = "interaction.v1.json") -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((schema_dir() / "events" / name).read_bytes())
    return data


_SCHEMA: Final = load_schema()
_PROPS: Final[dict[str, Any]] = _SCHEMA["properties"]
REQUIRED: Final[tuple[str, ...]] = tuple(_SCHEMA["required"])
EVENT_TYPES: Final[frozenset[str]] = frozenset(_PROPS["type"]["enum"])
POST_TYPES: Final[frozenset[str]] = frozenset(_SCHEMA["allOf"][0]["if"]["properties"]["type"]["enum"])
_PLATFORM_RE: Final = re.compile(_PROPS["platform"]["pattern"])
_TS_STRING, _TS_INT = _PROPS["occurred_at"]["oneOf"]
_TS_RE: Final = re.compile(_TS_STRING["pattern"])
_TS_MAX: Final[int] = _TS_INT["maximum"]
_ID_FIELDS: Final = ("event_id", "account_id", "actor_id")
_MAX_LEN: Final[dict[str, int]] = {
    name: _PROPS[name]["maxLength"] for name in (*_ID_FIELDS, "post_id", "text")
}


@dataclass(slots=True, unsafe_hash=True)
class Interaction:
    """One canonical interaction. ``occurred_at_ms`` is event time in UTC epoch milliseconds.

    Treat it as immutable. It is not declared ``frozen`` because a frozen dataclass builds itself
    through ``object.__setattr__`` once per field, several times the cost of a plain one (README,
    "Performance"), and the worker builds one per event. Equality and hashing are those of a frozen one.
    """

    event_id: str
    type: str
    platform: str
    account_id: str
    actor_id: str
    post_id: str | None
    text: str | None
    occurred_at_ms: int

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON object (``occurred_at`` as epoch milliseconds)."""
        return {
            "event_id": self.event_id,
            "type": self.type,
            "platform": self.platform,
            "account_id": self.account_id,
            "actor_id": self.actor_id,
            "post_id": self.post_id,
            "text": self.text,
            "occurred_at": self.occurred_at_ms,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @property
    def partition_key(self) -> bytes:
        """The Kafka key: the actor, so all of a pair's events meet on one partition (see agents)."""
        return self.actor_id.encode()


def parse_timestamp_ms(value: object) -> int:
    """RFC 3339 with an offset, or integer epoch milliseconds → epoch milliseconds."""
    if type(value) is int:
        if 0 <= value <= _TS_MAX:
            return value
        raise SchemaViolation(f"occurred_at: epoch milliseconds out of range: {value}", field="occurred_at")
    if isinstance(value, str):
        if not _TS_RE.match(value):
            raise SchemaViolation(
                f"occurred_at: not an RFC 3339 timestamp with offset: {value[:64]!r}", field="occurred_at"
            )
        try:
            parsed = datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError as exc:
            raise SchemaViolation(f"occurred_at: {exc}", field="occurred_at") from None
        ms = int(parsed.timestamp() * 1000 + (0.5 if parsed.timestamp() >= 0 else -0.5))
        # The string form must land in the integer form's range: the event is carried on as epoch
        # milliseconds, and a consumer decoding those would reject what the edge accepted.
        if not 0 <= ms <= _TS_MAX:
            raise SchemaViolation(
                f"occurred_at: {value[:64]!r} is outside 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z",
                field="occurred_at",
            )
        return ms
    raise SchemaViolation(
        f"occurred_at: must be an RFC 3339 string or integer epoch milliseconds, got {type(value).__name__}",
        field="occurred_at",
    )


def _string(obj: dict[str, Any], name: str, *, nullable: bool = False) -> str | None:
    value = obj.get(name)
    if value is None:
        if nullable:
            return None
        raise SchemaViolation(f"{name}: required", field=name)
    if type(value) is not str:
        raise SchemaViolation(f"{name}: must be a string, got {type(value).__name__}", field=name)
    if len(value) > _MAX_LEN[name]:
        raise SchemaViolation(f"{name}: longer than {_MAX_LEN[name]} characters", field=name)
    if not value and name != "text":
        raise SchemaViolation(f"{name}: must not be empty", field=name)
    return value


_MAX_ID, _MAX_ACCOUNT, _MAX_ACTOR = _MAX_LEN["event_id"], _MAX_LEN["account_id"], _MAX_LEN["actor_id"]
_MAX_POST, _MAX_TEXT = _MAX_LEN["post_id"], _MAX_LEN["text"]
# Platforms already seen to match the pattern (a handful in practice; bounded anyway).
_VALID_PLATFORMS: set[str] = set()


def decode_object(obj: object) -> Interaction:
    """Validate one parsed JSON value against the schema and build an :class:`Interaction`.

    The first branch is the common case checked in one expression (an integer timestamp, a platform
    seen before); anything else, valid or not, goes through :func:`_decode_checked`, which accepts
    exactly the same documents and names the offending field; the fast path is an order of magnitude
    cheaper (README, "Performance"). Subscripts, not ``dict.get`` calls (cheaper still): our producers
    write every key, and a document without an optional one takes the checked path.
    """
    if type(obj) is dict:
        try:
            event_id, event_type, platform = obj["event_id"], obj["type"], obj["platform"]
            account_id, actor_id, post_id = obj["account_id"], obj["actor_id"], obj["post_id"]
            text, at = obj["text"], obj["occurred_at"]
        except KeyError:
            return _decode_checked(obj)
        if (
            type(event_id) is str
            and 0 < len(event_id) <= _MAX_ID
            and type(event_type) is str
            and event_type in EVENT_TYPES
            and type(platform) is str
            and platform in _VALID_PLATFORMS
            and type(account_id) is str
            and 0 < len(account_id) <= _MAX_ACCOUNT
            and type(actor_id) is str
            and 0 < len(actor_id) <= _MAX_ACTOR
            and (
                (type(post_id) is str and 0 < len(post_id) <= _MAX_POST)
                or (post_id is None and event_type not in POST_TYPES)
            )
            and (text is None or (type(text) is str and len(text) <= _MAX_TEXT))
            and type(at) is int
            and 0 <= at <= _TS_MAX
        ):
            return Interaction(event_id, event_type, platform, account_id, actor_id, post_id, text, at)
    return _decode_checked(obj)


def _decode_checked(obj: object) -> Interaction:
    if type(obj) is not dict:
        raise SchemaViolation(f"event must be a JSON object, got {type(obj).__name__}", field="$")
    for name in REQUIRED:
        if name not in obj:
            raise SchemaViolation(f"{name}: required", field=name)
    event_type = obj["type"]
    if type(event_type) is not str or event_type not in EVENT_TYPES:
        raise SchemaViolation(
            f"type: must be one of {', '.join(sorted(EVENT_TYPES))}, got {str(event_type)[:32]!r}",
            field="type",
        )
    platform = obj["platform"]
    if type(platform) is not str or not _PLATFORM_RE.match(platform):
        raise SchemaViolation(f"platform: must match {_PLATFORM_RE.pattern}", field="platform")
    if len(_VALID_PLATFORMS) < 1024:
        _VALID_PLATFORMS.add(platform)
    event_id = _string(obj, "event_id")
    account_id = _string(obj, "account_id")
    actor_id = _string(obj, "actor_id")
    post_id = _string(obj, "post_id", nullable=event_type not in POST_TYPES)
    text = _string(obj, "text", nullable=True)
    occurred_at_ms = parse_timestamp_ms(obj["occurred_at"])
    assert event_id is not None and account_id is not None and actor_id is not None
    return Interaction(event_id, event_type, platform, account_id, actor_id, post_id, text, occurred_at_ms)


def parse_json(raw: bytes | str) -> Any:
    """orjson with the error turned into :class:`MalformedPayload` carrying the parse position."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedPayload(f"not JSON: {exc}", field="$") from None


def decode_event(raw: bytes | str) -> Interaction:
    """Exactly one canonical event from JSON bytes."""
    return decode_object(parse_json(raw))


@dataclass(slots=True, frozen=True)
class Rejected:
    """An element of a message that failed validation, kept with its original bytes for the DLQ."""

    error: InvalidEvent
    raw: bytes


def iter_message(raw: bytes) -> Iterator[Interaction | Rejected]:
    """Every event of one Kafka message value: a single object or a batch envelope (JSON array).

    Invalid elements are yielded as :class:`Rejected` (with the element re-encoded) so one bad event
    does not poison the rest of its batch.
    """
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        yield Rejected(MalformedPayload(f"not JSON: {exc}", field="$"), raw)
        return
    items = parsed if type(parsed) is list else (parsed,)
    for item in items:
        try:
            yield decode_object(item)
        except InvalidEvent as exc:
            yield Rejected(exc, raw if items is not parsed else orjson.dumps(item))


def decode_message(raw: bytes) -> tuple[list[Interaction], list[Rejected]]:
    """:func:`iter_message` as two lists, valid events and rejected elements, in message order.

    The common case (every element valid) is one list comprehension; a message with an invalid
    element is decoded again element by element, so the result is the same as :func:`iter_message`'s.
    """
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return [], [item for item in iter_message(raw) if type(item) is Rejected]
    try:
        if type(parsed) is list:
            return [decode_object(item) for item in parsed], []
        return [decode_object(parsed)], []
    except InvalidEvent:
        valid: list[Interaction] = []
        rejected: list[Rejected] = []
        for item in iter_message(raw):
            if type(item) is Rejected:
                rejected.append(item)
            else:
                valid.append(item)  # type: ignore[arg-type]
        return valid, rejected


def encode_batch(events: list[Interaction]) -> bytes:
    """A batch envelope: the canonical JSON array of ``events``."""
    return orjson.dumps([event.to_dict() for event in events])
