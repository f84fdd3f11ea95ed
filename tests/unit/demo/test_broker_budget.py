"""The demo stops its traffic before the embedded broker, which keeps every message, takes the machine."""

from __future__ import annotations

from streams.commands.demo import BROKER_BUDGET_CAP_MB, broker_budget_mb, broker_limit


def test_the_budget_is_a_quarter_of_the_memory_at_most_the_cap() -> None:
    assert broker_budget_mb("MemTotal:        4194304 kB\nMemFree: 1 kB\n") == 1024
    assert broker_budget_mb("MemTotal:       67108864 kB\n") == BROKER_BUDGET_CAP_MB
    assert broker_budget_mb("") == BROKER_BUDGET_CAP_MB


def test_the_limit_gives_a_reason_only_over_the_budget() -> None:
    used: list[float | None] = [100.0]
    limit = broker_limit(lambda: used[0], 500)
    assert limit() is None
    used[0] = None  # no embedded broker (KAFKA_BOOTSTRAP_SERVERS), or it is gone
    assert limit() is None
    used[0] = 501.0
    reason = limit()
    assert reason is not None and "501 MB" in reason and "KAFKA_BOOTSTRAP_SERVERS" in reason
    assert broker_limit(lambda: 10_000.0, 0)() is None  # 0: no limit
