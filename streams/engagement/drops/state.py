"""Per-account state of the drop detector, and its compact byte encoding (a Faust table value).

The state is the last ``ring_hours`` (4 weeks = 672 by default) hourly substantive counts in a ring
indexed by the absolute hour number, plus a 62-byte header (alert episode, level EWMA, engaged
followers). Counts are ``uint16`` and an account is upgraded to ``uint32`` the first hour it
exceeds 65,534 interactions, so a value is **1,406 bytes** per account (2,750 for the rare huge
account). ``MISSING`` marks an hour with no data at all (a gap the wiring declared with
``skip_hour``), which is never read as zero.
"""

from __future__ import annotations

import struct
import sys
from array import array
from dataclasses import dataclass
from typing import Any, Final

HOURS_PER_WEEK: Final = 168

NONE: Final = 0
DROP: Final = 1
SILENCE: Final = 2
KIND_NAMES: Final = {DROP: "drop", SILENCE: "silence"}

_VERSION: Final = 1
# version, wide (0: uint16 ring, 1: uint32 ring), kind, recover_run, idle_run, first_hour, last_hour,
# opened_hour, last_active_hour, prev_baseline, level_num, level_den, engaged_last, engaged_ewma,
# opened_observed, opened_baseline, level_weight, noise_num, noise_den
_HEADER: Final = struct.Struct("<BBBBHiiiifffifIffff")
HEADER_BYTES: Final = _HEADER.size
_NARROW_MISSING: Final = 0xFFFF
_WIDE_MISSING: Final = 0xFFFF_FFFF

assert array("H").itemsize == 2 and array("I").itemsize == 4, "unsupported platform array sizes"


@dataclass(slots=True)
class AccountState:
    """Everything the detector remembers about one account. Hours are ``epoch_ms // HOUR_MS``."""

    counts: array[int]  # ring of hourly substantive counts, slot = hour % len(counts)
    first_hour: int  # first hour ever observed (warm-up is measured from here)
    last_hour: int  # last hour folded in; the ring is valid for (last_hour - len, last_hour]
    kind: int = NONE  # the open alert's kind, or NONE
    opened_hour: int = -1  # hour whose close opened the current episode
    recover_run: int = 0  # consecutive eligible hours back above the resolve ratio
    idle_run: int = 0  # consecutive hours, while open, with a baseline under the minimum volume
    last_active_hour: int = -1  # last hour with at least one substantive interaction
    prev_baseline: float = 0.0  # baseline of ``last_hour`` (0: not evaluated)
    level_num: float = 0.0  # EWMA of observed counts (clipped), over hours with a seasonal reference
    level_den: float = 0.0  # EWMA of the seasonal reference over the same hours
    engaged_last: int = -1  # last engaged-followers count reported (-1: never)
    engaged_ewma: float = 0.0  # slow EWMA of the engaged-followers count
    opened_observed: int = 0  # the count and baseline of the hour that opened the episode
    opened_baseline: float = 0.0
    level_weight: float = 0.0  # how much the level EWMA has seen (0 → 1); it is trusted that much
    noise_num: float = 0.0  # EWMA of squared residuals beyond Poisson noise ...
    noise_den: float = 0.0  # ... and of squared baselines: their ratio is the relative noise²

    @classmethod
    def new(cls, hour: int, ring_hours: int) -> AccountState:
        counts = array("H", [_NARROW_MISSING]) * ring_hours
        return cls(counts=counts, first_hour=hour, last_hour=hour - 1, last_active_hour=hour)

    @property
    def missing(self) -> int:
        return _NARROW_MISSING if self.counts.typecode == "H" else _WIDE_MISSING

    def count_at(self, hour: int) -> int | None:
        """The count observed in ``hour``; None outside the ring, before the account or in a gap."""
        if hour > self.last_hour or hour <= self.last_hour - len(self.counts) or hour < self.first_hour:
            return None
        value = self.counts[hour % len(self.counts)]
        return None if value == self.missing else value

    def put(self, hour: int, count: int | None) -> None:
        """Record ``hour`` (the next one after ``last_hour``); ``None`` records a gap."""
        if count is not None and count >= self.missing - 1 and self.counts.typecode == "H":
            self.counts = array("I", (_WIDE_MISSING if v == _NARROW_MISSING else v for v in self.counts))
        value = self.missing if count is None else min(count, self.missing - 1)
        self.counts[hour % len(self.counts)] = value
        self.last_hour = hour
        if count:
            self.last_active_hour = hour

    def jump_to(self, hour: int, fill: int | None) -> None:
        """Skip to ``hour`` across a gap longer than the ring: every remembered hour becomes ``fill``."""
        value = self.missing if fill is None else fill
        for slot in range(len(self.counts)):
            self.counts[slot] = value
        self.last_hour = hour

    def resized(self, ring_hours: int) -> AccountState:
        """The same state with a ring of another length (after a change of ``DropRule.weeks``)."""
        if ring_hours == len(self.counts):
            return self
        counts = array(self.counts.typecode, [self.missing]) * ring_hours
        for hour in range(self.last_hour - min(ring_hours, len(self.counts)) + 1, self.last_hour + 1):
            value = self.count_at(hour)
            counts[hour % ring_hours] = self.missing if value is None else value
        self.counts = counts
        return self

    @property
    def level(self) -> float:
        """How the recent hours compare with their seasonal reference (1.0: as usual).

        Shrunk towards 1 by how much history the EWMA has seen, so a few early hours cannot swing it.
        """
        if self.level_den <= 0:
            return 1.0
        return 1.0 + (self.level_num / self.level_den - 1.0) * self.level_weight


