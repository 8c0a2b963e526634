//! The schema, in order, and the command that applies it: each migration
//! once, recorded in `{db}.schema_migrations`. Tables are SQL files in
//! `store/migrations/`; views and their backfills are made from
//! [`crate::views`], so their SELECT is written once.

use crate::error::StoreError;
use crate::settings::ClickHouseSettings;
use crate::views::{self, View};

/// What a migration does.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// A statement from `store/migrations/` (`{db}` is the database).
    Sql(&'static str),
    /// Creates a view ([`View::create_sql`]).
    CreateView(&'static View),
    /// Fills a view's table from the events stored before it ([`View::backfill_sql`]).
    Backfill(&'static View),
}

#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Recorded in `schema_migrations` once applied.
    pub id: &'static str,
    /// Ids the same migration was recorded under by earlier releases
    /// (servers migrated then must not run it again).
    pub former_ids: &'static [&'static str],
    pub step: Step,
}

const fn sql(id: &'static str, text: &'static str) -> Migration {
    Migration { id, former_ids: &[], step: Step::Sql(text) }
}

/// Every migration, in order. Ids are unique and never change; a renumbered
/// migration keeps its old id in `former_ids`.
pub const MIGRATIONS: &[Migration] = &[
    sql("0001_events", include_str!("../migrations/0001_events.sql")),
    sql("0002_calls", include_str!("../migrations/0002_calls.sql")),
    sql("0003_assignments", include_str!("../migrations/0003_assignments.sql")),
    // The dashboard's hourly timeseries states (erasure rebuilds them).
    sql("0004_event_stats", include_str!("../migrations/0004_event_stats.sql")),
    Migration { id: "0005_event_stats_mv", former_ids: &[], step: Step::CreateView(&views::EVENT_STATS) },
    Migration { id: "0006_event_stats_backfill", former_ids: &[], step: Step::Backfill(&views::EVENT_STATS) },
    // The attribution report's hourly and daily sketches.
    sql("0007_attribution_stats", include_str!("../migrations/0007_attribution_stats.sql")),
    Migration { id: "0008_attribution_stats_mv", former_ids: &[], step: Step::CreateView(&views::ATTRIBUTION_STATS) },
    Migration { id: "0009_attribution_stats_backfill", former_ids: &[], step: Step::Backfill(&views::ATTRIBUTION_STATS) },
    sql("0010_attribution_daily", include_str!("../migrations/0010_attribution_daily.sql")),
    Migration { id: "0011_attribution_daily_mv", former_ids: &[], step: Step::CreateView(&views::ATTRIBUTION_DAILY) },
    Migration { id: "0012_attribution_daily_backfill", former_ids: &[], step: Step::Backfill(&views::ATTRIBUTION_DAILY) },
    // The erasure suppression list: written by erasure, read by enrich.
    sql("0013_erasures", include_str!("../migrations/0013_erasures.sql")),
    // A visitor's sessions by visitor, for call attribution's look-ups.
    sql("0014_sessions", include_str!("../migrations/0014_sessions.sql")),
    Migration { id: "0015_sessions_mv", former_ids: &["0014_sessions_mv"], step: Step::CreateView(&views::SESSIONS) },
    Migration { id: "0016_sessions_backfill", former_ids: &["0014_sessions_mv_backfill"], step: Step::Backfill(&views::SESSIONS) },
    // Every event of a visitor as one range, for the journey, the export and erasure.
    sql("0017_visitor_events", include_str!("../migrations/0017_visitor_events.sql")),
    Migration { id: "0018_visitor_events_mv", former_ids: &[], step: Step::CreateView(&views::VISITOR_EVENTS) },
    Migration { id: "0019_visitor_events_backfill", former_ids: &[], step: Step::Backfill(&views::VISITOR_EVENTS) },
    // The erasures accepted and not yet finished (dashboard-api runs them after its 202).
    sql("0020_erasure_jobs", include_str!("../migrations/0020_erasure_jobs.sql")),
];

/// Drops SQL comment lines: the client treats `?` as a bind marker anywhere.
fn strip_comments(sql: &str) -> String {
    sql.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n")
}

impl Migration {
    /// The statement for database `db`.
    pub fn statement(&self, db: &str) -> String {
        match self.step {
            Step::Sql(text) => strip_comments(&text.replace("{db}", db)),
            Step::CreateView(view) => view.create_sql(db),
            Step::Backfill(view) => view.backfill_sql(db),
        }
    }

    /// Whether `applied` (ids read from `schema_migrations`) records this migration.
    pub fn is_applied(&self, applied: &[String]) -> bool {
        applied.iter().any(|a| a == self.id || self.former_ids.contains(&a.as_str()))
    }
}

/// Creates the database and applies pending migrations; returns the ids
/// applied now. Idempotent.
pub async fn migrate(settings: &ClickHouseSettings) -> Result<Vec<String>, StoreError> {
    let db = &settings.database;
    let root = settings.in_database("default").client();
    root.query(&format!("CREATE DATABASE IF NOT EXISTS {db}")).execute().await?;
    root.query(&format!("CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version String, applied_at DateTime) ENGINE = MergeTree ORDER BY version"))
        .execute()
        .await?;
    let applied: Vec<String> = root.query(&format!("SELECT version FROM {db}.schema_migrations")).fetch_all::<String>().await?;
    let mut done = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| !m.is_applied(&applied)) {
        root.query(&migration.statement(db)).execute().await?;
        root.query(&format!("INSERT INTO {db}.schema_migrations (version, applied_at) VALUES (?, now())")).bind(migration.id).execute().await?;
        tracing::info!(migration = migration.id, database = %db, "migration applied");
        done.push(migration.id.to_owned());
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_ids_are_unique_and_numbered_in_order() {
        let mut seen = std::collections::HashSet::new();
        let mut previous = 0;
        for m in MIGRATIONS {
            assert!(seen.insert(m.id), "{} twice", m.id);
            for former in m.former_ids {
                assert!(seen.insert(former), "{former} twice");
            }
            let number: u32 = m.id[..4].parse().expect("a four-digit number");
            assert_eq!(number, previous + 1, "{} after {previous:04}", m.id);
            previous = number;
        }
    }

    #[test]
    fn a_server_migrated_under_the_old_ids_runs_nothing_again() {
        let old: Vec<String> = ["0001_events", "0014_sessions", "0014_sessions_mv", "0014_sessions_mv_backfill"].map(String::from).to_vec();
        let pending: Vec<&str> = MIGRATIONS.iter().filter(|m| !m.is_applied(&old)).map(|m| m.id).collect();
        assert!(!pending.contains(&"0015_sessions_mv") && !pending.contains(&"0016_sessions_backfill") && !pending.contains(&"0014_sessions"), "{pending:?}");
        assert!(pending.contains(&"0002_calls"));
    }

    #[test]
    fn statements_name_the_database_and_carry_no_comment() {
        for m in MIGRATIONS {
            let sql = m.statement("rp_x");
            assert!(sql.contains("rp_x."), "{}", m.id);
            assert!(!sql.contains("{db}") && !sql.contains("--"), "{}", m.id);
        }
        assert_eq!(strip_comments("-- why?\nSELECT 1\n  -- more?"), "SELECT 1");
    }
}
