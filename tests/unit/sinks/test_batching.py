from __future__ import annotations

from streams.engagement.model import AccountMinute, Alert, FollowerScore, Outputs, PostMinute, Transition
from streams.sinks.batching import BatchAccumulator


class Clock:
    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


def test_deltas_with_equal_keys_are_summed_and_the_latest_score_is_kept() -> None:
    acc = BatchAccumulator(max_rows=100, max_age_ms=1000, clock=Clock())
    acc.add(
        Outputs(
            account_minutes=[AccountMinute("a", "x", 60_000, likes=1, passive=1)],
            post_minutes=[PostMinute("a", "x", "p", 60_000, comments=1)],
            scores=[FollowerScore("a", "u", "x", 2.0, 500, 2)],
            transitions=[Transition("a", "u", "engaged", 400, 3, "x")],
        )
    )
    acc.add(
        Outputs(
            account_minutes=[
                AccountMinute("a", "x", 60_000, likes=2, passive=2, engaged_new=1),
                AccountMinute("a", "x", 120_000, shares=1),
            ],
            post_minutes=[PostMinute("a", "x", "p", 60_000, comments=2, substantive_comments=1)],
            scores=[FollowerScore("a", "u", "x", 1.0, 300, 1), FollowerScore("a", "v", "x", 5.0, 300, 1)],
            transitions=[Transition("a", "u", "engaged", 400, 3, "x")],  # a re-emission: same id
            alerts=[Alert("a", "drop", "opened", 900, 1.0, 40.0, 900)],
        )
    )
    assert acc.rows_by_table == {
        "transitions": 1,
        "account_minutes": 2,
        "post_minutes": 1,
        "scores": 2,
        "alerts": 1,
    }
    batch = acc.take("tok")
    assert batch.token == "tok"
    minutes = {m.minute_ms: m for m in batch.account_minutes}
    assert minutes[60_000] == AccountMinute("a", "x", 60_000, likes=3, passive=3, engaged_new=1)
    assert minutes[120_000] == AccountMinute("a", "x", 120_000, shares=1)
    assert batch.post_minutes == [PostMinute("a", "x", "p", 60_000, comments=3, substantive_comments=1)]
    assert {(s.actor_id, s.score) for s in batch.scores} == {("u", 2.0), ("v", 5.0)}
    assert len(acc) == 0 and not acc.due()


def test_input_rows_are_not_mutated() -> None:
    acc = BatchAccumulator(max_rows=100, max_age_ms=1000, clock=Clock())
    first = AccountMinute("a", "x", 0, likes=1)
    acc.add(Outputs(account_minutes=[first]))
    acc.add(Outputs(account_minutes=[AccountMinute("a", "x", 0, likes=5)]))
    assert first.likes == 1
    assert acc.take("t").account_minutes[0].likes == 6


def test_due_by_rows_in_any_table() -> None:
    acc = BatchAccumulator(max_rows=3, max_age_ms=10_000, clock=Clock())
    acc.add(Outputs(post_minutes=[PostMinute("a", "x", f"p{i}", 0, likes=1) for i in range(2)]))
    assert not acc.due()
    acc.add(Outputs(post_minutes=[PostMinute("a", "x", "p9", 0, likes=1)]))
    assert acc.due()


def test_due_by_age_of_the_first_row() -> None:
    clock = Clock()
    acc = BatchAccumulator(max_rows=1000, max_age_ms=1000, clock=clock)
    clock.now += 5000
    assert not acc.due()  # empty: never due
    acc.add(Outputs())
    assert not acc.due()  # nothing in it either
    acc.add(Outputs(account_minutes=[AccountMinute("a", "x", 0, likes=1)]))
    clock.now += 999
    assert not acc.due()
    clock.now += 1
    assert acc.due()
    acc.take("t")
    assert not acc.due()
