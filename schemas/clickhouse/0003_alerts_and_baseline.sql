-- Engagement-drop alerts (written by the worker) and follower-count baselines (written by you).

-- One row per alert state change; an episode is (account_id, kind, opened_at): an 'opened' row, later a
-- 'resolved' row. alert_id hashes (account, kind, opened_at, state). Read open alerts from v_open_alerts.
CREATE TABLE IF NOT EXISTS engagement_alerts
(
    alert_id   String,
    account_id String,
    kind       LowCardinality(String),      -- 'drop' | 'silence'
    state      LowCardinality(String),      -- 'opened' | 'resolved'
    at         DateTime64(3, 'UTC'),        -- when this state was entered (event time)
    observed   Float64,                     -- substantive interactions in the hour that triggered it
    baseline   Float64,                     -- what was expected for that hour
    opened_at  DateTime64(3, 'UTC')         -- start of the episode
)
ENGINE = ReplacingMergeTree
ORDER BY (account_id, opened_at, alert_id)
SETTINGS non_replicated_deduplication_window = 100000;

-- Follower counts are not in the event stream (a brand has followers from before the pipeline started), so
-- the engagement ratio needs a baseline: the follower count of an account at a point in time. Fill it from the
-- platform's API, e.g.
--   INSERT INTO account_baseline (account_id, followers) VALUES ('acme', 120000);
-- The latest row per account wins. v_engagement_ratio adds the follows minus unfollows seen since `updated`.
CREATE TABLE IF NOT EXISTS account_baseline
(
    account_id String,
    followers  UInt64,
    updated    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated)
ORDER BY account_id;
