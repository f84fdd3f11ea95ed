from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.errors import InvalidEvent, MalformedPayload, SchemaViolation
from streams.events import (
    Interaction,
    Rejected,
    decode_event,
    decode_message,
    decode_object,
    encode_batch,
    iter_message,
    parse_timestamp_ms,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "events" / "examples"
VALID = sorted((EXAMPLES / "valid").glob("*.json"))
INVALID = sorted((EXAMPLES / "invalid").glob("*.json"))


def test_there_are_examples() -> None:
    assert len(VALID) >= 5 and len(INVALID) >= 8


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_examples_decode(path: Path) -> None:
    event = decode_event(path.read_bytes())
    raw = orjson.loads(path.read_bytes())
    assert event.event_id == raw["event_id"]
    assert event.type == raw["type"]
    assert event.occurred_at_ms == parse_timestamp_ms(raw["occurred_at"])
    # Round trip through the canonical encoding is lossless.
    assert decode_event(event.to_json()) == event


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_examples_are_rejected_naming_the_field(path: Path) -> None:
    expected_field = path.stem.split("__")[0]
    with pytest.raises(InvalidEvent) as info:
        decode_event(path.read_bytes())
    if expected_field == "root":
        assert info.value.field == "$"
    else:
        assert info.value.field == expected_field
        assert expected_field in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [
        ("2026-11-22T10:15:00Z", 1795342500000),
        ("2026-11-22T11:15:00+01:00", 1795342500000),
        ("2026-11-22T10:15:00.123Z", 1795342500123),
        ("2026-11-22t10:15:00z", 1795342500000),
        (1795342500000, 1795342500000),
        (0, 0),
    ],
)
def test_timestamps(text: str | int, expected_ms: int) -> None:
    assert parse_timestamp_ms(text) == expected_ms


@pytest.mark.parametrize("bad", ["2026-11-22", "yesterday", -1, 1.5, True, None, "2026-13-40T10:15:00Z"])
def test_bad_timestamps(bad: object) -> None:
    with pytest.raises(SchemaViolation) as info:
        parse_timestamp_ms(bad)
    assert info.value.field == "occurred_at"


def test_not_json_carries_the_parse_position() -> None:
    with pytest.raises(MalformedPayload) as info:
        decode_event(b'{"event_id": ')
    assert "line 1 column" in str(info.value) or "char" in str(info.value)


def _event(i: int) -> Interaction:
    return Interaction(f"e{i}", "comment", "generic", "acc", f"a{i}", "p1", "two words", 1_000 + i)


def test_batch_envelope_keeps_good_events_and_rejects_bad_ones_individually() -> None:
    good = [_event(1), _event(2)]
    payload = orjson.loads(encode_batch(good))
    payload.insert(1, {"event_id": "bad", "type": "poke"})
    out = list(iter_message(orjson.dumps(payload)))
    assert [o for o in out if isinstance(o, Interaction)] == good
    (rejected,) = [o for o in out if isinstance(o, Rejected)]
    assert orjson.loads(rejected.raw) == {"event_id": "bad", "type": "poke"}
    assert rejected.error.reason == "schema"


def test_single_object_message_and_garbage() -> None:
    assert list(iter_message(_event(3).to_json())) == [_event(3)]
    (rejected,) = iter_message(b"\xff\xfe garbage")
    assert isinstance(rejected, Rejected) and rejected.raw == b"\xff\xfe garbage"
    assert rejected.error.reason == "malformed"


@pytest.mark.parametrize(
    "raw",
    [
        encode_batch([_event(1), _event(2), _event(3)]),
        orjson.dumps([_event(1).to_dict(), {"event_id": "bad", "type": "poke"}, _event(2).to_dict(), 7]),
        _event(4).to_json(),
        orjson.dumps({"event_id": "bad"}),
        b"\xff\xfe garbage",
        b"[]",
    ],
    ids=["all-valid", "mixed", "single", "single-invalid", "garbage", "empty"],
)
def test_decode_message_agrees_with_iter_message(raw: bytes) -> None:
    valid, rejected = decode_message(raw)
    items = list(iter_message(raw))
    assert valid == [i for i in items if isinstance(i, Interaction)]
    assert [(r.raw, str(r.error), r.error.reason) for r in rejected] == [
        (i.raw, str(i.error), i.error.reason) for i in items if isinstance(i, Rejected)
    ]


def test_optional_keys_may_be_left_out_or_null() -> None:
    full = {
        "event_id": "e1",
        "type": "follow",
        "platform": "x",
        "account_id": "brand",
        "actor_id": "fan",
        "post_id": None,
        "text": None,
        "occurred_at": 1_700_000_000_000,
    }
    short = {k: v for k, v in full.items() if k not in ("post_id", "text")}
    assert decode_object(short) == decode_object(full)
    expected = Interaction("e1", "follow", "x", "brand", "fan", None, None, 1_700_000_000_000)
    assert decode_object(full) == expected
    with pytest.raises(SchemaViolation, match="post_id"):
        decode_object({**short, "type": "like"})
