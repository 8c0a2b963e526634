//! ClickHouse adapter: schema migrations, batched inserts, the look-ups that
//! attribution needs, erasure-safe retention. Every user-supplied value is
//! bound with `?`; only the database name (validated at start) is formatted in.

use clickhouse::{Client, Row};
use serde::Deserialize;

use crate::rows::{AssignmentRow, CallRow, EventRow};
use crate::settings::ClickHouseSettings;
use crate::suppression::{self, Erasure, LateIds};

/// Migrations, applied in order, each once (`ringpath.schema_migrations`).
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_events", include_str!("../../infra/clickhouse/migrations/0001_events.sql")),
    ("0002_calls", include_str!("../../infra/clickhouse/migrations/0002_calls.sql")),
    ("0003_assignments", include_str!("../../infra/clickhouse/migrations/0003_assignments.sql")),
    // Owned by dashboard-api: hourly aggregates for its reports (erasure rebuilds them).
    ("0004_event_stats", include_str!("../../infra/clickhouse/migrations/0004_event_stats.sql")),
    ("0005_event_stats_mv", include_str!("../../infra/clickhouse/migrations/0005_event_stats_mv.sql")),
    ("0006_event_stats_backfill", include_str!("../../infra/clickhouse/migrations/0006_event_stats_backfill.sql")),
    ("0007_attribution_stats", include_str!("../../infra/clickhouse/migrations/0007_attribution_stats.sql")),
    ("0008_attribution_stats_mv", include_str!("../../infra/clickhouse/migrations/0008_attribution_stats_mv.sql")),
    ("0009_attribution_stats_backfill", include_str!("../../infra/clickhouse/migrations/0009_attribution_stats_backfill.sql")),
    ("0010_attribution_daily", include_str!("../../infra/clickhouse/migrations/0010_attribution_daily.sql")),
    ("0011_attribution_daily_mv", include_str!("../../infra/clickhouse/migrations/0011_attribution_daily_mv.sql")),
    ("0012_attribution_daily_backfill", include_str!("../../infra/clickhouse/migrations/0012_attribution_daily_backfill.sql")),
    // The erasure suppression list: written by dashboard-api, read by enrich (suppression.rs).
    ("0013_erasures", include_str!("../../infra/clickhouse/migrations/0013_erasures.sql")),
];

pub const TABLES: &[&str] = &["events", "calls", "assignments"];

