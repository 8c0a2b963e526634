-- Every tracking-number assignment and renewal ingest made (session-level
-- pool numbers), as enrich stored it: the source of truth for attribution.
CREATE TABLE IF NOT EXISTS {db}.assignments
(
    account_id    String,
    number        String,
    kind          String,
    pool_id       String,
    session_id    String,
    visitor_id    String,
    assigned_at   DateTime,
    assigned_ms   UInt64,
    expires_ms    UInt64,
    shared        UInt8,
    ip            String,
    ip_truncated  UInt8,
    country       String,
    url           String,
    referrer      String,
    referrer_host String,
    channel       String,
    source        String,
    medium        String,
    campaign      String,
    term          String,
    content       String,
    click_id_type String,
    click_id      String,
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(assigned_at)
ORDER BY (account_id, number, assigned_ms, session_id)
SETTINGS index_granularity = 8192
