"""Concurrent requests share Kafka messages per (topic, partition), yet each learns its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson
import pytest

from streams.errors import BrokerUnavailable
from streams.events import Interaction, encode_batch, iter_message
from streams.ingest.envelopes import Envelope, dlq_envelopes, event_envelopes, topic_map
from streams.ingest.publisher import CoalescingPublisher, MemoryPublisher
from streams.settings import Topics

TOPICS = Topics()
TOPIC_FOR = topic_map(TOPICS)


def _events(tag: str, n: int, event_type: str = "comment") -> list[Interaction]:
    return [
        Interaction(f"{tag}{i}", event_type, "generic", "brand", f"actor{i % 3}", "p", "two words", 1 + i)
        for i in range(n)
    ]


class FailingTopic(MemoryPublisher):
    """The twin, refusing one topic (a partition whose leader is gone)."""

    def __init__(self, topic: str) -> None:
        super().__init__()
        self.topic = topic
        self.calls = 0

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        self.calls += 1
        if any(e.topic == self.topic for e in envelopes):
            raise BrokerUnavailable(f"{self.topic} unavailable")
        await super().publish(envelopes)


def test_concurrent_requests_are_merged_per_partition() -> None:
    inner = MemoryPublisher()
    publisher = CoalescingPublisher(inner)
    requests = [event_envelopes(_events(f"r{k}-", 9), TOPIC_FOR, 2) for k in range(5)]
    dlq = dlq_envelopes(TOPICS, [("schema", "bad", b"{}")], {"platform": "generic"})

    async def scenario() -> None:
        await asyncio.gather(*(publisher.publish(r) for r in requests), publisher.publish(dlq))

    asyncio.run(scenario())
    partitions = {(e.topic, e.partition) for r in requests for e in r}
    merged = [e for e in inner.envelopes if e.topic != TOPICS.dlq]
    assert len(merged) == len(partitions)  # one message per (topic, partition) for all five requests
    assert [e for e in inner.envelopes if e.topic == TOPICS.dlq] == dlq
    for envelope in merged:
        parts = [
            e for r in requests for e in r if (e.topic, e.partition) == (envelope.topic, envelope.partition)
        ]
        expected = [ev for p in parts for ev in iter_message(p.value)]
        assert list(iter_message(envelope.value)) == expected
        assert envelope.value == encode_batch(expected)  # type: ignore[arg-type]
        assert envelope.key == parts[0].key


def test_each_request_learns_its_own_outcome() -> None:
    inner = FailingTopic(TOPICS.like)
    publisher = CoalescingPublisher(inner)
    comments = event_envelopes(_events("c", 4, "comment"), TOPIC_FOR, 2)
    likes = event_envelopes(_events("l", 4, "like"), TOPIC_FOR, 2)
    both = event_envelopes(_events("b", 4, "comment") + _events("bl", 4, "like"), TOPIC_FOR, 2)

    async def scenario() -> list[object]:
        return await asyncio.gather(
            publisher.publish(comments),
            publisher.publish(likes),
            publisher.publish(both),
            return_exceptions=True,
        )

    ok, failed_likes, failed_both = asyncio.run(scenario())
    assert ok is None
    assert isinstance(failed_likes, BrokerUnavailable) and isinstance(failed_both, BrokerUnavailable)
    # The comments went out merged with the comments of the request that failed because of its likes:
    # at-least-once, and the shared event ids let downstream deduplicate the retry.
    published = {ev.event_id for e in inner.envelopes for ev in iter_message(e.value)}  # type: ignore[union-attr]
    assert {"c0", "c1", "c2", "c3"} <= published and not any(i.startswith("l") for i in published)


def test_merged_messages_are_cut_at_max_bytes() -> None:
    inner = MemoryPublisher()
    publisher = CoalescingPublisher(inner, max_bytes=600)
    requests = [event_envelopes(_events(f"r{k}-", 1), TOPIC_FOR, 1) for k in range(10)]

    async def scenario() -> None:
        await asyncio.gather(*(publisher.publish(r) for r in requests))

    asyncio.run(scenario())
    assert len(inner.envelopes) > 1
    assert all(len(e.value) <= 600 for e in inner.envelopes)
    ids = [ev.event_id for e in inner.envelopes for ev in iter_message(e.value)]  # type: ignore[union-attr]
    assert ids == [f"r{k}-0" for k in range(10)]


def test_a_caller_that_gave_up_does_not_disturb_the_others() -> None:
    inner = MemoryPublisher(delay_s=0.05)
    publisher = CoalescingPublisher(inner)
    first = event_envelopes(_events("a", 2), TOPIC_FOR, 1)
    second = event_envelopes(_events("b", 2), TOPIC_FOR, 1)

    async def scenario() -> None:
        impatient = asyncio.ensure_future(asyncio.wait_for(publisher.publish(first), 0.01))
        patient = asyncio.ensure_future(publisher.publish(second))
        with pytest.raises(TimeoutError):
            await impatient
        await patient

    asyncio.run(scenario())
    # Both were merged into one message; the impatient caller's events went out too (it was told
    # nothing was acknowledged, so it retries: at-least-once, deduplicated downstream by event_id).
    [message] = inner.envelopes
    assert sorted(ev.event_id for ev in iter_message(message.value)) == ["a0", "a1", "b0", "b1"]  # type: ignore[union-attr]


def test_empty_and_sequential_publishes() -> None:
    inner = MemoryPublisher()
    publisher = CoalescingPublisher(inner)

    async def scenario() -> None:
        await publisher.publish([])
        await publisher.publish(event_envelopes(_events("x", 1), TOPIC_FOR, 1))
        await publisher.publish([Envelope(TOPICS.comment, 0, b"k", b"[]")])
        assert await publisher.ready()

    asyncio.run(scenario())
    assert len(inner.envelopes) == 1 and orjson.loads(inner.envelopes[0].value)[0]["event_id"] == "x0"
