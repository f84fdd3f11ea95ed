from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from prometheus_client import CollectorRegistry

from streams.ingest.publisher import MemoryPublisher
from streams.ingest.service import IngestService, Reply
from streams.metrics import Metrics
from tests.webhooks import NOW_MS, settings

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class Harness:
    """The service on the in-process publisher twin, a fresh registry and a settable clock."""

    def __init__(self, **overrides: Any) -> None:
        self.now = NOW_MS
        self.settings = settings(**overrides)
        self.publisher = MemoryPublisher()
        self.metrics = Metrics.create(CollectorRegistry())
        self.service = IngestService(self.settings, self.publisher, self.metrics, lambda: self.now)

    def deliver(self, route: str, headers: Any, body: bytes, account: str | None = None) -> Reply:
        return run(self.service.deliver(route, headers, body, account))

    def sample(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return value or 0.0


@pytest.fixture
def harness() -> Harness:
    return Harness()
