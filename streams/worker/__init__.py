"""The stream worker. Start at :mod:`streams.worker.topology`, the one place it is assembled.

- ``topology`` — the composition root: builds both stages on one Faust app and runs it.
- ``stage`` — stage 1, engagement: one ``PartitionRunner`` per owned partition, flushed together.
- ``runner`` — one stream partition: decode → engagement core, watermark, replay position.
- ``flush`` — the flush-then-commit protocol, one function per step; its only description.
- ``progress`` — the per-partition progress record the protocol writes; ``dedup_log`` — the dedup
  hashes it persists; ``partition_view`` / ``changelog`` — the state table seen from one partition, and
  its writes waiting for the changelog; ``flags`` — the ``engagement.flags`` record.
- ``sink_retry`` — the one ClickHouse retry loop of both stages; ``lease`` — the write lease that fences
  a worker the group may have replaced.
- ``drops`` — drop detection, stage 2 (on ``engagement.account-hours``); its Faust agent is in the adapter.
- ``faust_adapter`` — Faust behind one edge: the only package here that imports faust, mode or aiokafka,
  with every private internal it touches listed.
"""
