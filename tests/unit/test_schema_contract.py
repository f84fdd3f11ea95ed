"""The schema file is the source of truth: the hand-written decoder must agree with it exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastjsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.errors import InvalidEvent
from streams.events import decode_object, load_schema

_SCHEMA = load_schema()
# fastjsonschema implements drafts 4/6/7; the keywords this schema uses mean the same there.
_COMPILED = fastjsonschema.compile(
    {**_SCHEMA, "$schema": "http://json-schema.org/draft-07/schema#"}, formats={"date-time": lambda s: True}
)
EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "events" / "examples"


def _schema_accepts(doc: Any) -> bool:
    try:
        _COMPILED(doc)
        return True
    except fastjsonschema.JsonSchemaException:
        return False


def _decoder_accepts(doc: Any) -> bool:
    try:
        decode_object(doc)
        return True
    except InvalidEvent:
        return False


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*/*.json")), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_examples_agree_with_schema(path: Path) -> None:
    doc = orjson.loads(path.read_bytes())
    expected = path.parent.name == "valid"
    assert _schema_accepts(doc) is expected
    assert _decoder_accepts(doc) is expected


_BASE = orjson.loads((EXAMPLES / "valid" / "comment_rfc3339.json").read_bytes())
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=2**60),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.sampled_from(
        [
            "like",
            "comment",
            "share",
            "follow",
            "unfollow",
            "x",
            "instagram",
            "2026-11-22T10:15:00Z",
            "2026-11-22T10:15:00+05:30",
            "Bad Platform",
        ]
    ),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(
    changes=st.dictionaries(st.sampled_from(sorted(_BASE)), _values, max_size=3),
    drop=st.sets(st.sampled_from(sorted(_BASE)), max_size=2),
)
def test_decoder_and_schema_agree_on_mutated_documents(changes: dict[str, Any], drop: set[str]) -> None:
    doc = {k: v for k, v in {**_BASE, **changes}.items() if k not in drop}
    # Timestamps that match the pattern but name an impossible date are the one place the decoder is
    # stricter than the schema's pattern (format assertions are optional in JSON Schema).
    schema = _schema_accepts(doc)
    decoder = _decoder_accepts(doc)
    if schema and not decoder:
        with pytest.raises(InvalidEvent) as info:
            decode_object(doc)
        assert info.value.field == "occurred_at"
    else:
        assert schema is decoder, doc
