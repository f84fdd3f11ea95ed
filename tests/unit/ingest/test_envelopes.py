"""Events → batch envelopes per (topic, partition): bytes, grouping, keys, size cuts; DLQ records."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.events import Interaction, encode_batch, iter_message
from streams.ingest.envelopes import dlq_envelopes, event_envelopes, topic_map
from streams.partitioning import partition_for
from streams.settings import Topics

TOPICS = Topics("t.")
TOPIC_FOR = topic_map(TOPICS)


def _event(
    i: int, event_type: str = "comment", actor: str | None = None, text: str = "two words"
) -> Interaction:
    post = None if event_type in ("follow", "unfollow") else f"p{i % 5}"
    return Interaction(
        f"e{i}", event_type, "generic", "brand", actor or f"a{i % 7}", post, text, 1_795_342_500_000 + i
    )


def test_one_group_is_byte_identical_to_encode_batch() -> None:
    events = [_event(i, actor="same") for i in range(10)]
    [envelope] = event_envelopes(events, TOPIC_FOR, 8)
    assert envelope.value == encode_batch(events)
    assert envelope.key == b"same"
    assert envelope.topic == "t.interactions.comment"
    assert envelope.partition == partition_for(b"same", 8)


def test_unfollow_shares_the_follow_topic() -> None:
    envelopes = event_envelopes([_event(1, "follow", "a"), _event(2, "unfollow", "a")], TOPIC_FOR, 8)
    assert [e.topic for e in envelopes] == ["t.interactions.follow"]
    assert [ev.type for ev in iter_message(envelopes[0].value)] == ["follow", "unfollow"]  # type: ignore[union-attr]


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
def test_envelopes_partition_every_event_exactly_once_in_order(
    spec: list[tuple[str, int, str]], partitions: int, max_bytes: int
) -> None:
    events = [_event(i, t, f"actor-{a}", text) for i, (t, a, text) in enumerate(spec)]
    envelopes = event_envelopes(events, TOPIC_FOR, partitions, max_bytes=max_bytes)
    seen: list[Interaction] = []
    for envelope in envelopes:
        decoded = list(iter_message(envelope.value))
        assert all(isinstance(e, Interaction) for e in decoded)
        batch = [e for e in decoded if isinstance(e, Interaction)]
        assert envelope.key == batch[0].actor_id.encode()
        for event in batch:
            assert envelope.topic == TOPICS.for_type(event.type)
            assert envelope.partition == partition_for(event.actor_id.encode(), partitions)
        # Cut at the budget unless a single event alone is larger.
        assert len(envelope.value) <= max_bytes or len(batch) == 1
        seen.extend(batch)
    assert sorted(seen, key=lambda e: e.event_id) == sorted(events, key=lambda e: e.event_id)
    # Within one (topic, partition), arrival order is kept.
    for key in {(e.topic, e.partition) for e in envelopes}:
        ids = [
            ev.event_id
            for env in envelopes
            if (env.topic, env.partition) == key
            for ev in iter_message(env.value)
        ]  # type: ignore[union-attr]
        assert ids == sorted(ids, key=lambda s: int(s[1:]))


def test_dlq_records_use_the_shared_format() -> None:
    [envelope] = dlq_envelopes(TOPICS, [("schema", "post_id: required", b'{"a":1}')], {"platform": "meta"})
    assert envelope.topic == "t.interactions.dlq" and envelope.partition is None and envelope.key == b"meta"
    record = orjson.loads(envelope.value)
    assert record == {
        "reason": "schema",
        "detail": "post_id: required",
        "source": {"platform": "meta"},
        "original": '{"a":1}',
        "original_encoding": "utf-8",
    }
