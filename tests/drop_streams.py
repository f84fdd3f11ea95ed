"""Account-hours streams for drop-detection tests: hourly counts → stage-1 messages (a simulated stage 1).

Each hourly count is split at random over ``sources`` source partitions, each source flushes once
per hour (a record per account it saw, then its heartbeat), and the sources' message sequences are
interleaved at random with each one's own order kept — the only ordering Kafka guarantees on one
partition of the account-hours topic.
"""

from __future__ import annotations

import random
from typing import Any

import orjson

from streams.engagement.drops import DropDetector, DropRule
from streams.engagement.model import HOUR_MS, Alert
from streams.partitioning import partition_for

MONDAY_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z


def hour_ms(hour: int) -> int:
    return MONDAY_MS + hour * HOUR_MS


def counts(
    accounts: dict[str, float],
    hours: int,
    seed: int,
    cut: tuple[str, int, int, float] | None = None,
) -> list[dict[str, int]]:
    """Poisson hourly counts at a flat rate per account; ``cut = (account, first, last, factor)``."""
    rng = random.Random(seed)
    out: list[dict[str, int]] = []
    for hour in range(hours):
        row: dict[str, int] = {}
        for account, rate in accounts.items():
            if cut is not None and cut[0] == account and cut[1] <= hour <= cut[2]:
                rate *= cut[3]
            n = poisson(rng, rate)
            if n:
                row[account] = n
        out.append(row)
    return out


def poisson(rng: random.Random, lam: float) -> int:
    # normal approximation is plenty for a test stream; exact for small rates
    if lam > 50:
        return max(0, round(rng.gauss(lam, lam**0.5)))
    threshold, k, p = pow(2.718281828459045, -lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def messages(
    hourly: list[dict[str, int]],
    sources: int,
    seed: int,
    *,
    epoch: str = "e1",
    start_hour: int = 0,
    engaged: bool = True,
) -> list[dict[str, Any]]:
    """The account-hours messages of ``hourly`` (hour i = ``start_hour + i``), interleaved."""
    rng = random.Random(seed)
    per_source: list[list[dict[str, Any]]] = [[] for _ in range(sources)]
    seq = [0] * sources
    for i, row in enumerate(hourly):
        start = hour_ms(start_hour + i)
        split: list[dict[str, int]] = [{} for _ in range(sources)]
        for account, n in row.items():
            for _ in range(n):
                p = rng.randrange(sources)
                split[p][account] = split[p].get(account, 0) + 1
        for p in range(sources):
            for account in sorted(split[p]):
                delta = rng.choice((-1, 0, 1, 1)) if engaged else 0
                per_source[p].append(
                    {
                        "account_id": account,
                        "source_partition": p,
                        "epoch": epoch,
                        "seq": seq[p],
                        "hours": [[start, split[p][account], delta]],
                    }
                )
            per_source[p].append(
                {
                    "heartbeat": True,
                    "source_partition": p,
                    "epoch": epoch,
                    "seq": seq[p],
                    "complete_before_ms": start + HOUR_MS,
                    "active_hours": [start] if split[p] else [],
                }
            )
            seq[p] += 1
    return interleave(per_source, rng)


def interleave(streams: list[list[dict[str, Any]]], rng: random.Random) -> list[dict[str, Any]]:
    positions = [0] * len(streams)
    out: list[dict[str, Any]] = []
    while True:
        live = [i for i, s in enumerate(streams) if positions[i] < len(s)]
        if not live:
            return out
        i = rng.choice(live)
        out.append(streams[i][positions[i]])
        positions[i] += 1


def key(alert: Alert) -> tuple[int, str, str, str]:
    return (alert.at_ms, alert.account_id, alert.kind, alert.state)


def reference(hourly: list[dict[str, int]], start_hour: int = 0, rule: DropRule | None = None) -> list[Alert]:
    """The pure detector fed the hourly totals directly (what stage 2 must reproduce exactly)."""
    detector = DropDetector(rule or DropRule())
    alerts: list[Alert] = []
    for i, row in enumerate(hourly):
        start = hour_ms(start_hour + i)
        if not row:
            alerts += detector.skip_hour(start)
            continue
        for account in sorted(row):
            alerts += detector.observe(account, start, row[account])
        alerts += detector.close_hour(start)
    return sorted(alerts, key=key)


def routed(msgs: list[dict[str, Any]], partitions: int) -> list[tuple[int, bytes]]:
    """(partition, value) as stage 1 publishes them: partials by account key, heartbeats to every q."""
    out: list[tuple[int, bytes]] = []
    for message in msgs:
        value = orjson.dumps(message)
        if message.get("heartbeat"):
            out += [(q, value) for q in range(partitions)]
        else:
            out.append((partition_for(message["account_id"].encode(), partitions), value))
    return out
