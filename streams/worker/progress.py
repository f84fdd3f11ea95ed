"""Per-partition progress record, stored in the state table beside the actor states.

It records which offsets of each interaction topic are flushed, the interval in flight (its intent) and
the event-time watermark: what makes a replay after a crash exact. How it is written and read back is
the flush protocol, :mod:`streams.worker.flush` (steps 0 and 3, and recovery).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cache

import orjson

from streams.engagement.model import stable_id
from streams.partitioning import key_on_partition

# Actor ids never start with this byte (it is not valid in any platform id we map), so progress keys
# cannot collide with actor keys. The text is stored in changelogs: it stays "meta" for compatibility.
PROGRESS_PREFIX = "\x00meta/"


@cache
def progress_key(partition: int, partitions: int) -> str:
    """A table key on ``partition``'s changelog (so it shares the partition's changelog order)."""
    return key_on_partition(f"{PROGRESS_PREFIX}{partition}/", partition, partitions)


def is_progress_key(key: str) -> bool:
    return key.startswith(PROGRESS_PREFIX)


def _new_epoch() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class PartitionProgress:
    """``epoch`` is drawn when a partition's record is first created and kept for its lifetime: a
    new Kafka cluster (e.g. a fresh embedded broker) restarts offsets and flush numbers at zero, and
    without it the new tokens would equal old ones and ClickHouse would drop the new inserts."""

    epoch: str = field(default_factory=_new_epoch)
    flush_seq: int = 0
    watermark_ms: int | None = None
    flushed: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] | None = None
    pending_seq: int | None = None
    pending_token: str | None = None
    pending_watermark: int | None = None
    # Event-time high mark per topic as of ``flushed``: the watermark is derived from them, and a topic
    # with no traffic after a restart would otherwise count as unknown (see PartitionRunner.recover).
    topic_watermarks: dict[str, int] = field(default_factory=dict)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "epoch": self.epoch,
                "flush_seq": self.flush_seq,
                "watermark_ms": self.watermark_ms,
                "flushed": self.flushed,
                "pending": self.pending,
                "pending_seq": self.pending_seq,
                "pending_token": self.pending_token,
                "pending_watermark": self.pending_watermark,
                "topic_watermarks": self.topic_watermarks,
            }
        )

    @classmethod
    def decode(cls, raw: bytes | None) -> PartitionProgress:
        if not raw:
            return cls()
        data = orjson.loads(raw)
        return cls(
            epoch=data["epoch"],
            flush_seq=data["flush_seq"],
            watermark_ms=data["watermark_ms"],
            flushed={str(k): int(v) for k, v in data["flushed"].items()},
            pending=data["pending"],
            pending_seq=data["pending_seq"],
            pending_token=data.get("pending_token"),
            pending_watermark=data.get("pending_watermark"),
            topic_watermarks={str(k): int(v) for k, v in data.get("topic_watermarks", {}).items()},
        )


def batch_token(
    progress: PartitionProgress, group: str, partition: int, seq: int, end: dict[str, int]
) -> str:
    """Deterministic idempotency token of one flush interval of one stream partition."""
    ranges = ",".join(f"{t}:{progress.flushed.get(t, -1) + 1}-{end[t]}" for t in sorted(end))
    return f"{group}/{progress.epoch}/p{partition}/k{seq}/{stable_id(ranges)[:16]}"
