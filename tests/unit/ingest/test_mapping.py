"""Every example payload (written from the platforms' public documentation) maps to exact events."""

from __future__ import annotations

import pytest

from streams.events import Interaction
from streams.ingest.adapters import build_adapters
from streams.ingest.adapters.base import Context, Ignored, Unmappable
from tests.webhooks import Case, cases, settings

CASES = cases()
ADAPTERS = build_adapters(settings())


def test_every_platform_has_examples() -> None:
    assert {case.platform for case in CASES} == {"generic", "meta", "x", "mastodon", "bluesky"}
    assert len(CASES) >= 12


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_payload_maps_to_exact_events(case: Case) -> None:
    adapter = ADAPTERS[case.platform]
    payload = adapter.parse(case.body)
    mapped = adapter.map(payload, Context(case.platform, case.received_at, case.account))
    assert [m for m in mapped if isinstance(m, Interaction)] == case.events
    assert sum(isinstance(m, Ignored) for m in mapped) == case.ignored
    unmappable = [m for m in mapped if isinstance(m, Unmappable)]
    assert len(unmappable) == case.dead_lettered
    for item in unmappable:
        assert item.reason and item.detail and item.original is not None


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_mapping_is_deterministic(case: Case) -> None:
    """A redelivery maps to the same event ids, whatever the time it arrives."""
    adapter = ADAPTERS[case.platform]
    first = adapter.map(adapter.parse(case.body), Context(case.platform, case.received_at, case.account))
    again = adapter.map(
        adapter.parse(case.body), Context(case.platform, case.received_at + 3_600_000, case.account)
    )
    ids = [m.event_id for m in first if isinstance(m, Interaction)]
    assert ids == [m.event_id for m in again if isinstance(m, Interaction)]


def test_meta_like_and_reaction_for_one_tap_share_an_event_id() -> None:
    case = next(c for c in CASES if c.name == "page_feed_multi_entry")
    likes = [e for e in case.events if e.type == "like"]
    assert len(likes) == 2 and likes[0].event_id == likes[1].event_id
