"""After a demo run: record the generated audience's follower counts as ClickHouse ``account_baseline``.

Follower counts are not in the event stream, so ``engage report`` can only show an engagement ratio
once ``account_baseline`` has the account (see ``schemas/clickhouse/0003_alerts_and_baseline.sql``).
The demo knows its audience, so it writes the same denominators its screen used, dated at the run's
last event time (``v_engagement_ratio`` adds the follows and unfollows seen after that). Called once
the worker has exited: an embedded chDB directory can be open in one process only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from streams.settings import Settings


def record_baselines(settings: Settings, followers: Mapping[str, int], as_of_ms: int) -> int:
    """Insert one ``account_baseline`` row per account; returns the number of rows."""
    from streams.sinks.clickhouse import open_client

    updated = datetime.fromtimestamp(as_of_ms / 1000, UTC)
    rows = [(account, count, updated) for account, count in sorted(followers.items())]
    with open_client(settings, must_exist=True) as (client, database):
        client.insert(
            "account_baseline", rows, column_names=("account_id", "followers", "updated"), database=database
        )
    return len(rows)
