//! ClickHouse adapter: schema migrations, batched inserts, the look-ups that
//! attribution needs, erasure-safe retention. Every user-supplied value is
//! bound with `?`; only the database name (validated at start) is formatted in.

use clickhouse::{Client, Row};
use serde::Deserialize;

use crate::rows::{AssignmentRow, CallRow, EventRow};
use crate::settings::ClickHouseSettings;

/// Migrations, applied in order, each once (`ringpath.schema_migrations`).
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_events", include_str!("../../infra/clickhouse/migrations/0001_events.sql")),
    ("0002_calls", include_str!("../../infra/clickhouse/migrations/0002_calls.sql")),
    ("0003_assignments", include_str!("../../infra/clickhouse/migrations/0003_assignments.sql")),
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

    /// Assignment rows whose hold covers `at_ms` for this number, newest first.
    pub async fn holders(&self, account: &str, number: &str, at_ms: u64) -> Result<Vec<AssignmentRow>, StoreError> {
        Ok(self
            .client
            .query("SELECT ?fields FROM assignments FINAL WHERE account_id = ? AND number = ? AND assigned_ms <= ? AND expires_ms >= ? ORDER BY assigned_ms DESC LIMIT 100")
            .bind(account)
            .bind(number)
            .bind(at_ms)
            .bind(at_ms)
            .fetch_all::<AssignmentRow>()
            .await?)
    }

    /// The visitor's sessions that started in [from_ms, to_ms], oldest first, each with its source.
    pub async fn visitor_sessions(&self, account: &str, visitor: &str, from_ms: u64, to_ms: u64) -> Result<Vec<SessionTouch>, StoreError> {
        Ok(self
            .client
            .query(
                "SELECT session_id, min(ts_ms) AS started_ms, argMin(channel, ts_ms) AS channel, argMin(source, ts_ms) AS source, \
                 argMin(medium, ts_ms) AS medium, argMin(campaign, ts_ms) AS campaign, argMin(path, ts_ms) AS landing_page, \
                 argMin(referrer_host, ts_ms) AS referrer_host \
                 FROM events WHERE account_id = ? AND visitor_id = ? AND session_id != '' AND channel != '' AND ts_ms >= ? AND ts_ms <= ? \
                 GROUP BY session_id ORDER BY started_ms LIMIT 1000",
            )
            .bind(account)
            .bind(visitor)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all::<SessionTouch>()
            .await?)
    }

    /// One session's source from its own events (for sessions without a visitor id).
    pub async fn visitor_sessions_by_session(&self, account: &str, session: &str) -> Result<Option<SessionTouch>, StoreError> {
        Ok(self
            .client
            .query(
                "SELECT session_id, min(ts_ms) AS started_ms, argMin(channel, ts_ms) AS channel, argMin(source, ts_ms) AS source, \
                 argMin(medium, ts_ms) AS medium, argMin(campaign, ts_ms) AS campaign, argMin(path, ts_ms) AS landing_page, \
                 argMin(referrer_host, ts_ms) AS referrer_host \
                 FROM events WHERE account_id = ? AND session_id = ? AND channel != '' GROUP BY session_id",
            )
            .bind(account)
            .bind(session)
            .fetch_optional::<SessionTouch>()
            .await?)
    }

    /// Calls still waiting for their assignment.
    pub async fn pending_calls(&self) -> Result<Vec<CallRow>, StoreError> {
        Ok(self.client.query("SELECT ?fields FROM calls FINAL WHERE attribution = 'pending' LIMIT 10000").fetch_all::<CallRow>().await?)
    }

    /// Deletes an account's rows older than its retention (asynchronous mutations).
    pub async fn apply_retention(&self, account: &str, retention_days: u32) -> Result<(), StoreError> {
        let cutoff = format!("now() - INTERVAL {} DAY", retention_days.max(1));
        for (table, col) in [("events", "ts"), ("calls", "started_at"), ("assignments", "assigned_at")] {
            self.client.query(&format!("ALTER TABLE {table} DELETE WHERE account_id = ? AND {col} < {cutoff}")).bind(account).execute().await?;
        }
        Ok(())
    }
}
