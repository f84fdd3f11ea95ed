"""``make soak``: the live pipeline (``engage demo``) left running, with each process's RSS, CPU and the lag.

Runs ``engage demo --plain --duration <minutes>`` at the demo's rate on a fresh data directory and every
``--every`` seconds samples, from ``/proc``, the resident set and the CPU used since the last sample of
the demo and each of its children (the embedded broker, ``engage worker``, ``engage ingest``), and from
the worker's ``/metrics`` the consumer lag of the interaction topics and the events consumed.

The verdict: a process's memory *levelled off* when the least-squares slope of its RSS over the last
third of the samples is below ``--flat-mb-per-min``; the lag *kept up* when its largest value in the last
third is below ``--max-lag``. Results go to ``bench/results/soak.md`` (the table) and ``soak.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from streams.bench.procs import ENGAGE, scrape_labelled

RESULTS = Path("bench/results")
ROLES = ("broker", "worker", "ingest", "demo")


@dataclass
class Sample:
    """One row of the table: seconds since start, then per role RSS (MiB) and CPU (% of one core)."""

    elapsed_s: float
    rss_mb: dict[str, float] = field(default_factory=dict)
    cpu_pct: dict[str, float] = field(default_factory=dict)
    lag: float | None = None
    consumed: float | None = None


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux ``/proc``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def role_of(pid: int) -> str | None:
    try:
        argv = (Path(f"/proc/{pid}/cmdline").read_bytes()).split(b"\0")
    except OSError:
        return None
    text = b" ".join(argv).decode(errors="replace")
    if "tansu" in text:
        return "broker"
    for role in ("worker", "ingest"):
        if f"streams.cli {role}" in text:
            return role
    return None


def rss_mb(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def cpu_s(pid: int) -> float | None:
    with contextlib.suppress(OSError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return None


def slope_per_min(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of ``(seconds, value)`` points, per minute (0 for fewer than two points)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    cov = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return cov / var * 60.0


@dataclass(frozen=True)
class Verdict:
    slopes: dict[str, float]  # MiB per minute over the last third, per role
    flat: dict[str, bool]
    max_lag_last_third: float
    lag_ok: bool


def verdict(samples: Sequence[Sample], flat_mb_per_min: float, max_lag: float, duration_s: float) -> Verdict:
    """Over the last third of the samples taken while the traffic ran (not while the demo stops)."""
    running = [s for s in samples if s.elapsed_s <= duration_s and {"broker", "worker"} <= s.rss_mb.keys()]
    tail = running[len(running) - max(2, len(running) // 3) :]
    slopes = {
        role: slope_per_min([(s.elapsed_s, s.rss_mb[role]) for s in tail if role in s.rss_mb])
        for role in ROLES
        if any(role in s.rss_mb for s in tail)
    }
    lags = [s.lag for s in tail if s.lag is not None]
    worst = max(lags) if lags else float("nan")
    return Verdict(
        slopes=slopes,
        flat={role: slope < flat_mb_per_min for role, slope in slopes.items()},
        max_lag_last_third=worst,
        lag_ok=bool(lags) and worst < max_lag,
    )


def render(samples: Sequence[Sample], result: Verdict, header: str) -> str:
    roles = [r for r in ROLES if any(r in s.rss_mb for s in samples)]
    head = ["min"] + [f"{r} MiB" for r in roles] + [f"{r} %cpu" for r in roles] + ["lag", "events/s"]
    lines = [header, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    previous: Sample | None = None
    for s in samples:
        rate = ""
        if previous is not None and s.consumed is not None and previous.consumed is not None:
            rate = f"{(s.consumed - previous.consumed) / max(1e-9, s.elapsed_s - previous.elapsed_s):,.0f}"
        cells = [f"{s.elapsed_s / 60:.1f}"]
        cells += [f"{s.rss_mb[r]:,.0f}" if r in s.rss_mb else "" for r in roles]
        cells += [f"{s.cpu_pct[r]:.0f}" if r in s.cpu_pct else "" for r in roles]
        cells += [f"{s.lag:,.0f}" if s.lag is not None else "", rate]
        lines.append("| " + " | ".join(cells) + " |")
        previous = s
    lines.append("")
    for role, slope in result.slopes.items():
        state = "levelled off" if result.flat[role] else "STILL GROWING"
        lines.append(f"- {role}: RSS slope over the last third {slope:+.1f} MiB/min: {state}")
    state = "kept up" if result.lag_ok else "FELL BEHIND"
    lines.append(
        f"- consumer lag: at most {result.max_lag_last_third:,.0f} messages in the last third: {state}"
    )
    return "\n".join(lines) + "\n"


def interaction_lag(port: int) -> tuple[float | None, float | None]:
    """(lag of the interaction topics, events consumed) from the worker's ``/metrics``."""
    try:
        got = scrape_labelled(port, ("engage_consumer_lag_messages", "engage_events_consumed_total"))
    except OSError:
        return None, None
    lag = sum(
        value
        for labels, value in got.get("engage_consumer_lag_messages", {}).items()
        if "interactions." in labels and "changelog" not in labels
    )
    consumed = sum(got.get("engage_events_consumed_total", {}).values())
    return lag, consumed


