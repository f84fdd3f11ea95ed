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
    for key, label in (
        ("ingest", "ingest"),
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
