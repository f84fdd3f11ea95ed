"""May this worker still write for the partitions it holds? Its group lease, checked before every write.

A worker holds its partitions while the group coordinator receives its heartbeats. A worker frozen
for longer than its session timeout (SIGSTOP, a paused VM, a long GC-like stall) is evicted and its
partitions handed to another worker; when it wakes up it does not know that yet, and a flush it was
in the middle of would go on writing: stale actor states into the changelog after its successor's,
outputs and ClickHouse rows for an interval its successor forms differently. Kafka fences such a
"zombie" with transactions; the embedded broker has none, so the worker fences itself: it may write
only while a heartbeat succeeded less than ``limit_s`` ago (a fraction of the session timeout, so the
lease ends before the coordinator can have evicted it), and not while a rebalance revokes its
partitions. :meth:`Lease.check` raises :class:`~streams.errors.WriteFenced` otherwise.

What it cannot close: a freeze that begins after a check and before the write it guards (a few
milliseconds). A late sink insert is harmless even then (the successor re-forms the same interval
from the intent recorded before it, with the same token); a late changelog write is not, which is
why the check sits immediately before each changelog send.

No Faust here: the Faust adapter renews the lease from the consumer's heartbeats.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from streams.errors import WriteFenced


@dataclass
class Lease:
    limit_s: float = float("inf")
    clock: Callable[[], float] = time.monotonic
    renewed_at: float = field(init=False)
    revoking: bool = False

    def __post_init__(self) -> None:
        self.renewed_at = self.clock()

    def renew(self) -> None:
        """A group heartbeat succeeded (called from the consumer's thread)."""
        self.renewed_at = self.clock()

    def readmitted(self) -> None:
        """The group has assigned partitions and their tables are recovered: writes may go on."""
        self.revoking = False
        self.renew()

    @property
    def lapsed(self) -> bool:
        return self.clock() - self.renewed_at > self.limit_s

    def check(self, what: str) -> None:
        if self.revoking:
            raise WriteFenced(f"{what}: partitions are being revoked")
        if self.lapsed:
            raise WriteFenced(
                f"{what}: no group heartbeat for {self.clock() - self.renewed_at:.1f}s "
                f"(lease {self.limit_s:.1f}s); another worker may own these partitions now"
            )
