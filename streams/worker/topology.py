"""The worker, assembled in one place: read this first.

A worker is two sibling stages on one Faust app, each Faust-free, each wired by the Faust adapter:

    interaction topics ──▶ stage 1, engagement (streams.worker.stage: one PartitionRunner per partition)
        │                     each interval made durable by streams.worker.flush:
        │                     0 intent → 1 ClickHouse → 2 flags, partials, dead letters → 3 state
        │                     → 4 ack + commit
        └──▶ engagement.flags, engagement.dlq, engagement.account-hours
                                   │
    engagement.account-hours ──▶ stage 2, drop detection (streams.worker.drops)
                                   └──▶ engagement.alerts, ClickHouse engagement_alerts, Alertmanager

:func:`build` makes the stages, creates the Faust app, installs every Faust workaround on it
(:func:`streams.worker.faust_adapter.install`) and registers both stages; :func:`run` runs it until a
signal stops it. Nothing else in ``streams.worker`` creates or wires a stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.health import Health
from streams.metrics import Metrics
from streams.settings import Settings
from streams.sinks.base import Sink
from streams.worker import faust_adapter
from streams.worker.drops.stage import DropStage
from streams.worker.faust_adapter import agents, group_lease
from streams.worker.faust_adapter.app import create_app
from streams.worker.faust_adapter.stop_deadline import BoundedStopWorker
from streams.worker.stage import EngagementStage


@dataclass(frozen=True)
class Topology:
    """A built worker: the Faust app (opaque outside the adapter) and its two stages."""

    app: Any
    engagement: EngagementStage
    drops: DropStage


def build(settings: Settings, bootstrap: str, sink: Sink, metrics: Metrics, **overrides: Any) -> Topology:
    """Both stages on one app; ``overrides`` go to the Faust app's settings (tests)."""
    engagement = EngagementStage(settings, metrics, sink)
    app = create_app(settings, bootstrap, **overrides)
    faust_adapter.install(app, settings, bootstrap, engagement.lease)
    engagement.request_rejoin = lambda: group_lease.request_rejoin(app)
    agents.register_engagement(app, settings, engagement)
    drops = agents.register_drops(app, settings, engagement)  # drop detection on engagement.account-hours
    return Topology(app, engagement, drops)


def run(topology: Topology, settings: Settings, health: Health) -> None:
    """Run the worker until SIGTERM/SIGINT (bounded: :mod:`streams.worker.faust_adapter.stop_deadline`)."""
    from streams.worker.faust_adapter import health as health_probe

    # Logging is configured once for every command (streams.logs: level, text or JSON, secrets
    # redacted); Faust's own setup would replace that handler with its plain-text one.
    worker = BoundedStopWorker(topology.app, quiet=True, override_logging=False)
    # Faust's terminal spinner sets the root logger to DEBUG so that it spins on every record:
    # aiokafka then builds a debug record per produced message. No spinner, no debug records.
    worker.spinner = None
    health_probe.install(topology.app, health, settings.topics.interactions, worker.loop)
    worker.execute_from_commandline()
