"""PartitionView over Faust's real in-memory store (no broker needed): reads go straight to the store's
dict, so whatever reaches the store by any route must be visible through the view."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.types import TP

from streams.partitioning import key_on_partition
from streams.worker.changelog import ChangelogBuffer
from streams.worker.faust_adapter.rocksdb import is_rocksdb_store, partition_store
from streams.worker.partition_view import PartitionView


def _store() -> Any:
    async def build() -> Any:
        app = faust.App("view-test", broker="kafka://localhost:1", web_enabled=False)
        return app.Table("state", key_type=bytes, value_type=bytes).data

    return asyncio.run(build())


def test_reads_see_writes_from_the_view_the_store_and_recovery() -> None:
    store = _store()
    view = PartitionView(partition_store(store, 0), 0, 1, ChangelogBuffer())
    assert view.get("alice") is None
    assert view.get("alice", b"default") == b"default"
    view["alice"] = b"1"
    store[b"bob"] = b"2"  # straight into the store, as Faust does
    record = SimpleNamespace(key=b"carol", value=b"3", message=SimpleNamespace(value=b"3", partition=0))
    store.apply_changelog_batch([record], lambda k: k, lambda v: v)  # Faust's changelog recovery
    assert (view.get("alice"), view.get("bob"), view.get("carol")) == (b"1", b"2", b"3")
    del view["alice"]
    store.pop(b"bob")
    assert (view.get("alice"), view.get("bob")) == (None, None)
    store.clear()
    assert view.get("carol") is None


def test_a_mapping_without_a_dict_inside_is_read_through_its_own_get() -> None:
    table: dict[bytes, bytes] = {b"alice": b"1"}
    view = PartitionView(table, 0, 1)
    assert (view.get("alice"), view.get("bob")) == (b"1", None)


def _rocksdb_store(path: Path) -> Any:
    async def build() -> Any:
        app = faust.App(
            "view-test-rocks",
            broker="kafka://localhost:1",
            web_enabled=False,
            store="rocksdb://",
            datadir=path,
        )
        table = app.Table("state", partitions=2, use_partitioner=True, key_type=bytes, value_type=bytes)
        return table.data

    return asyncio.run(build())


def test_rocksdb_views_write_and_read_their_own_partitions_database(tmp_path: Path) -> None:
    """Faust's real RocksDB store (rocksdict). Its own ``store[key] = value`` needs a current event to pick
    a partition database; a flush has none, so each view addresses its partition's database."""
    store = _rocksdb_store(tmp_path)
    assert is_rocksdb_store(store) and not is_rocksdb_store({})
    with pytest.raises(AssertionError):
        store[b"alice"] = b"1"  # why the view exists: no event, no partition
    on0, on1 = key_on_partition("actor-", 0, 2), key_on_partition("actor-", 1, 2)
    view0 = PartitionView(partition_store(store, 0), 0, 2, ChangelogBuffer())
    view1 = PartitionView(partition_store(store, 1), 1, 2)
    view0[on0] = b"zero"
    view1[on1] = b"one"
    assert store._db_for_partition(0).get(on0.encode()) == b"zero"
    assert store._db_for_partition(1).get(on1.encode()) == b"one"
    assert store._db_for_partition(0).get(on1.encode()) is None
    assert (view0.get(on0), view0.get(on1), view1.get(on1)) == (b"zero", None, b"one")
    assert on0 in view0 and on1 not in view0
    # Faust's changelog recovery writes a record into the database of its changelog partition
    other = key_on_partition("other-", 1, 2)
    record = SimpleNamespace(
        key=other.encode(),
        value=b"2",
        message=SimpleNamespace(
            key=other.encode(), value=b"2", partition=1, tp=TP("state-changelog", 1), offset=7
        ),
    )
    store.apply_changelog_batch([record], lambda k: k, lambda v: v)
    assert view1.get(other) == b"2"
    # iteration: this partition's keys only, never Faust's persisted-offset key
    assert store._db_for_partition(1).get(store.offset_key) is not None
    assert sorted(view1) == sorted([on1, other]) and list(view0) == [on0]
    assert dict(view0.items()) == {on0: b"zero"}
    assert view0.pop(on0) == b"zero" and view0.get(on0) is None and view0.pop(on0) is None
    with pytest.raises(KeyError):
        del view0[on0]
    del view1[other]
    assert list(view1) == [on1] and len(view1) == 1
