"""Per-partition progress record, stored in the state table beside the actor states.

It is what makes a replay after a crash exact. For stream partition *p* (partition *p* of each of the
four interaction topics) a worker flushes in numbered intervals ``k = 0, 1, 2, …``:

0. **intent**: ``pending = {topic: last offset in this interval}``, ``pending_seq = k`` and
   ``pending_watermark`` (the event-time watermark the interval is drained at) are written to the table
   (changelog) and flushed;
1. the sink batch of the interval is written with a token derived from ``(group, p, k, ranges)``;
2. transitions and dead letters are produced;
3. changed actor states (stamped with ``k``) and ``flushed = pending`` are written, ``pending`` cleared;
4. the interval's Kafka messages are acknowledged, so Faust commits their offsets.

After a crash the new owner of *p* recovers this record and the actor states from the changelog, then:

- skips every message at or below ``flushed[topic]`` (its effects are already in the table and sink);
- if ``pending`` is set, re-forms *exactly* that interval (same ranges, same ``k``, so the same
  token: ClickHouse drops the insert if step 1 had happened), not applying it a second time to actor
  states that step 3 already stamped with ``k``, and drains it at ``pending_watermark``. The watermark
  moves only at a flush, so the interval's events are judged late against the same watermark (the
  previous flush's, ``watermark_ms``) on the replay as the first time: what a replay re-forms is what
  the dropped insert held, whatever the high-water marks and the wall clock say after the restart.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cache

import orjson

from streams.engagement.model import stable_id
from streams.partitioning import key_on_partition

# Actor ids never start with this byte (it is not valid in any platform id we map), so meta keys
# cannot collide with actor keys.
META_PREFIX = "\x00meta/"


@cache
def meta_key(partition: int, partitions: int) -> str:
    """A table key on ``partition``'s changelog (so it shares the partition's changelog order)."""
    return key_on_partition(f"{META_PREFIX}{partition}/", partition, partitions)


def is_meta_key(key: str) -> bool:
    return key.startswith(META_PREFIX)


def _new_epoch() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class PartitionMeta:
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
    def decode(cls, raw: bytes | None) -> PartitionMeta:
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


def batch_token(meta: PartitionMeta, group: str, partition: int, seq: int, end: dict[str, int]) -> str:
    """Deterministic idempotency token of one flush interval of one stream partition."""
    ranges = ",".join(f"{t}:{meta.flushed.get(t, -1) + 1}-{end[t]}" for t in sorted(end))
    return f"{group}/{meta.epoch}/p{partition}/k{seq}/{stable_id(ranges)[:16]}"
