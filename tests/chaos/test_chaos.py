"""The chaos harness in CI: three fixed schedules that between them inject every kind of fault.

``make chaos`` runs many random schedules (see ``tests/chaos/__main__.py``); these three are chosen so
that CI, in a few minutes, still covers: kills in a row (the second during the restarted worker's
recovery), a kill during a flush that is retrying its ClickHouse insert, a rebalance while ClickHouse
is down, a zombie (SIGSTOP past the session timeout while another worker takes over, then SIGCONT),
a worker joining mid-stream, and a group rebalancing on a CPU-saturated machine, on both state stores.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.__main__ import HEADER, line
from tests.chaos.run import Cluster, run_schedule
from tests.chaos.schedule import Fault, Schedule

pytestmark = pytest.mark.chaos

SCHEDULES = {
    "kills-in-a-row-and-during-a-retried-flush": Schedule(
        101,
        (
            Fault(4.0, "kill", 0.5),
            Fault(7.0, "kill", 0.5),  # the replacement is still recovering
            Fault(12.0, "ch_down", 8.0),
            Fault(15.0, "kill", 2.0),  # its flush is retrying the insert
        ),
    ),
    "zombie-and-rebalance-during-an-outage": Schedule(
        202,
        (
            Fault(3.0, "join"),
            Fault(8.0, "zombie", 16.0),
            Fault(12.0, "ch_down", 10.0),
            Fault(14.0, "join"),  # rebalances while ClickHouse is down
        ),
    ),
    "loaded-machine-rocksdb": Schedule(
        303,
        (
            Fault(2.0, "load", 14.0),
            Fault(6.0, "join"),
            Fault(10.0, "kill", 0.0),
            Fault(18.0, "kill", 5.0),
        ),
        store="rocksdb://",
    ),
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster(Path(tmp_path_factory.mktemp("chaos"))) as running:
        yield running


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_a_fault_schedule_ends_exact(cluster: Cluster, name: str) -> None:
    schedule = SCHEDULES[name]
    result = run_schedule(cluster, schedule)
    report = "\n".join([HEADER, line(result), schedule.describe(), *result.details])
    print(report)
    assert result.faults >= 3, report
    assert result.expected_alerts >= 2, report  # the drop stage is compared on something
    assert result.ok, report
