-- One row per session of a visitor, where the session came from (its first
-- event that has a channel; same-site pages carry none), sorted by visitor:
-- call attribution reads a visitor's sessions as one small range here
-- instead of scanning the account's events (visitor_id is not in their sort
-- key). Filled by 0014_sessions_mv on every insert into events, one row per
-- landing event; 0014_sessions_mv_backfill covers events stored before.
-- ReplacingMergeTree on `rank` (bitNot of the start, so the earliest landing
-- ranks highest) collapses a session to its first landing when parts merge;
-- readers take argMin over started_ms, so unmerged rows (and a session whose
-- landings fall into two monthly partitions) give the same answer. A
-- redelivered event adds an identical row, which changes no minimum.
-- Holds visitor and session ids: per-visitor erasure deletes its rows
-- (dashboard-api reports::erase), the visitor export lists them, and
-- retention ages them out by started_at like the other tables.
CREATE TABLE IF NOT EXISTS {db}.sessions
(
    account_id    String,
    visitor_id    String,
    session_id    String,
    started_at    DateTime,
    started_ms    UInt64,
    channel       String,
    source        String,
    medium        String,
    campaign      String,
    landing_page  String,
    referrer_host String,
    rank          UInt64
)
ENGINE = ReplacingMergeTree(rank)
PARTITION BY toYYYYMM(started_at)
ORDER BY (account_id, visitor_id, session_id)
SETTINGS index_granularity = 1024
