"""Seeded fault schedules: what happens to the workers, ClickHouse and the machine, and when.

A schedule is a pure function of its seed (``generate(seed)``), so a failing run is re-run alone with
``python -m tests.chaos --seed N --schedules 1``. Times are seconds from the start of the traffic,
which is published in slices over ``TRAFFIC_S``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

TRAFFIC_S = 24.0
# Longer than the workers' session timeout (10 s): the group evicts the stopped member and hands its
# partitions to another before the stopped one wakes up.
ZOMBIE_S = 16.0

KINDS = ("kill", "zombie", "join", "ch_down", "ch_lossy", "load")


@dataclass(frozen=True)
class Fault:
    at: float
    kind: str
    # kill: seconds until a replacement starts; ch_down / load: how long; zombie: how long stopped
    duration: float = 0.0

    def __str__(self) -> str:
        return f"{self.at:5.1f}s {self.kind}({self.duration:.1f}s)"


@dataclass(frozen=True)
class Schedule:
    seed: int
    faults: tuple[Fault, ...]
    store: str = "memory://"

    def describe(self) -> str:
        return f"seed {self.seed} [{self.store}]: " + ", ".join(map(str, self.faults))

    def count(self, kind: str) -> int:
        return sum(f.kind == kind for f in self.faults)


def generate(seed: int, min_faults: int = 3, max_faults: int = 5) -> Schedule:
    """Random faults over the traffic and a little after it.

    Kills come alone or in bursts (a second kill a few seconds after a restart lands in recovery);
    a ClickHouse outage may overlap kills and joins (a kill then lands in a flush whose insert is
    being retried, a join rebalances during the outage); a lossy ClickHouse applies inserts and then
    answers 503, so every insert is retried after it landed; ``load`` starts CPU hogs, so the group
    rebalances on a saturated machine.
    """
    rng = random.Random(seed)
    faults: list[Fault] = []
    for _ in range(rng.randint(min_faults, max_faults)):
        kind = rng.choices(KINDS, weights=(5, 1, 2, 2, 1, 1))[0]
        at = round(rng.uniform(1.0, TRAFFIC_S + 6.0), 1)
        if kind == "kill":
            faults.append(Fault(at, kind, round(rng.choice([0.0, 0.5, 2.0, 5.0]), 1)))
            if rng.random() < 0.3:  # several in a row: the next one hits the restarted worker's recovery
                faults.append(Fault(round(at + rng.uniform(2.0, 8.0), 1), kind, 0.5))
        elif kind == "zombie":
            faults.append(Fault(at, kind, ZOMBIE_S))
        elif kind == "join":
            faults.append(Fault(at, kind))
        elif kind in ("ch_down", "ch_lossy"):
            faults.append(Fault(at, kind, round(rng.uniform(3.0, 14.0), 1)))
        else:
            faults.append(Fault(at, kind, round(rng.uniform(6.0, 15.0), 1)))
    store = "rocksdb://" if rng.random() < 0.25 else "memory://"
    return Schedule(seed, tuple(sorted(faults, key=lambda f: f.at)), store)
