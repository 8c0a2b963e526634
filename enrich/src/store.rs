//! ClickHouse adapter: schema migrations, batched inserts, the look-ups that
//! attribution needs, erasure-safe retention. Every user-supplied value is
//! bound with `?`; only the database name (validated at start) is formatted in.

use std::collections::HashMap;

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
    // A visitor's sessions by visitor, for call attribution's look-ups (visitor_touches).
    ("0014_sessions", include_str!("../../infra/clickhouse/migrations/0014_sessions.sql")),
    ("0014_sessions_mv", include_str!("../../infra/clickhouse/migrations/0014_sessions_mv.sql")),
    ("0014_sessions_mv_backfill", include_str!("../../infra/clickhouse/migrations/0014_sessions_mv_backfill.sql")),
];

pub const TABLES: &[&str] = &["events", "calls", "assignments"];

#[derive(Debug, thiserror::Error)]
#[error("clickhouse: {0}")]
pub struct StoreError(#[from] pub clickhouse::error::Error);

#[derive(Clone)]
pub struct Store {
    client: Client,
}

/// A session of a visitor as its events saw it: where it came from.
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

    /// One retention pass (README "Configuration" `retention_days`), cheap when nothing is due:
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

/// Calls looked up in one query at most: their keys are bound inline, and a
/// query has a size limit (256 KiB by default).
const LOOKUP_CHUNK: usize = 500;

/// Calls that started within this span of each other share one read of
/// their numbers' assignments (a live batch is one window; a replayed
/// backlog is read window by window instead of as one long range).
const HOLDER_WINDOW_MS: u64 = 3_600_000;

/// Most sessions read per visitor besides the first one (a crawler with a
/// persistent visitor id can have thousands).
const SESSIONS_PER_VISITOR: usize = 1000;

/// Who held a number when a call to it started.
#[derive(Debug, Clone, PartialEq)]
pub struct HolderQuery {
    pub account: String,
    pub number: String,
    pub at_ms: u64,
}

/// A visitor's sessions before a call: the first one known before `to_ms`
/// (first touch) and every one that started in [from_ms, to_ms] (linear).
#[derive(Debug, Clone, PartialEq)]
pub struct TouchQuery {
    pub account: String,
    pub visitor: String,
    pub from_ms: u64,
    pub to_ms: u64,
}

/// A holder session's own source, looked up by id under its visitor id (or
/// none: a session without consent's visitor id stores `visitor_id = ''`).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionQuery {
    pub account: String,
    pub visitor: String,
    pub session: String,
}

/// A row of the `sessions` table folded to its earliest landing.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
struct StoredSession {
    account_id: String,
    visitor_id: String,
    session_id: String,
    started_ms: u64,
    channel: String,
    source: String,
    medium: String,
    campaign: String,
    landing_page: String,
    referrer_host: String,
}

impl StoredSession {
    fn touch(self) -> SessionTouch {
        SessionTouch {
            session_id: self.session_id,
            started_ms: self.started_ms,
            channel: self.channel,
            source: self.source,
            medium: self.medium,
            campaign: self.campaign,
            landing_page: self.landing_page,
            referrer_host: self.referrer_host,
        }
    }
}

/// Sessions of the `sessions` table (migration 0014) matching `filter`, each
/// folded to its earliest landing: rows the ReplacingMergeTree has not merged
/// yet, and a session whose landings fall into two monthly partitions, give
/// the same answer as merged ones, without FINAL. The inner query renames
/// the columns because ClickHouse 18.16 lets a SELECT alias shadow a column
/// (`argMin(channel, …) AS channel` would nest aggregates).
fn folded_sessions(filter: &str, tail: &str) -> String {
    [
        "SELECT account_id, visitor_id, session_id, min(t) AS started_ms, argMin(c, t) AS channel, argMin(s, t) AS source, \
         argMin(m, t) AS medium, argMin(ca, t) AS campaign, argMin(p, t) AS landing_page, argMin(r, t) AS referrer_host FROM \
         (SELECT account_id, visitor_id, session_id, started_ms AS t, channel AS c, source AS s, medium AS m, campaign AS ca, \
          landing_page AS p, referrer_host AS r FROM sessions WHERE ",
        filter,
        ") GROUP BY account_id, visitor_id, session_id ",
        tail,
    ]
    .concat()
}

