-- Views for dashboards and users. The tables hold partial rows (SummingMergeTree) and superseded rows
-- (ReplacingMergeTree) until the server merges parts, so a plain SELECT from a table can over-count. These
-- views do the sum() / FINAL for you: query the views, not the tables. Their names and columns are a contract
-- (Grafana dashboards, `engage report`); change them only in a new migration, additively.

-- Activity per account, platform and minute: the partial rows summed.
CREATE OR REPLACE VIEW v_account_activity_1m AS
SELECT
    account_id,
    platform,
    minute,
    sum(likes)       AS likes,
    sum(comments)    AS comments,
    sum(shares)      AS shares,
    sum(follows)     AS follows,
    sum(unfollows)   AS unfollows,
    sum(substantive) AS substantive,
    sum(active)      AS active,
    sum(passive)     AS passive,
    sum(engaged_new) AS engaged_new,
    sum(lapsed)      AS lapsed
FROM account_activity_1m
GROUP BY account_id, platform, minute;

-- Activity per post and minute: the partial rows summed.
CREATE OR REPLACE VIEW v_post_activity_1m AS
SELECT
    account_id,
    platform,
    post_id,
    minute,
    sum(likes)                AS likes,
    sum(comments)             AS comments,
    sum(substantive_comments) AS substantive_comments,
    sum(shares)               AS shares
FROM post_activity_1m
GROUP BY account_id, platform, post_id, minute;

-- Every transition once.
CREATE OR REPLACE VIEW v_engagement_transitions AS
SELECT transition_id, account_id, actor_id, platform, kind, at, count
FROM engagement_transitions FINAL;

-- The (account, follower) pairs engaged now, with the time they became engaged.
CREATE OR REPLACE VIEW v_engaged_followers AS
SELECT account_id, actor_id, platform, since, count
FROM engaged_followers FINAL
WHERE engaged = 1;

-- Engaged followers per account now.
CREATE OR REPLACE VIEW v_engaged_followers_now AS
SELECT account_id, count() AS engaged_followers
FROM engaged_followers FINAL
WHERE engaged = 1
GROUP BY account_id;

-- Engagement ratio of the accounts that have a baseline: engaged followers / followers, where followers is
-- the baseline plus follows minus unfollows from the baseline's minute on.
CREATE OR REPLACE VIEW v_engagement_ratio AS
SELECT
    b.account_id                                   AS account_id,
    e.engaged_followers                            AS engaged_followers,
    toInt64(b.followers) + f.net_follows           AS followers,
    if(followers > 0, engaged_followers / followers, NULL) AS ratio,
    b.followers                                    AS baseline_followers,
    b.updated                                      AS baseline_updated,
    f.net_follows                                  AS net_follows_since_baseline
FROM (SELECT account_id, followers, updated FROM account_baseline FINAL) AS b
LEFT JOIN v_engaged_followers_now AS e ON e.account_id = b.account_id
LEFT JOIN
(
    SELECT a.account_id AS account_id, sum(a.follows) - sum(a.unfollows) AS net_follows
    FROM account_activity_1m AS a
    INNER JOIN (SELECT account_id, updated FROM account_baseline FINAL) AS bb ON bb.account_id = a.account_id
    WHERE a.minute >= toStartOfMinute(bb.updated)
    GROUP BY a.account_id
) AS f ON f.account_id = b.account_id;

-- Every follower's valuable-engagement score, decayed to now (score_now), and whether the pair is engaged.
-- Top advocates of an account: WHERE account_id = '...' ORDER BY score_now DESC LIMIT 10.
CREATE OR REPLACE VIEW v_top_advocates AS
SELECT
    s.account_id   AS account_id,
    s.actor_id     AS actor_id,
    s.platform     AS platform,
    s.score * exp2(-greatest(0, toUnixTimestamp64Milli(now64(3)) - toUnixTimestamp64Milli(s.as_of))
                   / s.half_life_ms) AS score_now,
    s.score        AS score,
    s.as_of        AS as_of,
    s.half_life_ms AS half_life_ms,
    s.interactions AS interactions,
    e.engaged      AS engaged
FROM (SELECT * FROM follower_scores FINAL) AS s
LEFT JOIN (SELECT account_id, actor_id, engaged FROM engaged_followers FINAL) AS e
    ON e.account_id = s.account_id AND e.actor_id = s.actor_id;

-- Posts that people like but nobody talks about: likes > 0 and no substantive comment, over all time.
CREATE OR REPLACE VIEW v_posts_unanswered AS
SELECT
    account_id,
    platform,
    post_id,
    sum(likes)                AS likes,
    sum(comments)             AS comments,
    sum(substantive_comments) AS substantive_comments,
    sum(shares)               AS shares,
    min(minute)               AS first_activity,
    max(minute)               AS last_activity
FROM post_activity_1m
GROUP BY account_id, platform, post_id
HAVING likes > 0 AND substantive_comments = 0;

-- Every alert state change once.
CREATE OR REPLACE VIEW v_engagement_alerts AS
SELECT alert_id, account_id, kind, state, at, observed, baseline, opened_at
FROM engagement_alerts FINAL;

-- Alert episodes opened and not resolved (yet). Aggregated rather than NOT IN (subquery), so the same SQL
-- works over Distributed tables (deploy/clickhouse/cluster).
CREATE OR REPLACE VIEW v_open_alerts AS
SELECT
    anyIf(alert_id, state = 'opened') AS alert_id,
    account_id,
    kind,
    opened_at,
    anyIf(observed, state = 'opened') AS observed,
    anyIf(baseline, state = 'opened') AS baseline
FROM engagement_alerts FINAL
GROUP BY account_id, kind, opened_at
HAVING countIf(state = 'opened') > 0 AND countIf(state = 'resolved') = 0;
