-- Feeds attribution_daily (0010): the select of 0008 with UTC days for hours.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.attribution_daily_mv TO {db}.attribution_daily AS
SELECT
    account_id,
    toStartOfDay(ts, 'UTC') AS hour,
    is_bot,
    dim.1 AS dimension,
    dim.2 AS key,
    uniqHLL12State(if(session_id != '', session_id, page_id)) AS sessions,
    uniqHLL12IfState(visitor_id, visitor_id != '') AS visitors
FROM {db}.events
ARRAY JOIN [('channel', channel), ('source', source), ('medium', medium), ('campaign', campaign), ('landing_page', path), ('referrer_host', referrer_host)] AS dim
WHERE channel != ''
GROUP BY account_id, hour, is_bot, dimension, key
