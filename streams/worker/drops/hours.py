"""The input of drop detection's stage 2: per-account hourly partials, repartitioned by account.

Engagement state is partitioned by actor, so no worker sees an account's whole traffic. At every
flush each stream partition publishes, keyed by ``account_id``, what it saw of each account per
event-time hour (substantive interactions and the net change in engaged followers), tagged with
``(source partition, epoch, flush seq)`` so that a replayed flush can be recognised and ignored by
the consumer. A heartbeat record per flush carries the source partition's watermark, from which
the consumer decides when an hour is complete on every partition, and ``active_hours``: the hours in
which this flush saw any event at all (of any account, any type), so that the consumer can tell an
hour in which some accounts were silent from an hour in which nothing arrived anywhere (a gap).
"""

from __future__ import annotations

from collections import defaultdict

import orjson

from streams.engagement.model import ENGAGED, HOUR_MS, Outputs


def account_hour_records(
    outputs: Outputs, *, partition: int, epoch: str, seq: int, watermark_ms: int | None, lateness_ms: int
) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
    """(records keyed by account, heartbeat to broadcast to every partition or None)."""
    substantive: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    engaged_delta: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    rows = outputs.account_minutes
    # Events only: a row holding just transitions (fired by timers, in hours nobody wrote in) is not
    # data. The distinct minutes first: a flush carries many rows per minute, the hours come from those.
    minutes = {
        row.minute_ms
        for row in rows
        if row.likes or row.comments or row.shares or row.follows or row.unfollows
    }
    active = {minute - minute % HOUR_MS for minute in minutes}
    for row in rows:
        if row.substantive:
            substantive[row.account_id][row.minute_ms - row.minute_ms % HOUR_MS] += row.substantive
    for transition in outputs.transitions:
        hour = transition.at_ms - transition.at_ms % HOUR_MS
        engaged_delta[transition.account_id][hour] += 1 if transition.kind == ENGAGED else -1
    records: list[tuple[bytes, bytes]] = []
    for account in sorted(substantive.keys() | engaged_delta.keys()):
        hours = sorted(substantive[account].keys() | engaged_delta[account].keys())
        records.append(
            (
                account.encode(),
                orjson.dumps(
                    {
                        "account_id": account,
                        "source_partition": partition,
                        "epoch": epoch,
                        "seq": seq,
                        "hours": [
                            [h, substantive[account].get(h, 0), engaged_delta[account].get(h, 0)]
                            for h in hours
                        ],
                    }
                ),
            )
        )
    heartbeat = None
    if watermark_ms is not None:
        heartbeat = orjson.dumps(
            {
                "heartbeat": True,
                "source_partition": partition,
                "epoch": epoch,
                "seq": seq,
                "complete_before_ms": watermark_ms - lateness_ms,
                "active_hours": sorted(active),
            }
        )
    return records, heartbeat
