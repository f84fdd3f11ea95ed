"""``engage report --account ID [--since 7d] [--as-of latest] [--top 10] [--json]``: one account's engagement.

Engaged followers, the engagement ratio (when ``account_baseline`` has the account's follower count),
top advocates by valuable-engagement score, activity totals and active vs passive, the posts nobody
answered, how concentrated participation is, a per-day trend and open engagement-drop alerts. A table for
people, ``--json`` for scripts. Reads the ClickHouse views.

Everything is as of ``--as-of``: by default the account's latest event time (event time is what the
pipeline measures; a replay or the demo's accelerated clock would decay every score to nothing against
the wall clock), ``now`` for the wall clock, or an ISO date/time. ``--since 7d`` counts back from it.
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
    parser = sub.add_parser(
        "report",
        help="print an account's engaged followers, ratio, advocates, activity",
        description="One account's engagement: who is engaged, who answers, who only watches.",
    )
    parser.add_argument("--account", required=True, help="account id")
    parser.add_argument(
        "--since",
        default="7d",
        help="the period starts: a duration back from --as-of (7d, 24h) or an ISO date/time (UTC)",
    )
    parser.add_argument(
        "--as-of",
        default="latest",
        help="the report's instant: latest (the account's latest event time, default), now, or an ISO "
        "date/time (UTC); scores decay to it and the period ends there",
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
    from streams.sinks.clickhouse_report import account_report, latest_event_ms

    now_ms = int(clock() * 1000)
    with open_client(settings, must_exist=True) as (client, database):
        if args.as_of == "latest":
            as_of_ms = latest_event_ms(client, database, args.account) or now_ms
        elif args.as_of == "now":
            as_of_ms = now_ms
        elif _DATE.match(args.as_of.strip()):
            as_of_ms = parse_since(args.as_of, now_ms)
        else:
            raise ConfigError(f"--as-of: latest, now or an ISO date/time, not {args.as_of!r}")
        since_ms = parse_since(args.since, as_of_ms)
        report = account_report(
            client, database, args.account, since_ms=since_ms, as_of_ms=as_of_ms, top=args.top
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


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _render_participation(console: Any, report: Any) -> None:
    from rich.table import Table

    part = report.participation
    if part is None:
        return
    table = Table(title="participation in the period", show_header=False)
    table.add_row("followers who commented or shared", f"{part.participating_followers:,}")
    table.add_row("substantive interactions", f"{part.substantive_interactions:,}")
    table.add_row(
        f"share of them from the top 20% of followers ({part.top_followers:,} of {part.followers_basis})",
        _share(part.top20_substantive_share),
    )
    table.add_row("share of engagement score held by the top 20%", _share(part.top20_score_share))
    table.add_row(
        "followers who never went beyond likes and follows",
        _share(part.never_beyond_likes_share)
        if part.never_beyond_likes_share is not None
        else "- (no baseline)",
    )
    console.print(table)


def render(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{report.account_id}[/bold]  (as of {_when(report.as_of_ms)})")
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

    advocates = Table(title=f"top advocates (score decayed to {_when(report.as_of_ms)})")
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
    if report.active_share is not None:
        activity.add_row("active share (comments, shares)", f"{report.active_share:.1%}")
    console.print(activity)

    _render_participation(console, report)
    if report.unanswered_posts:
        posts = Table(
            title=f"posts nobody answered: {report.unanswered_posts:,} (no substantive comment, no share)"
        )
        for column in ("post", "platform", "likes", "comments", "last activity"):
            posts.add_column(column, justify="right" if column in ("likes", "comments") else "left")
        for post in report.unanswered:
            posts.add_row(
                post.post_id,
                post.platform,
                f"{post.likes:,}",
                f"{post.comments:,}",
                _when(post.last_activity_ms),
            )
        console.print(posts)
    if report.trend:
        trend = Table(title="engaged followers per day (end of day)")
        for column in ("day", "engaged", "followers", "ratio"):
            trend.add_column(column, justify="left" if column == "day" else "right")
        for day in report.trend:
            trend.add_row(
                day.day,
                f"{day.engaged_followers:,}",
                "-" if day.followers is None else f"{day.followers:,}",
                "-" if day.ratio is None else f"{day.ratio:.2%}",
            )
        console.print(trend)

    if report.open_alerts:
        alerts = Table(title="open alerts")
        for column in ("kind", "opened", "observed", "baseline"):
            alerts.add_column(column)
        for alert in report.open_alerts:
            alerts.add_row(
                alert.kind, _when(alert.opened_at_ms), f"{alert.observed:g}", f"{alert.baseline:g}"
            )
        console.print(alerts)
