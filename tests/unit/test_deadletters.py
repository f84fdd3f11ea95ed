"""Dead letters: the schema and its examples, what the writers produce, selection, summary, re-drive plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.deadletters import (
    DeadLetter,
    Selection,
    dlq_record,
    export_lines,
    parse_dead_letter,
    plan_redrive,
    summarise,
)
from streams.errors import MalformedPayload
from streams.events import Interaction

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "events" / "examples" / "dead_letters"


def _parses(doc: Any) -> bool:
    try:
        parse_dead_letter(0, 0, 0, orjson.dumps(doc))
        return True
    except MalformedPayload:
        return False


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*/*.json")), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_examples_agree_with_the_schema(path: Path) -> None:
    assert _parses(orjson.loads(path.read_bytes())) is (path.parent.name == "valid")


def test_there_are_valid_and_invalid_examples() -> None:
    assert len(list((EXAMPLES / "valid").glob("*.json"))) >= 3
    assert len(list((EXAMPLES / "invalid").glob("*.json"))) >= 3


def test_not_json_is_malformed() -> None:
    with pytest.raises(MalformedPayload):
        parse_dead_letter(0, 7, 0, b"\xff not json")


_sources = st.one_of(
    st.fixed_dictionaries(
        {
            "topic": st.text(min_size=1, max_size=20),
            "partition": st.integers(0, 99),
            "offset": st.integers(0, 2**62),
        }
    ),
    st.fixed_dictionaries({"file": st.text(max_size=20), "line": st.integers(1, 10**6)}),
    st.fixed_dictionaries(
        {
            "platform": st.sampled_from(["meta", "x"]),
            "source": st.text(max_size=8),
            "received_at": st.floats(0, 2e9),
        }
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    reason=st.sampled_from(["schema", "malformed", "late", "unmappable"]),
    detail=st.text(max_size=1500),
    raw=st.binary(max_size=200),
    source=_sources,
)
def test_every_record_the_writers_produce_parses_back_byte_for_byte(
    reason: str, detail: str, raw: bytes, source: dict[str, Any]
) -> None:
    letter = parse_dead_letter(2, 9, 123, dlq_record(reason, detail, raw, source))
    assert (letter.reason, letter.original, letter.source, letter.ref) == (reason, raw, source, "2:9")
    assert letter.detail == detail[:1000]


def _letter(reason: str, source: dict[str, Any], original: bytes, at: int = 0, offset: int = 0) -> DeadLetter:
    return DeadLetter(0, offset, at, reason, "d", source, original)


def _event(event_id: str, at: int, platform: str = "x") -> Interaction:
    return Interaction(event_id, "comment", platform, "acme", "fan", "p1", "a fine comment", at)


def test_source_topic_and_platform_for_each_writer() -> None:
    worker = _letter(
        "late", {"topic": "p.interactions.comment", "partition": 1, "offset": 3}, _event("a", 1).to_json()
    )
    sent = _letter("schema", {"file": "x.ndjson", "line": 2}, b"{nope")
    hook = _letter("unmappable", {"platform": "meta", "source": "meta", "received_at": 1.0}, b"{}")
    assert (worker.source_topic, worker.platform) == ("p.interactions.comment", "x")
    assert (sent.source_topic, sent.platform) == ("file:x.ndjson", "-")
    assert (hook.source_topic, hook.platform) == ("webhook:meta", "meta")


def test_selection_filters_by_each_field_and_prefix() -> None:
    letters = [
        _letter(
            "late", {"topic": "p.interactions.comment"}, _event("a", 1, "x").to_json(), at=1000, offset=0
        ),
        _letter(
            "schema",
            {"topic": "p.interactions.like"},
            _event("b", 1, "instagram").to_json(),
            at=2000,
            offset=1,
        ),
        _letter("schema", {"file": "f"}, b"{}", at=3000, offset=2),
    ]

    def refs(sel: Selection) -> list[str]:
        return [letter.ref for letter in letters if sel.matches(letter)]

    assert refs(Selection()) == ["0:0", "0:1", "0:2"]
    assert refs(Selection(reasons=frozenset({"schema"}))) == ["0:1", "0:2"]
    assert refs(Selection(source_topics=frozenset({"interactions.like"}), topic_prefix="p.")) == ["0:1"]
    assert refs(Selection(source_topics=frozenset({"interactions.like"}))) == []
    assert refs(Selection(platforms=frozenset({"x"}))) == ["0:0"]
    assert refs(Selection(since_ms=2000, until_ms=3000)) == ["0:1"]
    assert refs(Selection(refs=frozenset({"0:2"}))) == ["0:2"]
    assert Selection().is_empty and not Selection(since_ms=0).is_empty


def test_summary_counts_largest_first_with_the_time_range() -> None:
    letters = [
        _letter("schema", {"topic": "t"}, b"{}", at=5),
        _letter("late", {"topic": "t"}, b"{}", at=2),
        _letter("late", {"file": "f"}, b"{}", at=9),
    ]
    summary = summarise(letters)
    assert summary.total == 3
    assert list(summary.by_reason.items()) == [("late", 2), ("schema", 1)]
    assert summary.by_source_topic == {"t": 2, "file:f": 1}
    assert (summary.first_ms, summary.last_ms) == (2, 9)
    assert summarise([]).first_ms is None


def test_redrive_plan_sorts_by_validity_and_the_dedup_horizon() -> None:
    hour = 3_600_000
    newest = 100 * hour
    originals = [
        ("in", _event("in-horizon", newest - hour // 2).to_json()),
        ("old", _event("too-old", newest - 2 * hour).to_json()),
        ("again", _event("in-horizon", newest - hour // 2).to_json()),
        ("bad", b'{"event_id": "x"}'),
        ("envelope", orjson.dumps([_event("e1", newest).to_dict(), {"type": "like"}])),
    ]
    plan = plan_redrive(originals, newest_event_ms=newest, allowed_lateness_ms=hour)
    assert [e.event_id for e in plan.ready] == ["in-horizon", "e1"]
    assert [e.event_id for e in plan.beyond_horizon] == ["too-old"]
    assert [label for label, _ in plan.invalid] == ["bad", "envelope"]
    assert plan.repeated == 1 and plan.horizon_ms == newest - hour
    # Exactly at the horizon is still within it (the worker refuses only what is older).
    edge = plan_redrive(
        [("e", _event("edge", newest - hour).to_json())], newest_event_ms=newest, allowed_lateness_ms=hour
    )
    assert [e.event_id for e in edge.ready] == ["edge"]
    # Empty interaction topics: nothing can be late.
    empty = plan_redrive(originals[:2], newest_event_ms=None, allowed_lateness_ms=hour)
    assert len(empty.ready) == 2 and not empty.beyond_horizon


def test_export_lines_one_per_event_and_non_json_as_a_string() -> None:
    envelope = orjson.dumps([{"a": 1}, {"b": 2}])
    assert export_lines(_letter("schema", {}, envelope)) == [b'{"a":1}', b'{"b":2}']
    assert export_lines(_letter("malformed", {}, b"\xffoops")) == [orjson.dumps("\ufffdoops")]
