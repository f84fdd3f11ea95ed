"""A/B of the worker's throughput against another commit, in one run (``make bench-ab BASE=<ref>``).

The host's speed drifts between sessions, so a change is judged against the code before it measured in
the same run, alternating: for each round, ``base`` and ``head`` (the working tree) each run

- the worker phase of ``make bench`` (:func:`streams.bench.throughput.our_worker`: ``engage worker
  --sink memory`` over pre-produced events, first consumed → last flush committed, on its own broker);
- and, when both trees have it, ``tests/bench/stage_profile.py``: stage 1 in process (decode, engine,
  the flush protocol) without Kafka, CPU µs per event.

The order alternates between rounds (base first, then head first, …) so a drift in the host's speed
does not favour one side; the number of rounds is even, since the run that goes first in a round was
measured faster by itself (2026-12-07: by 25–30% in both measures, whichever tree it was). The verdict
is the geometric mean of the per-round ratios head ÷ base, each taken within one round.

Each side runs from its own tree (a ``git worktree`` of ``base`` in a temporary directory, put first on
``PYTHONPATH``) with this interpreter and its installed dependencies. Prints and writes
``bench/results/ab.md`` (and ``.json``): every run, the medians and the ratios.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

RESULTS = Path("bench/results")
_STAGE = re.compile(r"total ([0-9.]+) \(")


def _env(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tree), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def worker_events_per_s(tree: Path, events: int, out: Path) -> float:
    skip = [f"--skip={phase}" for phase in ("raw", "ingest", "naive", "latency", "pairs", "recovery")]
    subprocess.run(
        [sys.executable, "-m", "streams.bench", f"--events={events}", *skip, f"--out={out}"],
        cwd=tree,
        env=_env(tree),
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=1800,
    )
    result = orjson.loads((out / "latest.json").read_bytes())
    return float(result["worker"]["events_per_s"])


def stage_us_per_event(tree: Path, events: int) -> float | None:
    if not (tree / "tests" / "bench" / "stage_profile.py").exists():
        return None
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.stage_profile", f"--events={events}"],
        cwd=tree,
        env=_env(tree),
        check=True,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    found = _STAGE.search(done.stdout)
    return float(found.group(1)) if found else None


def render(base: str, runs: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    def median(side: str, key: str) -> float | None:
        values = [r[key] for r in runs if r["side"] == side and r[key] is not None]
        return statistics.median(values) if values else None

    def paired(key: str) -> list[float]:
        by_round: dict[int, dict[str, float]] = {}
        for r in runs:
            if r[key] is not None:
                by_round.setdefault(r["round"], {})[r["side"]] = r[key]
        return [sides["head"] / sides["base"] for sides in by_round.values() if len(sides) == 2]

    summary: dict[str, Any] = {"base": base, "runs": runs}
    lines = [
        f"A/B against `{base}` ({len(runs) // 2} rounds, alternating order)",
        "",
        "| round | side | worker events/s | stage 1 µs/event (in process) |",
        "|---|---|---|---|",
    ]
    for r in runs:
        stage = "—" if r["stage_us"] is None else f"{r['stage_us']:.2f}"
        lines.append(f"| {r['round']} | {r['side']} | {r['worker_eps']:,.0f} | {stage} |")
    for key, label, better in (
        ("worker_eps", "worker events/s", "higher"),
        ("stage_us", "stage 1 µs/event", "lower"),
    ):
        a, b = median("base", key), median("head", key)
        ratios = paired(key)
        if a and b and ratios:
            ratio = statistics.geometric_mean(ratios)
            summary[key] = {"base": a, "head": b, "round_ratios": ratios, "head_over_base": ratio}
            lines.append("")
            lines.append(
                f"{label} ({better} is better): medians base {a:,.2f}, head {b:,.2f}; "
                f"head ÷ base per round {', '.join(f'{x:.3f}' for x in ratios)}: "
                f"geometric mean {ratio:.3f}"
            )
    return "\n".join(lines) + "\n", summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.bench.ab")
    parser.add_argument("--base", required=True, help="the commit to compare the working tree with")
    parser.add_argument("--rounds", type=int, default=4, help="even, so each side goes first as often")
    parser.add_argument("--events", type=int, default=1_000_000, help="worker phase events per run")
    parser.add_argument("--stage-events", type=int, default=500_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.rounds < 2 or args.rounds % 2:
        parser.error("--rounds must be even (each side goes first in half of them)")
    head = Path.cwd()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base], check=True)
        try:
            for round_ in range(1, args.rounds + 1):
                sides = [("base", base), ("head", head)]
                for side, tree in sides if round_ % 2 else sides[::-1]:
                    eps = worker_events_per_s(tree, args.events, Path(tmp) / f"{side}-{round_}")
                    stage = stage_us_per_event(tree, args.stage_events)
                    runs.append({"round": round_, "side": side, "worker_eps": eps, "stage_us": stage})
                    print(
                        f"round {round_} {side}: worker {eps:,.0f} events/s, stage 1 {stage} µs/event",
                        flush=True,
                    )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], check=False)
    table, summary = render(args.base, runs)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ab.md").write_text(table)
    (args.out / "ab.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
