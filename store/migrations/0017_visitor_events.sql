-- Every event that names a visitor, sorted by visitor: the journey, the
-- data-subject export and erasure read one visitor as one small range here
-- instead of every event of the account (visitor_id is not in the sort key of
-- `events`, which the reports need ordered by day). A full copy of the
-- columns, because the export returns every stored column; events without a
-- visitor id (no consent) are not copied. Filled by 0018_visitor_events_mv on
-- every insert into events; 0019_visitor_events_backfill covers events stored
-- before.
-- ReplacingMergeTree on the event id like `events` (readers take the newest
-- version per event id, so unmerged copies give the same answer).
-- Holds everything `events` holds: per-visitor erasure deletes its rows
-- (store::erasure::ERASE_TABLES), retention ages them out by ts with the
-- same monthly partitions (store::retention).
-- Runs on ClickHouse 18.16 and current releases.
CREATE TABLE IF NOT EXISTS {db}.visitor_events
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
ORDER BY (account_id, visitor_id, ts_ms, event_id)
SETTINGS index_granularity = 1024
