-- Feeds event_stats from every insert into events (see 0004). A landing event
-- (channel set) counts its session and visitor under its source; internal
-- pages (channel empty) only count as page views.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.event_stats_mv TO {db}.event_stats AS
SELECT
    account_id,
    toStartOfHour(ts) AS hour,
    is_bot,
    channel,
    source,
    medium,
    campaign,
    if(channel != '', path, '') AS landing_page,
    referrer_host,
    uniqIfState(if(session_id != '', session_id, page_id), channel != '') AS sessions,
    uniqIfState(visitor_id, channel != '' AND visitor_id != '') AS visitors,
    uniqIfState(event_id, event_type = 'pageview') AS pageviews
FROM {db}.events
GROUP BY account_id, hour, is_bot, channel, source, medium, campaign, landing_page, referrer_host
