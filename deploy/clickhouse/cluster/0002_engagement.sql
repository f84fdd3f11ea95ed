-- Cluster variant of schemas/clickhouse/0002_engagement.sql: transitions, pair state and scores, sharded by
-- account like every table here (see 0001_activity.sql), so the ReplacingMergeTree keys of one account are on
-- one shard and FINAL, which runs per shard, is exact.

CREATE TABLE IF NOT EXISTS engagement_transitions_local ON CLUSTER '{cluster}'
(
    transition_id String,
    account_id    String,
    actor_id      String,
    platform      LowCardinality(String),
    kind          LowCardinality(String),   
    at            DateTime64(3, 'UTC'),
    count         UInt32                    
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(at)
ORDER BY (account_id, at, transition_id)
SETTINGS replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

CREATE TABLE IF NOT EXISTS engagement_transitions ON CLUSTER '{cluster}' AS engagement_transitions_local
ENGINE = Distributed('{cluster}', currentDatabase(), engagement_transitions_local, cityHash64(account_id));

CREATE TABLE IF NOT EXISTS engaged_followers_local ON CLUSTER '{cluster}'
(
    account_id String,
    actor_id   String,
    platform   LowCardinality(String),
    engaged    UInt8,                       
    since      DateTime64(3, 'UTC'),        
    count      UInt32
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', since)
ORDER BY (account_id, actor_id)
SETTINGS replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

CREATE TABLE IF NOT EXISTS engaged_followers ON CLUSTER '{cluster}' AS engaged_followers_local
ENGINE = Distributed('{cluster}', currentDatabase(), engaged_followers_local, cityHash64(account_id));

CREATE TABLE IF NOT EXISTS follower_scores_local ON CLUSTER '{cluster}'
(
    account_id   String,
    actor_id     String,
    platform     LowCardinality(String),
    score        Float64,
    as_of        DateTime64(3, 'UTC'),
    half_life_ms UInt64,
    interactions UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', as_of)
ORDER BY (account_id, actor_id)
SETTINGS replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

CREATE TABLE IF NOT EXISTS follower_scores ON CLUSTER '{cluster}' AS follower_scores_local
ENGINE = Distributed('{cluster}', currentDatabase(), follower_scores_local, cityHash64(account_id));
