-- Calls from the telephony provider with their attribution. A later
-- correction (the call arrived before its assignment) is a new row with a
-- higher version; ReplacingMergeTree keeps the newest per call id.
-- linear_* arrays hold one entry per session of the visitor in the 30-day
-- lookback (equal credit), so the dashboard switches models without recomputing.
CREATE TABLE IF NOT EXISTS {db}.calls
(
    account_id          String,
    call_id             String,
    started_at          DateTime,
    started_ms          UInt64,
    received_at         DateTime,
    duration_s          UInt32,
    status              String,
    to_number           String,
    from_number         String,
    caller_name         String,
    caller_city         String,
    attribution         String,
    confidence          String,
    pool_id             String,
    session_id          String,
    visitor_id          String,
    ip                  String,
    country             String,
    source              String,
    medium              String,
    campaign            String,
    term                String,
    content             String,
    channel             String,
    landing_page        String,
    referrer            String,
    referrer_host       String,
    click_id_type       String,
    click_id            String,
    first_touch_session String,
    first_touch_source  String,
    first_touch_medium  String,
    first_touch_campaign String,
    first_touch_channel String,
    first_touch_landing_page String,
    first_touch_referrer_host String,
    linear_session      Array(String),
    linear_source       Array(String),
    linear_medium       Array(String),
    linear_campaign     Array(String),
    linear_channel      Array(String),
    linear_landing_page Array(String),
    linear_referrer_host Array(String),
    version             UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(started_at)
ORDER BY (account_id, call_id)
SETTINGS index_granularity = 8192
