-- attribution_stats (0007) per UTC day: a 30-day report merges one sketch per
-- day and value instead of one per hour (the whole days of a range come from
-- here, the hours around them from attribution_stats, the ragged ends from
-- events). `hour` holds the day's start. Filled by 0011; erasure rebuilds it too.
CREATE TABLE IF NOT EXISTS {db}.attribution_daily
(
    account_id String,
    hour       DateTime,
    is_bot     UInt8,
    dimension  String,
    key        String,
    sessions   AggregateFunction(uniqHLL12, String),
    visitors   AggregateFunction(uniqHLL12If, String, UInt8)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (account_id, dimension, hour, is_bot, key)
SETTINGS index_granularity = 256