/// `n` comma-separated bind markers.
fn markers(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Splits indices (sorted by `at`) into runs no longer than `window` from
/// their first element and no larger than `chunk`.
fn windows(sorted: &[usize], at: impl Fn(usize) -> u64, window: u64, chunk: usize) -> Vec<&[usize]> {
    let mut out = Vec::new();
    let mut start = 0;
    for end in 1..=sorted.len() {
        let run_full = end - start == chunk;
        let next_too_late = end < sorted.len() && at(sorted[end]) > at(sorted[start]).saturating_add(window);
        if end == sorted.len() || run_full || next_too_late {
            out.push(&sorted[start..end]);
            start = end;
        }
    }
    out
}

/// The number history one call needs from a read that covered several: the
/// rows of its account and number that cover `at_ms` or ended in the day
/// before it, oldest first — the holders at that time, and each holder
/// session's first assignment (its landing).
fn history_at(rows: &[AssignmentRow], q: &HolderQuery) -> Vec<AssignmentRow> {
    let mut out: Vec<AssignmentRow> = rows
        .iter()
        .filter(|r| r.account_id == q.account && r.number == q.number && r.assigned_ms <= q.at_ms && r.expires_ms >= q.at_ms.saturating_sub(DAY_MS))
        .cloned()
        .collect();
    out.sort_by_key(|r| r.assigned_ms);
    // Windows of one read overlap: a row seen twice is one assignment.
    out.dedup_by(|x, y| x.assigned_ms == y.assigned_ms && x.session_id == y.session_id);
    out
}

/// The sessions one call needs from its visitor's (`sessions` oldest
/// first): the first one that started by `to_ms`, then every one that
/// started in [from_ms, to_ms]. The first may appear twice.
fn touches_at(sessions: &[SessionTouch], q: &TouchQuery) -> Vec<SessionTouch> {
    let first = sessions.iter().find(|s| s.started_ms <= q.to_ms);
    first.into_iter().chain(sessions.iter().filter(|s| s.started_ms >= q.from_ms && s.started_ms <= q.to_ms)).cloned().collect()
}

/// The look-ups of call attribution, each for many calls in few queries.
impl Store {
    /// For each call (same order): its number's assignment rows that cover
    /// its start or ended in the day before it, oldest first. One read per
    /// run of calls within [`HOLDER_WINDOW_MS`], for all their numbers.
    pub async fn number_histories(&self, calls: &[HolderQuery]) -> Result<Vec<Vec<AssignmentRow>>, StoreError> {
        let mut out = vec![Vec::new(); calls.len()];
        let mut order: Vec<usize> = (0..calls.len()).collect();
        order.sort_by_key(|i| calls[*i].at_ms);
        for run in windows(&order, |i| calls[i].at_ms, HOLDER_WINDOW_MS, LOOKUP_CHUNK) {
            let (Some(first), Some(last)) = (run.first(), run.last()) else { continue };
            let (from, to) = (calls[*first].at_ms, calls[*last].at_ms);
            let mut keys: Vec<(&str, &str)> = run.iter().map(|i| (calls[*i].account.as_str(), calls[*i].number.as_str())).collect();
            keys.sort_unstable();
            keys.dedup();
            // The sort key (account_id, number, assigned_ms) turns the tuple IN into one range per number.
            let sql = format!("SELECT ?fields FROM assignments FINAL WHERE (account_id, number) IN ({}) AND assigned_ms <= ? AND expires_ms >= ?", markers(keys.len()));
            let mut query = self.client.query(&sql);
            for key in &keys {
                query = query.bind(key);
            }
            let rows = query.bind(to).bind(from.saturating_sub(DAY_MS)).fetch_all::<AssignmentRow>().await?;
            for i in run {
                out[*i] = history_at(&rows, &calls[*i]);
            }
        }
        Ok(out)
    }

    /// For each call (same order): its visitor's first session that started
    /// by `to_ms` and the sessions that started in [from_ms, to_ms] (the
    /// first may be among both), each with the source of its landing. No
    /// history for an empty visitor id. Reads the `sessions` table, where a
    /// visitor's sessions are one short range of the sort key.
    pub async fn visitor_touches(&self, calls: &[TouchQuery]) -> Result<Vec<Vec<SessionTouch>>, StoreError> {
        let mut keys: Vec<(&str, &str)> = calls.iter().filter(|q| !q.visitor.is_empty()).map(|q| (q.account.as_str(), q.visitor.as_str())).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut by_visitor: HashMap<(String, String), Vec<SessionTouch>> = HashMap::new();
        for chunk in keys.chunks(LOOKUP_CHUNK) {
            let wanted = |q: &&TouchQuery| chunk.binary_search(&(q.account.as_str(), q.visitor.as_str())).is_ok();
            let to = calls.iter().filter(wanted).map(|q| q.to_ms).max().unwrap_or(0);
            let from = calls.iter().filter(wanted).map(|q| q.from_ms).min().unwrap_or(0);
            let filter = format!("(account_id, visitor_id) IN ({}) AND started_ms <= ?", markers(chunk.len()));
            let first = folded_sessions(&filter, "ORDER BY started_ms LIMIT 1 BY account_id, visitor_id");
            let recent = folded_sessions(&filter, &format!("HAVING started_ms >= ? ORDER BY started_ms DESC LIMIT {SESSIONS_PER_VISITOR} BY account_id, visitor_id"));
            let sql = ["SELECT * FROM (", first.as_str(), ") UNION ALL SELECT * FROM (", recent.as_str(), ")"].concat();
            let mut query = self.client.query(&sql);
            for key in chunk {
                query = query.bind(key);
            }
            query = query.bind(to);
            for key in chunk {
                query = query.bind(key);
            }
            let rows = query.bind(to).bind(from).fetch_all::<StoredSession>().await?;
            for row in rows {
                by_visitor.entry((row.account_id.clone(), row.visitor_id.clone())).or_default().push(row.touch());
            }
        }
        for sessions in by_visitor.values_mut() {
            sessions.sort_by(|x, y| (x.started_ms, &x.session_id).cmp(&(y.started_ms, &y.session_id)));
            sessions.dedup_by(|x, y| x.session_id == y.session_id);
        }
        Ok(calls
            .iter()
            .map(|q| by_visitor.get(&(q.account.clone(), q.visitor.clone())).map(|s| touches_at(s, q)).unwrap_or_default())
            .collect())
    }

    /// For each query (same order): the session's source from its landing,
    /// found under the query's visitor id or under none (its events carried
    /// no visitor id); `None` when no event of the session had a source.
    pub async fn sessions_by_id(&self, sessions: &[SessionQuery]) -> Result<Vec<Option<SessionTouch>>, StoreError> {
        let mut keys: Vec<(&str, &str, &str)> = Vec::new();
        for q in sessions {
            keys.push((q.account.as_str(), "", q.session.as_str()));
            if !q.visitor.is_empty() {
                keys.push((q.account.as_str(), q.visitor.as_str(), q.session.as_str()));
            }
        }
        keys.sort_unstable();
        keys.dedup();
        let mut found: HashMap<(String, String), SessionTouch> = HashMap::new();
        for chunk in keys.chunks(LOOKUP_CHUNK) {
            let sql = folded_sessions(&format!("(account_id, visitor_id, session_id) IN ({})", markers(chunk.len())), "");
            let mut query = self.client.query(&sql);
            for key in chunk {
                query = query.bind(key);
            }
            for row in query.fetch_all::<StoredSession>().await? {
                let key = (row.account_id.clone(), row.session_id.clone());
                let touch = row.touch();
                // Landings stored with and without the visitor id: the earliest is the session's source.
                if found.get(&key).is_none_or(|seen| touch.started_ms < seen.started_ms) {
                    found.insert(key, touch);
                }
            }
        }
        Ok(sessions.iter().map(|q| found.get(&(q.account.clone(), q.session.clone())).cloned()).collect())
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
    /// mutations): deletes their rows in [`ERASE_TABLES`], anonymises their
    /// calls — the same statements dashboard-api's erasure issues.
    pub async fn erase_late_rows(&self, account: &str, late: &LateIds) -> Result<(), StoreError> {
        let visitors: Vec<&str> = late.visitors.iter().map(String::as_str).collect();
        let sessions: Vec<&str> = late.sessions.iter().map(String::as_str).collect();
        Ok(erase_ids(&self.client, account, &visitors, &sessions).await?)
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

/// Tables whose rows naming an erased visitor or one of their sessions are
/// deleted outright (calls stay counted and are anonymised instead): the
/// erasure's mutations (dashboard-api) and enrich's late clean-up both use
/// this list. `sessions` is filled from events by a materialized view, so it
/// must be erased with them.
pub const ERASE_TABLES: &[&str] = &["events", "assignments", "sessions"];

/// The mutations that erase `visitors` and `sessions` of `account`: their
/// calls anonymised (`suppression::call_erasure_set_sql`), their rows in
/// [`ERASE_TABLES`] deleted. The one statement set behind dashboard-api's
/// erasure and enrich's late clean-up. Each id is in the mutation's text as a
/// quoted literal (dashboard-api's erasure status looks for it there).
pub async fn erase_ids(client: &clickhouse::Client, account: &str, visitors: &[&str], sessions: &[&str]) -> Result<(), clickhouse::error::Error> {
    // Never empty (an empty array literal has no element type on old
    // servers), and "!" is never an id.
    let visitors: Vec<&str> = visitors.iter().copied().chain(["!"]).collect();
    let sessions: Vec<&str> = sessions.iter().copied().chain(["!"]).collect();
    client
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
    for table in ERASE_TABLES {
        client
            .query(&format!("ALTER TABLE {table} DELETE WHERE account_id = ? AND (has(?, visitor_id) OR has(?, session_id))"))
            .bind(account)
            .bind(&visitors)
            .bind(&sessions)
            .execute()
            .await?;
    }
    Ok(())
}

/// Rows of accounts no longer in the accounts file are kept this long.
pub const DEFAULT_RETENTION_DAYS: u32 = 395;

/// Each table with the time column its retention and monthly partitions use.
/// Every table holding per-account rows, with its time column. The dashboard's
/// summary tables (hashed ids in aggregate states) age out with the raw rows.
/// `erasures` is not here: an erasure outlives any retention (migration 0013).
/// `sessions` (visitor and session ids) goes by its sessions' start.
const RETENTION_TABLES: [(&str, &str); 7] = [
    ("events", "ts"),
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

    #[test]
    fn calls_are_read_in_runs_bounded_by_time_and_size() {
        let at = [0u64, 10, 3_600_000, 3_600_001, 9_000_000, 9_000_001, 9_000_002];
        let order: Vec<usize> = (0..at.len()).collect();
        let runs = windows(&order, |i| at[i], HOLDER_WINDOW_MS, 2);
        assert_eq!(runs, [&[0, 1][..], &[2, 3], &[4, 5], &[6]]);
        let runs = windows(&order, |i| at[i], HOLDER_WINDOW_MS, 500);
        assert_eq!(runs, [&[0, 1, 2][..], &[3], &[4, 5, 6]]);
        assert!(windows(&[], |i| at[i], HOLDER_WINDOW_MS, 500).is_empty());
    }

    fn hold(number: &str, session: &str, from: u64, to: u64) -> AssignmentRow {
        AssignmentRow { account_id: "acc_x".into(), number: number.into(), session_id: session.into(), assigned_ms: from, expires_ms: to, ..AssignmentRow::default() }
    }

    #[test]
    fn a_shared_read_gives_each_call_only_its_numbers_rows_around_its_time() {
        let day = DAY_MS;
        let rows = [
            hold("+1", "s-new", 10 * day, 10 * day + 100),
            hold("+1", "s-landing", 5 * day, 5 * day + 100),
            hold("+1", "s-renewal", 5 * day + 50, 5 * day + 150),
            hold("+1", "s-landing", 5 * day, 5 * day + 100),
            hold("+2", "s-other", 5 * day, 5 * day + 100),
        ];
        let call = HolderQuery { account: "acc_x".into(), number: "+1".into(), at_ms: 5 * day + 120 };
        let sessions: Vec<String> = history_at(&rows, &call).into_iter().map(|r| r.session_id).collect();
        assert_eq!(sessions, ["s-landing", "s-renewal"], "oldest first, once each, nothing from later or from other numbers");
        let late = HolderQuery { at_ms: 6 * day + 200, ..call.clone() };
        assert!(history_at(&rows, &late).is_empty(), "holds that ended more than a day before are not read");
        let other_account = HolderQuery { account: "acc_y".into(), ..call };
        assert!(history_at(&rows, &other_account).is_empty());
    }

    #[test]
    fn a_call_gets_the_visitors_first_session_and_those_in_its_lookback() {
        let touch = |id: &str, at: u64| SessionTouch { session_id: id.into(), started_ms: at, ..SessionTouch::default() };
        let sessions = [touch("s1", 100), touch("s2", 500), touch("s3", 900), touch("s4", 2_000)];
        let ids = |q: &TouchQuery| touches_at(&sessions, q).iter().map(|s| s.session_id.clone()).collect::<Vec<_>>();
        let q = TouchQuery { account: "acc_x".into(), visitor: "v".into(), from_ms: 400, to_ms: 1_000 };
        assert_eq!(ids(&q), ["s1", "s2", "s3"], "s4 started after the call");
        assert_eq!(ids(&TouchQuery { from_ms: 0, ..q.clone() }), ["s1", "s1", "s2", "s3"], "the first may come twice");
        assert!(ids(&TouchQuery { to_ms: 50, ..q }).is_empty(), "no session before the call");
    }
}
