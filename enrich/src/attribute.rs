//! Attributing a batch of calls: the look-ups each call needs (who held its
//! number, the holder's visitor's sessions, the holder session's own
//! landing) made for all calls at once through [`Lookups`], then the rules of
//! [`crate::attribution`] applied call by call. The look-ups are a small
//! trait so the orchestration is unit-tested with no server; the ClickHouse
//! implementation is `store::Store`.

use std::collections::HashMap;
use std::future::Future;

use ringpath_store::rows::{AssignmentRow, CallRow, SessionTouch};
use ringpath_store::StoreError;
use ringpath_types::accounts::AccountsFile;

use crate::attribution::{self, Target};

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

/// The stored history attribution reads, each look-up for many calls at once.
pub trait Lookups: Sync {
    /// For each call (same order): its number's assignment rows that cover
    /// its start or ended in the day before it, oldest first.
    fn number_histories(&self, calls: &[HolderQuery]) -> impl Future<Output = Result<Vec<Vec<AssignmentRow>>, StoreError>> + Send;
    /// For each call (same order): its visitor's first session that started
    /// by `to_ms` and the sessions that started in [from_ms, to_ms].
    fn visitor_touches(&self, calls: &[TouchQuery]) -> impl Future<Output = Result<Vec<Vec<SessionTouch>>, StoreError>> + Send;
    /// For each query (same order): the session's landing, if any event of it had a source.
    fn sessions_by_id(&self, sessions: &[SessionQuery]) -> impl Future<Output = Result<Vec<Option<SessionTouch>>, StoreError>> + Send;
}

/// How long a call to a pool number waits for its holder before it is `none`,
/// and the time now (both in ms), for the `pending` decision.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    pub wait_ms: i64,
    pub now_ms: i64,
}

/// A call to a pool number that had a holder at the call's start.
struct Held<'h> {
    /// Index of the call in the rows being attributed.
    call: usize,
    holder: &'h AssignmentRow,
    shared: bool,
    /// The holder session's first assignment (its landing).
    origin: Option<&'h AssignmentRow>,
    visitor: String,
}

/// What the look-ups found for one held call: the visitor's first known
/// session and their sessions in the lookback, oldest first.
struct VisitorHistory {
    first: Option<SessionTouch>,
    lookback: Vec<SessionTouch>,
}

/// Attributes calls in place, each with the time enrich first received it
/// (which decides whether a call without a holder is still `pending`).
pub async fn attribute_rows(lookups: &impl Lookups, accounts: &AccountsFile, calls: &mut [(CallRow, i64)], wait: Wait) -> Result<(), StoreError> {
    let pool_calls = credit_non_pool_calls(accounts, calls);
    if pool_calls.is_empty() {
        return Ok(());
    }
    let queries: Vec<HolderQuery> =
        pool_calls.iter().map(|i| HolderQuery { account: calls[*i].0.account_id.clone(), number: calls[*i].0.to_number.clone(), at_ms: calls[*i].0.started_ms }).collect();
    let histories = lookups.number_histories(&queries).await?;
    let held = holders(calls, &pool_calls, &histories, wait);
    let touch_queries: Vec<TouchQuery> = held
        .iter()
        .map(|h| {
            let at = calls[h.call].0.started_ms;
            TouchQuery { account: h.holder.account_id.clone(), visitor: h.visitor.clone(), from_ms: at.saturating_sub(attribution::LINEAR_LOOKBACK_MS), to_ms: at }
        })
        .collect();
    let histories: Vec<VisitorHistory> = lookups.visitor_touches(&touch_queries).await?.into_iter().zip(&touch_queries).map(|(t, q)| visitor_history(t, q)).collect();
    let own = own_sessions(lookups, &held, &histories).await?;
    // Last touch from the holder session's own landing, first touch and linear from the visitor's.
    for (k, (h, history)) in held.iter().zip(&histories).enumerate() {
        let session = history.lookback.iter().find(|s| s.session_id == h.holder.session_id).or_else(|| own.get(&k));
        let ev = attribution::SessionEvidence { holder: h.holder, shared: h.shared, origin: h.origin, session, first: history.first.as_ref(), lookback: &history.lookback };
        attribution::credit_session(&mut calls[h.call].0, &ev);
    }
    Ok(())
}

