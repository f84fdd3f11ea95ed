"""A migrated database per test and a writer on the session's chDB client.

Event times are recent (anchored on the wall clock at import), because the activity tables drop rows
older than their TTL even on insert.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams.metrics import Metrics
from streams.sinks.clickhouse import ClickHouseSink

MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000
NOW_MS = int(time.time() * 1000) // MINUTE * MINUTE


def month_start_ms(ms: int) -> int:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return int(moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)


# The start of the current UTC month: data on both sides of it lands in two monthly partitions.
MONTH_BOUNDARY_MS = month_start_ms(NOW_MS)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics.create(CollectorRegistry())


@pytest.fixture
def sink(ch_client: Any, ch_database: str, metrics: Metrics) -> Iterator[ClickHouseSink]:
    writer = ClickHouseSink.for_client(ch_client, ch_database, metrics, migrate=True)
    writer.open()
    yield writer
    writer.close()


class Query:
    def __init__(self, client: Any, database: str) -> None:
        self.client = client
        self.database = database

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        result: list[tuple[Any, ...]] = self.client.query(
            sql.replace("DB.", f"`{self.database}`."), parameters=params
        ).result_rows
        return result

    def command(self, sql: str) -> None:
        self.client.command(sql.replace("DB.", f"`{self.database}`."))


@pytest.fixture
def q(ch_client: Any, ch_database: str) -> Query:
    return Query(ch_client, ch_database)
