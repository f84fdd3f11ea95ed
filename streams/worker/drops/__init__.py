"""Drop detection in the worker: per-account engagement-drop and silence alerts from partitioned streams.

The detector itself is pure and works on one account's completed hours (:mod:`streams.engagement.drops`:
the rule, the baseline and when an alert opens or resolves). What this package adds is getting it those
hours, in two stages, because engagement state is partitioned by follower and no worker sees an
account's whole traffic:

1. **Stage 1** (the stream partitions, :mod:`streams.worker.runner`): at every flush each partition
   publishes to ``engagement.account-hours`` what it saw of each account per event-time hour, keyed by
   account, plus a heartbeat to every partition saying how far its event time is complete
   (:mod:`.hours`).
2. **Stage 2** (the ``drops`` agent, one :class:`~.processor.AccountHoursProcessor` per partition of
   that topic): sums the partials per account and closes an hour once every source partition is past
   it, feeding the detector; a replayed flush is recognised by its ``(epoch, seq)`` and ignored
   (:mod:`.processor`, which says when an hour closes, what a gap is and what a late partial does).

Each message of stage 2 is handled by :class:`~.stage.DropStage`: its alerts are delivered (the
``engagement.alerts`` topic, ClickHouse, metrics, Alertmanager) *before* the state that closes the hour
is put in the ``drop-state`` table, so a crash repeats an alert with the same ``alert_id`` rather than
losing it (:mod:`.stage` gives the whole replay argument).

Modules:

- :mod:`.hours` — stage 1's per-account partial records and heartbeats (``account_hour_records``);
- :mod:`.processor` — :class:`~.processor.AccountHoursProcessor`: partials and heartbeats in, closed
  hours into the detector, alerts out (pure, over a ``MutableMapping`` of bytes);
- :mod:`.table` — what the processor keeps in the ``drop-state`` table, and its byte encodings;
- :mod:`.store` — :class:`~.store.StagedStore`, the overlay that holds a message's table writes until
  its outputs are delivered;
- :mod:`.stage` — :class:`~.stage.DropStage`: one message in, outputs delivered, state written; the
  :class:`~.stage.AlertPort` and :class:`~.stage.StageHost` protocols it is wired through.

No Faust in this package. The edges: the Faust agent, table and producer port are
:func:`streams.worker.faust_adapter.agents.register_drops`; the Alertmanager client is
:mod:`streams.alerting`; ClickHouse is reached through the worker's
:class:`~streams.worker.sink_retry.SinkWriter`.
"""
