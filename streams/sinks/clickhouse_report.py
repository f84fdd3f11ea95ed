"""One account's engagement, read from the ClickHouse views (never the raw tables): ``engage report``.

Everything is as of one instant, ``as_of_ms``: scores decay to it and the period ends there. The command
defaults it to the account's latest event time (:func:`latest_event_ms`), not the wall clock: event time
is what the pipeline measures, and a replay or the demo (event time 3,600x faster than wall time) would
otherwise show every score decayed to nothing.

**Participation** comes from ``v_follower_activity_1d`` (each follower's comments and shares, and how many
were substantive, per UTC day): the share of the period's substantive interactions that came from the top
20% of followers, 20% of the account's followers (the baseline count) or, without a baseline, of the
followers who commented or shared in the period; and the share of followers who never commented or shared.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from streams.engagement.model import ACCOUNT_COUNTERS
from streams.sinks.clickhouse_migrations import quote_ident

ACTIVITY_COLUMNS = ACCOUNT_COUNTERS
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Advocate:
    actor_id: str
    platform: str
    score_now: float  # the score decayed to the report's now
    score: float
    as_of_ms: int
    interactions: int
    engaged: bool


@dataclass(frozen=True)
class OpenAlert:
    kind: str
    opened_at_ms: int
    observed: float
    baseline: float


@dataclass(frozen=True)
class UnansweredPost:
    post_id: str
    platform: str
    likes: int
    comments: int  # none of them substantive
    last_activity_ms: int


@dataclass(frozen=True)
class Participation:
    followers: int | None  # what the top 20% is a fifth of: the baseline count, else those who took part
    followers_basis: str  # "baseline" | "followers who commented or shared in the period"
    top_followers: int  # ceil(20% of followers)
    participating_followers: int  # followers who commented or shared in the period
    substantive_interactions: int  # in the period
    top20_substantive_share: float | None  # share of the period's substantive interactions from the top 20%
    top20_score_share: float | None  # share of the valuable-engagement score held by the top 20% of scores
    never_beyond_likes_share: float | None  # followers who never commented or shared (needs a baseline)


@dataclass(frozen=True)
class DayTrend:
    day: str  # YYYY-MM-DD (UTC)
    engaged_followers: int  # at the end of the day
    followers: int | None  # baseline-based count at the end of the day
    ratio: float | None


@dataclass(frozen=True)
class AccountReport:
    account_id: str
    as_of_ms: int
    since_ms: int
    engaged_followers: int
    followers: int | None  # baseline + net follows; None without a baseline
    ratio: float | None
    baseline_followers: int | None
    baseline_updated_ms: int | None
    activity: dict[str, int] = field(default_factory=dict)  # totals since since_ms
    top_advocates: list[Advocate] = field(default_factory=list)
    open_alerts: list[OpenAlert] = field(default_factory=list)
    active_share: float | None = None  # active / (active + passive) in the period
    unanswered_posts: int = 0  # posts with activity in the period and no substantive comment or share
    unanswered: list[UnansweredPost] = field(default_factory=list)  # the most liked of them
    participation: Participation | None = None
    trend: list[DayTrend] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def latest_event_ms(client: Any, database: str, account_id: str) -> int | None:
    """The account's latest event time seen: its newest score or activity minute (None: no data)."""
    db = quote_ident(database)
    rows = client.query(
        "SELECT greatest("
        f" (SELECT max(toUnixTimestamp64Milli(as_of)) FROM {db}.v_top_advocates"
        "  WHERE account_id = {a:String}),"
        f" (SELECT toInt64(max(toUnixTimestamp(minute))) * 1000 FROM {db}.v_account_activity_1m "
        "  WHERE account_id = {a:String}))",
        parameters={"a": account_id},
    ).result_rows
    value = rows[0][0] if rows else None
    return int(value) if value else None


