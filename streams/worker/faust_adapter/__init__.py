"""Faust, behind one edge: the only package of ``streams.worker`` that imports faust, mode or aiokafka.

Everything the worker needs from Faust or aiokafka, and every workaround, is here:

- ``app``: the :class:`faust.App` and its settings, the commit of acknowledged offsets, the fetch wait;
- ``agents``: the agents, timers and rebalance signals around the Faust-free stages
  (:class:`~streams.worker.stage.EngagementStage`, the drops stage);
- ``outputs``: the output ports over Faust's producer, in record batches;
- ``highwater``, ``fast_recovery``, ``recovery_gate``, ``changelog_names``, ``rocksdb``, ``group_lease``,
  ``rebalance``, ``lag``, ``health``, ``stop_deadline``: one workaround or probe each, its docstring
  saying why.

:func:`install` applies every patch to an app, once, before anything is registered on it.

The private Faust / aiokafka internals the worker touches, all written against faust-streaming 0.15.3 and
aiokafka 0.14.0 (``pyproject.toml`` allows only those minor versions; a new one means checking each item
here and running its guard test). *internal* — where — guarded by:

- ``Consumer._thread._create_worker_consumer`` (wrapped) and ``AIOKafkaConsumer._fetch_max_wait_ms`` (set
  before start) — ``app.shorten_fetch_wait`` — ``tests/unit/worker/test_worker_app.py``
- ``Consumer.highwaters`` (replaced) — ``highwater.install`` —
  ``tests/integration/worker/test_fast_recovery.py``
- ``Recovery._build_offsets`` (wrapped), ``Recovery.active_offsets`` / ``active_highwaters`` /
  ``tp_to_table`` / ``signal_recovery_start`` / ``need_recovery()`` — ``fast_recovery.install`` —
  ``tests/integration/worker/test_fast_recovery.py``
- ``Producer._ensure_producer()`` and aiokafka's ``create_batch`` / ``send_batch`` — ``outputs``
  (``FaustOutputs``, ``FaustAlertPort``, ``send_records``) —
  ``tests/integration/worker/test_worker_clickhouse.py``
- the RocksDB store's ``_db_for_partition`` — ``rocksdb.RocksPartition`` —
  ``tests/unit/worker/test_partition_view.py``
- ``app.flow_control.suspend()`` on ``on_rebalance_complete`` (relies on Faust's resume order) —
  ``recovery_gate.install`` — ``tests/integration/worker/test_backlog_at_start.py``
- ``Table._changelog_topic_name`` (overridden) — ``changelog_names.prefixed_table`` —
  ``tests/unit/worker/test_worker_app.py``
- ``Producer._settings_auth`` / ``credentials_to_aiokafka_auth`` (how ``broker_credentials`` reach aiokafka)
  — ``app.create_app`` — ``tests/unit/test_kafka_security.py``
- aiokafka's ``GroupCoordinator._do_heartbeat`` (wrapped) and ``Consumer._thread`` → ``_consumer`` →
  ``_coordinator`` / ``thread_loop`` (a rejoin) — ``group_lease`` — ``tests/unit/worker/test_lease.py``
- ``Consumer._committed_offset`` and ``TableManager.recovery`` (``in_recovery``, ``active_remaining()``)
  — ``lag.update_lag`` — ``tests/unit/worker/test_worker_app.py``
- ``TableManager._recovery`` (``completed``) and ``App.in_recovery`` — ``health`` —
  ``tests/integration/worker/test_health.py``
- mode's ``Worker._schedule_shutdown`` (extended) — ``stop_deadline.BoundedStopWorker`` —
  ``tests/integration/worker/test_shutdown.py``
"""

from __future__ import annotations

import faust

from streams.settings import Settings
from streams.worker.faust_adapter import fast_recovery, group_lease, highwater, recovery_gate
from streams.worker.faust_adapter.app import (
    SESSION_TIMEOUT_S,
    shorten_fetch_wait,
    start_from_changelog,
)
from streams.worker.lease import Lease

# The write lease ends well before the coordinator could have evicted this worker (streams.worker.lease).
LEASE_FRACTION = 0.7


def install(app: faust.App, settings: Settings, bootstrap: str, lease: Lease) -> None:
    """Apply every Faust/aiokafka workaround of the worker to ``app``, and renew ``lease`` on heartbeats."""
    start_from_changelog(app, settings)
    lease.limit_s = SESSION_TIMEOUT_S * LEASE_FRACTION
    group_lease.install(lease)
    highwater.install(app.consumer, bootstrap, settings.kafka_security)
    shorten_fetch_wait(app.consumer, settings.fetch_max_wait_ms)
    # changelogs read by a plain consumer, not record by record
    fast_recovery.install(app, bootstrap, settings.kafka_security)
    recovery_gate.install(app)  # a backlog delivered while Faust finishes recovery is not dropped
