"""Test tiers by folder: tests/unit (no network), tests/integration (real Tansu + chDB), tests/e2e (CLI).

The tier marker is applied from the folder, so a test cannot land in the wrong tier by forgetting it.
Unit tests cannot open sockets: the fixture below makes every connect attempt fail loudly.
No test leaves a process behind (``tests/reaper.py``): what a test started and did not stop is killed
after it, by process group, and whatever is left at the end of the session too.
"""

from __future__ import annotations

import socket
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import reaper

ROOT = Path(__file__).resolve().parent.parent
_TIERS = ("unit", "integration", "e2e", "bench")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in _TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


class NetworkBlocked(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _no_network_in_unit_tests(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    if request.node.get_closest_marker("unit") is None:
        yield
        return

    def refuse(self: socket.socket, address: object) -> None:
        raise NetworkBlocked(f"unit tests may not open network connections (tried {address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, a))  # type: ignore[arg-type]
    yield


@pytest.fixture(autouse=True)
def _no_process_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    # Set up after every session and module fixture of the test (pytest orders by scope), so the
    # session broker is in ``before`` and never reaped here.
    before = set(reaper.descendants())
    yield
    left = reaper.reap_new(before)
    if left:
        warnings.warn(f"{request.node.nodeid} left processes {left} running: killed", stacklevel=1)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reaper.reap(reaper.descendants())