#[derive(Debug, thiserror::Error)]
#[error("clickhouse: {0}")]
pub struct StoreError(#[from] pub clickhouse::error::Error);

#[derive(Clone)]
pub struct Store {
    client: Client,
}

/// A session of a visitor as the events table saw it: where it came from.
#[derive(Debug, Clone, PartialEq, Row, Deserialize, Default)]
pub struct SessionTouch {
    pub session_id: String,
    pub started_ms: u64,
    pub channel: String,
    pub source: String,
    pub medium: String,
    pub campaign: String,
    pub landing_page: String,
    pub referrer_host: String,
}

const DAY_MS: u64 = 86_400_000;

/// Epoch milliseconds as DateTime seconds for binding.
fn secs(ms: u64) -> u32 {
    (ms / 1000).min(u64::from(u32::MAX)) as u32
}

/// Sessions (as [`SessionTouch`]) from the events matching `filter`: each
/// session's source is its first event that has a channel (same-site page
/// views carry none). The inner query renames the columns because ClickHouse
/// 18.16 lets a SELECT alias shadow a column in WHERE (`argMin(channel, …) AS
/// channel` would put an aggregate into the filter).
fn session_touches(filter: &str, limit: &str) -> String {
    [
        "SELECT session_id, min(t) AS started_ms, argMin(c, t) AS channel, argMin(s, t) AS source, argMin(m, t) AS medium, \
         argMin(ca, t) AS campaign, argMin(p, t) AS landing_page, argMin(r, t) AS referrer_host FROM \
         (SELECT session_id, ts_ms AS t, channel AS c, source AS s, medium AS m, campaign AS ca, path AS p, referrer_host AS r \
          FROM events WHERE channel != '' AND ",
        filter,
        ") GROUP BY session_id ORDER BY started_ms ",
        limit,
    ]
    .concat()
}

/// Drops SQL comment lines: the client treats `?` as a bind marker anywhere.
fn strip_comments(sql: &str) -> String {
    sql.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n")
}

impl Store {
    pub fn new(settings: &ClickHouseSettings) -> Store {
        Store { client: settings.client() }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates the database and applies pending migrations. Idempotent.
    pub async fn migrate(settings: &ClickHouseSettings) -> Result<Vec<String>, StoreError> {
        let db = &settings.database;
        let root = ClickHouseSettings { database: "default".into(), ..settings.clone() }.client();
        root.query(&format!("CREATE DATABASE IF NOT EXISTS {db}")).execute().await?;
        root.query(&format!(
            "CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version String, applied_at DateTime) ENGINE = MergeTree ORDER BY version"
        ))
        .execute()
        .await?;
        let applied: Vec<String> = root.query(&format!("SELECT version FROM {db}.schema_migrations")).fetch_all::<String>().await?;
        let mut done = Vec::new();
        for (version, sql) in MIGRATIONS {
            if applied.iter().any(|a| a == version) {
                continue;
            }
            root.query(&strip_comments(&sql.replace("{db}", db))).execute().await?;
            root.query(&format!("INSERT INTO {db}.schema_migrations (version, applied_at) VALUES (?, now())")).bind(*version).execute().await?;
            done.push((*version).to_owned());
        }
        Ok(done)
    }

    async fn insert_rows<T>(&self, table: &str, rows: &[T::Value<'_>]) -> Result<(), StoreError>
    where
        T: clickhouse::RowWrite,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = self.client.insert::<T>(table).await?;
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await?;
        Ok(())
    }

    pub async fn insert_events(&self, rows: &[EventRow]) -> Result<(), StoreError> {
        self.insert_rows::<EventRow>("events", rows).await
    }

    pub async fn insert_calls(&self, rows: &[CallRow]) -> Result<(), StoreError> {
        self.insert_rows::<CallRow>("calls", rows).await
    }

    pub async fn insert_assignments(&self, rows: &[AssignmentRow]) -> Result<(), StoreError> {
        self.insert_rows::<AssignmentRow>("assignments", rows).await
    }

    /// The number's assignment rows that cover `at_ms` or ended in the day
    /// before it, oldest first: the holders at that time, and each holder
    /// session's first assignment (its landing), in one read.
    pub async fn number_history(&self, account: &str, number: &str, at_ms: u64) -> Result<Vec<AssignmentRow>, StoreError> {
        Ok(self
            .client
            .query("SELECT ?fields FROM assignments FINAL WHERE account_id = ? AND number = ? AND assigned_ms <= ? AND expires_ms >= ? ORDER BY assigned_ms LIMIT 1000")
            .bind(account)
            .bind(number)
            .bind(at_ms)
            .bind(at_ms.saturating_sub(DAY_MS))
            .fetch_all::<AssignmentRow>()
            .await?)
    }

    /// The visitor's sessions that started in [from_ms, to_ms] and their
    /// first known session before `to_ms` (first touch looks further back
    /// than the linear lookback, as far as retention allows), in one read;
    /// each with the source of its first event that has one.
    pub async fn visitor_touches(&self, account: &str, visitor: &str, from_ms: u64, to_ms: u64) -> Result<Vec<SessionTouch>, StoreError> {
        // `toDate(ts)` bounds let ClickHouse read only the days in range (it is in the sort key).
        let first = session_touches("account_id = ? AND toDate(ts) <= toDate(toDateTime(?)) AND visitor_id = ? AND session_id != '' AND ts_ms <= ?", "LIMIT 1");
        let lookback = session_touches(
            "account_id = ? AND toDate(ts) >= toDate(toDateTime(?)) AND toDate(ts) <= toDate(toDateTime(?)) \
             AND visitor_id = ? AND session_id != '' AND ts_ms >= ? AND ts_ms <= ?",
            "LIMIT 1000",
        );
        let sql = ["SELECT * FROM (", first.as_str(), ") UNION ALL SELECT * FROM (", lookback.as_str(), ")"].concat();
        Ok(self
            .client
            .query(&sql)
            .bind(account)
            .bind(secs(to_ms))
            .bind(visitor)
            .bind(to_ms)
            .bind(account)
            .bind(secs(from_ms))
            .bind(secs(to_ms))
            .bind(visitor)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all::<SessionTouch>()
            .await?)
    }

    /// One session's source from its own events (for sessions without a visitor id),
    /// looking at the days around `around_ms` (a session lives for hours, not weeks).
    pub async fn visitor_sessions_by_session(&self, account: &str, session: &str, around_ms: u64) -> Result<Option<SessionTouch>, StoreError> {
        let sql = session_touches("account_id = ? AND toDate(ts) >= toDate(toDateTime(?)) AND toDate(ts) <= toDate(toDateTime(?)) AND session_id = ?", "");
        let (from, to) = (secs(around_ms.saturating_sub(2 * DAY_MS)), secs(around_ms + 2 * DAY_MS));
        Ok(self.client.query(&sql).bind(account).bind(from).bind(to).bind(session).fetch_optional::<SessionTouch>().await?)
    }

    /// Calls whose newest version is still waiting for its assignment.
    /// The state is read with argMax over versions, not `FINAL … WHERE`: old
    /// servers move such a filter before the merge and would return calls
    /// that a later version already corrected.
    pub async fn pending_calls(&self) -> Result<Vec<CallRow>, StoreError> {
        Ok(self
            .client
            .query(
                "SELECT ?fields FROM calls FINAL WHERE (account_id, call_id) IN \
                 (SELECT account_id, call_id FROM calls WHERE started_at >= now() - INTERVAL 30 DAY \
                  GROUP BY account_id, call_id HAVING argMax(attribution, version) = 'pending') LIMIT 10000",
            )
            .fetch_all::<CallRow>()
            .await?)
    }

    /// Calls to any of `keys` (`account|number`) started in [from_ms, to_ms]
    /// whose newest version has no session yet (`pending`, or `none` after
    /// the wait): an assignment that arrives late can still claim them.
    pub async fn unresolved_calls(&self, keys: &[String], from_ms: u64, to_ms: u64) -> Result<Vec<CallRow>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .client
            .query(
                "SELECT ?fields FROM calls FINAL WHERE (account_id, call_id) IN \
                 (SELECT account_id, call_id FROM calls WHERE started_at >= toDateTime(?) AND started_ms >= ? AND started_ms <= ? \
                  AND has(?, concat(account_id, '|', to_number)) \
                  GROUP BY account_id, call_id HAVING argMax(attribution, version) IN ('pending', 'none')) LIMIT 10000",
            )
            .bind((from_ms / 1000) as u32)
            .bind(from_ms)
            .bind(to_ms)
            .bind(keys)
            .fetch_all::<CallRow>()
            .await?)
    }

    /// One retention pass (SPEC §1 `retention_days`), cheap when nothing is due:
    /// - a monthly partition older than every account's retention (and than
    ///   the default, which covers accounts no longer configured) is dropped;
    /// - otherwise, per table, one asynchronous DELETE mutation covers every
    ///   account that has rows older than its own cutoff. Cutoffs are whole
    ///   UTC days, so a steady stream issues at most one mutation per table a
    ///   day, and none while an earlier mutation on the table is still running.
    pub async fn apply_retention(&self, accounts: &[(String, u32)], now_s: i64) -> Result<RetentionPass, StoreError> {
        let today = now_s.div_euclid(86_400) * 86_400;
        let cutoff = |days: u32| (today - i64::from(days.max(1)) * 86_400).clamp(0, i64::from(u32::MAX)) as u32;
        let longest = accounts.iter().map(|(_, d)| *d).max().unwrap_or(0).max(DEFAULT_RETENTION_DAYS);
        let latest_cutoff = accounts.iter().map(|(_, d)| cutoff(*d)).max().unwrap_or(0);
        let mut pass = RetentionPass::default();
        for (table, column) in RETENTION_TABLES {
            let partitions: Vec<String> = self
                .client
                .query("SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() AND table = ? AND active")
                .bind(table)
                .fetch_all::<String>()
                .await?;
            for partition in partitions {
                let Some(end) = month_partition_end(&partition) else { continue };
                if end <= i64::from(cutoff(longest)) {
                    self.client.query(&format!("ALTER TABLE {table} DROP PARTITION {partition}")).execute().await?;
                    pass.dropped_partitions.push((table.to_owned(), partition));
                }
            }
            if accounts.is_empty() {
                continue;
            }
            let oldest: Vec<AccountOldest> = self
                .client
                .query(&format!("SELECT account_id, toUInt32(min({column})) AS oldest FROM {table} WHERE {column} < toDateTime(?) GROUP BY account_id"))
                .bind(latest_cutoff)
                .fetch_all::<AccountOldest>()
                .await?;
            let due: Vec<(String, u32)> = accounts
                .iter()
                .filter(|(id, days)| oldest.iter().any(|o| &o.account_id == id && o.oldest < cutoff(*days)))
                .map(|(id, days)| (id.clone(), cutoff(*days)))
                .collect();
            if due.is_empty() {
                continue;
            }
            let running: u64 = self
                .client
                .query("SELECT count() FROM system.mutations WHERE database = currentDatabase() AND table = ? AND is_done = 0")
                .bind(table)
                .fetch_one::<u64>()
                .await?;
            if running > 0 {
                continue;
            }
            let ids: Vec<&str> = due.iter().map(|(id, _)| id.as_str()).collect();
            let cutoffs: Vec<u32> = due.iter().map(|(_, c)| *c).collect();
            // transform(): one mutation for all due accounts; others map to 0 (nothing older).
            self.client
                .query(&format!("ALTER TABLE {table} DELETE WHERE {column} < toDateTime(transform(account_id, ?, ?, toUInt32(0)))"))
                .bind(&ids)
                .bind(&cutoffs)
                .execute()
                .await?;
            pass.deletions.push((table.to_owned(), ids.iter().map(|s| (*s).to_owned()).collect()));
        }
        Ok(pass)
    }
}

/// Erasure: the suppression list (migration 0013; its tombstones are kept
/// forever, `erasures` is deliberately not a retention table), the clean-up
/// of rows stored too late for it, and the look-up that keeps a redelivered
/// call from replacing its stored attribution.
impl Store {
    /// Tombstones with `erased_at` at or after `since_s` (0: all of them).
    pub async fn erasures_since(&self, since_s: u32) -> Result<Vec<Erasure>, StoreError> {
        Ok(self.client.query("SELECT ?fields FROM erasures WHERE erased_at >= toDateTime(?)").bind(since_s).fetch_all::<Erasure>().await?)
    }

    /// Removes rows of `account` stored while an erasure of these ids was
    /// being written (too late for the filter, too late for the erasure's own
    /// mutations): deletes their events and assignments, anonymises their
    /// calls — the same statements dashboard-api's erasure issues.
    pub async fn erase_late_rows(&self, account: &str, late: &LateIds) -> Result<(), StoreError> {
        // Never empty (an empty array literal has no element type on old
        // servers), and "!" is never an id.
        let visitors: Vec<&str> = late.visitors.iter().map(String::as_str).chain(["!"]).collect();
        let sessions: Vec<&str> = late.sessions.iter().map(String::as_str).chain(["!"]).collect();
        self.client
            .query(&format!(
                "ALTER TABLE calls UPDATE {} WHERE account_id = ? AND (has(?, visitor_id) OR has(?, session_id) OR has(?, first_touch_session) OR hasAny(?, linear_session))",
                suppression::call_erasure_set_sql()
            ))
            .bind(account)
            .bind(&visitors)
            .bind(&sessions)
            .bind(&sessions)
            .bind(&sessions)
            .execute()
            .await?;
        for table in ["events", "assignments"] {
            self.client
                .query(&format!("ALTER TABLE {table} DELETE WHERE account_id = ? AND (has(?, visitor_id) OR has(?, session_id))"))
                .bind(account)
                .bind(&visitors)
                .bind(&sessions)
                .execute()
                .await?;
        }
        Ok(())
    }

    /// The newest stored version of each call among `keys` (`account|call_id`)
    /// that started in [from_s, to_s]: a call message delivered again finds
    /// what its first delivery stored.
    pub async fn stored_call_versions(&self, keys: &[String], from_s: u32, to_s: u32) -> Result<Vec<StoredCall>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .client
            .query(
                "SELECT account_id, call_id, max(version) AS newest FROM calls \
                 WHERE started_at >= toDateTime(?) AND started_at <= toDateTime(?) AND has(?, concat(account_id, '|', call_id)) \
                 GROUP BY account_id, call_id",
            )
            .bind(from_s)
            .bind(to_s)
            .bind(keys)
            .fetch_all::<StoredCall>()
            .await?)
    }
}

