-- Fills sessions from the events stored before its view existed (an
-- upgrade). Rows, not groups, so it streams without holding every session in
-- memory; events the view also saw meanwhile only add identical rows. Same
-- select as 0014_sessions_mv.
INSERT INTO {db}.sessions
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
