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
//! ([`ERASED_CALL_COLUMNS`]): the call is the business's own record (a phone
//! call it received, its duration and the campaign that earned it), and it
//! stays counted. Loading and refreshing the list is the pipeline's job.

use std::collections::{HashMap, HashSet};

use clickhouse::Row;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::rows::{AssignmentRow, CallRow, EventRow};

/// `erasures.kind` of an erased visitor id.
pub const VISITOR: &str = "visitor";
/// `erasures.kind` of a session id of an erased visitor.
pub const SESSION: &str = "session";

/// A tombstone as dashboard-api writes it; `erased_at` is left to the
/// server's `now()` (the column default), so every writer shares one clock.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize)]
pub struct NewErasure {
    pub account_id: String,
    pub kind: String,
    pub id_hash: String,
}

/// A tombstone as enrich reads it (`erased_at` in seconds).
#[derive(Debug, Clone, PartialEq, Eq, Row, Deserialize)]
pub struct Erasure {
    pub account_id: String,
    pub kind: String,
    pub id_hash: String,
    pub erased_at: u32,
}

/// Columns of `calls` that erasure empties (`linear_session` entry by entry,
/// so the linear_* arrays stay parallel); everything else — time, duration,
/// number dialled, the source and campaign credited — stays.
pub const ERASED_CALL_COLUMNS: &[&str] =
    &["visitor_id", "session_id", "ip", "from_number", "caller_name", "caller_city", "click_id", "referrer", "first_touch_session", "linear_session"];

/// The `SET` list of an `ALTER TABLE calls UPDATE` that anonymises calls the
/// way [`anonymise_call`] does (for dashboard-api's erasure and enrich's
/// clean-up of rows stored while an erasure was being written).
pub fn call_erasure_set_sql() -> String {
    ERASED_CALL_COLUMNS
        .iter()
        .map(|c| if *c == "linear_session" { "linear_session = arrayMap(x -> '', linear_session)".to_owned() } else { format!("{c} = ''") })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Empties the [`ERASED_CALL_COLUMNS`] of a call.
pub fn anonymise_call(row: &mut CallRow) {
    for field in [
        &mut row.visitor_id,
        &mut row.session_id,
        &mut row.ip,
        &mut row.from_number,
        &mut row.caller_name,
        &mut row.caller_city,
        &mut row.click_id,
        &mut row.referrer,
        &mut row.first_touch_session,
    ] {
        field.clear();
    }
    row.linear_session.iter_mut().for_each(String::clear);
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// The sha256 hex of an id, as `erasures.id_hash` holds it.
pub fn id_hash_hex(id: &str) -> String {
    hex::encode(digest(id))
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// The tombstones for erasing `visitor` of `account` and the sessions found for them.
pub fn tombstones(account: &str, visitor: &str, sessions: &[String]) -> Vec<NewErasure> {
    let one = |kind: &str, id: &str| NewErasure { account_id: account.to_owned(), kind: kind.to_owned(), id_hash: id_hash_hex(id) };
    let mut out = vec![one(VISITOR, visitor)];
    out.extend(sessions.iter().filter(|s| !s.is_empty()).map(|s| one(SESSION, s)));
    out
}

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
        let Some(hash) = parse_hex32(&erasure.id_hash) else { return false };
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
        !visitor.is_empty() && !erased.visitors.is_empty() && erased.visitors.contains(&digest(visitor))
    }

    fn erased_session(erased: &Erased, session: &str) -> bool {
        !session.is_empty() && !erased.sessions.is_empty() && erased.sessions.contains(&digest(session))
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn an_id_hash_is_the_sha256_hex_of_the_id() {
        assert_eq!(id_hash_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(parse_hex32(&id_hash_hex("abc")), Some(digest("abc")));
        assert_eq!(parse_hex32("zz"), None);
        assert_eq!(parse_hex32(&"g".repeat(64)), None);
    }

    #[test]
    fn tombstones_name_the_visitor_and_each_session_by_hash_only() {
        let t = tombstones("acc_a", "visitor-1", &["s1".into(), String::new(), "s2".into()]);
        let kinds: Vec<(&str, &str)> = t.iter().map(|e| (e.kind.as_str(), e.id_hash.as_str())).collect();
        assert_eq!(kinds, [(VISITOR, id_hash_hex("visitor-1").as_str()), (SESSION, id_hash_hex("s1").as_str()), (SESSION, id_hash_hex("s2").as_str())]);
        assert!(t.iter().all(|e| e.account_id == "acc_a" && !e.id_hash.contains("visitor") && e.id_hash.len() == 64));
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
    fn the_update_sql_sets_every_erased_column() {
        let sql = call_erasure_set_sql();
        for column in ERASED_CALL_COLUMNS {
            assert!(sql.contains(&format!("{column} = ")), "{column} in {sql}");
        }
        assert!(sql.ends_with("linear_session = arrayMap(x -> '', linear_session)"));
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
