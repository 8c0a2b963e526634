//! The erasure suppression list (pure, no IO): the visitor and session ids
//! erased through the dashboard API, held as sha256 hashes (table `erasures`,
//! migration 0013), and what happens to a row that names one of them. Kafka
//! keeps an erased visitor's messages for its retention; without this list a
//! replay, a redelivery after a crash or an event in flight at erasure time
//! would store the visitor again.
//!
//! README "Dashboard API": after erasure "no row holds that visitor anywhere; aggregate
//! counts may stay". So events and number assignments naming an erased id are
//! not stored, and a call credited to an erased visitor or session is stored
//! without them — the same fields erasure blanks on calls already stored
//! (`ringpath_store::erasure::ERASED_CALL_COLUMNS`): the call is the business's own record (a phone
//! call it received, its duration and the campaign that earned it), and it
//! stays counted. [`ErasureCache`] keeps the list fresh from the store.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ringpath_store::erasure::{anonymise_call, id_digest, parse_id_hash, Erasure, SESSION, VISITOR};
use ringpath_store::rows::{AssignmentRow, CallRow, EventRow};
use ringpath_store::StoreError;

#[derive(Debug, Default)]
struct Erased {
    visitors: HashSet<[u8; 32]>,
    sessions: HashSet<[u8; 32]>,
}

/// The erased ids of every account, in memory (32 bytes and the set's
/// overhead per id). Checking a row of an account with no erasure costs one
/// map look-up; otherwise one sha256 per id the row carries.
#[derive(Debug, Default)]
pub struct Suppression {
    accounts: HashMap<String, Erased>,
    ids: usize,
    newest: u32,
    generation: u64,
}

/// Ids stored in one batch that an erasure written meanwhile covers: what a
/// clean-up has to delete (events, assignments) or anonymise (calls).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LateIds {
    pub visitors: Vec<String>,
    pub sessions: Vec<String>,
}

impl Suppression {
    /// Adds a tombstone; false when it was known already or is malformed.
    pub fn add(&mut self, erasure: &Erasure) -> bool {
        self.newest = self.newest.max(erasure.erased_at);
        let Some(hash) = parse_id_hash(&erasure.id_hash) else { return false };
        let erased = self.accounts.entry(erasure.account_id.clone()).or_default();
        let set = match erasure.kind.as_str() {
            VISITOR => &mut erased.visitors,
            SESSION => &mut erased.sessions,
            _ => return false,
        };
        if !set.insert(hash) {
            return false;
        }
        self.ids += 1;
        self.generation += 1;
        true
    }

    /// How many erased ids are held.
    pub fn len(&self) -> usize {
        self.ids
    }

    pub fn is_empty(&self) -> bool {
        self.ids == 0
    }

    /// The newest `erased_at` seen (seconds): where the next incremental read starts.
    pub fn newest(&self) -> u32 {
        self.newest
    }

