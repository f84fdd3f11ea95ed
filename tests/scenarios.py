"""Event streams with known structure, shared by the unit and integration tiers."""

from __future__ import annotations

import random

from streams.events import Interaction
from streams.partitioning import partition_for

DAY = 86_400_000
HOUR = 3_600_000


def scenario(
    seed: int,
    *,
    actors: int = 60,
    accounts: int = 5,
    days: int = 6,
    lateness_ms: int = 8 * 60_000,
    base_ms: int = 1_790_000_000_000,
) -> list[Interaction]:
    """Many engage/lapse cycles for W = 1 day, 2% duplicates, arrival disorder below ``lateness_ms / 2``."""
    rng = random.Random(seed)
    events: list[Interaction] = []
    n = 0
    for actor in range(actors):
        for account in rng.sample(range(accounts), 2):
            t = base_ms + rng.randrange(DAY)
            while t < base_ms + days * DAY:
                kind = rng.choices(["comment", "share", "like", "follow", "unfollow"], [40, 15, 30, 10, 5])[0]
                text = rng.choice(["great product, thanks", "wow", "🔥🔥", "Ça marche bien", "love it", None])
                post = None if kind in ("follow", "unfollow") else f"p{rng.randrange(20)}"
                events.append(
                    Interaction(f"ev{n}", kind, "generic", f"acc{account}", f"actor{actor}", post, text, t)
                )
                n += 1
                # sessions of activity separated by breaks longer than a 1-day window (so pairs lapse)
                t += (
                    rng.randrange(26 * HOUR, 60 * HOUR)
                    if rng.random() < 0.15
                    else rng.randrange(60_000, 3 * HOUR)
                )
    arrival = sorted(events, key=lambda e: e.occurred_at_ms + rng.randrange(lateness_ms // 2))
    out: list[Interaction] = []
    for event in arrival:
        out.append(event)
        if rng.random() < 0.02:
            out.append(event)  # a redelivery
    return out


def one_per_partition(partitions: int, prefix: str) -> list[tuple[int, str]]:
    """``(i, actor)`` for one actor id ``{prefix}{i}`` on each partition, in the order found."""
    found: list[tuple[int, str]] = []
    needed, i = set(range(partitions)), 0
    while needed:
        actor = f"{prefix}{i}"
        p = partition_for(actor.encode(), partitions)
        if p in needed:
            needed.discard(p)
            found.append((i, actor))
        i += 1
    return found


def sentinels(partitions: int, far_ms: int) -> list[Interaction]:
    """One like per partition, far in event time, so every partition's watermark finalises everything."""
    return [
        Interaction(f"sentinel-{i}", "like", "generic", "sentinel-acc", actor, "p", None, far_ms)
        for i, actor in one_per_partition(partitions, "sentinel")
    ]
