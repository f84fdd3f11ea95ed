"""State-table writes waiting for the changelog, per partition, in write order.

The worker writes the table's local store directly at a flush and sends the changelog records itself, in
record batches (:func:`streams.worker.faust_adapter.outputs.send_records`), instead of Faust's per-key
changelog send (one event-loop round trip per record). Faust's recovery reads them like its own: same
topic, partition, raw key and value, ``None`` as the tombstone.
"""

from __future__ import annotations

from collections import defaultdict

Record = tuple[int, bytes | None, bytes | None]  # (partition, key, value)


class ChangelogBuffer:
    """Changelog records of the state table since the last :meth:`take`, by partition, in write order.

    Kept per partition so that partitions flushing concurrently each send (and wait for) only their own
    records: a flush's "durable before the next step" must not be satisfied by another partition's send
    that carried its records while still in flight.
    """

    def __init__(self) -> None:
        self._records: dict[int, list[Record]] = {}

    def add(self, partition: int, key: bytes, value: bytes | None) -> None:
        records = self._records.get(partition)
        if records is None:
            records = self._records[partition] = []
        records.append((partition, key, value))

    def put_back(self, records: list[Record]) -> None:
        """Records taken but not delivered: back in the buffer, before any added since, in order."""
        by_partition: dict[int, list[Record]] = defaultdict(list)
        for record in records:
            by_partition[record[0]].append(record)
        for partition, taken in by_partition.items():
            self._records[partition] = taken + self._records.get(partition, [])

    def __bool__(self) -> bool:
        """Whether any record waits to be taken."""
        return bool(self._records)

    def take(self, partition: int | None = None) -> list[Record]:
        """The records of ``partition`` (of every partition if None), removed from the buffer."""
        if partition is not None:
            return self._records.pop(partition, [])
        records = [record for items in self._records.values() for record in items]
        self._records = {}
        return records