def account_report(
    client: Any, database: str, account_id: str, *, since_ms: int, as_of_ms: int, top: int = 10
) -> AccountReport:
    db = quote_ident(database)
    now_ms = as_of_ms
    params = {
        "account": account_id,
        "now": now_ms,
        "since": since_ms // 1000,
        "until": now_ms // 1000,
        "top": top,
    }

    def rows(sql: str) -> list[tuple[Any, ...]]:
        result: list[tuple[Any, ...]] = client.query(sql, parameters=params).result_rows
        return result

    engaged = rows(
        f"SELECT engaged_followers FROM {db}.v_engaged_followers_now WHERE account_id = {{account:String}}"
    )
    ratio = rows(
        f"SELECT followers, ratio, baseline_followers, toUnixTimestamp64Milli(baseline_updated) "
        f"FROM {db}.v_engagement_ratio WHERE account_id = {{account:String}}"
    )
    sums = ", ".join(f"sum({c})" for c in ACTIVITY_COLUMNS)
    activity = rows(
        f"SELECT {sums} FROM {db}.v_account_activity_1m "
        f"WHERE account_id = {{account:String}} AND minute >= toDateTime({{since:Int64}}, 'UTC') "
        "AND minute <= toDateTime({until:Int64}, 'UTC')"
    )
    advocates = rows(
        "SELECT actor_id, platform, "
        "score * exp2(-greatest(0, {now:Int64} - toUnixTimestamp64Milli(as_of)) / half_life_ms) AS decayed, "
        "score, toUnixTimestamp64Milli(as_of), interactions, engaged "
        f"FROM {db}.v_top_advocates WHERE account_id = {{account:String}} "
        "ORDER BY decayed DESC, actor_id LIMIT {top:UInt32}"
    )
    alerts = rows(
        f"SELECT kind, toUnixTimestamp64Milli(opened_at), observed, baseline FROM {db}.v_open_alerts "
        "WHERE account_id = {account:String} ORDER BY opened_at"
    )
    followers, ratio_value, baseline, baseline_at = ratio[0] if ratio else (None, None, None, None)
    totals = {c: int(v or 0) for c, v in zip(ACTIVITY_COLUMNS, activity[0], strict=True)}
    moving = totals["active"] + totals["passive"]
    unanswered_count, unanswered = _unanswered(rows, db, top)
    return AccountReport(
        account_id=account_id,
        as_of_ms=now_ms,
        since_ms=since_ms,
        engaged_followers=int(engaged[0][0]) if engaged else 0,
        followers=None if followers is None else int(followers),
        ratio=None if ratio_value is None else float(ratio_value),
        baseline_followers=None if baseline is None else int(baseline),
        baseline_updated_ms=None if baseline_at is None else int(baseline_at),
        activity=totals,
        top_advocates=[
            Advocate(str(a), str(p), float(d), float(s), int(at), int(n), bool(e))
            for a, p, d, s, at, n, e in advocates
        ],
        open_alerts=[OpenAlert(str(k), int(at), float(o), float(b)) for k, at, o, b in alerts],
        active_share=totals["active"] / moving if moving else None,
        unanswered_posts=unanswered_count,
        unanswered=unanswered,
        participation=_participation(
            client, db, account_id, since_ms, now_ms, None if followers is None else int(followers)
        ),
        trend=_trend(rows, db, None if baseline is None else int(baseline), baseline_at, since_ms, now_ms),
    )


def _unanswered(rows: Any, db: str, top: int) -> tuple[int, list[UnansweredPost]]:
    """Posts with activity in the period and no answer in it: no substantive comment, no share."""
    found = rows(
        "SELECT post_id, any(platform), sum(likes) AS l, sum(comments), "
        "toInt64(max(toUnixTimestamp(minute))) * 1000, count() OVER () "
        f"FROM {db}.v_post_activity_1m WHERE account_id = {{account:String}} "
        "AND minute >= toDateTime({since:Int64}, 'UTC') AND minute <= toDateTime({until:Int64}, 'UTC') "
        "GROUP BY post_id HAVING sum(substantive_comments) = 0 AND sum(shares) = 0 "
        "ORDER BY l DESC, post_id LIMIT {top:UInt32}"
    )
    total = int(found[0][5]) if found else 0
    return total, [UnansweredPost(str(p), str(pl), int(lk), int(c), int(at)) for p, pl, lk, c, at, _ in found]


