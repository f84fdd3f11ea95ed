"""The demo's screen and plain log render the same numbers."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console

from streams.demo.board import AccountRow, AlertLine, PipelineNumbers, TransitionLine
from streams.demo.screen import DemoInfo, Screen, View, duration_text, event_clock, plain_line, render
from streams.demo.sender import SendStats

START = 1_767_571_200_000  # 2026-01-05T00:00Z
HOUR = 3_600_000

INFO = DemoInfo(
    run=2,
    seed=7,
    rate=2000,
    time_scale=3600,
    start_ms=START,
    window_ms=2 * 24 * HOUR,
    window_note="shortened for the demo",
    lateness_ms=5 * HOUR,
    duration_s=75,
    drop_account="brand-000",
    drop_start_ms=START + (7 * 24 + 12) * HOUR,
    drop_end_ms=START + (7 * 24 + 18) * HOUR,
    drop_factor=0.8,
    ingest_url="http://127.0.0.1:8080",
    ingest_metrics="http://127.0.0.1:8080/metrics",
    worker_metrics="http://127.0.0.1:9108/metrics",
    data_dir=Path("/data"),
    log_dir=Path("/data/logs"),
    kafka="embedded Tansu on 127.0.0.1:9092 (memory storage)",
)


def view(**changes: object) -> View:
    send = SendStats(events_generated=12_000, events_sent=11_900, requests=640, retries=2)
    send.status_classes.update({"2xx": 638, "5xx": 2})
    send.event_time_ms = START + 2 * 24 * HOUR + 14 * HOUR + 5 * 60_000
    base = View(
        elapsed_s=61.0,
        send=send,
        pipeline=PipelineNumbers(
            accepted=11_900,
            processed=11_500,
            deduplicated=100,
            lag=42,
            engaged=300,
            lapsed=20,
            engaged_now=280,
            dlq={"late": 3},
            worker_up=True,
            ingest_up=True,
        ),
        rates={"sent": 1990.0, "accepted": 1985.0, "processed": 1950.0},
        rows=[AccountRow("brand-000", "facebook", 100_000, 150), AccountRow("brand-001", "x", 50_000, 40)],
        transitions=[TransitionLine(START + 60 * HOUR, "engaged", "brand-000", "u0000000042", 3)],
        alerts=[AlertLine(START + 181 * HOUR, "drop", "opened", "brand-000", 9.0, 70.5)],
        open_alerts=[AlertLine(START + 181 * HOUR, "drop", "opened", "brand-000", 9.0, 70.5)],
        alerts_total=3,
    )
    return View(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_plain_line_carries_the_numbers() -> None:
    line = plain_line(INFO, view())
    fields = dict(re.findall(r"(\w+)=(\S+)", line))
    assert fields["sent"] == "11900" and fields["sent_per_s"] == "1990"
    assert fields["accepted"] == "11900" and fields["processed"] == "11500"
    assert fields["lag"] == "42" and fields["dlq"] == "late:3" and fields["http"] == "2xx:638,4xx:0,5xx:2"
    assert fields["transitions_engaged"] == "300" and fields["transitions_lapsed"] == "20"
    assert fields["engaged_now"] == "280" and fields["alerts_open"] == "1" and fields["alerts"] == "3"
    assert fields["event_time"] == "2026-01-07T14:05Z" and "(day_3_14:05)" in line
    assert "brand-000:150/100000" in line


def test_render_shows_every_section() -> None:
    console = Console(record=True, width=130, file=io.StringIO())
    console.print(render(INFO, view()))
    text = console.export_text()
    for expected in (
        "run 2 · seed 7",
        "window 2d (shortened for the demo)",
        "allowed lateness 5h",
        "event time day 3 14:05",
        "scheduled drop: brand-000 loses 80%",
        "day 8 12:00–18:00 (in 118s)",
        "sent (signed webhooks)",
        "11,900",
        "lag 42 messages",
        "engaged 300 · lapsed 20",
        "0.150%",
        "u0000000042 → brand-000",
        "drop opened",
        "http://127.0.0.1:9108/metrics",
        "/data/logs",
        "Ctrl-C",
    ):
        assert expected in text, expected


def test_render_before_anything_happened() -> None:
    console = Console(record=True, width=100, file=io.StringIO())
    empty = view(transitions=[], alerts=[], open_alerts=[], pipeline=PipelineNumbers(), send=SendStats())
    console.print(render(INFO, empty))
    text = console.export_text()
    assert "transitions: none yet" in text and "alerts: none yet" in text
    assert "/metrics not answering" in text


def test_plain_screen_prints_every_few_seconds() -> None:
    out = io.StringIO()
    with Screen(INFO, live=True, plain_every_s=5.0, out=out) as screen:  # not a terminal: plain lines
        assert not screen.live
        for second in range(0, 12):
            screen.show(view(elapsed_s=float(second)))
        screen.show(view(elapsed_s=12.0), force=True)
        screen.say("stopping")
    lines = out.getvalue().splitlines()
    assert [line[:7] for line in lines[:-1]] == ["[    0s", "[    5s", "[   10s", "[   12s"]
    assert lines[-1] == "stopping"


def test_clock_and_duration_text() -> None:
    assert duration_text(2 * 24 * HOUR) == "2d" and duration_text(HOUR + 30 * 60_000) == "1h30m"
    assert duration_text(0) == "0s"
    assert event_clock(START, START) == "day 1 00:00"
    assert event_clock(START + 24 * HOUR + 90 * 60_000, START) == "day 2 01:30"
    assert event_clock(None, START) == "-"
