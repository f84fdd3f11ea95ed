"""The generic endpoint's hot path agrees with the decoder and with the Interaction-based envelopes.

``GenericAdapter.map_canonical`` passes canonical objects on as parsed and ``canonical_envelopes``
encodes a group in one call; both must mean exactly what ``map`` + ``event_envelopes`` mean: the
same events accepted (same values), the same rejections (reason and detail), the same topic,
partition, key, order and cuts.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.events import Interaction, decode_object, iter_message
from streams.ingest.adapters.base import Context, Unmappable
from streams.ingest.adapters.generic import GenericAdapter
from streams.ingest.envelopes import ActorPartitions, canonical_envelopes, event_envelopes, topic_map
from streams.partitioning import partition_for
from streams.settings import Topics

TOPICS = Topics("t.")
TOPIC_FOR = topic_map(TOPICS)
FIELDS = ("event_id", "type", "platform", "account_id", "actor_id", "post_id", "text", "occurred_at")

VALUES = (
    st.none()
    | st.booleans()
    | st.integers(-5, 2**64)
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
    | st.text(min_size=250, max_size=260)
    | st.sampled_from(["like", "comment", "share", "follow", "unfollow", "generic", "x", "Bad Platform"])
    | st.sampled_from(["2026-11-22T10:00:00Z", "2026-11-22T10:00:00", 253402300799999, 253402300800000])
)


@st.composite
def documents(draw: st.DrawFn) -> Any:
    """A valid canonical object, then a few fields replaced, deleted or added (key order shuffled)."""
    event_type = draw(st.sampled_from(["like", "comment", "share", "follow", "unfollow"]))
    doc: dict[str, Any] = {
        "event_id": draw(st.text(min_size=1, max_size=8)),
        "type": event_type,
        "platform": draw(st.sampled_from(["generic", "x", "meta"])),
        "account_id": "brand",
        "actor_id": draw(st.sampled_from(["a1", "a2", "a3", "ä4"])),
        "post_id": None if event_type in ("follow", "unfollow") and draw(st.booleans()) else "p1",
        "text": draw(st.none() | st.text(max_size=20)),
        "occurred_at": draw(st.integers(0, 2_000_000_000_000)),
    }
    for _ in range(draw(st.integers(0, 2))):
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "add":
            doc[draw(st.sampled_from(["extra", "x"]))] = draw(VALUES)
        else:
            name = draw(st.sampled_from(FIELDS))
            if action == "delete":
                doc.pop(name, None)
            else:
                doc[name] = draw(VALUES)
    items = list(doc.items())
    order = draw(st.permutations(range(len(items))))
    shuffled = {items[i][0]: items[i][1] for i in order}
    return draw(st.sampled_from([shuffled, [shuffled], "not an object", 7]))


@settings(max_examples=250, deadline=None)
@given(st.lists(documents(), max_size=12))
def test_map_canonical_means_what_map_means(elements: list[Any]) -> None:
    adapter = GenericAdapter(tolerance_ms=0)
    for payload in (elements, *elements[:1]):  # an array, and a single document
        expected = adapter.map(payload, Context("generic", 0))
        valid, bad = adapter.map_canonical(payload)
        assert [decode_object(v) for v in valid] == [m for m in expected if type(m) is Interaction]
        # What is passed on is the canonical object itself: the same values, no extra field.
        assert [v for v in valid] == [decode_object(v).to_dict() for v in valid]
        assert [(u.reason, u.detail) for u in bad] == [
            (m.reason, m.detail) for m in expected if isinstance(m, Unmappable)
        ]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["like", "comment", "share", "follow", "unfollow"]),
            st.integers(0, 30),
            st.text(max_size=300),
        ),
        max_size=80,
    ),
    st.integers(1, 12),
    st.integers(64, 4096),
)
def test_canonical_envelopes_match_event_envelopes(
    spec: list[tuple[str, int, str]], partitions: int, max_bytes: int
) -> None:
    events = [
        Interaction(f"e{i}", t, "generic", "brand", f"actor-{a}", f"p{i % 3}", text, 1_795_342_500_000 + i)
        for i, (t, a, text) in enumerate(spec)
    ]
    expected = event_envelopes(events, TOPIC_FOR, partitions, max_bytes=max_bytes)
    got = canonical_envelopes(
        [e.to_dict() for e in events], TOPIC_FOR, ActorPartitions(partitions), max_bytes=max_bytes
    )
    # Canonical objects in canonical key order: byte for byte the same messages.
    assert got == expected


def test_actor_partitions_is_the_default_partitioner_and_stays_bounded() -> None:
    partition_of = ActorPartitions(8, max_entries=3)
    actors = [f"actor-{i}" for i in range(10)]
    assert [partition_of(a) for a in actors] == [partition_for(a.encode(), 8) for a in actors]
    assert len(partition_of.cached) <= 3


def test_messages_decode_to_the_accepted_events() -> None:
    adapter = GenericAdapter(tolerance_ms=0)
    docs = [
        {"occurred_at": 5, "type": "like", "event_id": "e1", "platform": "generic", "account_id": "b"}
        | {"actor_id": "a", "post_id": "p", "text": None},
        {"event_id": "e2", "type": "comment", "platform": "generic", "account_id": "b", "actor_id": "a"}
        | {"post_id": "p", "text": "two words", "occurred_at": "2026-11-22T10:00:00Z", "extra": 1},
    ]
    valid, bad = adapter.map_canonical(docs)
    assert not bad
    [envelope] = canonical_envelopes(valid, {"like": "t", "comment": "t"}, ActorPartitions(1))
    assert [e.event_id for e in iter_message(envelope.value)] == ["e1", "e2"]  # type: ignore[union-attr]
    assert b"extra" not in envelope.value and b'"occurred_at":1795341600000' in envelope.value


AT = 1_795_342_500_000


def test_an_envelope_may_be_exactly_max_bytes() -> None:
    # Found by the property test above: the cut counted one comma too many and split an envelope that
    # fit exactly (two 155-byte events, 313 bytes with brackets and comma) where the fast path did not.
    events = [
        Interaction(
            f"e{i}", "share", "generic", "brand", "actor-10", f"p{i}", "\r\U00010000", 1_795_342_500_000 + i
        )
        for i in range(2)
    ]
    exact = len(orjson.dumps([e.to_dict() for e in events]))
    for max_bytes, count in ((exact, 1), (exact - 1, 2)):
        envelopes = event_envelopes(events, TOPIC_FOR, 1, max_bytes=max_bytes)
        assert [len(e.value) <= max_bytes for e in envelopes] == [True] * count
        assert envelopes == canonical_envelopes(
            [e.to_dict() for e in events], TOPIC_FOR, ActorPartitions(1), max_bytes=max_bytes
        )
