"""Building events for the engagement tests: short names, sensible defaults, unique ids."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from streams.engagement import Outputs, PartitionEngine, Transition
from streams.events import Interaction

_ids = itertools.count()

SUBSTANTIVE = "love this product"
ONE_WORD = "Nice!"


def ev(
    at: int,
    kind: str = "comment",
    text: str | None = SUBSTANTIVE,
    *,
    actor: str = "fan",
    account: str = "brand",
    platform: str = "x",
    post: str | None = "post1",
    event_id: str | None = None,
) -> Interaction:
    if kind in ("follow", "unfollow"):
        post = None
    if kind in ("like", "follow", "unfollow"):
        text = None
    return Interaction(event_id or f"e{next(_ids)}", kind, platform, account, actor, post, text, at)


@dataclass
class Run:
    statuses: list[str]
    outputs: list[Outputs]

    @property
    def transitions(self) -> list[Transition]:
        return [t for out in self.outputs for t in out.transitions]

    def kinds(self) -> list[tuple[str, int, int]]:
        return [(t.kind, t.at_ms, t.count) for t in self.transitions]


def feed(engine: PartitionEngine, events: list[Interaction], *, finish_at: int | None = None) -> Run:
    """Process ``events`` in order, then (optionally) advance event time to ``finish_at`` and drain."""
    statuses = [engine.process(e) for e in events]
    outputs = [engine.drain()]
    if finish_at is not None:
        engine.advance_watermark(finish_at)
        outputs.append(engine.drain())
    return Run(statuses, outputs)
