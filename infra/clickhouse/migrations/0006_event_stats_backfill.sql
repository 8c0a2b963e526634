-- Fills event_stats from the events stored before its materialized view
-- existed (an upgrade). uniq states are sets, so events the view also saw
-- while this ran are not counted twice. Same select as 0005.
INSERT INTO {db}.event_stats
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
