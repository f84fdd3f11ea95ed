"""Persisted dedup hashes: one state-table record per flush interval of a stream partition.

Each record holds the event-id hashes the engine learnt in that interval, grouped by event-time
minute, so a restarted (or newly assigned) worker reloads them and still recognises a redelivery
whose original was committed before the crash. Records are deleted once all their minutes are
behind the partition's final horizon (watermark − allowed lateness), when such redeliveries are late
anyway; so the table holds at most one lateness period of hashes, 8 bytes each (+12 per minute).
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterable, Iterator, MutableMapping

from streams.partitioning import key_on_partition
from streams.worker.progress import PROGRESS_PREFIX

DEDUP_PREFIX = f"{PROGRESS_PREFIX}dedup/"
_HEADER = struct.Struct("<qI")  # minute (ms), number of hashes
MINUTE_MS = 60_000


def dedup_key(partition: int, partitions: int, epoch: str, seq: int) -> str:
    """A table key on ``partition``'s changelog, unique per flush interval."""
    return key_on_partition(f"{DEDUP_PREFIX}{partition}/{epoch}/{seq}/", partition, partitions)


def encode(delta: dict[int, list[int]]) -> bytes:
    parts: list[bytes] = []
    for minute, hashes in sorted(delta.items()):
        parts.append(_HEADER.pack(minute, len(hashes)))
        parts.append(array("Q", hashes).tobytes())
    return b"".join(parts)


def decode(raw: bytes) -> Iterator[tuple[int, list[int]]]:
    offset = 0
    while offset < len(raw):
        minute, count = _HEADER.unpack_from(raw, offset)
        offset += _HEADER.size
        hashes = array("Q")
        hashes.frombytes(raw[offset : offset + 8 * count])
        offset += 8 * count
        yield minute, hashes.tolist()


def newest_minute(raw: bytes) -> int:
    return max((minute for minute, _ in decode(raw)), default=0)


class DedupLog:
    """Which dedup records of a partition exist, and when each may go."""

    def __init__(self) -> None:
        self.records: dict[str, int] = {}  # key -> newest minute in it

    def load(self, items: Iterable[tuple[str, bytes]], remember: object) -> int:
        """Reload persisted records (``remember(minute, hashes)``); returns the hashes loaded."""
        loaded = 0
        for key, raw in items:
            newest = 0
            for minute, hashes in decode(raw):
                remember(minute, hashes)  # type: ignore[operator]
                loaded += len(hashes)
                newest = max(newest, minute)
            self.records[key] = newest
        return loaded

    def write(self, table: MutableMapping[str, bytes], key: str, delta: dict[int, list[int]]) -> None:
        if delta:
            table[key] = encode(delta)
            self.records[key] = max(delta)

    def expire(self, table: MutableMapping[str, bytes], final_ms: int | None) -> int:
        if final_ms is None:
            return 0
        old = [key for key, newest in self.records.items() if newest + MINUTE_MS <= final_ms]
        for key in old:
            table.pop(key, None)
            del self.records[key]
        return len(old)
