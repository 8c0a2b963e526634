-- Page views, clicks, form submits, engagement and custom events after enrich.
-- ReplacingMergeTree on the event id: a redelivered Kafka message collapses
-- into the same logical row (queries read with FINAL or uniqExact(event_id)).
-- Runs on ClickHouse 18.16 and current releases: no TTL, no DateTime64, IPs
-- as strings; retention drops monthly partitions.
CREATE TABLE IF NOT EXISTS {db}.events
(
    account_id    String,
    event_id      String,
    event_type    String,
    ts            DateTime,
    ts_ms         UInt64,
    received_at   DateTime,
    visitor_id    String,
    session_id    String,
    page_id       String,
    consent       String,
    ip            String,
    ip_truncated  UInt8,
    country       String,
    region        String,
    city          String,
    latitude      Float32,
    longitude     Float32,
    url           String,
    path          String,
    referrer      String,
    referrer_host String,
    title         String,
    channel       String,
    source        String,
    medium        String,
    campaign      String,
    term          String,
    content       String,
    gclid         String,
    gbraid        String,
    wbraid        String,
    fbclid        String,
    msclkid       String,
    ttclid        String,
    li_fat_id     String,
    number        String,
    props         String,
    user_agent    String,
    browser       String,
    os            String,
    device        String,
    is_bot        UInt8,
    screen        String,
    lang          String,
    tz            String,
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(ts)
ORDER BY (account_id, toDate(ts), event_id)
SETTINGS index_granularity = 8192