/// Credits calls to source-level and site numbers; returns the indices of
/// calls to pool numbers, which need the store.
fn credit_non_pool_calls(accounts: &AccountsFile, calls: &mut [(CallRow, i64)]) -> Vec<usize> {
    let mut pool_calls = Vec::new();
    for (i, (row, _)) in calls.iter_mut().enumerate() {
        let Some(account) = accounts.account(&row.account_id) else { continue };
        let target = attribution::target(account, &row.to_number);
        match &target {
            Target::Pool(_) => pool_calls.push(i),
            Target::Source { .. } => attribution::credit_source(row, &target),
            Target::Site => attribution::mark_site(row),
            Target::Unknown => {}
        }
    }
    pool_calls
}

/// Who held each pool call's number; a call without a holder waits
/// (`pending`) until the wait runs out (`none`).
fn holders<'h>(calls: &mut [(CallRow, i64)], pool_calls: &[usize], histories: &'h [Vec<AssignmentRow>], wait: Wait) -> Vec<Held<'h>> {
    let mut held = Vec::new();
    for (i, history) in pool_calls.iter().zip(histories) {
        let (row, received_ms) = &mut calls[*i];
        let Some((holder, shared)) = attribution::pick_holder(history, row.started_ms) else {
            row.attribution = if wait.now_ms - *received_ms < wait.wait_ms { "pending" } else { "none" }.into();
            continue;
        };
        let origin = history.iter().filter(|r| r.session_id == holder.session_id).min_by_key(|r| r.assigned_ms);
        let visitor = if holder.visitor_id.is_empty() { origin.map(|o| o.visitor_id.clone()).unwrap_or_default() } else { holder.visitor_id.clone() };
        held.push(Held { call: *i, holder, shared, origin, visitor });
    }
    held
}

/// First touch from the visitor's whole history, linear from the lookback.
fn visitor_history(touches: Vec<SessionTouch>, q: &TouchQuery) -> VisitorHistory {
    let first = touches.iter().min_by_key(|t| (t.started_ms, t.session_id.clone())).cloned();
    let mut lookback: Vec<SessionTouch> = touches.into_iter().filter(|t| t.started_ms >= q.from_ms).collect();
    lookback.sort_by(|x, y| (x.started_ms, &x.session_id).cmp(&(y.started_ms, &y.session_id)));
    lookback.dedup_by(|x, y| x.session_id == y.session_id);
    VisitorHistory { first, lookback }
}

