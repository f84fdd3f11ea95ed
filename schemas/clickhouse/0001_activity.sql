-- Per-minute activity, written by the workers as DELTAS (partial sums).
--
-- Several workers, partitions and flushes each add rows for the same key; SummingMergeTree adds rows with
-- equal ORDER BY keys together when parts merge, but merges happen whenever the server likes, so a key can
-- have several rows at any moment. ALWAYS read these tables through sum() ... GROUP BY, e.g. through the views
-- v_account_activity_1m / v_post_activity_1m (0004_views.sql). Counters are signed because rows are deltas.
--
-- Idempotency: every insert carries insert_deduplication_token = '<batch token>:<table>'; the server keeps
-- the tokens of the last non_replicated_deduplication_window insert blocks (one block per partition touched)
-- and silently drops a block whose token it has seen, so a batch replayed after a crash is counted once.
-- 100000 blocks is many hours of inserts at 1 flush/s for each of 8 partitions (x2 around a month boundary),
-- far longer than a rebalance or a restart.
--
-- Retention: TTL minute + INTERVAL 400 DAY is the default; `engage db migrate` sets it to ENGAGE_ACTIVITY_TTL
-- (0 = keep forever) with ALTER TABLE ... MODIFY TTL whenever the two differ. Rows older than the TTL are
-- dropped, also on insert: a replay of events older than the TTL does not land.

CREATE TABLE IF NOT EXISTS account_activity_1m
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
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (account_id, platform, minute)
TTL minute + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 100000;

CREATE TABLE IF NOT EXISTS post_activity_1m
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
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (account_id, platform, post_id, minute)
TTL minute + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 100000;
