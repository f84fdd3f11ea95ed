"""The benchmark's Markdown table (README "Performance" section): one row per figure, each saying what
it measures. Rows whose phase did not run (``--skip``) are left out."""

from __future__ import annotations

from typing import Any


def _num(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        text = f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    else:
        text = f"{value:,}"
    return f"{text}{unit}"


def _rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    events = results.get("events")
    if raw := results.get("raw"):
        rows.append(
            (
                "(a) raw ceiling",
                _num(raw["events_per_s"], " events/s"),
                f"aiokafka `getmany` + orjson over the {events:,} pre-produced events",
            )
        )
    if naive := results.get("naive"):
        rows.append(
            (
                "(b) naive Faust",
                _num(naive["events_per_s"], " events/s"),
                f"a Record per single-event message, a tumbling windowed table; {naive['events']:,} events",
            )
        )
    if worker := results.get("worker"):
        rows += [
            (
                "(c) our worker",
                _num(worker["events_per_s"], " events/s"),
                "`engage worker --sink memory`, first event consumed → last flush committed; "
                f"{events:,} events",
            ),
            ("c / a", _num(results.get("worker_vs_raw")), "share of the raw ceiling"),
            ("c / b", _num(results.get("worker_vs_naive")), "speed-up over the naive Faust worker"),
            ("worker peak RSS", _num(worker["peak_rss_mb"], " MiB"), "VmHWM of the (c) worker process"),
            (
                "changelog messages per event",
                f"{worker['changelog_messages_per_event']:.4f}",
                "state-table changelog records written by (c) ÷ events",
            ),
        ]
    if ingest := results.get("ingest"):
        rows += [
            (
                "(d) ingest",
                f"{_num(ingest['requests_per_s'], ' requests/s')} = "
                f"{_num(ingest['events_per_s'], ' events/s')}",
                f"one `engage ingest`, signed `POST /v1/events` with {ingest['events_per_request']} events "
                "each from a load-generator process on loopback; 2xx only after Kafka acked every event",
            ),
            (
                "ingest latency p50 / p99",
                f"{ingest['p50_ms']:.1f} / {ingest['p99_ms']:.1f} ms",
                "request sent → 2xx read, at the load generator",
            ),
            (
                "ingest CPU per request",
                f"{_num(ingest['ingest_cpu_us_per_request'], ' µs')} ({ingest['ingest_cores']:.2f} cores)",
                f"CPU seconds of the ingest process ÷ requests; load generator "
                f"{_num(ingest['loadgen_cpu_us_per_request'], ' µs')} ({ingest['loadgen_cores']:.2f} cores)",
            ),
        ]
    if lat := results.get("latency"):
        rows += [
            (
                "live pipeline max",
                _num(lat["max_events_per_s"], " events/s"),
                "a burst of signed webhooks → `engage ingest` → worker with ClickHouse sink (chDB), "
                "events ÷ time until the worker consumed them all",
            ),
            (
                "latency p50 / p99",
                f"{lat['p50_s']:.2f} s / {lat['p99_s']:.2f} s",
                f"webhook answered 2xx → its aggregate row visible in ClickHouse, {lat['probes_found']}/"
                f"{lat['probes']} probes, at {lat['load']:.0%} of the measured max "
                f"({_num(lat['accepted_events_per_s'])} events/s accepted); 1 s commit interval",
            ),
        ]
    if ch := results.get("clickhouse"):
        tables = ", ".join(f"{t} {v:.3f}" for t, v in ch["rows_per_event_by_table"].items())
        rows.append(
            (
                "ClickHouse rows per event",
                f"{ch['rows_per_event']:.3f}",
                f"rows inserted ÷ events during the latency run ({tables})",
            )
        )
    for size, state in sorted((results.get("state") or {}).items(), key=lambda kv: int(kv[0])):
        pairs = int(size)
        label = f"{pairs / 1e6:g}M" if pairs >= 1_000_000 else f"{pairs:,}"
        rows.append(
            (
                f"state: {label} pairs",
                f"{state['bytes_per_pair']:.1f} bytes/pair, peak RSS {_num(state['peak_rss_mb'], ' MiB')}",
                f"encoded keys + values ÷ pairs counted by a restored engine ({state['pairs_counted']:,}); "
                "VmHWM of a fresh process holding them "
                f"(interpreter alone {state['rss_at_start_mb']:.0f} MiB)",
            )
        )
    if rec := results.get("recovery"):
        baseline = (results.get("worker") or {}).get("start_to_first_event_s")
        versus = f"; an empty table: {baseline:.1f} s" if baseline is not None else ""
        read = (rec.get("changelog_read_done_s") or 0) - (rec.get("changelog_read_start_s") or 0)
        rows.append(
            (
                f"recovery, {rec['pairs'] / 1e6:g}M pairs",
                f"{rec['first_event_s']:.1f} s (all partitions {rec['all_partitions_s']:.1f} s)",
                "fresh `engage worker` of the group, process start → first event processed: "
                f"{'a plain consumer' if rec.get('changelog_reader') == 'plain consumer' else 'Faust'} read "
                f"the {rec['changelog_records']:,}-record changelog in {read:.1f} s, then each partition "
                f"restored its engine; {_num(rec['tracked_pairs'])} pairs tracked after, "
                f"peak RSS {_num(rec['worker_peak_rss_mb'], ' MiB')}{versus}",
            )
        )
    return rows


def render_markdown(results: dict[str, Any]) -> str:
    lines = ["| measure | value | what it measures |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {how} |" for name, value, how in _rows(results)]
    machine = results.get("machine", {})
    seconds = results.get("bench_seconds")
    took = f", {seconds / 60:.1f} minutes" if seconds else ""
    lines.append("")
    lines.append(
        f"Machine: {machine.get('cpus')} cores, Python {machine.get('python')}; embedded Tansu broker, "
        f"all in one run (`make bench`{took}, {results.get('date', '')})."
    )
    return "\n".join(lines) + "\n"
