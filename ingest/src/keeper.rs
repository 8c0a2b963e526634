//! Keeps the pool store true: configured with the accounts file's pools, and
//! refilled from `ringpath.assignments` whenever it lacks the published holds
//! — at start (a fresh in-process store) and after a shared store lost its
//! data. One collector refills at a time (`claim_refill`); until the store is
//! marked ready, it refuses to decide and number requests get the
//! source-level or site number. Checked every [`PERIOD`].

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::web;

use crate::pools::PoolError;
use crate::restore;
use crate::state::AppState;

/// How often the keeper looks.
pub const PERIOD: Duration = Duration::from_secs(2);

/// One look: configure a store that missed the accounts file, refill one that lacks its holds.
pub async fn tick(state: &AppState, holder: &str) -> Result<(), PoolError> {
    let accounts = state.accounts();
    if state.pools_stale.swap(false, Ordering::SeqCst) {
        if let Err(e) = state.pools.configure(&accounts).await {
            state.pools_stale.store(true, Ordering::SeqCst);
            return Err(e);
        }
    }
    if !state.pools.needs_refill().await? || !state.pools.claim_refill(holder).await? {
        return Ok(());
    }
    state.pools.configure(&accounts).await?;
    if state.settings.restore_holds {
        let (brokers, topic) = (state.settings.kafka_brokers.clone(), state.settings.topics.assignments.clone());
        let now = state.clock.now_ms();
        let read = tokio::task::spawn_blocking(move || restore::live_assignments(&brokers, &topic, now)).await;
        let live = match read {
            Ok(Ok(live)) => live,
            Ok(Err(e)) => return Err(PoolError::Unavailable(format!("reading the assignments topic: {e}"))),
            Err(e) => return Err(PoolError::Unavailable(format!("reading the assignments topic: {e}"))),
        };
        let restored = restore::restore_into(state.pools.as_ref(), &accounts, &live, now).await?;
        tracing::info!(restored, "number holds restored from the assignments topic");
        state.metrics.pool_refills.inc();
    }
    state.pools.mark_ready().await
}

/// Looks every [`PERIOD`] until the collector stops.
pub async fn run(state: web::Data<AppState>, holder: String) {
    loop {
        tokio::time::sleep(PERIOD).await;
        if state.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        if let Err(e) = tick(&state, &holder).await {
            tracing::warn!(error = %e, "pool store not ready; number requests get source-level numbers meanwhile");
        }
    }
}