    /// Changes whenever an id is added: rows checked at one generation and
    /// stored while it changed may need a second look.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn erased_visitor(erased: &Erased, visitor: &str) -> bool {
        !visitor.is_empty() && !erased.visitors.is_empty() && erased.visitors.contains(&id_digest(visitor))
    }

    fn erased_session(erased: &Erased, session: &str) -> bool {
        !session.is_empty() && !erased.sessions.is_empty() && erased.sessions.contains(&id_digest(session))
    }

    /// Whether a row of `account` carrying this visitor id and these session
    /// ids names an erased visitor or session.
    pub fn names_erased<'a>(&self, account: &str, visitor: &str, sessions: impl IntoIterator<Item = &'a str>) -> bool {
        let Some(erased) = self.accounts.get(account) else { return false };
        Self::erased_visitor(erased, visitor) || sessions.into_iter().any(|s| Self::erased_session(erased, s))
    }

    fn call_names_erased(&self, call: &CallRow) -> bool {
        let sessions = std::iter::once(call.session_id.as_str()).chain(std::iter::once(call.first_touch_session.as_str())).chain(call.linear_session.iter().map(String::as_str));
        self.names_erased(&call.account_id, &call.visitor_id, sessions)
    }

    /// Removes the events that name an erased visitor or session; returns how many.
    pub fn drop_erased_events(&self, rows: &mut Vec<EventRow>) -> usize {
        let before = rows.len();
        if !self.is_empty() {
            rows.retain(|r| !self.names_erased(&r.account_id, &r.visitor_id, [r.session_id.as_str()]));
        }
        before - rows.len()
    }

    /// Removes the number assignments held by an erased visitor or session; returns how many.
    pub fn drop_erased_assignments(&self, rows: &mut Vec<AssignmentRow>) -> usize {
        let before = rows.len();
        if !self.is_empty() {
            rows.retain(|r| !self.names_erased(&r.account_id, &r.visitor_id, [r.session_id.as_str()]));
        }
        before - rows.len()
    }

    /// Anonymises ([`anonymise_call`]) the calls credited to an erased
    /// visitor or session, or to one in their first touch or linear
    /// lookback; returns how many.
    pub fn anonymise_erased_calls(&self, rows: &mut [CallRow]) -> usize {
        if self.is_empty() {
            return 0;
        }
        let mut anonymised = 0;
        for row in rows.iter_mut().filter(|r| self.call_names_erased(r)) {
            anonymise_call(row);
            anonymised += 1;
        }
        anonymised
    }

    /// The erased ids, by account, that these stored rows still carry.
    pub fn late_ids(&self, events: &[EventRow], assignments: &[AssignmentRow], calls: &[CallRow]) -> HashMap<String, LateIds> {
        let mut late: HashMap<String, LateIds> = HashMap::new();
        if self.is_empty() {
            return late;
        }
        let ids = events
            .iter()
            .map(|r| (r.account_id.as_str(), r.visitor_id.as_str(), vec![r.session_id.as_str()]))
            .chain(assignments.iter().map(|r| (r.account_id.as_str(), r.visitor_id.as_str(), vec![r.session_id.as_str()])))
            .chain(calls.iter().map(|r| {
                let sessions = [r.session_id.as_str(), r.first_touch_session.as_str()].into_iter().chain(r.linear_session.iter().map(String::as_str)).collect();
                (r.account_id.as_str(), r.visitor_id.as_str(), sessions)
            }));
        for (account, visitor, sessions) in ids {
            let Some(erased) = self.accounts.get(account) else { continue };
            if Self::erased_visitor(erased, visitor) {
                late.entry(account.to_owned()).or_default().visitors.push(visitor.to_owned());
            }
            for session in sessions.into_iter().filter(|s| Self::erased_session(erased, s)) {
                late.entry(account.to_owned()).or_default().sessions.push(session.to_owned());
            }
        }
        for ids in late.values_mut() {
            ids.visitors.sort_unstable();
            ids.visitors.dedup();
            ids.sessions.sort_unstable();
            ids.sessions.dedup();
        }
        late
    }
}

/// Where tombstones are read from (the `erasures` table).
pub trait TombstoneSource: Sync {
    /// Tombstones with `erased_at` at or after `since_s` (0: all of them).
    fn erasures_since(&self, since_s: u32) -> impl Future<Output = Result<Vec<Erasure>, StoreError>> + Send;
}

/// How old the list may be when a batch is filtered. The list is read again
/// after every batch is stored (which also keeps it this fresh under load),
/// so this bounds only how often a fresh erasure costs a clean-up mutation
/// instead of a dropped row.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// An incremental read starts this far before the newest `erased_at` seen:
/// the server stamps tombstones to the second, and a slow insert may become
/// visible after a newer one.
const OVERLAP_S: u32 = 300;

/// The whole list is read again this often (a clock step on the server
/// could otherwise hide a tombstone from the incremental reads).
const FULL_READ: Duration = Duration::from_secs(3600);

/// The suppression list and when it was last read, shared by the batches.
#[derive(Debug, Default)]
pub struct ErasureCache {
    state: Mutex<CacheState>,
}

#[derive(Debug, Default)]
struct CacheState {
    set: Suppression,
    read_at: Option<Instant>,
    full_read_at: Option<Instant>,
}

