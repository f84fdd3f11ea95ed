"""The output-topic records agree with their schemas: the examples, and whatever the encoders produce."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engagement.model import Alert, Transition
from streams.engagement.records import alert_to_json, iso_ms, transition_to_json
from streams.events import load_schema

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "events" / "examples"
SCHEMAS = {"alerts": "engagement_alert.v1.json", "flags": "engagement_flag.v1.json"}


def _compile(name: str) -> Any:
    # fastjsonschema implements drafts 4/6/7; the keywords these schemas use mean the same there.
    schema = {**load_schema(name), "$schema": "http://json-schema.org/draft-07/schema#"}
    return fastjsonschema.compile(schema, formats={"date-time": lambda s: True})


VALIDATORS = {folder: _compile(name) for folder, name in SCHEMAS.items()}


def _accepts(folder: str, doc: Any) -> bool:
    try:
        VALIDATORS[folder](doc)
        return True
    except fastjsonschema.JsonSchemaException:
        return False


@pytest.mark.parametrize(
    "path",
    sorted(p for folder in SCHEMAS for p in (EXAMPLES / folder).glob("*/*.json")),
    ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.stem}",
)
def test_examples_agree_with_their_schema(path: Path) -> None:
    assert _accepts(path.parent.parent.name, orjson.loads(path.read_bytes())) is (path.parent.name == "valid")


def test_every_schema_has_valid_and_invalid_examples() -> None:
    for folder in SCHEMAS:
        assert list((EXAMPLES / folder / "valid").glob("*.json"))
        assert list((EXAMPLES / folder / "invalid").glob("*.json"))


_ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40)
_ms = st.integers(0, 253402300799999)
_platforms = st.from_regex(r"\A[a-z0-9][a-z0-9_.-]{0,31}\Z")
_amounts = st.floats(min_value=0, max_value=1e9, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    account=_ids,
    kind=st.sampled_from(["drop", "silence"]),
    state=st.sampled_from(["opened", "resolved"]),
    at=_ms,
    opened=_ms,
    observed=_amounts,
    baseline=_amounts,
)
def test_alert_records_validate_and_carry_the_alert(
    account: str, kind: str, state: str, at: int, opened: int, observed: float, baseline: float
) -> None:
    alert = Alert(account, kind, state, at, observed, baseline, opened)
    doc = orjson.loads(alert_to_json(alert))
    assert _accepts("alerts", doc), doc
    assert doc["alert_id"] == alert.alert_id and doc["account_id"] == account
    assert (doc["at"], doc["opened_at"], doc["observed"], doc["baseline"]) == (at, opened, observed, baseline)
    assert datetime.fromisoformat(doc["at_iso"]) == datetime.fromtimestamp(at / 1000, UTC).replace(
        microsecond=at % 1000 * 1000
    )


@settings(max_examples=200, deadline=None)
@given(
    account=_ids,
    actor=_ids,
    kind=st.sampled_from(["engaged", "lapsed"]),
    at=_ms,
    count=st.integers(0, 10**6),
    platform=_platforms,
)
def test_transition_records_validate_and_carry_the_transition(
    account: str, actor: str, kind: str, at: int, count: int, platform: str
) -> None:
    transition = Transition(account, actor, kind, at, count, platform)
    doc = orjson.loads(transition_to_json(transition))
    assert _accepts("flags", doc), doc
    assert doc["transition_id"] == transition.transition_id
    assert (doc["actor_id"], doc["kind"], doc["at"], doc["count"]) == (actor, kind, at, count)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1_767_571_200_000, "2026-01-05T00:00:00.000Z"),
        (1_767_571_200_999, "2026-01-05T00:00:00.999Z"),
        (253402300799999, "9999-12-31T23:59:59.999Z"),
    ],
)
def test_iso_ms(ms: int, text: str) -> None:
    assert iso_ms(ms) == text