def run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="engage-soak-"))
    env = {k: v for k, v in os.environ.items() if k != "ENGAGE_DATA_DIR"}
    env.update(ENGAGE_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    env.update(dict(kv.split("=", 1) for kv in args.env))
    log_path = data_dir / "soak-demo.out"
    data_dir.mkdir(parents=True, exist_ok=True)
    duration_s = args.minutes * 60
    argv = [*ENGAGE, "demo", "--plain", "--duration", str(duration_s), "--rate", str(args.rate)]
    argv += ["--broker-memory-mb", str(args.broker_memory_mb)]
    print(f"soak: {' '.join(argv[2:])} for {args.minutes:g} min; data and logs in {data_dir}", flush=True)
    with log_path.open("wb") as out:
        demo = subprocess.Popen(
            argv,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    samples: list[Sample] = []
    started = time.monotonic()
    last_cpu: dict[str, tuple[float, float]] = {}
    port: int | None = None
    try:
        while demo.poll() is None:
            time.sleep(args.every)
            if port is None:
                match = re.search(rb"worker /metrics: http://[^:]+:(\d+)/", log_path.read_bytes())
                port = int(match.group(1)) if match else None
            pids = {"demo": demo.pid}
            for child in children(demo.pid):
                role = role_of(child)
                if role:
                    pids[role] = child
            now = time.monotonic()
            sample = Sample(elapsed_s=now - started)
            for role, pid in pids.items():
                rss, cpu = rss_mb(pid), cpu_s(pid)
                if rss is None or cpu is None:
                    continue
                sample.rss_mb[role] = rss
                if role in last_cpu:
                    then, used = last_cpu[role]
                    sample.cpu_pct[role] = 100 * (cpu - used) / max(1e-9, now - then)
                last_cpu[role] = (now, cpu)
            if port is not None:
                sample.lag, sample.consumed = interaction_lag(port)
            samples.append(sample)
            cells = " ".join(
                f"{r}={sample.rss_mb[r]:.0f}MiB/{sample.cpu_pct.get(r, 0):.0f}%" for r in sample.rss_mb
            )
            print(f"soak {sample.elapsed_s / 60:5.1f} min: {cells} lag={sample.lag}", flush=True)
    except KeyboardInterrupt:
        print("soak: interrupted; stopping the demo", flush=True)
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
                demo.wait()
    result = verdict(samples, args.flat_mb_per_min, args.max_lag, duration_s)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"Soak {when}: `engage demo --rate {args.rate:g}` for {args.minutes:g} min, "
        f"a sample every {args.every:g} s; demo exit status {demo.returncode}; {os.cpu_count()} CPUs"
        + (f"; {args.note}" if args.note else "")
    )
    table = render(samples, result, header)
    print(table, flush=True)
    with contextlib.suppress(OSError):
        print(log_path.read_text(errors="replace").splitlines()[-4:], flush=True)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{args.name}.md").write_text(table)
    (out_dir / f"{args.name}.json").write_bytes(
        orjson.dumps(
            {"samples": [asdict(s) for s in samples], "verdict": asdict(result), "header": header},
            option=orjson.OPT_INDENT_2,
        )
    )
    return 0 if demo.returncode == 0 and all(result.flat.values()) and result.lag_ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=40.0)
    parser.add_argument("--rate", type=float, default=2000.0, help="events/s (the demo's default)")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--flat-mb-per-min", type=float, default=2.0)
    parser.add_argument("--max-lag", type=float, default=5000.0, help="messages (each up to 500 events)")
    parser.add_argument(
        "--broker-memory-mb",
        type=float,
        default=0,
        help="the demo's broker budget (default 0: none, so the soak sees the broker's growth)",
    )
    parser.add_argument("--data-dir", default=None, help="default: a fresh temporary directory")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the demo (repeatable)")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--name", default="soak")
    parser.add_argument("--note", default="", help="a note for the table's header (e.g. the machine's load)")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
