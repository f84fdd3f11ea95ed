-- Per-follower participation: comments and shares of each (account, follower) per UTC day of event time,
-- written by the workers as DELTAS (like the *_1m tables: always read through sum() ... GROUP BY, e.g. the
-- view below). Likes and follows make no row. What `engage report` and the engagement dashboard use for
-- participation concentration ("the share of substantive interactions from the top 20% of followers")
-- and for the followers who never went beyond likes and follows.
--
-- Retention: like the *_1m tables, `engage db migrate` keeps TTL day + INTERVAL n DAY at ENGAGE_ACTIVITY_TTL.

CREATE TABLE IF NOT EXISTS follower_activity_1d
(
    account_id  String,
    actor_id    String,
    platform    LowCardinality(String),
    day         DateTime('UTC'),            -- start of the UTC day
    substantive Int64,                      -- substantive comments and shares with commentary
    active      Int64                       -- every comment and share
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (account_id, day, actor_id, platform)
TTL day + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 100000;

-- Participation per follower and day: the partial rows summed.
CREATE OR REPLACE VIEW v_follower_activity_1d AS
SELECT
    account_id,
    actor_id,
    platform,
    day,
    sum(substantive) AS substantive,
    sum(active)      AS active
FROM follower_activity_1d
GROUP BY account_id, actor_id, platform, day;
