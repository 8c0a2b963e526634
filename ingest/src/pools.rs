//! Which number a visit gets (README "Collector (ingest)"): a session holding
//! a pool number keeps it on every page; otherwise the first pool whose rule
//! matches the landing (never for crawlers), else the first matching
//! source-level number, else the site's own. Holds live in a [`PoolStore`]:
//! in this process ([`memory::MemoryPools`], one collector) or shared by
//! several collectors. The store's rules: the same live session always gets
//! the same number; a hold lasts `hold_minutes` after the session's last
//! activity; no number is live in two sessions until the pool is exhausted —
//! then the least recently used number is reused and the hold is `shared`.

pub mod memory;
pub mod state;

use std::future::Future;
use std::pin::Pin;

use ringpath_types::accounts::{Account, AccountsFile, Pool};
use ringpath_types::VisitSource;

/// A number given to (or renewed for) a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub number: String,
    pub expires_at: i64,
    /// Another live session holds the same number (the pool was exhausted).
    pub shared: bool,
    /// The session already held this number.
    pub renewed: bool,
}

/// A pool's use now, for the utilisation metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUse {
    pub account: String,
    pub pool: String,
    /// Numbers with at least one live hold.
    pub live: usize,
    pub size: usize,
    /// Assignments that had to share a number, since start.
    pub exhausted_total: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The shared store cannot be reached or answered wrongly: no pool number
    /// may be handed out (another collector might hold it).
    #[error("pool store unavailable: {0}")]
    Unavailable(String),
}

pub type PoolFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PoolError>> + Send + 'a>>;

/// Where holds live. Every method is one atomic decision of the store.
pub trait PoolStore: Send + Sync {
    /// The pool among `pools` (the account's, in order) in which `session` holds a live number.
    fn held_pool<'a>(&'a self, account: &'a str, pools: &'a [Pool], session: &'a str, now: i64) -> PoolFuture<'a, Option<String>>;
    /// Gives `session` a number of `pool`, or renews its hold there.
    fn assign<'a>(&'a self, account: &'a str, pool: &'a Pool, session: &'a str, now: i64, hold_ms: i64) -> PoolFuture<'a, Assignment>;
    /// Extends the live hold `session` has in one of `pools`; `None` if it holds nothing.
    fn renew<'a>(&'a self, account: &'a str, pools: &'a [Pool], session: &'a str, now: i64, hold_ms: i64) -> PoolFuture<'a, Option<(String, Assignment)>>;
    /// Replays a published assignment (start-up, or a store that lost its data).
    fn restore<'a>(&'a self, account: &'a str, pool: &'a Pool, session: &'a str, number: &'a str, assigned_at: i64, expires_at: i64, now: i64) -> PoolFuture<'a, ()>;
    /// Takes a new accounts file: pools added or removed, numbers added or
    /// removed; live holds on numbers that stay are kept.
    fn configure<'a>(&'a self, accounts: &'a AccountsFile) -> PoolFuture<'a, ()>;
    /// Every configured pool's use at `now`.
    fn utilisation(&self, now: i64) -> PoolFuture<'_, Vec<PoolUse>>;
}

/// What a number request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A pool number held for the session.
    Session { pool: String, assignment: Assignment },
    /// A source-level number (no hold).
    Source(String),
    /// The site's own number.
    Site(String),
    /// The account has no number at all.
    NoNumbers,
}

/// The number for a session landing with `visit` (classified like the
/// tracker does: a same-site referrer counts as direct).
pub async fn decide(store: &dyn PoolStore, account: &Account, session: &str, visit: &VisitSource, is_bot: bool, now: i64) -> Result<Decision, PoolError> {
    let dni = &account.dni;
    let hold_ms = i64::from(dni.hold_minutes) * 60_000;
    // A session that already holds a pool number keeps it on every page, even
    // where this page alone would classify as direct (an internal link).
    // Crawlers never take a pool number: they would hold it without ever calling.
    let pool = if is_bot {
        None
    } else {
        match store.held_pool(&account.id, &dni.pool, session, now).await? {
            Some(id) => dni.pool.iter().find(|p| p.id == id),
            None => dni.pool_for(visit),
        }
    };
    if let Some(pool) = pool {
        let assignment = store.assign(&account.id, pool, session, now, hold_ms).await?;
        return Ok(Decision::Session { pool: pool.id.clone(), assignment });
    }
    Ok(fallback(account, visit))
}

/// The number a visit gets without a pool: the first matching source-level
/// number, else the site's own (also what a session gets while the store is away).
pub fn fallback(account: &Account, visit: &VisitSource) -> Decision {
    let dni = &account.dni;
    if let Some(number) = dni.source_number_for(visit) {
        return Decision::Source(number.to_owned());
    }
    match dni.site_numbers.first() {
        Some(number) => Decision::Site(number.clone()),
        None => Decision::NoNumbers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pools::memory::MemoryPools;

    fn account() -> AccountsFile {
        AccountsFile::parse(&format!(
            "[[account]]\nid = \"acc_x\"\ntoken_sha256 = \"{}\"\n[account.dni]\nsite_numbers = [\"+15550100000\"]\n\
             [[account.dni.pool]]\nid = \"ppc\"\nwhen = {{ medium = \"cpc\" }}\nnumbers = [\"+15550109001\"]\n\
             [[account.dni.source]]\nwhen = {{ channel = \"email\" }}\nnumber = \"+15550108001\"\n",
            "0".repeat(64)
        ))
        .unwrap()
    }

    fn visit(url: &str, referrer: &str) -> VisitSource {
        ringpath_types::source::classify_landing(url, referrer).unwrap_or_default()
    }

    #[tokio::test]
    async fn a_landing_gets_its_pool_then_keeps_it_on_internal_pages() {
        let file = account();
        let store = MemoryPools::default();
        store.configure(&file).await.unwrap();
        let acc = &file.account[0];
        let first = decide(&store, acc, "s1", &visit("https://d.example/?utm_medium=cpc", ""), false, 0).await.unwrap();
        assert!(matches!(&first, Decision::Session { pool, assignment } if pool == "ppc" && assignment.number == "+15550109001" && !assignment.shared));
        let internal = decide(&store, acc, "s1", &visit("https://d.example/contact", "https://d.example/"), false, 1_000).await.unwrap();
        assert!(matches!(internal, Decision::Session { assignment, .. } if assignment.renewed), "the session keeps its number on an internal page");
    }

    #[tokio::test]
    async fn crawlers_sources_and_everyone_else_get_no_pool_number() {
        let file = account();
        let store = MemoryPools::default();
        store.configure(&file).await.unwrap();
        let acc = &file.account[0];
        assert_eq!(decide(&store, acc, "bot", &visit("https://d.example/?utm_medium=cpc", ""), true, 0).await.unwrap(), Decision::Site("+15550100000".into()));
        assert_eq!(decide(&store, acc, "s2", &visit("https://d.example/?utm_medium=email", ""), false, 0).await.unwrap(), Decision::Source("+15550108001".into()));
        assert_eq!(decide(&store, acc, "s3", &visit("https://d.example/", ""), false, 0).await.unwrap(), Decision::Site("+15550100000".into()));
    }
}
