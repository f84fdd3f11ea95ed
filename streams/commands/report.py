"""``engage report --account ID [--since 7d] [--top 10] [--json]``: one account's engagement.

Engaged followers now, the engagement ratio (when ``account_baseline`` has the account's follower count),
top advocates by valuable-engagement score decayed to now, activity totals since ``--since`` and open
engagement-drop alerts. A table for people, ``--json`` for scripts. Reads the ClickHouse views.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.errors import ConfigError
from streams.settings import Settings, parse_duration_ms

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def register(sub: Any) -> None:
    parser = sub.add_parser("report", help="print an account's engaged followers, ratio, advocates, activity")
    parser.add_argument("--account", required=True, help="account id")
    parser.add_argument(
        "--since",
        default="7d",
        help="activity since: a duration back from now (7d, 24h) or an ISO date/time (UTC)",
    )
    parser.add_argument("--top", type=int, default=10, help="how many advocates to list")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.set_defaults(func=run)


def parse_since(text: str, now_ms: int) -> int:
    """``7d``: now − 7 days; ``2024-05-01`` or ``2024-05-01T12:00:00[Z|+02:00]``: that instant (UTC)."""
    if _DATE.match(text.strip()):
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"--since: not an ISO date/time: {text!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    return now_ms - parse_duration_ms(text)


def run(args: argparse.Namespace, settings: Settings, clock: Callable[[], float] = time.time) -> int:
    from streams.sinks.clickhouse import open_client
    from streams.sinks.clickhouse_report import account_report

    now_ms = int(clock() * 1000)
    since_ms = parse_since(args.since, now_ms)
    with open_client(settings, must_exist=True) as (client, database):
        report = account_report(
            client, database, args.account, since_ms=since_ms, now_ms=now_ms, top=args.top
        )
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
    else:
        render(report)
    return 0


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def render(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{report.account_id}[/bold]  (as of {_when(report.now_ms)})")
    summary = Table(show_header=False, box=None)
    summary.add_row("engaged followers now", f"{report.engaged_followers:,}")
    if report.ratio is not None:
        summary.add_row(
            "followers",
            f"{report.followers:,} (baseline {report.baseline_followers:,} "
            f"at {_when(report.baseline_updated_ms)})",
        )
        summary.add_row("engagement ratio", f"{report.ratio:.2%}")
    else:
        summary.add_row("engagement ratio", "- (no follower baseline: INSERT INTO account_baseline)")
    console.print(summary)

    advocates = Table(title="top advocates (score decayed to now)")
    for column in ("follower", "platform", "score", "interactions", "engaged", "last scored"):
        advocates.add_column(column, justify="right" if column in ("score", "interactions") else "left")
    for a in report.top_advocates:
        advocates.add_row(
            a.actor_id,
            a.platform,
            f"{a.score_now:.2f}",
            str(a.interactions),
            "yes" if a.engaged else "no",
            _when(a.as_of_ms),
        )
    console.print(advocates)

    activity = Table(title=f"activity since {_when(report.since_ms)}")
    activity.add_column("")
    activity.add_column("total", justify="right")
    for name, total in report.activity.items():
        activity.add_row(name.replace("_", " "), f"{total:,}")
    console.print(activity)

    if report.open_alerts:
        alerts = Table(title="open alerts")
        for column in ("kind", "opened", "observed", "baseline"):
            alerts.add_column(column)
        for alert in report.open_alerts:
            alerts.add_row(
                alert.kind, _when(alert.opened_at_ms), f"{alert.observed:g}", f"{alert.baseline:g}"
            )
        console.print(alerts)
