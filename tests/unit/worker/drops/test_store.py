"""The staged overlay: writes held until commit, committed in order with the named key last."""

from __future__ import annotations

import pytest

from streams.worker.drops.store import StagedStore


def test_staged_store_commits_in_order_with_the_named_key_last() -> None:
    order: list[str] = []

    class Recording(dict[str, bytes]):
        def __setitem__(self, k: str, v: bytes) -> None:
            order.append(k)
            super().__setitem__(k, v)

    base = Recording(x=b"1", gone=b"2")
    staged = StagedStore(base)
    staged["meta"] = b"m"
    staged["x"] = b"10"
    del staged["gone"]
    staged["new"] = b"n"
    assert dict(staged) == {"x": b"10", "meta": b"m", "new": b"n"} and "gone" not in staged
    assert base == {"x": b"1", "gone": b"2"}
    order.clear()
    assert staged.commit(last="meta") == 4
    assert order == ["x", "new", "meta"] and base == {"x": b"10", "meta": b"m", "new": b"n"}
    staged["x"] = b"lost"
    staged.discard()
    assert base["x"] == b"10" and staged["x"] == b"10"
    with pytest.raises(KeyError):
        del staged["gone"]
