"""One account's engagement, read from the ClickHouse views (never the raw tables): ``engage report``.

``now_ms`` is passed in (the CLI reads the clock) so scores decay to a known instant and tests are exact.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from streams.engagement.model import ACCOUNT_COUNTERS
from streams.sinks.clickhouse_migrations import quote_ident

ACTIVITY_COLUMNS = ACCOUNT_COUNTERS


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
class AccountReport:
    account_id: str
    now_ms: int
    since_ms: int
    engaged_followers: int
    followers: int | None  # baseline + net follows; None without a baseline
    ratio: float | None
    baseline_followers: int | None
    baseline_updated_ms: int | None
    activity: dict[str, int] = field(default_factory=dict)  # totals since since_ms
    top_advocates: list[Advocate] = field(default_factory=list)
    open_alerts: list[OpenAlert] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def account_report(
    client: Any, database: str, account_id: str, *, since_ms: int, now_ms: int, top: int = 10
) -> AccountReport:
    db = quote_ident(database)
    params = {"account": account_id, "now": now_ms, "since": since_ms // 1000, "top": top}

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
        f"WHERE account_id = {{account:String}} AND minute >= toDateTime({{since:Int64}}, 'UTC')"
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
    return AccountReport(
        account_id=account_id,
        now_ms=now_ms,
        since_ms=since_ms,
        engaged_followers=int(engaged[0][0]) if engaged else 0,
        followers=None if followers is None else int(followers),
        ratio=None if ratio_value is None else float(ratio_value),
        baseline_followers=None if baseline is None else int(baseline),
        baseline_updated_ms=None if baseline_at is None else int(baseline_at),
        activity={c: int(v or 0) for c, v in zip(ACTIVITY_COLUMNS, activity[0], strict=True)},
        top_advocates=[
            Advocate(str(a), str(p), float(d), float(s), int(at), int(n), bool(e))
            for a, p, d, s, at, n, e in advocates
        ],
        open_alerts=[OpenAlert(str(k), int(at), float(o), float(b)) for k, at, o, b in alerts],
    )
