-- Hourly aggregates of events for the dashboard's reports, so a 30-day
-- attribution or timeseries reads about a hundred thousand small rows instead
-- of every event. Filled by 0005_event_stats_mv on every insert into events.
-- uniq states dedupe a redelivered event (same event id, same session) the way
-- the ReplacingMergeTree does, and merge across hours as set unions.
-- The states hold hashes of session, visitor and event ids: erasure rebuilds
-- the hours a visitor touched (dashboard-api reports::erase), retention drops
-- monthly partitions like the other tables.
CREATE TABLE IF NOT EXISTS {db}.event_stats
(
    account_id    String,
    hour          DateTime,
    is_bot        UInt8,
    channel       String,
    source        String,
    medium        String,
    campaign      String,
    landing_page  String,
    referrer_host String,
    sessions      AggregateFunction(uniqIf, String, UInt8),
    visitors      AggregateFunction(uniqIf, String, UInt8),
    pageviews     AggregateFunction(uniqIf, String, UInt8)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (account_id, hour, is_bot, channel, source, medium, campaign, landing_page, referrer_host)
SETTINGS index_granularity = 1024
