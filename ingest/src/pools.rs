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
pub mod redis;
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

/// Why a session gets no pool number (it gets the source-level or site number instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its client (IP, IPv6 /64) already holds as many numbers as a client may.
    ClientCap,
    /// The pool has no numbers.
    Empty,
    /// The shared store is being refilled after it lost its data.
    NotReady,
}

impl Refusal {
    /// Bounded label for the metric of number requests answered without a pool number.
    pub fn cause(self) -> &'static str {
        match self {
            Refusal::ClientCap => "client_cap",
            Refusal::Empty => "empty_pool",
            Refusal::NotReady => "store_refilling",
        }
    }
}

/// One request for a hold in a pool.
#[derive(Debug, Clone, Copy)]
pub struct HoldRequest<'a> {
    pub account: &'a str,
    pub session: &'a str,
    /// Who asks: an IP, or an IPv6 /64 (`ringpath_types::ip::client_key`).
    pub client: &'a str,
    pub now: i64,
    pub hold_ms: i64,
    /// Most live holds one client may have in the pool.
    pub client_cap: usize,
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
    /// Gives the session a number of `pool`, or renews its hold there.
    fn assign<'a>(&'a self, pool: &'a Pool, request: HoldRequest<'a>) -> PoolFuture<'a, Result<Assignment, Refusal>>;
    /// Extends the live hold `session` has in one of `pools`; `None` if it holds nothing.
    fn renew<'a>(&'a self, account: &'a str, pools: &'a [Pool], session: &'a str, now: i64, hold_ms: i64) -> PoolFuture<'a, Option<(String, Assignment)>>;
    /// Replays a published assignment (start-up, or a store that lost its data).
    fn restore<'a>(&'a self, account: &'a str, pool: &'a Pool, session: &'a str, number: &'a str, assigned_at: i64, expires_at: i64, now: i64) -> PoolFuture<'a, ()>;
    /// Takes a new accounts file: pools added or removed, numbers added or
    /// removed; live holds on numbers that stay are kept.
    fn configure<'a>(&'a self, accounts: &'a AccountsFile) -> PoolFuture<'a, ()>;
    /// Every configured pool's use at `now`.
    fn utilisation(&self, now: i64) -> PoolFuture<'_, Vec<PoolUse>>;
    /// Whether the store lacks the published holds (a fresh process, a
    /// Redis that lost its data) and must be refilled before it decides.
    fn needs_refill(&self) -> PoolFuture<'_, bool>;
    /// Takes the right to refill (one collector at a time); false: another has it.
    fn claim_refill<'a>(&'a self, holder: &'a str) -> PoolFuture<'a, bool>;
    /// The store holds the truth again.
    fn mark_ready(&self) -> PoolFuture<'_, ()>;
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

/// Who asks for a number, and when.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    pub session: &'a str,
    pub client: &'a str,
    pub is_bot: bool,
    pub now: i64,
    pub client_cap: usize,
}

/// The number for a session landing with `visit` (classified like the
/// tracker does: a same-site referrer counts as direct), and why it got no
/// pool number when a pool matched but refused it.
pub async fn decide(store: &dyn PoolStore, account: &Account, visit: &VisitSource, asker: Asker<'_>) -> Result<(Decision, Option<Refusal>), PoolError> {
    let dni = &account.dni;
    // A session that already holds a pool number keeps it on every page, even
    // where this page alone would classify as direct (an internal link).
    // Crawlers never take a pool number: they would hold it without ever calling.
    let pool = if asker.is_bot {
        None
    } else {
        match store.held_pool(&account.id, &dni.pool, asker.session, asker.now).await? {
            Some(id) => dni.pool.iter().find(|p| p.id == id),
            None => dni.pool_for(visit),
        }
    };
    let Some(pool) = pool else { return Ok((fallback(account, visit), None)) };
    let request = HoldRequest {
        account: &account.id,
        session: asker.session,
        client: asker.client,
        now: asker.now,
        hold_ms: i64::from(dni.hold_minutes) * 60_000,
        client_cap: asker.client_cap,
    };
    match store.assign(pool, request).await? {
        Ok(assignment) => Ok((Decision::Session { pool: pool.id.clone(), assignment }, None)),
        // Under pressure from one client, or not ready: a number nobody else can lose.
        Err(refusal) => Ok((fallback(account, visit), Some(refusal))),
    }
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
        let asker = |session, now| Asker { session, client: "198.51.100.7", is_bot: false, now, client_cap: 10 };
        let (first, _) = decide(&store, acc, &visit("https://d.example/?utm_medium=cpc", ""), asker("s1", 0)).await.unwrap();
        assert!(matches!(&first, Decision::Session { pool, assignment } if pool == "ppc" && assignment.number == "+15550109001" && !assignment.shared));
        let (internal, _) = decide(&store, acc, &visit("https://d.example/contact", "https://d.example/"), asker("s1", 1_000)).await.unwrap();
        assert!(matches!(internal, Decision::Session { assignment, .. } if assignment.renewed), "the session keeps its number on an internal page");
    }

    #[tokio::test]
    async fn crawlers_sources_and_everyone_else_get_no_pool_number() {
        let file = account();
        let store = MemoryPools::default();
        store.configure(&file).await.unwrap();
        let acc = &file.account[0];
        let asker = |session, is_bot| Asker { session, client: "198.51.100.7", is_bot, now: 0, client_cap: 10 };
        let cpc = visit("https://d.example/?utm_medium=cpc", "");
        assert_eq!(decide(&store, acc, &cpc, asker("bot", true)).await.unwrap(), (Decision::Site("+15550100000".into()), None));
        assert_eq!(decide(&store, acc, &visit("https://d.example/?utm_medium=email", ""), asker("s2", false)).await.unwrap(), (Decision::Source("+15550108001".into()), None));
        assert_eq!(decide(&store, acc, &visit("https://d.example/", ""), asker("s3", false)).await.unwrap(), (Decision::Site("+15550100000".into()), None));
        // The pool's one number is held: a client over its cap gets the site number, never a shared one.
        let capped = Asker { client_cap: 0, ..asker("s4", false) };
        assert_eq!(decide(&store, acc, &cpc, capped).await.unwrap(), (Decision::Site("+15550100000".into()), Some(Refusal::ClientCap)));
    }
}
