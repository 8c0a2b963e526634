-- Sessions and visitors per hour and per value of each attribution dimension,
-- as fixed-size HyperLogLog sketches (uniqHLL12: exact up to 16 ids, about
-- 1.6% error above), so a 30-day attribution report merges a few thousand
-- small states instead of millions of ids. Filled by 0008 on every insert into
-- events; sorted by dimension first so one report reads one contiguous range.
-- Erasure rebuilds the hours a visitor touched (dashboard-api reports::erase).
CREATE TABLE IF NOT EXISTS {db}.attribution_stats
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
SETTINGS index_granularity = 1024
