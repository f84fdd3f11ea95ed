-- Cluster variant of schemas/clickhouse/0005_follower_activity.sql: a replicated *_local table per shard
-- and a Distributed table under the contract name, sharded by account like the *_1m tables.

CREATE TABLE IF NOT EXISTS follower_activity_1d_local ON CLUSTER '{cluster}'
(
    account_id  String,
    actor_id    String,
    platform    LowCardinality(String),
    day         DateTime('UTC'),
    substantive Int64,
    active      Int64
)
ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(day)
ORDER BY (account_id, day, actor_id, platform)
TTL day + INTERVAL 400 DAY
SETTINGS replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

CREATE TABLE IF NOT EXISTS follower_activity_1d ON CLUSTER '{cluster}' AS follower_activity_1d_local
ENGINE = Distributed('{cluster}', currentDatabase(), follower_activity_1d_local, cityHash64(account_id));

CREATE OR REPLACE VIEW v_follower_activity_1d ON CLUSTER '{cluster}' AS
SELECT
    account_id,
    actor_id,
    platform,
    day,
    sum(substantive) AS substantive,
    sum(active)      AS active
FROM follower_activity_1d
GROUP BY account_id, actor_id, platform, day;