/// Holder sessions that are not among their visitor's (no visitor id, or
/// events without it), looked up by id; keyed by the held call's position.
async fn own_sessions(lookups: &impl Lookups, held: &[Held<'_>], histories: &[VisitorHistory]) -> Result<HashMap<usize, SessionTouch>, StoreError> {
    let missing: Vec<usize> = (0..held.len()).filter(|k| !histories[*k].lookback.iter().any(|s| s.session_id == held[*k].holder.session_id)).collect();
    if missing.is_empty() {
        return Ok(HashMap::new());
    }
    let queries: Vec<SessionQuery> =
        missing.iter().map(|k| SessionQuery { account: held[*k].holder.account_id.clone(), visitor: held[*k].visitor.clone(), session: held[*k].holder.session_id.clone() }).collect();
    let found = lookups.sessions_by_id(&queries).await?;
    Ok(missing.into_iter().zip(found).filter_map(|(k, touch)| touch.map(|t| (k, t))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400_000;

    /// The look-ups over rows in memory, answering as the ClickHouse store does.
    #[derive(Default)]
    struct Memory {
        assignments: Vec<AssignmentRow>,
        /// (account, visitor, session landing)
        sessions: Vec<(String, String, SessionTouch)>,
    }

    impl Lookups for Memory {
        async fn number_histories(&self, calls: &[HolderQuery]) -> Result<Vec<Vec<AssignmentRow>>, StoreError> {
            Ok(calls
                .iter()
                .map(|q| {
                    let mut rows: Vec<AssignmentRow> = self
                        .assignments
                        .iter()
                        .filter(|r| r.account_id == q.account && r.number == q.number && r.assigned_ms <= q.at_ms && r.expires_ms >= q.at_ms.saturating_sub(DAY))
                        .cloned()
                        .collect();
                    rows.sort_by_key(|r| r.assigned_ms);
                    rows
                })
                .collect())
        }

        async fn visitor_touches(&self, calls: &[TouchQuery]) -> Result<Vec<Vec<SessionTouch>>, StoreError> {
            Ok(calls
                .iter()
                .map(|q| {
                    let mine: Vec<&SessionTouch> = self.sessions.iter().filter(|(a, v, _)| *a == q.account && *v == q.visitor && !v.is_empty()).map(|(_, _, s)| s).collect();
                    let first = mine.iter().filter(|s| s.started_ms <= q.to_ms).min_by_key(|s| s.started_ms).map(|s| (*s).clone());
                    first.into_iter().chain(mine.iter().filter(|s| s.started_ms >= q.from_ms && s.started_ms <= q.to_ms).map(|s| (*s).clone())).collect()
                })
                .collect())
        }

        async fn sessions_by_id(&self, sessions: &[SessionQuery]) -> Result<Vec<Option<SessionTouch>>, StoreError> {
            Ok(sessions
                .iter()
                .map(|q| self.sessions.iter().filter(|(a, v, s)| *a == q.account && (v.is_empty() || *v == q.visitor) && s.session_id == q.session).map(|(_, _, s)| s.clone()).min_by_key(|s| s.started_ms))
                .collect())
        }
    }

    fn accounts() -> AccountsFile {
        AccountsFile::parse(&format!(
            "[[account]]\nid = \"acc_x\"\ntoken_sha256 = \"{}\"\n[account.dni]\nsite_numbers = [\"+15550100000\"]\n\
             [[account.dni.pool]]\nid = \"ppc\"\nwhen = {{ medium = \"cpc\" }}\nnumbers = [\"+15550109001\", \"+15550109002\"]\n\
             [[account.dni.source]]\nwhen = {{ channel = \"email\" }}\nnumber = \"+15550108001\"\n",
            "0".repeat(64)
        ))
        .unwrap()
    }

    fn hold(number: &str, session: &str, visitor: &str, from: u64, to: u64) -> AssignmentRow {
        AssignmentRow {
            account_id: "acc_x".into(),
            number: number.into(),
            pool_id: "ppc".into(),
            session_id: session.into(),
            visitor_id: visitor.into(),
            assigned_ms: from,
            expires_ms: to,
            channel: "paid_search".into(),
            url: "https://d.example/offer?gclid=G".into(),
            click_id_type: "gclid".into(),
            click_id: "G".into(),
            ..AssignmentRow::default()
        }
    }

    fn landing(session: &str, at: u64, channel: &str, page: &str) -> SessionTouch {
        SessionTouch { session_id: session.into(), started_ms: at, channel: channel.into(), landing_page: page.into(), ..SessionTouch::default() }
    }

    fn call(id: &str, to: &str, at: u64) -> (CallRow, i64) {
        (CallRow { account_id: "acc_x".into(), call_id: id.into(), to_number: to.into(), started_ms: at, attribution: "none".into(), ..CallRow::default() }, at as i64)
    }

    const NOW: Wait = Wait { wait_ms: 300_000, now_ms: 100 * DAY as i64 };

    #[tokio::test]
    async fn a_pool_call_goes_to_its_holder_with_the_visitors_first_touch_and_linear_credit() {
        let store = Memory {
            assignments: vec![hold("+15550109001", "s2", "v1", 50 * DAY, 50 * DAY + 1_800_000)],
            sessions: vec![
                ("acc_x".into(), "v1".into(), landing("s0", 5 * DAY, "organic_search", "/")),
                ("acc_x".into(), "v1".into(), landing("s1", 40 * DAY, "email", "/news")),
                ("acc_x".into(), "v1".into(), landing("s2", 50 * DAY, "paid_search", "/offer")),
            ],
        };
        let mut calls = vec![call("C1", "+15550109001", 50 * DAY + 600_000)];
        attribute_rows(&store, &accounts(), &mut calls, NOW).await.unwrap();
        let row = &calls[0].0;
        assert_eq!((row.attribution.as_str(), row.confidence.as_str(), row.session_id.as_str(), row.visitor_id.as_str()), ("session", "exclusive", "s2", "v1"));
        assert_eq!((row.channel.as_str(), row.landing_page.as_str(), row.click_id.as_str()), ("paid_search", "/offer", "G"));
        assert_eq!(row.first_touch_session, "s0", "first touch reaches before the 30-day lookback");
        assert_eq!(row.linear_session, ["s1", "s2"], "linear covers the lookback only");
    }

    #[tokio::test]
    async fn source_and_site_numbers_need_no_look_up_and_unknown_numbers_stay_none() {
        let mut calls = vec![call("C1", "+15550108001", DAY), call("C2", "+15550100000", DAY), call("C3", "+19999999999", DAY)];
        attribute_rows(&Memory::default(), &accounts(), &mut calls, NOW).await.unwrap();
        let got: Vec<(&str, &str)> = calls.iter().map(|(r, _)| (r.attribution.as_str(), r.channel.as_str())).collect();
        assert_eq!(got, [("source", "email"), ("site", ""), ("none", "")]);
    }

    #[tokio::test]
    async fn a_call_without_a_holder_waits_then_gives_up() {
        let fresh = Wait { wait_ms: 300_000, now_ms: (DAY + 1_000) as i64 };
        let mut calls = vec![call("C1", "+15550109002", DAY)];
        attribute_rows(&Memory::default(), &accounts(), &mut calls, fresh).await.unwrap();
        assert_eq!(calls[0].0.attribution, "pending");
        let late = Wait { wait_ms: 300_000, now_ms: (DAY + 400_000) as i64 };
        attribute_rows(&Memory::default(), &accounts(), &mut calls, late).await.unwrap();
        assert_eq!(calls[0].0.attribution, "none");
    }

    #[tokio::test]
    async fn an_exhausted_pool_credits_the_latest_holder_as_shared() {
        let store = Memory { assignments: vec![hold("+15550109001", "s1", "v1", DAY, DAY + 1_800_000), hold("+15550109001", "s2", "v2", DAY + 60_000, DAY + 1_860_000)], ..Memory::default() };
        let mut calls = vec![call("C1", "+15550109001", DAY + 120_000)];
        attribute_rows(&store, &accounts(), &mut calls, NOW).await.unwrap();
        assert_eq!((calls[0].0.session_id.as_str(), calls[0].0.confidence.as_str()), ("s2", "shared"));
    }

    #[tokio::test]
    async fn a_holder_without_a_visitor_id_is_found_by_its_session() {
        // A session whose assignment carried no visitor id: its landing is looked up by session id.
        let store = Memory { assignments: vec![hold("+15550109001", "s9", "", DAY, DAY + 1_800_000)], sessions: vec![("acc_x".into(), String::new(), landing("s9", DAY - 1_000, "paid_search", "/lp"))] };
        let mut calls = vec![call("C1", "+15550109001", DAY + 60_000)];
        attribute_rows(&store, &accounts(), &mut calls, NOW).await.unwrap();
        let row = &calls[0].0;
        assert_eq!((row.session_id.as_str(), row.landing_page.as_str(), row.visitor_id.as_str()), ("s9", "/lp", ""));
        assert_eq!(row.linear_session, ["s9"]);
    }

    #[tokio::test]
    async fn a_renewal_holder_keeps_the_sessions_landing_from_its_first_assignment() {
        let mut renewal = hold("+15550109001", "s1", "v1", DAY + 900_000, DAY + 2_700_000);
        renewal.url = "https://d.example/contact".into();
        renewal.click_id.clear();
        let store = Memory { assignments: vec![hold("+15550109001", "s1", "v1", DAY, DAY + 1_800_000), renewal], ..Memory::default() };
        let mut calls = vec![call("C1", "+15550109001", DAY + 2_000_000)];
        attribute_rows(&store, &accounts(), &mut calls, NOW).await.unwrap();
        assert_eq!((calls[0].0.click_id.as_str(), calls[0].0.landing_page.as_str()), ("G", "/offer"), "the origin's click id and landing, not the renewal's page");
    }
}
