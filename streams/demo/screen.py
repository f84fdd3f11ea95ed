"""The demo's view: a rich Live screen on a terminal, one logfmt-style line every few seconds otherwise.

Both render the same :class:`View` (a snapshot the session assembles about twice a second), so the
plain log carries the same numbers as the screen. Rendering is pure; :class:`Screen` only decides
where and how often to draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from streams.demo.board import AccountRow, AlertLine, PipelineNumbers, TransitionLine
from streams.demo.sender import SendStats

DAY_MS = 86_400_000


@dataclass(frozen=True)
class DemoInfo:
    """What does not change while the demo runs."""

    run: int
    seed: int
    rate: float
    time_scale: float
    start_ms: int  # event time of the run's first event
    window_ms: int
    window_note: str  # e.g. "demo default; the product default is 30d"
    lateness_ms: int
    duration_s: float | None
    drop_account: str | None
    drop_start_ms: int | None
    drop_end_ms: int | None
    drop_factor: float
    ingest_url: str
    ingest_metrics: str
    worker_metrics: str
    data_dir: Path
    log_dir: Path
    kafka: str  # "embedded Tansu on 127.0.0.1:…" or the configured servers


@dataclass(frozen=True)
class View:
    elapsed_s: float
    send: SendStats
    pipeline: PipelineNumbers
    rates: Mapping[str, float]  # sent, accepted, processed: events per second
    rows: Sequence[AccountRow]
    transitions: Sequence[TransitionLine]
    alerts: Sequence[AlertLine]
    open_alerts: Sequence[AlertLine]
    status: str = "running"
    notes: Sequence[str] = field(default_factory=tuple)
    alerts_total: int = 0  # alert records so far (opened and resolved)


def duration_text(ms: int) -> str:
    """``172800000`` → ``2d``; ``5400000`` → ``1h30m``."""
    seconds = ms // 1000
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if v]
    return "".join(parts) or "0s"


def event_clock(ms: int | None, start_ms: int) -> str:
    """Event time as ``day 3 14:05`` (day 1 = the run's first day) — what the schedule is in."""
    if ms is None:
        return "-"
    day = (ms - (start_ms - start_ms % DAY_MS)) // DAY_MS + 1
    return f"day {day} {datetime.fromtimestamp(ms / 1000, UTC):%H:%M}"


def iso_minute(ms: int | None) -> str:
    return "-" if ms is None else f"{datetime.fromtimestamp(ms / 1000, UTC):%Y-%m-%dT%H:%MZ}"


def dlq_text(dlq: Mapping[str, int]) -> str:
    return ",".join(f"{reason}:{count}" for reason, count in sorted(dlq.items()) if count) or "0"


def plain_line(info: DemoInfo, view: View) -> str:
    """One logfmt-style line with the screen's numbers (the e2e test reads these keys)."""
    s, p = view.send, view.pipeline
    http = ",".join(f"{k}:{v}" for k, v in sorted(s.status_classes.items()))
    top = " ".join(f"{row.account_id}:{row.engaged}/{row.followers}" for row in view.rows[:3])
    return (
        f"[{view.elapsed_s:5.0f}s] status={view.status} event_time={iso_minute(s.event_time_ms)} "
        f"({event_clock(s.event_time_ms, info.start_ms).replace(' ', '_')}) "
        f"sent={s.events_sent} sent_per_s={view.rates.get('sent', 0):.0f} http={http} "
        f"retries={s.retries} failed={s.events_failed} behind_s={s.behind_s:.1f} "
        f"accepted={p.accepted} processed={p.handled} processed_per_s={view.rates.get('processed', 0):.0f} "
        f"lag={p.lag} dlq={dlq_text(p.dlq)} transitions_engaged={p.engaged} transitions_lapsed={p.lapsed} "
        f"engaged_now={p.engaged_now} alerts={view.alerts_total} alerts_open={len(view.open_alerts)} "
        f"top={top}"
    )


def _header(info: DemoInfo, view: View) -> Text:
    s = view.send
    text = Text()
    text.append("engage demo", style="bold")
    text.append(f"  run {info.run} · seed {info.seed} · {info.rate:,.0f} events/s mean · ")
    text.append(
        f"event time ×{info.time_scale:,.0f} ({duration_text(int(info.time_scale * 1000))} per second)"
    )
    text.append(f"\nwindow {duration_text(info.window_ms)} ({info.window_note}) · ")
    behind_s = info.lateness_ms / 1000 / info.time_scale
    text.append(
        f"allowed lateness {duration_text(info.lateness_ms)} (transitions and alerts are final "
        f"~{behind_s:,.0f}s after their event time) · Kafka: {info.kafka}"
    )
    text.append("\nevent time ")
    text.append(event_clock(s.event_time_ms, info.start_ms), style="bold cyan")
    text.append(f" ({iso_minute(s.event_time_ms)})  wall {view.elapsed_s:,.0f}s")
    if info.duration_s is not None and view.status == "running":
        text.append(f" of {info.duration_s:,.0f}s")
    if info.drop_account and info.drop_start_ms is not None and info.drop_end_ms is not None:
        now = s.event_time_ms or info.start_ms
        when = (
            f"in {(info.drop_start_ms - now) / 1000 / info.time_scale:,.0f}s"
            if now < info.drop_start_ms
            else ("now" if now < info.drop_end_ms else "done")
        )
        text.append(
            f"\nscheduled drop: {info.drop_account} loses {info.drop_factor:.0%} of its substantive "
            "interactions "
            f"{event_clock(info.drop_start_ms, info.start_ms)}–"
            f"{event_clock(info.drop_end_ms, info.start_ms)[-5:]} ({when})"
        )
    status_style = "green" if view.status == "running" else "yellow"
    text.append(f"\nstatus: {view.status}", style=status_style)
    return text


def _pipeline(view: View) -> Table:
    s, p, r = view.send, view.pipeline, view.rates
    table = Table(title="pipeline", title_justify="left", expand=False, show_edge=False)
    for column, justify in (("", "left"), ("events/s", "right"), ("total", "right"), ("", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    http = " ".join(f"{k} {v:,}" for k, v in sorted(s.status_classes.items()))
    table.add_row(
        "sent (signed webhooks)",
        f"{r.get('sent', 0):,.0f}",
        f"{s.events_sent:,}",
        f"{http} · retries {s.retries} · in flight {s.in_flight}"
        + (f" · behind {s.behind_s:.1f}s" if s.behind_s >= 1 else ""),
    )
    table.add_row(
        "accepted by ingest",
        f"{r.get('accepted', 0):,.0f}",
        f"{p.accepted:,}",
        "" if p.ingest_up else "[red]/metrics not answering[/red]",
    )
    table.add_row(
        "processed by worker",
        f"{r.get('processed', 0):,.0f}",
        f"{p.handled:,}",
        (
            f"lag {p.lag:,} messages · duplicates dropped {p.deduplicated:,} · "
            f"dead-lettered {p.rejected:,} · ClickHouse rows {p.sink_rows:,}"
        )
        if p.worker_up
        else "[red]/metrics not answering[/red]",
    )
    table.add_row("dead-lettered", "", f"{sum(p.dlq.values()):,}", dlq_text(p.dlq).replace(",", " "))
    table.add_row(
        "transitions",
        "",
        f"{p.engaged + p.lapsed:,}",
        f"engaged {p.engaged:,} · lapsed {p.lapsed:,} · engaged pairs now {p.engaged_now:,}",
    )
    return table


def _accounts(rows: Sequence[AccountRow]) -> Table:
    table = Table(title="top accounts (engaged followers now)", title_justify="left", show_edge=False)
    for column, justify in (
        ("account", "left"),
        ("platform", "left"),
        ("followers", "right"),
        ("engaged", "right"),
        ("ratio", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            row.account_id, row.platform, f"{row.followers:,}", f"{row.engaged:,}", f"{row.ratio:.3%}"
        )
    return table


def _transitions(info: DemoInfo, lines: Sequence[TransitionLine]) -> RenderableType:
    if not lines:
        return Text(
            "transitions: none yet (a follower needs 3 substantive interactions in the window)", style="dim"
        )
    table = Table(title="newest transitions", title_justify="left", show_edge=False)
    for column in ("event time", "", "follower → account", "n"):
        table.add_column(column)
    for line in sorted(lines, key=lambda t: t.at_ms, reverse=True):
        style = "green" if line.kind == "engaged" else "magenta"
        table.add_row(
            event_clock(line.at_ms, info.start_ms),
            Text(line.kind, style=style),
            f"{line.actor_id} → {line.account_id}",
            str(line.count),
        )
    return table


def _alerts(info: DemoInfo, lines: Sequence[AlertLine]) -> RenderableType:
    if not lines:
        return Text("alerts: none yet", style="dim")
    table = Table(title="engagement alerts", title_justify="left", show_edge=False)
    for column in ("event time", "alert", "account", "observed/h", "baseline/h"):
        table.add_column(column)
    for line in reversed(lines):
        style = "red" if line.state == "opened" else "green"
        table.add_row(
            event_clock(line.at_ms, info.start_ms),
            Text(f"{line.kind} {line.state}", style=style),
            line.account_id,
            f"{line.observed:g}",
            f"{line.baseline:.1f}",
        )
    return table


def _footer(info: DemoInfo, notes: Sequence[str]) -> Text:
    text = Text(style="dim")
    text.append(
        f"ingest {info.ingest_url} · metrics: worker {info.worker_metrics}, ingest {info.ingest_metrics}"
    )
    text.append(f"\ndata {info.data_dir} · logs {info.log_dir}")
    for note in notes:
        text.append(f"\nwarning: {note}", style="bold red")
    text.append("\nCtrl-C stops everything cleanly (the worker flushes its sink).")
    return text


def render(info: DemoInfo, view: View) -> RenderableType:
    return Group(
        _header(info, view),
        Text(""),
        _pipeline(view),
        Text(""),
        _accounts(view.rows),
        Text(""),
        _transitions(info, view.transitions),
        Text(""),
        _alerts(info, view.alerts),
        Text(""),
        _footer(info, view.notes),
    )


class Screen:
    """Draw views: in place on a terminal (``live``), else a plain line every ``plain_every_s``."""

    def __init__(
        self, info: DemoInfo, *, live: bool, plain_every_s: float = 5.0, out: IO[str] | None = None
    ) -> None:
        self.info = info
        self.console = Console(file=out, highlight=False)
        self.live = live and self.console.is_terminal
        self._plain_every_s = plain_every_s
        self._last_plain: float | None = None
        self._live: Live | None = None

    def __enter__(self) -> Screen:
        if self.live:
            self._live = Live(console=self.console, auto_refresh=False, screen=False, transient=False)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def show(self, view: View, *, force: bool = False) -> None:
        if self._live is not None:
            self._live.update(render(self.info, view), refresh=True)
            return
        if force or self._last_plain is None or view.elapsed_s - self._last_plain >= self._plain_every_s:
            self._last_plain = view.elapsed_s
            self.console.print(plain_line(self.info, view), soft_wrap=True)
            for note in view.notes:
                self.console.print(f"warning: {note}", soft_wrap=True)

    def say(self, message: str) -> None:
        """A line outside the live area (start-up, shutdown, hints)."""
        if self._live is not None:
            self._live.console.print(message, soft_wrap=True)
        else:
            self.console.print(message, soft_wrap=True)
