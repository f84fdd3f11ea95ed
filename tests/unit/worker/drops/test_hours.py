"""Stage 1's account-hour records: partials per account and hour, and the heartbeat, as the schema says."""

from __future__ import annotations

import orjson

from streams.engagement.model import HOUR_MS, AccountMinute, Outputs, Transition
from streams.worker.drops.hours import account_hour_records
from tests.drop_streams import MONDAY_MS, counts, hour_ms, messages
from tests.unit.engagement.test_records import _accepts

H0 = hour_ms(0)


def test_heartbeats_name_the_hours_a_flush_saw_any_event_in() -> None:
    minute = H0 + 5 * HOUR_MS + 60_000
    outputs = Outputs(
        transitions=[Transition("acme", "fan", "engaged", H0 + 30, 3, "x")],
        account_minutes=[
            AccountMinute("acme", "x", minute, likes=2),  # likes only: active, no partial
            AccountMinute("acme", "x", H0 + 60_000, comments=1, substantive=1),
            AccountMinute("acme", "x", H0 + 9 * HOUR_MS, lapsed=1),  # a lapse is not an event
        ],
    )
    records, beat = account_hour_records(
        outputs, partition=2, epoch="e", seq=4, watermark_ms=MONDAY_MS * 2, lateness_ms=10
    )
    assert beat is not None
    assert orjson.loads(beat)["active_hours"] == [H0, H0 + 5 * HOUR_MS]
    assert orjson.loads(beat)["complete_before_ms"] == MONDAY_MS * 2 - 10
    assert [orjson.loads(v)["hours"] for _, v in records] == [[[H0, 1, 1]]]
    for doc in [beat, *(v for _, v in records)]:
        assert _accepts("account_hours", orjson.loads(doc))  # schemas/events/account_hours.v1.json
    # and so does the simulated stage 1 the other tests use
    assert all(_accepts("account_hours", m) for m in messages(counts({"a": 5.0}, 3, seed=1), 2, seed=2))
