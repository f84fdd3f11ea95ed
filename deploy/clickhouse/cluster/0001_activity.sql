-- Cluster variant of schemas/clickhouse/0001_activity.sql: sharded, replicated per-minute deltas.
--
-- <name>_local is the ReplicatedSummingMergeTree on every node; <name> is the Distributed table over it, with
-- the single-node table's name and columns, so the writer, the views and the dashboards are unchanged.
-- Every sharded table uses the same sharding key, cityHash64(account_id): all rows of an account live on one
-- shard, which is what makes FINAL and per-account sums correct when they run shard by shard.
--
-- Idempotency: replicated tables deduplicate insert_deduplication_token in Keeper, per table, over the last
-- replicated_deduplication_window blocks not older than replicated_deduplication_window_seconds. Give the
-- writer's user `distributed_foreground_insert = 1` so an insert into the Distributed table returns only after
-- the shards have it (and carries the token to them); otherwise an acknowledged insert may still be queued.
--
-- Retention: as on a single node; `engage db migrate --cluster NAME` alters the *_local tables ON CLUSTER.

CREATE TABLE IF NOT EXISTS account_activity_1m_local ON CLUSTER '{cluster}'
(
    account_id  String,
    platform    LowCardinality(String),
    minute      DateTime('UTC'),
    likes       Int64,
    comments    Int64,
    shares      Int64,
    follows     Int64,
    unfollows   Int64,
    substantive Int64,
    active      Int64,
    passive     Int64,
    engaged_new Int64,
    lapsed      Int64
)
ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(minute)
ORDER BY (account_id, platform, minute)
TTL minute + INTERVAL 400 DAY
SETTINGS replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

CREATE TABLE IF NOT EXISTS account_activity_1m ON CLUSTER '{cluster}' AS account_activity_1m_local
ENGINE = Distributed('{cluster}', currentDatabase(), account_activity_1m_local, cityHash64(account_id));

CREATE TABLE IF NOT EXISTS post_activity_1m_local ON CLUSTER '{cluster}'
(
    account_id           String,
    platform             LowCardinality(String),
    post_id              String,
    minute               DateTime('UTC'),
    likes                Int64,
    comments             Int64,
    substantive_comments Int64,
    shares               Int64
)
ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(minute)
ORDER BY (account_id, platform, post_id, minute)
TTL minute + INTERVAL 400 DAY
SETTINGS replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

CREATE TABLE IF NOT EXISTS post_activity_1m ON CLUSTER '{cluster}' AS post_activity_1m_local
ENGINE = Distributed('{cluster}', currentDatabase(), post_activity_1m_local, cityHash64(account_id));
