"""A ``MutableMapping`` whose writes stay in memory until :meth:`StagedStore.commit`.

The drop stage (:mod:`streams.worker.drops.stage`) must deliver an hour's alerts *before* the state
that says "this hour is closed" can become durable, or a crash in between would lose them. Faust writes
a table value to its changelog as soon as it is assigned, so the stage computes against this overlay,
delivers the outputs, and only then commits the overlay into the table (or discards it after a failure).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping


class StagedStore(MutableMapping[str, bytes]):
    def __init__(self, base: MutableMapping[str, bytes]) -> None:
        self.base = base
        self._writes: dict[str, bytes | None] = {}  # None: deleted

    def __getitem__(self, key: str) -> bytes:
        if key in self._writes:
            value = self._writes[key]
            if value is None:
                raise KeyError(key)
            return value
        return self.base[key]

    def get(self, key: str, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        if key in self._writes:
            value = self._writes[key]
            return default if value is None else value
        return self.base.get(key, default)

    def __setitem__(self, key: str, value: bytes) -> None:
        self._writes[key] = value

    def __delitem__(self, key: str) -> None:
        if self.get(key) is None:
            raise KeyError(key)
        self._writes[key] = None

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str) and key in self._writes:
            return self._writes[key] is not None
        return key in self.base

    def __iter__(self) -> Iterator[str]:
        for key in list(self.base):
            if key not in self._writes or self._writes[key] is not None:
                yield key
        for key, value in list(self._writes.items()):
            if value is not None and key not in self.base:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @property
    def staged(self) -> int:
        """How many keys have uncommitted writes."""
        return len(self._writes)

    def commit(self, last: str | None = None) -> int:
        """Apply the staged writes to the base, ``last`` (if staged) after every other key."""
        writes, self._writes = self._writes, {}
        ordered = [k for k in writes if k != last] + ([last] if last in writes else [])
        for key in ordered:
            value = writes[key]
            if value is None:
                self.base.pop(key, None)
            else:
                self.base[key] = value
        return len(ordered)

    def discard(self) -> None:
        self._writes = {}