impl ErasureCache {
    /// The list as it is now (hold the guard briefly: batches wait on it).
    pub fn list(&self) -> impl std::ops::Deref<Target = Suppression> + '_ {
        struct Guard<'a>(MutexGuard<'a, CacheState>);
        impl std::ops::Deref for Guard<'_> {
            type Target = Suppression;
            fn deref(&self) -> &Suppression {
                &self.0.set
            }
        }
        Guard(self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the tombstones written since the last read, unless the list was
    /// read less than `max_age` ago. Returns how many ids the list holds.
    pub async fn refresh(&self, source: &impl TombstoneSource, max_age: Duration) -> Result<usize, StoreError> {
        let since = {
            let state = self.lock();
            if state.read_at.is_some_and(|at| at.elapsed() < max_age) {
                return Ok(state.set.len());
            }
            match state.full_read_at {
                Some(at) if at.elapsed() < FULL_READ => state.set.newest().saturating_sub(OVERLAP_S),
                _ => 0,
            }
        };
        let started = Instant::now();
        let tombstones = source.erasures_since(since).await?;
        let mut state = self.lock();
        for tombstone in &tombstones {
            state.set.add(tombstone);
        }
        state.read_at = Some(started);
        if since == 0 {
            state.full_read_at = Some(started);
        }
        Ok(state.set.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringpath_store::erasure::{id_hash_hex, ERASED_CALL_COLUMNS};

    fn erasure(account: &str, kind: &str, id: &str, erased_at: u32) -> Erasure {
        Erasure { account_id: account.into(), kind: kind.into(), id_hash: id_hash_hex(id), erased_at }
    }

    fn erased(pairs: &[(&str, &str, &str)]) -> Suppression {
        let mut s = Suppression::default();
        for (account, kind, id) in pairs {
            s.add(&erasure(account, kind, id, 100));
        }
        s
    }

    fn event(account: &str, visitor: &str, session: &str) -> EventRow {
        EventRow { account_id: account.into(), event_id: format!("e-{visitor}-{session}"), visitor_id: visitor.into(), session_id: session.into(), ..EventRow::default() }
    }

    fn assignment(account: &str, visitor: &str, session: &str) -> AssignmentRow {
        AssignmentRow { account_id: account.into(), number: "+15550109001".into(), visitor_id: visitor.into(), session_id: session.into(), ..AssignmentRow::default() }
    }

    /// A call with every field set, so blanking can be seen field by field.
    fn full_call(visitor: &str, session: &str) -> CallRow {
        CallRow {
            account_id: "acc_a".into(),
            call_id: "C1".into(),
            started_at: 1,
            started_ms: 1000,
            received_at: 2,
            duration_s: 95,
            status: "completed".into(),
            to_number: "+15550109001".into(),
            from_number: "+15125559911".into(),
            caller_name: "Pat".into(),
            caller_city: "Austin".into(),
            attribution: "session".into(),
            confidence: "exclusive".into(),
            pool_id: "paid_search".into(),
            session_id: session.into(),
            visitor_id: visitor.into(),
            ip: "203.0.113.9".into(),
            country: "US".into(),
            source: "google".into(),
            medium: "cpc".into(),
            campaign: "Brand".into(),
            term: "plumber".into(),
            content: "ad1".into(),
            channel: "paid_search".into(),
            landing_page: "/offer".into(),
            referrer: "https://www.google.com/search?q=x".into(),
            referrer_host: "www.google.com".into(),
            click_id_type: "gclid".into(),
            click_id: "G-1".into(),
            first_touch_session: "s-first".into(),
            first_touch_source: "google".into(),
            first_touch_medium: "organic".into(),
            first_touch_campaign: "Brand".into(),
            first_touch_channel: "organic_search".into(),
            first_touch_landing_page: "/".into(),
            first_touch_referrer_host: "www.google.com".into(),
            linear_session: vec!["s-first".into(), session.into()],
            linear_source: vec!["google".into(), "google".into()],
            linear_medium: vec!["organic".into(), "cpc".into()],
            linear_campaign: vec!["Brand".into(), "Brand".into()],
            linear_channel: vec!["organic_search".into(), "paid_search".into()],
            linear_landing_page: vec!["/".into(), "/offer".into()],
            linear_referrer_host: vec!["www.google.com".into(), "www.google.com".into()],
            version: 7,
        }
    }

    #[test]
    fn events_and_assignments_of_an_erased_visitor_or_session_are_dropped_and_others_kept() {
        let s = erased(&[("acc_a", VISITOR, "v-gone"), ("acc_a", SESSION, "s-gone")]);
        let mut events = vec![
            event("acc_a", "v-gone", "s-new"),   // the visitor, in a session begun after the erasure
            event("acc_a", "", "s-gone"),        // their session, without a visitor id
            event("acc_a", "v-kept", "s-kept"),
            event("acc_b", "v-gone", "s-gone"),  // the same ids in another account are another person
            event("acc_a", "", ""),              // no consent, no ids
        ];
        assert_eq!(s.drop_erased_events(&mut events), 2);
        let left: Vec<(&str, &str)> = events.iter().map(|e| (e.account_id.as_str(), e.visitor_id.as_str())).collect();
        assert_eq!(left, [("acc_a", "v-kept"), ("acc_b", "v-gone"), ("acc_a", "")]);

        let mut assignments = vec![assignment("acc_a", "", "s-gone"), assignment("acc_a", "v-gone", "s-x"), assignment("acc_a", "v-kept", "s-kept")];
        assert_eq!(s.drop_erased_assignments(&mut assignments), 2);
        assert_eq!(assignments.len(), 1);
        assert_eq!(assignments[0].visitor_id, "v-kept");
    }

    #[test]
    fn an_empty_list_keeps_everything() {
        let s = Suppression::default();
        let mut events = vec![event("acc_a", "v", "s")];
        assert_eq!(s.drop_erased_events(&mut events), 0);
        let mut calls = vec![full_call("v", "s")];
        assert_eq!(s.anonymise_erased_calls(&mut calls), 0);
        assert_eq!(calls[0], full_call("v", "s"));
    }

    #[test]
    fn a_call_of_an_erased_visitor_is_kept_with_exactly_the_erased_columns_emptied() {
        let s = erased(&[("acc_a", VISITOR, "v-gone")]);
        let mut calls = vec![full_call("v-gone", "s-1"), full_call("v-kept", "s-2")];
        assert_eq!(s.anonymise_erased_calls(&mut calls), 1);
        assert_eq!(calls[1], full_call("v-kept", "s-2"));
        let before = serde_json::to_value(full_call("v-gone", "s-1")).unwrap();
        let after = serde_json::to_value(&calls[0]).unwrap();
        let mut changed: Vec<&str> = before.as_object().unwrap().iter().filter(|(k, v)| after[k.as_str()] != **v).map(|(k, _)| k.as_str()).collect();
        changed.sort_unstable();
        let mut expected = ERASED_CALL_COLUMNS.to_vec();
        expected.sort_unstable();
        assert_eq!(changed, expected, "the same columns dashboard-api's erasure empties");
        assert_eq!(after["linear_session"], serde_json::json!(["", ""]), "entries emptied, arrays still parallel");
        assert_eq!((after["channel"].as_str(), after["campaign"].as_str(), after["duration_s"].as_u64()), (Some("paid_search"), Some("Brand"), Some(95)));
    }

    #[test]
    fn a_call_whose_first_touch_or_linear_session_was_erased_is_anonymised() {
        let s = erased(&[("acc_a", SESSION, "s-first")]);
        let mut calls = vec![full_call("v-other", "s-now")];
        assert_eq!(s.anonymise_erased_calls(&mut calls), 1);
        assert_eq!((calls[0].visitor_id.as_str(), calls[0].first_touch_session.as_str()), ("", ""));
    }

    #[test]
    fn adding_counts_new_ids_only_and_tracks_the_newest_erasure() {
        let mut s = Suppression::default();
        assert!(s.add(&erasure("acc_a", VISITOR, "v", 100)));
        let generation = s.generation();
        assert!(!s.add(&erasure("acc_a", VISITOR, "v", 90)), "a re-read tombstone is not new");
        assert!(!s.add(&Erasure { account_id: "acc_a".into(), kind: VISITOR.into(), id_hash: "not-hex".into(), erased_at: 120 }));
        assert!(!s.add(&erasure("acc_a", "cookie", "v", 100)), "unknown kinds are ignored");
        assert_eq!((s.len(), s.generation(), s.newest()), (1, generation, 120));
        assert!(s.add(&erasure("acc_a", SESSION, "v", 110)), "a session id is another kind of id");
        assert_eq!((s.len(), s.generation()), (2, generation + 1));
    }

    #[test]
    fn late_ids_are_the_raw_ids_stored_rows_carry_that_the_list_now_covers() {
        let s = erased(&[("acc_a", VISITOR, "v-gone"), ("acc_a", SESSION, "s-gone"), ("acc_a", SESSION, "s-first")]);
        let events = [event("acc_a", "v-gone", "s-1"), event("acc_a", "v-gone", "s-2"), event("acc_a", "v-kept", "s-3"), event("acc_b", "v-gone", "")];
        let assignments = [assignment("acc_a", "", "s-gone")];
        let calls = [full_call("v-kept", "s-4")];
        let late = s.late_ids(&events, &assignments, &calls);
        assert_eq!(late.len(), 1);
        assert_eq!(late["acc_a"], LateIds { visitors: vec!["v-gone".into()], sessions: vec!["s-first".into(), "s-gone".into()] });
        assert!(Suppression::default().late_ids(&events, &assignments, &calls).is_empty());
    }
}