def _participation(
    client: Any, db: str, account_id: str, since_ms: int, as_of_ms: int, followers: int | None
) -> Participation:
    """Concentration from ``v_follower_activity_1d`` (comments and shares per follower and UTC day, so
    the period is whole days: from the day of ``since_ms`` to the day of ``as_of_ms``)."""
    params = {"account": account_id, "now": as_of_ms, "since": since_ms // 1000, "until": as_of_ms // 1000}

    def one(sql: str, **extra: Any) -> tuple[Any, ...]:
        rows: list[tuple[Any, ...]] = client.query(sql, parameters={**params, **extra}).result_rows
        return rows[0]

    per_follower = (
        "SELECT actor_id, sum(substantive) AS s, sum(active) AS a "
        f"FROM {db}.v_follower_activity_1d WHERE account_id = {{account:String}} "
        "AND day >= toStartOfDay(toDateTime({since:Int64}, 'UTC')) "
        "AND day <= toDateTime({until:Int64}, 'UTC') "
        "GROUP BY actor_id HAVING a > 0"
    )
    participating, substantive = (int(v or 0) for v in one(f"SELECT count(), sum(s) FROM ({per_follower})"))
    basis = followers if followers is not None else participating
    top = math.ceil(0.2 * basis) if basis else 0
    top_substantive = None
    if substantive and top:
        (top_sum,) = one(
            "SELECT arraySum(arraySlice(arrayReverseSort(groupArray(s)), 1, {top:UInt64})) "
            f"FROM ({per_follower})",
            top=top,
        )
        top_substantive = float(top_sum) / substantive
    top_score = None
    if top:
        total_s, top_s = one(
            "SELECT sum(d), arraySum(arraySlice(arrayReverseSort(groupArray(d)), 1, {top:UInt64})) "
            "FROM (SELECT score * exp2(-greatest(0, {now:Int64} - toUnixTimestamp64Milli(as_of)) "
            f"/ half_life_ms) AS d FROM {db}.v_top_advocates WHERE account_id = {{account:String}})",
            top=top,
        )
        top_score = float(top_s) / float(total_s) if total_s else None
    never = None
    if followers:
        (ever,) = one(
            f"SELECT uniqExact(actor_id) FROM {db}.v_follower_activity_1d "
            "WHERE account_id = {account:String} AND active > 0 AND day <= toDateTime({until:Int64}, 'UTC')"
        )
        never = max(0.0, 1.0 - int(ever) / followers)
    return Participation(
        followers=basis if basis else None,
        followers_basis="baseline"
        if followers is not None
        else "followers who commented or shared in the period",
        top_followers=top,
        participating_followers=participating,
        substantive_interactions=substantive,
        top20_substantive_share=top_substantive,
        top20_score_share=top_score,
        never_beyond_likes_share=never,
    )


def _trend(
    rows: Any, db: str, baseline: int | None, baseline_at_ms: Any, since_ms: int, as_of_ms: int
) -> list[DayTrend]:
    """Engaged followers (and the ratio, with a baseline) at the end of each day of the period.

    Engaged at the end of a day = every ``engaged`` transition minus every ``lapsed`` one up to then;
    followers = the baseline plus the net follows between the baseline's minute and the end of the day.
    Days without activity carry the previous day's figures.
    """
    found = rows(
        "SELECT toUInt32(toDate(minute)) AS day, "  # days since the epoch
        "sum(engaged_new) - sum(lapsed), sum(follows) - sum(unfollows) "
        f"FROM {db}.v_account_activity_1m WHERE account_id = {{account:String}} "
        "AND minute <= toDateTime({until:Int64}, 'UTC') GROUP BY day ORDER BY day"
    )
    offset = 0
    if baseline is not None and baseline_at_ms is not None:
        # The follows before the baseline's minute are already in the baseline count.
        before = rows(
            f"SELECT sum(follows) - sum(unfollows) FROM {db}.v_account_activity_1m "
            "WHERE account_id = {account:String} AND minute < toStartOfMinute(fromUnixTimestamp64Milli("
            f"toInt64({int(baseline_at_ms)}), 'UTC'))"
        )
        offset = int(before[0][0] or 0) if before else 0
    per_day = {int(day): (int(engaged), int(net)) for day, engaged, net in found}
    first, last = since_ms // DAY_MS, as_of_ms // DAY_MS
    engaged = net = 0
    for day in sorted(d for d in per_day if d < first):
        engaged, net = engaged + per_day[day][0], net + per_day[day][1]
    trend = []
    for day in range(first, last + 1):
        delta_engaged, delta_net = per_day.get(day, (0, 0))
        engaged, net = engaged + delta_engaged, net + delta_net
        followers = None if baseline is None else baseline + net - offset
        ratio = engaged / followers if followers is not None and followers > 0 else None
        iso = datetime.fromtimestamp(day * DAY_MS / 1000, UTC).strftime("%Y-%m-%d")
        trend.append(DayTrend(iso, engaged, followers, ratio))
    return trend
