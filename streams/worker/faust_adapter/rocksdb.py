"""Faust's RocksDB store, addressed one partition at a time.

Faust's RocksDB store (``ENGAGE_STATE_STORE=rocksdb://``) keeps one database per partition and picks the
database of a write from Faust's *current event*, asserting there is one; a read made while another
partition's event is current looks in that partition's database. The worker writes at a flush, outside
any event, so a view over the RocksDB store addresses its partition's database itself
(:class:`RocksPartition`): every key a :class:`~streams.worker.partition_view.PartitionView` writes
belongs to the view's changelog partition, which is also where Faust's changelog recovery puts it back.

Private internal used (faust-streaming 0.15.3): the store's ``_db_for_partition`` and ``offset_key``.
Guarded by ``tests/unit/worker/test_partition_view.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any


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


def partition_store(store: Any, partition: int) -> MutableMapping[bytes, bytes]:
    """The mapping a :class:`~streams.worker.partition_view.PartitionView` of ``partition`` reads and
    writes: Faust's memory store as it is (one dict for every partition), one database of the RocksDB
    store."""
    if is_rocksdb_store(store):
        return RocksPartition(store, partition)
    return store  # type: ignore[no-any-return]
