"""``python -m tests.chaos [--schedules N] [--seed S]``: run N random fault schedules and print a table.

Each line is one schedule: its seed (re-run it alone with ``--seed SEED --schedules 1``), the faults
injected, transitions expected / missing / extra, flags on ``engagement.flags`` missing / extra (and
the identical re-emits consumers dedupe), aggregate and score rows wrong, drop alerts expected / missing /
extra (in ClickHouse or on ``engagement.alerts``), dead letters. Exit status 1
if any schedule was not exact.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from tests.chaos.run import Cluster, Result, run_schedule
from tests.chaos.schedule import generate

HEADER = (
    f"{'seed':>8} {'store':7} {'faults':>6} {'kinds':38} {'expect':>6} {'miss':>4} {'extra':>5} "
    f"{'flag-':>5} {'flag+':>5} {'reemit':>6} {'acct!':>5} {'post!':>5} {'score!':>6} "
    f"{'alerts':>6} {'al-':>3} {'al+':>3} {'dlq':>3} "
    f"{'secs':>5}  verdict"
)


def line(r: Result) -> str:
    kinds = ",".join(f"{k}:{v}" for k, v in sorted(r.injected.items()))
    verdict = "exact" if r.ok else ("ERROR " + r.error if r.error else "WRONG")
    return (
        f"{r.schedule.seed:>8} {r.schedule.store.split(':')[0]:7} {r.faults:>6} {kinds:38} "
        f"{r.expected_transitions:>6} {r.missing:>4} {r.extra:>5} {r.flags_missing:>5} {r.flags_extra:>5} "
        f"{r.reemits:>6} {r.account_rows_wrong:>5} {r.post_rows_wrong:>5} {r.scores_wrong:>6} "
        f"{r.expected_alerts:>6} {r.alerts_missing:>3} {r.alerts_extra:>3} "
        f"{r.dead_letters:>3} {r.seconds:>5.0f}  {verdict}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--schedules", type=int, default=8, help="how many schedules (default 8, ~10 min)")
    parser.add_argument("--seed", type=int, default=None, help="first seed (default: random)")
    parser.add_argument("--min-faults", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    first = args.seed if args.seed is not None else random.randrange(1, 10**6)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="chaos-"))
    print(f"chaos: {args.schedules} schedule(s) from seed {first}; work dir {workdir}", flush=True)
    print(HEADER, flush=True)
    results: list[Result] = []
    started = time.monotonic()
    with Cluster(workdir) as cluster:
        for seed in range(first, first + args.schedules):
            schedule = generate(seed, min_faults=args.min_faults)
            result = run_schedule(cluster, schedule)
            results.append(result)
            print(line(result), flush=True)
            if not result.ok:
                print(f"         schedule: {schedule.describe()}", flush=True)
                for detail in result.details[:12]:
                    print(f"         {detail}", flush=True)
    bad = [r for r in results if not r.ok]
    print(
        f"chaos: {len(results)} schedules, {sum(r.faults for r in results)} faults, "
        f"{sum(r.expected_transitions for r in results)} transitions expected, "
        f"{sum(r.missing for r in results)} missing, {sum(r.extra for r in results)} extra, "
        f"{sum(r.account_rows_wrong + r.post_rows_wrong for r in results)} aggregate rows wrong, "
        f"{sum(r.scores_wrong for r in results)} score rows wrong, "
        f"{sum(r.expected_alerts for r in results)} drop alerts expected, "
        f"{sum(r.alerts_missing for r in results)} missing, {sum(r.alerts_extra for r in results)} extra; "
        f"{len(bad)} schedule(s) not exact "
        f"{[r.schedule.seed for r in bad]}; {time.monotonic() - started:.0f} s",
        flush=True,
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
