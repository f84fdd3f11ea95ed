"""PartitionView over Faust's real in-memory store (no broker needed): reads go straight to the store's
dict, so whatever reaches the store by any route must be visible through the view."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import faust

from streams.worker.bulk import ChangelogBuffer
from streams.worker.state import PartitionView


def _store() -> Any:
    async def build() -> Any:
        app = faust.App("view-test", broker="kafka://localhost:1", web_enabled=False)
        return app.Table("state", key_type=bytes, value_type=bytes).data

    return asyncio.run(build())


def test_reads_see_writes_from_the_view_the_store_and_recovery() -> None:
    store = _store()
    view = PartitionView(store, 0, 1, ChangelogBuffer())
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
