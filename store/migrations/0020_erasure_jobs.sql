-- Erasures accepted (`DELETE …/visitors/{id}` answered 202) and not yet
-- finished: the durable record dashboard-api resumes from after a restart
-- (store::erasure, "Erasure jobs" in store/README.md). One row per step done
-- (a job, `requested_ms`, may be worked on twice: rows are only added), the
-- newest (updated_ms) giving the job's progress; `sessions` and `hours`
-- are what the first step found (the visitor's session ids and the hours they
-- were active), kept because the rows they were read from are deleted later.
-- It holds the raw visitor and session ids (the job needs them to finish):
-- the last step deletes the job's rows, and the erasure's status stays
-- `pending` until that delete has run.
-- Tiny (only unfinished erasures); runs on ClickHouse 18.16 and current releases.
CREATE TABLE IF NOT EXISTS {db}.erasure_jobs
(
    account_id   String,
    visitor_id   String,
    requested_ms UInt64,
    step         UInt8,
    sessions     Array(String),
    hours        Array(UInt32),
    owner        String,
    updated_ms   UInt64
)
ENGINE = MergeTree
ORDER BY (account_id, visitor_id, requested_ms, updated_ms)
SETTINGS index_granularity = 256
