"""The stream worker: Faust wiring (``app``) around per-partition runners (``runner``).

The private Faust / aiokafka internals the worker touches, all written against faust-streaming 0.15.3 and
aiokafka 0.14.0 (``pyproject.toml`` allows only those minor versions; a new one means checking each item
here and running its guard test). *internal* — where — guarded by:

- ``Consumer._thread._create_worker_consumer`` (wrapped) and ``AIOKafkaConsumer._fetch_max_wait_ms`` (set
  before start) — ``app._shorten_fetch_wait`` — ``tests/unit/worker/test_worker_app.py``
- ``Consumer.highwaters`` (replaced) — ``highwater.install`` —
  ``tests/integration/worker/test_fast_recovery.py``
- ``Recovery._build_offsets`` (wrapped), ``Recovery.active_offsets`` / ``active_highwaters`` /
  ``tp_to_table`` / ``signal_recovery_start`` / ``need_recovery()`` — ``fast_recovery.install`` —
  ``tests/integration/worker/test_fast_recovery.py``
- ``Producer._ensure_producer()`` and aiokafka's ``create_batch`` / ``send_batch`` — ``app.FaustOutputs``,
  ``drop_wiring``, ``bulk.send_records`` — ``tests/integration/worker/test_worker_clickhouse.py``
- the RocksDB store's ``_db_for_partition`` — ``state.PartitionView`` —
  ``tests/unit/worker/test_partition_view.py``
- ``app.flow_control.suspend()`` on ``on_rebalance_complete`` (relies on Faust's resume order) —
  ``recovery_gate.install`` — ``tests/integration/worker/test_backlog_at_start.py``
- ``Table._changelog_topic_name`` (overridden) — ``changelog_names.prefixed_table`` —
  ``tests/unit/worker/test_worker_app.py``
- ``Producer._settings_auth`` / ``credentials_to_aiokafka_auth`` (how ``broker_credentials`` reach aiokafka)
  — ``app.create_app`` — ``tests/unit/test_kafka_security.py``
"""
