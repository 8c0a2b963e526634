//! Retention (README "Configuration" `retention_days`): rows older than
//! their account's retention are dropped, whole monthly partitions when every
//! account is past them, delete mutations otherwise. `erasures` is not
//! retained: an erasure outlives any retention.

use clickhouse::{Client, Row};
use serde::Deserialize;

use crate::error::StoreError;

/// One retention pass (README "Configuration" `retention_days`), cheap when nothing is due:
/// - a monthly partition older than every account's retention (and than
///   the default, which covers accounts no longer configured) is dropped;
/// - otherwise, per table, one asynchronous DELETE mutation covers every
///   account that has rows older than its own cutoff. Cutoffs are whole
///   UTC days, so a steady stream issues at most one mutation per table a
///   day, and none while an earlier mutation on the table is still running.
pub async fn apply_retention(client: &Client, accounts: &[(String, u32)], now_s: i64) -> Result<RetentionPass, StoreError> {
    let today = now_s.div_euclid(86_400) * 86_400;
    let cutoff = |days: u32| (today - i64::from(days.max(1)) * 86_400).clamp(0, i64::from(u32::MAX)) as u32;
    let longest = accounts.iter().map(|(_, d)| *d).max().unwrap_or(0).max(DEFAULT_RETENTION_DAYS);
    let latest_cutoff = accounts.iter().map(|(_, d)| cutoff(*d)).max().unwrap_or(0);
    let mut pass = RetentionPass::default();
    for (table, column) in RETENTION_TABLES {
        let partitions: Vec<String> = client
            .query("SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() AND table = ? AND active")
            .bind(table)
            .fetch_all::<String>()
            .await?;
        for partition in partitions {
            let Some(end) = month_partition_end(&partition) else { continue };
            if end <= i64::from(cutoff(longest)) {
                client.query(&format!("ALTER TABLE {table} DROP PARTITION {partition}")).execute().await?;
                pass.dropped_partitions.push((table.to_owned(), partition));
            }
        }
        if accounts.is_empty() {
            continue;
        }
        let oldest: Vec<AccountOldest> = client
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
        let running: u64 = client
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
        client
            .query(&format!("ALTER TABLE {table} DELETE WHERE {column} < toDateTime(transform(account_id, ?, ?, toUInt32(0)))"))
            .bind(&ids)
            .bind(&cutoffs)
            .execute()
            .await?;
        pass.deletions.push((table.to_owned(), ids.iter().map(|s| (*s).to_owned()).collect()));
    }
    Ok(pass)
}

/// Rows of accounts no longer in the accounts file are kept this long.
pub const DEFAULT_RETENTION_DAYS: u32 = 395;

/// Each table with the time column its retention and monthly partitions use.
/// Every table holding per-account rows, with its time column. The dashboard's
/// summary tables (hashed ids in aggregate states) age out with the raw rows.
/// `erasures` is not here: an erasure outlives any retention (migration 0013).
/// `sessions` (visitor and session ids) goes by its sessions' start,
/// `visitor_events` (a copy of events) by its events' time. `erasure_jobs`
/// is not here either: a job's record goes when the job finishes.
pub const RETENTION_TABLES: [(&str, &str); 8] = [
    ("events", "ts"),
    ("visitor_events", "ts"),
    ("calls", "started_at"),
    ("assignments", "assigned_at"),
    ("sessions", "started_at"),
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

/// Tables with per-account rows that retention leaves alone, and why
/// (tombstones outlive any retention; a job's record goes with the job).
pub const NOT_RETAINED: [&str; 2] = ["erasures", "erasure_jobs"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_with_per_account_rows_is_retained_or_says_why_not() {
        for m in crate::migrate::MIGRATIONS {
            let crate::migrate::Step::Sql(text) = m.step else { continue };
            let Some(at) = text.find("CREATE TABLE IF NOT EXISTS {db}.") else { continue };
            let name: String = text[at + "CREATE TABLE IF NOT EXISTS {db}.".len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !text.contains("account_id") {
                continue;
            }
            let retained = RETENTION_TABLES.iter().find(|(t, _)| *t == name);
            assert!(retained.is_some() || NOT_RETAINED.contains(&name.as_str()), "{name} has per-account rows and no retention");
            if let Some((_, column)) = retained {
                assert!(text.contains(&format!("PARTITION BY toYYYYMM({column})")), "{name} is dropped by months of {column}");
            }
        }
    }

    #[test]
    fn a_month_partition_ends_at_the_first_of_the_next_month() {
        assert_eq!(month_partition_end("202401"), Some(1_706_745_600));
        assert_eq!(month_partition_end("202312"), Some(1_704_067_200));
        assert_eq!(month_partition_end("tuple()"), None);
        assert_eq!(month_partition_end("202413"), None);
    }
}
