-- Feeds sessions (0014_sessions) from every insert into events: each event
-- that carries a channel (a landing) is a candidate for its session's first
-- touch. No aggregation here: an alias such as `argMin(channel, ts_ms) AS
-- channel` would shadow the column on ClickHouse 18.16, and a subquery in a
-- view's SELECT fails there while pushing the block ("Unknown identifier").
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sessions_mv TO {db}.sessions AS
SELECT
    account_id,
    visitor_id,
    session_id,
    ts AS started_at,
    ts_ms AS started_ms,
    channel,
    source,
    medium,
    campaign,
    path AS landing_page,
    referrer_host,
    bitNot(ts_ms) AS rank
FROM {db}.events
WHERE channel != '' AND session_id != ''
