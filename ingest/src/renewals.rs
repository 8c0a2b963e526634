//! Hold renewals off the request's path. A beacon of a session that holds a
//! pool number keeps the hold alive (`hold_minutes` after its last activity):
//! the beacon's handler only queues the renewal; this worker coalesces them —
//! at most one look per session per [`COALESCE_MS`] of the collector's clock
//! (an assignment counts as one) — and renews in the pool store, then
//! publishes the renewed hold. A full queue drops renewals (counted): the
//! next beacon of the session renews it. Coalescing can end a hold up to
//! [`COALESCE_MS`] before `hold_minutes` after the very last beacon.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::web;
use ringpath_types::wire::Received;
use tokio::sync::Semaphore;

use crate::state::AppState;

/// Renewals waiting at most.
pub const QUEUE: usize = 10_000;
/// A session's renewals closer together than this are one.
pub const COALESCE_MS: i64 = 5_000;
/// Renewals in flight at once (each a store call and a Kafka produce).
const IN_FLIGHT: usize = 64;

/// A session's activity, to renew its hold with.
#[derive(Debug, Clone)]
pub struct Renewal {
    pub account: String,
    pub session: String,
    pub visitor: Option<String>,
    pub url: String,
    pub received: Received,
}

/// When each (account, session) was last renewed or looked at, on the collector's clock.
#[derive(Debug, Default)]
pub struct Recent {
    at: Mutex<HashMap<(String, String), i64>>,
}

impl Recent {
    /// Records a look at `at` unless one is closer than [`COALESCE_MS`]; true when recorded.
    fn take(&self, account: &str, session: &str, at: i64) -> bool {
        let mut recent = self.at.lock().unwrap_or_else(|p| p.into_inner());
        let key = (account.to_owned(), session.to_owned());
        if recent.get(&key).is_some_and(|done| at - done < COALESCE_MS) {
            return false;
        }
        if recent.len() > 100_000 {
            recent.retain(|_, done| at - *done < COALESCE_MS);
        }
        recent.insert(key, at);
        true
    }

    /// A number request just renewed (or gave) the session's hold.
    pub fn assigned(&self, account: &str, session: &str, at: i64) {
        self.at.lock().unwrap_or_else(|p| p.into_inner()).insert((account.to_owned(), session.to_owned()), at);
    }
}

/// Queues a renewal; never waits.
pub fn request(state: &AppState, renewal: Renewal) {
    if state.renewals.try_send(renewal).is_err() {
        state.metrics.renewals_dropped.inc();
    }
}

/// Runs the worker until the queue closes.
pub async fn run(state: web::Data<AppState>) {
    let Some(mut rx) = state.renewals_rx.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(renewal) = rx.recv().await {
        if !state.recent_renewals.take(&renewal.account, &renewal.session, renewal.received.received_at) {
            state.metrics.renewals_coalesced.inc();
            continue;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else { return };
        let state = state.clone();
        tokio::spawn(async move {
            crate::handlers::renew_hold(&state, &renewal).await;
            drop(permit);
        });
    }
}
