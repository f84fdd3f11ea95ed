"""ENGAGE_LIKE_WEIGHT=0: likes still count in the aggregates but followers who only like keep no state."""

from __future__ import annotations

import pytest

from streams.engagement import PartitionEngine, Rule
from streams.errors import ConfigError
from streams.events import Interaction
from streams.settings import Settings

T0 = 1_790_000_000_000


def _likes(n: int) -> list[Interaction]:
    return [
        Interaction(f"l{i}", "like", "generic", "brand", f"lurker{i}", "p", None, T0 + i) for i in range(n)
    ]


@pytest.mark.parametrize(("weight", "tracked"), [("0.1", 50), ("0", 0)])
def test_like_weight_decides_whether_likers_keep_state(weight: str, tracked: int) -> None:
    rule = Rule.from_settings(Settings.from_env({"ENGAGE_LIKE_WEIGHT": weight}))
    engine = PartitionEngine(rule)
    engine.process_many(_likes(50))
    outputs = engine.drain()
    engine.dirty()
    assert sum(row.likes for row in outputs.account_minutes) == 50
    assert engine.tracked_pairs == tracked
    assert len(outputs.scores) == tracked


def test_negative_like_weight_is_refused() -> None:
    with pytest.raises(ConfigError, match="ENGAGE_LIKE_WEIGHT"):
        Settings.from_env({"ENGAGE_LIKE_WEIGHT": "-1"})