/// A call already stored, and its newest version.
#[derive(Debug, Clone, PartialEq, Eq, Row, Deserialize)]
pub struct StoredCall {
    pub account_id: String,
    pub call_id: String,
    pub newest: u64,
}

/// Rows of accounts no longer in the accounts file are kept this long.
pub const DEFAULT_RETENTION_DAYS: u32 = 395;

/// Each table with the time column its retention and monthly partitions use.
/// Every table holding per-account rows, with its time column. The dashboard's
/// summary tables (hashed ids in aggregate states) age out with the raw rows.
/// `erasures` is not here: an erasure outlives any retention (migration 0013).
const RETENTION_TABLES: [(&str, &str); 6] = [
    ("events", "ts"),
    ("calls", "started_at"),
    ("assignments", "assigned_at"),
    ("event_stats", "hour"),
    ("attribution_stats", "hour"),
    ("attribution_daily", "hour"),
];

#[derive(Debug, Default, PartialEq)]
pub struct RetentionPass {
    /// (table, partition) dropped whole.
    pub dropped_partitions: Vec<(String, String)>,
    /// (table, accounts) a DELETE mutation was issued for.
    pub deletions: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Row, Deserialize)]
struct AccountOldest {
    account_id: String,
    oldest: u32,
}

/// The first second after a `toYYYYMM` partition (`202401` → 2024-02-01T00:00:00Z).
fn month_partition_end(partition: &str) -> Option<i64> {
    let value: i64 = partition.trim_matches('\'').parse().ok()?;
    let (year, month) = (value / 100, value % 100);
    if !(1970..=2200).contains(&year) || !(1..=12).contains(&month) {
        return None;
    }
    let (next_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    Some(ringpath_types::time::days_from_civil(next_year, next_month, 1) * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_partition_ends_at_the_first_of_the_next_month() {
        assert_eq!(month_partition_end("202401"), Some(1_706_745_600));
        assert_eq!(month_partition_end("202312"), Some(1_704_067_200));
        assert_eq!(month_partition_end("tuple()"), None);
        assert_eq!(month_partition_end("202413"), None);
    }

    #[test]
    fn comment_lines_are_dropped_before_binding() {
        assert_eq!(strip_comments("-- why?\nSELECT 1\n  -- more?"), "SELECT 1");
    }
}
