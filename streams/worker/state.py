"""The state table seen from one stream partition.

The Faust table holds every actor of every partition this worker owns, keyed by ``actor_id`` bytes
(the changelog partition of a key is its murmur2 partition, the same as its events' partition).
:class:`PartitionView` gives the engagement core a ``MutableMapping[str, bytes]`` of just its
partition's actors, so the core never knows about Faust or bytes keys. Writes go to the table's local
store and, when a :class:`~streams.worker.bulk.ChangelogBuffer` is given, into it, to be sent to the
changelog in record batches at the flush (see :mod:`streams.worker.bulk`).

Two Faust stores back the table (``ENGAGE_STATE_STORE``). The in-memory store is one dict for every
partition. The RocksDB store keeps one database per partition and picks the database of a write from
Faust's *current event*, asserting there is one; a read made while another partition's event is
current looks in that partition's database. Our writes happen at a flush, outside any event, so a view
over the RocksDB store addresses its partition's database itself (:class:`RocksPartition`): every key
a view writes belongs to the view's changelog partition, which is also where Faust's changelog
recovery puts it back.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from streams.partitioning import partition_for
from streams.worker.bulk import ChangelogBuffer
from streams.worker.meta import META_PREFIX


class RocksPartition(MutableMapping[bytes, bytes]):
    """One partition's database of Faust's RocksDB store (rocksdict), bypassing the current-event routing.

    The database is looked up at every call, not kept: Faust closes a revoked partition's database
    and opens it again when the partition comes back.
    """

    def __init__(self, store: Any, partition: int) -> None:
        self._store = store
        self._partition = partition
        self._offset_key: bytes = store.offset_key  # Faust's persisted changelog offset, not a table key

    def _db(self) -> Any:
        return self._store._db_for_partition(self._partition)

    def __getitem__(self, key: bytes) -> bytes:
        value: bytes | None = self._db().get(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: bytes, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        value: bytes | None = self._db().get(key)
        return default if value is None else value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._db()[key] = value

    def __delitem__(self, key: bytes) -> None:
        db = self._db()
        if db.get(key) is None:
            raise KeyError(key)
        del db[key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and self._db().get(key) is not None

    def __iter__(self) -> Iterator[bytes]:
        offset_key = self._offset_key
        for key in self._db().keys():  # noqa: SIM118  (an Rdict iterates its keys only through keys())
            if key != offset_key:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)


def is_rocksdb_url(url: str) -> bool:
    """``ENGAGE_STATE_STORE`` names Faust's RocksDB store (``rocksdb://``)."""
    return url.split(":", 1)[0].lower() == "rocksdb"


def is_rocksdb_store(table: object) -> bool:
    """Faust's RocksDB store (``rocksdb://``): partitioned databases behind the current-event routing."""
    return hasattr(table, "_db_for_partition") and hasattr(table, "offset_key")


class PartitionView(MutableMapping[str, bytes]):
    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        partition: int,
        partitions: int,
        changelog: ChangelogBuffer | None = None,
    ) -> None:
        if is_rocksdb_store(table):
            table = RocksPartition(table, partition)
        self._table = table
        self._partition = partition
        self._partitions = partitions
        self._changelog = changelog
        # Faust's in-memory store proxies a dict without a ``get`` of its own, so Mapping.get raises
        # and catches KeyError for every actor not stored (0.63 µs against dict.get's 0.06 measured).
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
        meta = META_PREFIX.encode()
        for key in list(self._table.keys()):
            raw = key if isinstance(key, bytes) else str(key).encode()
            if not raw.startswith(meta) and partition_for(raw, self._partitions) == self._partition:
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
