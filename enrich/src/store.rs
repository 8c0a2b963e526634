//! enrich's ClickHouse adapter: batched inserts, the look-ups attribution
//! needs ([`crate::attribute::Lookups`]), calls still waiting for a holder,
//! and the erasure clean-up. The schema, retention and erasure statements
//! belong to `ringpath-store`. Every user-supplied value is bound with `?`.

use std::collections::HashMap;

use clickhouse::{Client, Row};
use ringpath_store::erasure::Erasure;
use ringpath_store::rows::{AssignmentRow, CallRow, EventRow, SessionRow, SessionTouch};
use ringpath_store::{ClickHouseSettings, StoreError};
use serde::Deserialize;

use crate::attribute::{HolderQuery, Lookups, SessionQuery, TouchQuery};
use crate::suppression::{LateIds, TombstoneSource};

#[derive(Clone)]
pub struct Store {
    client: Client,
}

const DAY_MS: u64 = 86_400_000;

impl Store {
    pub fn new(settings: &ClickHouseSettings) -> Store {
        Store { client: settings.client() }
    }

    pub fn client(&self) -> &Client {
        &self.client
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

/// Sessions of the `sessions` table (migration 0014) matching `filter`, each
/// folded to its earliest landing and read as a [`SessionRow`]: rows the
/// ReplacingMergeTree has not merged yet, and a session whose landings fall
/// into two monthly partitions, give the same answer as merged ones, without
/// FINAL. The inner query renames the columns because ClickHouse 18.16 lets a
/// SELECT alias shadow a column (`argMin(channel, …) AS channel` would nest aggregates).
fn folded_sessions(filter: &str, tail: &str) -> String {
    [
        "SELECT account_id, visitor_id, session_id, toDateTime(intDiv(min(t), 1000)) AS started_at, min(t) AS started_ms, argMin(c, t) AS channel, \
         argMin(s, t) AS source, argMin(m, t) AS medium, argMin(ca, t) AS campaign, argMin(p, t) AS landing_page, argMin(r, t) AS referrer_host, \
         bitNot(min(t)) AS rank FROM \
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
impl Lookups for Store {
    /// For each call (same order): its number's assignment rows that cover
    /// its start or ended in the day before it, oldest first. One read per
    /// run of calls within [`HOLDER_WINDOW_MS`], for all their numbers.
    async fn number_histories(&self, calls: &[HolderQuery]) -> Result<Vec<Vec<AssignmentRow>>, StoreError> {
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
    async fn visitor_touches(&self, calls: &[TouchQuery]) -> Result<Vec<Vec<SessionTouch>>, StoreError> {
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
            let rows = query.bind(to).bind(from).fetch_all::<SessionRow>().await?;
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
    async fn sessions_by_id(&self, sessions: &[SessionQuery]) -> Result<Vec<Option<SessionTouch>>, StoreError> {
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
            for row in query.fetch_all::<SessionRow>().await? {
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
    /// Removes rows of `account` stored while an erasure of these ids was
    /// being written (too late for the filter, too late for the erasure's own
    /// mutations): the same statements an erasure issues (`erase_ids`).
    pub async fn erase_late_rows(&self, account: &str, late: &LateIds) -> Result<(), StoreError> {
        let visitors: Vec<&str> = late.visitors.iter().map(String::as_str).collect();
        let sessions: Vec<&str> = late.sessions.iter().map(String::as_str).collect();
        ringpath_store::erasure::erase_ids(&self.client, account, &visitors, &sessions).await
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

impl TombstoneSource for Store {
    async fn erasures_since(&self, since_s: u32) -> Result<Vec<Erasure>, StoreError> {
        ringpath_store::erasure::erasures_since(&self.client, since_s).await
    }
}

/// A call already stored, and its newest version.
#[derive(Debug, Clone, PartialEq, Eq, Row, Deserialize)]
pub struct StoredCall {
    pub account_id: String,
    pub call_id: String,
    pub newest: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

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