def _header(state: AccountState) -> bytes:
    return _HEADER.pack(
        _VERSION,
        1 if state.counts.typecode == "I" else 0,
        state.kind,
        min(state.recover_run, 255),
        min(state.idle_run, 65_535),
        state.first_hour,
        state.last_hour,
        state.opened_hour,
        state.last_active_hour,
        state.prev_baseline,
        state.level_num,
        state.level_den,
        state.engaged_last,
        state.engaged_ewma,
        state.opened_observed,
        state.opened_baseline,
        state.level_weight,
        state.noise_num,
        state.noise_den,
    )


def encode_state(state: AccountState) -> bytes:
    """Compact bytes: a little-endian header then the ring (see the module docstring for sizes)."""
    ring = array(state.counts.typecode, state.counts)
    if sys.byteorder == "big":
        ring.byteswap()
    return _header(state) + ring.tobytes()


def as_stored(state: AccountState) -> AccountState:
    """``state`` made equal to ``decode_state(encode_state(state))``, in place and without copying
    the ring: the header's floats rounded to float32, its small counters capped.

    A detector that keeps states in memory between hours applies this where it would have encoded
    them, so its results stay bit-identical to one that decodes and encodes every hour.
    """
    _set_header(state, _HEADER.unpack(_header(state)))
    return state


def _set_header(state: AccountState, fields: tuple[Any, ...]) -> None:
    (
        _,
        _,
        state.kind,
        state.recover_run,
        state.idle_run,
        state.first_hour,
        state.last_hour,
        state.opened_hour,
        state.last_active_hour,
        state.prev_baseline,
        state.level_num,
        state.level_den,
        state.engaged_last,
        state.engaged_ewma,
        state.opened_observed,
        state.opened_baseline,
        state.level_weight,
        state.noise_num,
        state.noise_den,
    ) = fields


def decode_state(data: bytes) -> AccountState:
    """Inverse of :func:`encode_state`. Raises ``ValueError`` on bytes it did not write."""
    if len(data) < HEADER_BYTES:
        raise ValueError(f"drop state too short: {len(data)} bytes")
    fields = _HEADER.unpack_from(data)
    if fields[0] != _VERSION:
        raise ValueError(f"unknown drop state version {fields[0]}")
    counts = array("I" if fields[1] else "H")
    counts.frombytes(data[HEADER_BYTES:])
    if sys.byteorder == "big":
        counts.byteswap()
    return AccountState(
        counts=counts,
        kind=fields[2],
        recover_run=fields[3],
        idle_run=fields[4],
        first_hour=fields[5],
        last_hour=fields[6],
        opened_hour=fields[7],
        last_active_hour=fields[8],
        prev_baseline=fields[9],
        level_num=fields[10],
        level_den=fields[11],
        engaged_last=fields[12],
        engaged_ewma=fields[13],
        opened_observed=fields[14],
        opened_baseline=fields[15],
        level_weight=fields[16],
        noise_num=fields[17],
        noise_den=fields[18],
    )


def peek_last_hour(data: bytes) -> int:
    """``last_hour`` of an encoded state without decoding the ring."""
    last_hour: int = _HEADER.unpack_from(data)[6]
    return last_hour
