"""The state table seen from one stream partition.

The Faust table holds every actor of every partition this worker owns, keyed by ``actor_id`` bytes
(the changelog partition of a key is its murmur2 partition, the same as its events' partition).
:class:`PartitionView` gives the engagement core a ``MutableMapping[str, bytes]`` of just its
partition's actors, so the core never knows about Faust or bytes keys. Writes go to the table's local
store (as the Faust adapter hands it over: :func:`streams.worker.faust_adapter.rocksdb.partition_store`)
and, when a :class:`~streams.worker.changelog.ChangelogBuffer` is given, into it, to be sent to the
changelog in record batches at the flush (step 3 of :mod:`streams.worker.flush`).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

from streams.partitioning import partition_for
from streams.worker.changelog import ChangelogBuffer
from streams.worker.progress import PROGRESS_PREFIX


class PartitionView(MutableMapping[str, bytes]):
    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        partition: int,
        partitions: int,
        changelog: ChangelogBuffer | None = None,
    ) -> None:
        self._table = table
        self._partition = partition
        self._partitions = partitions
        self._changelog = changelog
        # Faust's in-memory store proxies a dict without a ``get`` of its own, so Mapping.get raises
        # and catches KeyError for every actor not stored (ten times dict.get; README, Performance).
        # Its dict is created once and only ever changed in place, so reads may go to it directly.
        data = getattr(table, "data", None)
        self._lookup = data.get if type(data) is dict else table.get

    def __getitem__(self, key: str) -> bytes:
        return self._table[key.encode()]

    def get(self, key: str, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        value = self._lookup(key.encode())
        return default if value is None else value

    def __setitem__(self, key: str, value: bytes) -> None:
        encoded = key.encode()
        self._table[encoded] = value
        if self._changelog is not None:
            self._changelog.add(self._partition, encoded, value)

    def __delitem__(self, key: str) -> None:
        encoded = key.encode()
        del self._table[encoded]
        if self._changelog is not None:
            self._changelog.add(self._partition, encoded, None)

    def pop(self, key: str, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        encoded = key.encode()
        if encoded in self._table:
            value = self._table[encoded]
            del self[key]
            return value
        return default

    def __iter__(self) -> Iterator[str]:
        progress = PROGRESS_PREFIX.encode()
        for key in list(self._table.keys()):
            raw = key if isinstance(key, bytes) else str(key).encode()
            if not raw.startswith(progress) and partition_for(raw, self._partitions) == self._partition:
                yield raw.decode()

    def internal(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        """This partition's internal records (keys starting with ``prefix``, e.g. dedup records)."""
        wanted = prefix.encode()
        for key in list(self._table.keys()):
            raw = key if isinstance(key, bytes) else str(key).encode()
            if raw.startswith(wanted) and partition_for(raw, self._partitions) == self._partition:
                value = self._table.get(raw)
                if value is not None:
                    yield raw.decode(), value

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.encode() in self._table
