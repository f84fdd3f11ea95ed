"""``engage worker`` with one interleaving forced: Faust ends a recovery while stream messages are queued.

Run as ``python -m tests.integration.worker.race_worker worker …`` (same arguments as ``engage``). The
worker, the broker and Faust are the real ones; two timings are changed, nothing is mocked:

- Faust's ``Consumer.perform_seek`` (the seek of the stream partitions to their committed offsets
  that ends a recovery, one OffsetFetch round trip per partition) returns only once at least
  ``MIN_QUEUED`` messages wait in Faust's flow-controlled queues, or after ``HOLD_S`` seconds. This
  is what a slow broker does to the window between Faust resuming the stream partitions and
  clearing its queues (see :mod:`~streams.worker.faust_adapter.recovery_gate`);
  without it the window is ~20 ms and
  the loss happens in some runs only.
- Each sink write takes ``SINK_WRITE_S`` seconds (a ClickHouse insert's order of magnitude), so
  the agent is busy flushing while the fetcher delivers the backlog, and messages queue up.

It logs ``race: …`` lines: whether the window closed with messages queued, and what Faust's queue
clearing dropped.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any

import faust.transport.consumer
import mode.utils.queues

from streams.cli import main
from streams.sinks.base import CountingSink, SinkBatch

MIN_QUEUED = 5
HOLD_S = 3.0
SINK_WRITE_S = 0.5

log = logging.getLogger("race")


def _queued(flow_control: Any) -> list[Any]:
    return [item for queue in list(flow_control._queues) for item in list(queue._queue)]


def install() -> None:
    seek = faust.transport.consumer.Consumer.perform_seek
    clear = mode.utils.queues.FlowControlEvent.clear
    write = CountingSink.write

    async def held_seek(self: Any) -> None:
        await seek(self)
        deadline = time.monotonic() + HOLD_S
        while time.monotonic() < deadline:
            if len(_queued(self.app.flow_control)) >= MIN_QUEUED:
                log.warning("race: seek returns with %d messages queued", len(_queued(self.app.flow_control)))
                return
            await asyncio.sleep(0)
        log.warning("race: seek returns after %.0f s, nothing queued", HOLD_S)

    def logged_clear(self: Any) -> None:
        dropped = [getattr(item, "message", None) for item in _queued(self)]
        if dropped:
            log.warning(
                "race: flow control clear drops %d queued messages: %s",
                len(dropped),
                [f"{m.topic}[{m.partition}]@{m.offset}" for m in dropped if m is not None][:20],
            )
        clear(self)

    def slow_write(self: CountingSink, batch: SinkBatch) -> None:
        time.sleep(SINK_WRITE_S)
        write(self, batch)

    faust.transport.consumer.Consumer.perform_seek = held_seek  # type: ignore[method-assign]
    mode.utils.queues.FlowControlEvent.clear = logged_clear  # type: ignore[method-assign]
    CountingSink.write = slow_write  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    sys.exit(main(sys.argv[1:]))
