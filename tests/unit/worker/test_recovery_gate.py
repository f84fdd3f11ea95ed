"""The recovery gate on a real Faust app and its real flow-controlled queues (no broker needed)."""

from __future__ import annotations

import asyncio

import faust

from streams.worker.faust_adapter import recovery_gate


async def _queued_after_recovery_ends(gate: bool) -> int:
    """Faust's end of recovery: signal, a message delivered during the seek, then ``resume()``."""
    app = faust.App("gate-test", broker="kafka://localhost:1", web_enabled=False)
    if gate:
        recovery_gate.install(app)
    queue = app.FlowControlQueue(maxsize=10, clear_on_resume=True)  # as Faust's channel queues
    app.flow_control.resume()  # flow control is open while the changelogs are read
    await app.on_rebalance_complete.send()  # Faust: start of Recovery.on_recovery_completed
    delivery = asyncio.ensure_future(queue.put("message fetched during perform_seek"))
    for _ in range(5):
        await asyncio.sleep(0)
    app.flow_control.resume()  # Faust: end of on_recovery_completed, clears the queues
    await asyncio.wait_for(delivery, 1)
    return queue.qsize()


def test_faust_alone_drops_a_message_delivered_before_its_queues_are_cleared() -> None:
    assert asyncio.run(_queued_after_recovery_ends(gate=False)) == 0


def test_with_the_gate_the_delivery_waits_and_survives_the_clearing() -> None:
    assert asyncio.run(_queued_after_recovery_ends(gate=True)) == 1
