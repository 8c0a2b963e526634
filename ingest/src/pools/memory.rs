//! The one-collector [`PoolStore`]: every pool's holds in this process's
//! memory ([`PoolState`], pure and model-tested), behind one lock. `infra/up`
//! runs this; several collectors need a shared store instead, or two of
//! them would give the same number to two sessions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use ringpath_types::accounts::{AccountsFile, Pool};

use super::state::PoolState;
use super::{Assignment, HoldRequest, PoolFuture, PoolStore, PoolUse, Refusal};

/// (account, pool id) → its holds.
type Pools = HashMap<(String, String), PoolState>;

#[derive(Debug, Default)]
pub struct MemoryPools {
    pools: Mutex<Pools>,
    /// Restored from the assignments topic (once, at start).
    ready: AtomicBool,
}

impl MemoryPools {
    fn lock(&self) -> MutexGuard<'_, Pools> {
        self.pools.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn key(account: &str, pool: &str) -> (String, String) {
        (account.to_owned(), pool.to_owned())
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> PoolFuture<'a, T> {
    Box::pin(std::future::ready(Ok(value)))
}

impl PoolStore for MemoryPools {
    fn held_pool<'a>(&'a self, account: &'a str, pools: &'a [Pool], session: &'a str, now: i64) -> PoolFuture<'a, Option<String>> {
        let held = self.lock();
        ready(pools.iter().find(|p| held.get(&Self::key(account, &p.id)).is_some_and(|st| st.holds(session, now))).map(|p| p.id.clone()))
    }

    fn assign<'a>(&'a self, pool: &'a Pool, r: HoldRequest<'a>) -> PoolFuture<'a, Result<Assignment, Refusal>> {
        let mut pools = self.lock();
        let state = pools.entry(Self::key(r.account, &pool.id)).or_insert_with(|| PoolState::new(&pool.numbers));
        ready(state.assign(r.session, r.client, r.now, r.hold_ms, r.client_cap))
    }

    fn renew<'a>(&'a self, account: &'a str, pools: &'a [Pool], session: &'a str, now: i64, hold_ms: i64) -> PoolFuture<'a, Option<(String, Assignment)>> {
        let mut held = self.lock();
        let renewed = pools.iter().find_map(|p| held.get_mut(&Self::key(account, &p.id)).and_then(|st| st.touch(session, now, hold_ms)).map(|a| (p.id.clone(), a)));
        ready(renewed)
    }

    fn restore<'a>(&'a self, account: &'a str, pool: &'a Pool, session: &'a str, number: &'a str, assigned_at: i64, expires_at: i64, now: i64) -> PoolFuture<'a, ()> {
        let mut pools = self.lock();
        let state = pools.entry(Self::key(account, &pool.id)).or_insert_with(|| PoolState::new(&pool.numbers));
        let _ = assigned_at; // replays go in the topic's order; use order is all that counts
        state.restore(session, number, expires_at, now);
        ready(())
    }

    fn configure<'a>(&'a self, accounts: &'a AccountsFile) -> PoolFuture<'a, ()> {
        let mut pools = self.lock();
        let mut next = HashMap::new();
        for acc in &accounts.account {
            for pool in &acc.dni.pool {
                let key = Self::key(&acc.id, &pool.id);
                let state = match pools.remove(&key) {
                    Some(mut s) => {
                        s.reconfigure(&pool.numbers);
                        s
                    }
                    None => PoolState::new(&pool.numbers),
                };
                next.insert(key, state);
            }
        }
        *pools = next;
        ready(())
    }

    fn utilisation(&self, now: i64) -> PoolFuture<'_, Vec<PoolUse>> {
        let mut pools = self.lock();
        let uses = pools
            .iter_mut()
            .map(|((account, pool), st)| {
                let (live, size) = st.utilisation(now);
                PoolUse { account: account.clone(), pool: pool.clone(), live, size, exhausted_total: st.exhausted_total }
            })
            .collect();
        ready(uses)
    }

    fn needs_refill(&self) -> PoolFuture<'_, bool> {
        ready(!self.ready.load(Ordering::SeqCst))
    }

    fn claim_refill<'a>(&'a self, _holder: &'a str) -> PoolFuture<'a, bool> {
        ready(true)
    }

    fn mark_ready(&self) -> PoolFuture<'_, ()> {
        self.ready.store(true, Ordering::SeqCst);
        ready(())
    }
}
