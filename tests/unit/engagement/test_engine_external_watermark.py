"""The engine under a watermark driven from outside (a worker reading several topics per partition).

An event may then be far *ahead* of the watermark (its topic is read faster than another), and older
events of the same pair still arrive from the slower topic. Transitions must come out exactly as if
everything had arrived in event-time order.
"""

from __future__ import annotations

from streams.engagement import ENGAGED, PartitionEngine, Rule
from streams.events import Interaction

H = 3_600_000
T0 = 1_790_000_000_000
RULE = Rule(threshold=3, window_ms=24 * H, allowed_lateness_ms=10 * 60_000)


def _comment(i: int, at: int) -> Interaction:
    return Interaction(f"e{i}", "comment", "generic", "acc", "fan", "p", "really nice work", at)


def _run(order: list[Interaction], watermark_steps: list[int]) -> list[tuple[str, int, int]]:
    engine = PartitionEngine(RULE, auto_watermark=False)
    engine.advance_watermark(T0)
    for event, watermark in zip(order, watermark_steps, strict=True):
        assert engine.process(event) == "ok"
        engine.advance_watermark(watermark)
    engine.advance_watermark(T0 + 100 * H)
    return [(t.kind, t.at_ms, t.count) for t in engine.drain().transitions]


def test_first_event_ahead_of_the_watermark_then_older_ones() -> None:
    fast = _comment(4, T0 + 5 * H)  # read first: the comment topic ran ahead
    slow = [_comment(1, T0 + 1 * H), _comment(2, T0 + 2 * H), _comment(3, T0 + 3 * H)]
    ahead = _run([fast, *slow], [T0, T0, T0, T0])
    in_order = _run([*slow, fast], [T0, T0, T0, T0])
    assert in_order[0] == (ENGAGED, T0 + 3 * H, 3)
    assert ahead == in_order
