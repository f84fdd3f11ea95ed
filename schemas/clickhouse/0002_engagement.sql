-- Engagement state: transitions, the current state of every (account, follower) pair, and scores.
--
-- These are ReplacingMergeTree tables: a row with the same ORDER BY key replaces an older one (the one with
-- the highest version column, or the last inserted), but only when parts merge. Read them with FINAL, e.g.
-- through the views in 0004_views.sql. A replayed batch writes identical rows, which replace themselves; the
-- insert_deduplication_token (see 0001_activity.sql) usually drops them before that.

-- Every engaged/lapsed transition. transition_id hashes (account, actor, kind, at), so it is the identity;
-- account_id and at lead the key for per-account time-range scans.
CREATE TABLE IF NOT EXISTS engagement_transitions
(
    transition_id String,
    account_id    String,
    actor_id      String,
    platform      LowCardinality(String),
    kind          LowCardinality(String),   -- 'engaged' | 'lapsed'
    at            DateTime64(3, 'UTC'),
    count         UInt32                    -- substantive interactions in the window right after the transition
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (account_id, at, transition_id)
SETTINGS non_replicated_deduplication_window = 100000;

-- The current state of each pair: the latest transition wins (version = its event time).
CREATE TABLE IF NOT EXISTS engaged_followers
(
    account_id String,
    actor_id   String,
    platform   LowCardinality(String),
    engaged    UInt8,                       -- 1 after an 'engaged' transition, 0 after 'lapsed'
    since      DateTime64(3, 'UTC'),        -- event time of that transition
    count      UInt32
)
ENGINE = ReplacingMergeTree(since)
ORDER BY (account_id, actor_id)
SETTINGS non_replicated_deduplication_window = 100000;

-- The valuable-engagement score of each pair, exact as of event time as_of. It decays exponentially:
-- score_at(t) = score * exp2(-(t - as_of) / half_life_ms). half_life_ms (W/4) is stored with each row so a
-- query needs no configuration; v_top_advocates decays to now().
CREATE TABLE IF NOT EXISTS follower_scores
(
    account_id   String,
    actor_id     String,
    platform     LowCardinality(String),
    score        Float64,
    as_of        DateTime64(3, 'UTC'),
    half_life_ms UInt64,
    interactions UInt64
)
ENGINE = ReplacingMergeTree(as_of)
ORDER BY (account_id, actor_id)
SETTINGS non_replicated_deduplication_window = 100000;
