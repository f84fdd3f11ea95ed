"""The benchmark's Markdown table (README "Performance" section)."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}{unit}" if value < 100 else f"{value:,.0f}{unit}"
    return f"{value:,}{unit}"


def render_markdown(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = [("events in the run", _fmt(results.get("events")))]
    if raw := results.get("raw"):
        rows.append(("(a) raw aiokafka getmany + orjson ceiling", _fmt(raw["events_per_s"], " events/s")))
    if naive := results.get("naive"):
        rows.append(
            ("(b) naive Faust (Record per event, windowed table)", _fmt(naive["events_per_s"], " events/s"))
        )
    if worker := results.get("worker"):
        rows.append(("(c) our worker, consumed → committed", _fmt(worker["events_per_s"], " events/s")))
        rows.append(("c / a", _fmt(results.get("worker_vs_raw"))))
        rows.append(("c / b", _fmt(results.get("worker_vs_naive"))))
        rows.append(("worker peak RSS", _fmt(worker["peak_rss_mb"], " MiB")))
        rows.append(("changelog messages per event", f"{worker['changelog_messages_per_event']:.4f}"))
    if ingest := results.get("ingest"):
        per = ingest["events_per_request"]
        rows.append(
            (
                f"(d) one ingest process, signed POST /v1/events, {per} events/request",
                f"{_fmt(ingest['requests_per_s'], ' requests/s')} = "
                f"{_fmt(ingest['events_per_s'], ' events/s')}",
            )
        )
        rows.append(("ingest latency p50 / p99", f"{ingest['p50_ms']:.1f} / {ingest['p99_ms']:.1f} ms"))
        rows.append(
            (
                "ingest CPU per request (cores used)",
                f"{ingest['ingest_cpu_us_per_request']:,.0f} µs ({ingest['ingest_cores']:.2f}); "
                f"load generator {ingest['loadgen_cpu_us_per_request']:,.0f} µs "
                f"({ingest['loadgen_cores']:.2f})",
            )
        )
    for key, label in (
        ("latency", "latency"),
        ("state", "state"),
        ("recovery", "recovery"),
        ("clickhouse", "clickhouse"),
    ):
        for name, value in (results.get(key) or {}).items():
            rows.append((f"{label}: {name}", _fmt(value)))
    lines = ["| measure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    machine = results.get("machine", {})
    lines.append("")
    lines.append(
        f"Machine: {machine.get('cpus')} cores, Python {machine.get('python')}; "
        "embedded Tansu broker, all in one run (`make bench`)."
    )
    return "\n".join(lines) + "\n"
