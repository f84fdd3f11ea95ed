"""Faust/aiokafka side of the write lease (:mod:`streams.worker.lease`): renewals and rejoins.

Written against faust-streaming 0.15.3 and aiokafka 0.14.0; guarded by
``tests/unit/worker/test_group_lease.py`` (the patch renews on a real coordinator method) and the
chaos harness's zombie schedules (``tests/chaos``).

- ``aiokafka.consumer.group_coordinator.GroupCoordinator._do_heartbeat`` returns True when the
  coordinator accepted a heartbeat: the only signal that the group still counts this member, and no
  public hook reports it. Wrapped once per process; every lease installed is renewed.
- Faust runs the aiokafka consumer on its own thread and loop (``app.consumer._thread``); a rejoin is
  requested there with ``GroupCoordinator.request_rejoin`` (public on the coordinator, which itself
  is private to the consumer: ``_coordinator``).
"""

from __future__ import annotations

import logging
from typing import Any

from streams.worker.lease import Lease

log = logging.getLogger(__name__)

_LEASES: list[Lease] = []


def install(lease: Lease) -> None:
    """Renew ``lease`` on every heartbeat the group coordinator accepts."""
    from aiokafka.consumer.group_coordinator import GroupCoordinator

    _LEASES.append(lease)
    if getattr(GroupCoordinator._do_heartbeat, "_renews_leases", False):
        return
    original = GroupCoordinator._do_heartbeat

    async def do_heartbeat(self: Any) -> Any:
        accepted = await original(self)
        if accepted:
            for each in _LEASES:
                each.renew()
        return accepted

    do_heartbeat._renews_leases = True  # type: ignore[attr-defined]
    GroupCoordinator._do_heartbeat = do_heartbeat


def request_rejoin(app: Any) -> None:
    """Ask the group for a new generation (thread-safe: scheduled on the consumer's own loop)."""
    thread = getattr(app.consumer, "_thread", None)
    client = getattr(thread, "_consumer", None) if thread is not None else None
    coordinator = getattr(client, "_coordinator", None) if client is not None else None
    loop = getattr(thread, "thread_loop", None) if thread is not None else None
    if coordinator is None or loop is None:
        log.warning("cannot request a group rejoin: no running consumer")
        return
    log.warning("requesting a group rejoin: positions go back to the committed offsets")
    loop.call_soon_threadsafe(coordinator.request_rejoin)
