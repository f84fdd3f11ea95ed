"""The drop-state table's values: the account value and the partition's record round-trip, keys route."""

from __future__ import annotations

from streams.engagement.model import HOUR_MS
from streams.partitioning import partition_for
from streams.worker.drops.table import (
    AccountHours,
    HoursProgress,
    decode_account,
    encode_account,
    hours_progress_key,
)
from tests.drop_streams import hour_ms

H0 = hour_ms(0)


def test_account_value_and_progress_round_trip() -> None:
    aux = AccountHours(pending={H0: [3, -1], H0 + HOUR_MS: [0, 2]}, engaged=7, applied={0: ("e1", 9)})
    raw = encode_account(aux, b"detector-bytes")
    assert decode_account(raw) == (aux, b"detector-bytes")
    assert decode_account(None) == (AccountHours(), b"")
    assert len(encode_account(AccountHours(), b"")) == 5  # header and "{}"
    progress = HoursProgress(
        heartbeats={0: 5, 3: 7}, closed_through=H0, active={H0 + HOUR_MS}, late_partials=2
    )
    assert HoursProgress.decode(progress.encode()) == progress
    for partitions in (1, 4, 8, 12):
        for q in range(partitions):
            assert partition_for(hours_progress_key(q, partitions).encode(), partitions) == q
