-- Cluster variant of schemas/clickhouse/0003_alerts_and_baseline.sql.
--
-- account_baseline is small and is joined by the views on every shard, so it is NOT sharded: one replicated
-- table whose Keeper path has no {shard}, i.e. every node holds all of it (needs {replica} unique across the
-- whole cluster, e.g. the host name). Insert into it on any node.

CREATE TABLE IF NOT EXISTS engagement_alerts_local ON CLUSTER '{cluster}'
(
    alert_id   String,
    account_id String,
    kind       LowCardinality(String),      
    state      LowCardinality(String),      
    at         DateTime64(3, 'UTC'),        
    observed   Float64,                     
    baseline   Float64,                     
    opened_at  DateTime64(3, 'UTC')         
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (account_id, opened_at, alert_id)
SETTINGS replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

CREATE TABLE IF NOT EXISTS engagement_alerts ON CLUSTER '{cluster}' AS engagement_alerts_local
ENGINE = Distributed('{cluster}', currentDatabase(), engagement_alerts_local, cityHash64(account_id));

CREATE TABLE IF NOT EXISTS account_baseline ON CLUSTER '{cluster}'
(
    account_id String,
    followers  UInt64,
    updated    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}', updated)
ORDER BY account_id;
