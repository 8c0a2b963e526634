-- Feeds attribution_stats (0007): each landing event (channel set) counts its
-- session and visitor once under each dimension's value.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.attribution_stats_mv TO {db}.attribution_stats AS
SELECT
    account_id,
    toStartOfHour(ts) AS hour,
    is_bot,
    dim.1 AS dimension,
    dim.2 AS key,
    uniqHLL12State(if(session_id != '', session_id, page_id)) AS sessions,
    uniqHLL12IfState(visitor_id, visitor_id != '') AS visitors
FROM {db}.events
ARRAY JOIN [('channel', channel), ('source', source), ('medium', medium), ('campaign', campaign), ('landing_page', path), ('referrer_host', referrer_host)] AS dim
WHERE channel != ''
GROUP BY account_id, hour, is_bot, dimension, key
