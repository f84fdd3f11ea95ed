"""One ClickHouse write, retried with backoff while ClickHouse cannot take it: the only retry loop.

Both stages (follower flushes and drop alerts) write through it, so one outage reads the same on
``engage_sink_paused`` and ``engage_sink_insert_retries_total`` whichever stage met it. Between
attempts, and while an attempt is in flight, it yields to a revocation: a rebalance must not wait for
ClickHouse to come back (the group would evict the worker and rebalance again, in a loop), so the
write is abandoned with :class:`~streams.errors.WriteFenced`. An abandoned insert still in flight
finishes in its thread; the next write waits for it first (the client is not thread-safe), and if it
lands, the token of its batch makes the new owner's re-formed batch a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from streams.errors import SinkUnavailable
from streams.metrics import Metrics
from streams.sinks.backoff import Backoff
from streams.sinks.base import Sink, SinkBatch
from streams.worker.lease import Lease

log = logging.getLogger(__name__)

# How often a retry loop looks at the lease while an insert is in flight or a backoff runs.
POLL_S = 0.2


class SinkWriter:
    """The sink, its one backoff, the lease, and the insert possibly still running in a thread.

    Writers take turns (one insert at a time, one retry loop at a time), so the backoff and the paused
    gauge describe one outage, not several interleaved ones.
    """

    def __init__(self, sink: Sink, backoff: Backoff, metrics: Metrics, lease: Lease | None = None) -> None:
        self.sink = sink
        self.backoff = backoff
        self.metrics = metrics
        self.lease = lease or Lease()
        self._turn = asyncio.Lock()
        self._inflight: asyncio.Future[Any] | None = None

    async def write(self, batch: SinkBatch, label: str) -> None:
        """Return once ``batch`` is written; raise :class:`WriteFenced` if the lease ends first."""
        paused = False
        try:
            async with self._turn:
                while True:
                    self.lease.check(f"insert {batch.token}")
                    await self._after_inflight()
                    started = time.perf_counter()
                    attempt = asyncio.ensure_future(asyncio.to_thread(self.sink.write, batch))
                    self._inflight = attempt
                    await self._until_done_or_fenced(attempt, batch)
                    self._inflight = None
                    try:
                        attempt.result()
                    except SinkUnavailable as exc:
                        delay = self.backoff.next_delay()
                        self.metrics.insert_retries.labels(label).inc()
                        if not paused:
                            paused = True
                            self.metrics.sink_paused.set(1)
                        log.warning(
                            "sink unavailable (%s); consumption paused, retrying in %.2fs", exc, delay
                        )
                        await self._sleep(delay, batch)
                        continue
                    self.metrics.flush_latency.labels(label).observe(time.perf_counter() - started)
                    self.backoff.reset()
                    return
        finally:
            if paused:
                self.metrics.sink_paused.set(0)

    async def _after_inflight(self) -> None:
        previous, self._inflight = self._inflight, None
        if previous is None:
            return
        if not previous.done():
            await asyncio.wait({previous})
        if not previous.cancelled():
            previous.exception()  # retrieved: an abandoned attempt's failure is no unhandled error

    async def _until_done_or_fenced(self, attempt: asyncio.Future[Any], batch: SinkBatch) -> None:
        while not attempt.done():
            await asyncio.wait({attempt}, timeout=POLL_S)
            if not attempt.done():
                self.lease.check(f"insert {batch.token} (abandoned in flight)")

    async def _sleep(self, delay: float, batch: SinkBatch) -> None:
        end = time.monotonic() + delay
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, POLL_S))
            self.lease.check(f"insert {batch.token}")
