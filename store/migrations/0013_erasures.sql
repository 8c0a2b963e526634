-- The erasure suppression list: one row per erased visitor id and per session
-- id of theirs (kind 'visitor' or 'session'), as the sha256 hex of the id,
-- never the raw id. dashboard-api writes it before its delete mutations;
-- enrich loads it and refuses to store rows naming these ids again, so a
-- Kafka replay, a redelivery after a crash or an event still in flight cannot
-- bring an erased visitor back.
-- Kept forever: the retention job does not touch it (it is not among
-- store::RETENTION_TABLES). Kafka's retention is the operator's to change,
-- and a visitor who comes back with the same cookie stays erased.
-- Partitioned by month of erased_at so enrich's incremental read
-- (erased_at >= a recent second) opens only the newest parts.
-- Runs on ClickHouse 18.16 and current releases.
CREATE TABLE IF NOT EXISTS {db}.erasures
(
    account_id String,
    kind       String,
    id_hash    String,
    erased_at  DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(erased_at)
PARTITION BY toYYYYMM(erased_at)
ORDER BY (account_id, kind, id_hash)
SETTINGS index_granularity = 1024
