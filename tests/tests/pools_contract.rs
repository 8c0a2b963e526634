//! One behavioural suite for every number-pool store: the in-process one and
//! Redis (the real server `infra/services.sh` starts; a missing Redis fails
//! the test). A model of live holds drives random sequences of number
//! requests, beacons and waits through the `PoolStore` trait: a live session
//! always gets its number back, a new session gets a number no live session
//! holds and shares one only when every number is live, renewals extend
//! holds, and the utilisation the store reports is the model's.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use ringpath_ingest::pools::memory::MemoryPools;
use ringpath_ingest::pools::redis::RedisPools;
use ringpath_ingest::pools::{HoldRequest, PoolStore, Refusal};
use ringpath_types::accounts::AccountsFile;

const HOLD: i64 = 30 * 60_000;

#[derive(Debug, Clone)]
enum Op {
    Assign(u8),
    Touch(u8),
    Wait(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![4 => (0u8..12).prop_map(Op::Assign), 2 => (0u8..12).prop_map(Op::Touch), 1 => (0i64..HOLD * 2).prop_map(Op::Wait)]
}

fn accounts(account: &str, size: usize) -> AccountsFile {
    let numbers: Vec<String> = (0..size).map(|i| format!("\"+1555010900{i}\"")).collect();
    AccountsFile::parse(&format!(
        "[[account]]\nid = \"{account}\"\ntoken_sha256 = \"{}\"\n[account.dni]\nsite_numbers = [\"+15550100000\"]\n[[account.dni.pool]]\nid = \"ppc\"\nnumbers = [{}]\n",
        "0".repeat(64),
        numbers.join(", ")
    ))
    .expect("accounts")
}

/// Runs `ops` against a configured, ready store and the model; the first broken rule is the error.
async fn check(store: &dyn PoolStore, file: &AccountsFile, ops: &[Op]) -> Result<(), String> {
    let account = &file.account[0];
    let pools = &account.dni.pool;
    let size = pools[0].numbers.len();
    let mut model: HashMap<String, (String, i64)> = HashMap::new();
    let mut now = 1_800_000_000_000i64;
    let fail = |what: String| Err::<(), String>(what);
    for op in ops {
        now += 1;
        model.retain(|_, (_, exp)| *exp > now);
        match op {
            Op::Wait(ms) => now += ms,
            Op::Touch(s) => {
                let session = format!("s{s}");
                let got = store.renew(&account.id, pools, &session, now, HOLD).await.map_err(|e| e.to_string())?;
                if got.is_some() != model.contains_key(&session) {
                    return fail(format!("renew {session} at {now}: store {got:?}, model {:?}", model.get(&session)));
                }
                if let Some((_, a)) = got {
                    if a.number != model[&session].0 {
                        return fail(format!("renew {session}: {} instead of {}", a.number, model[&session].0));
                    }
                    model.insert(session, (a.number, a.expires_at));
                }
            }
            Op::Assign(s) => {
                let session = format!("s{s}");
                let live: HashSet<String> = model.values().map(|(n, _)| n.clone()).collect();
                let request = HoldRequest { account: &account.id, session: &session, client: "198.51.100.7", now, hold_ms: HOLD, client_cap: usize::MAX };
                let a = match store.assign(&pools[0], request).await.map_err(|e| e.to_string())? {
                    Ok(a) => a,
                    Err(refusal) => return fail(format!("assign {session} refused: {refusal:?}")),
                };
                if a.expires_at != now + HOLD {
                    return fail(format!("{session}: hold ends {} instead of {}", a.expires_at, now + HOLD));
                }
                match model.get(&session) {
                    Some((n, _)) if !a.renewed || &a.number != n => return fail(format!("{session} held {n} but got {a:?}")),
                    Some(_) => {}
                    None if a.renewed => return fail(format!("{session} held nothing but got a renewal {a:?}")),
                    None if a.shared && live.len() < size => return fail(format!("{session} shared {} although {} of {size} numbers were free", a.number, size - live.len())),
                    None if !a.shared && live.contains(&a.number) => return fail(format!("{} handed to {session} while live elsewhere", a.number)),
                    None => {}
                }
                model.insert(session, (a.number, a.expires_at));
            }
        }
        model.retain(|_, (_, exp)| *exp > now);
        let live: HashSet<&String> = model.values().map(|(n, _)| n).collect();
        let uses = store.utilisation(now).await.map_err(|e| e.to_string())?;
        let u = uses.iter().find(|u| u.account == account.id).ok_or("no utilisation for the pool")?;
        if (u.live, u.size) != (live.len(), size) {
            return fail(format!("utilisation at {now}: store ({}, {}), model ({}, {size})", u.live, u.size, live.len()));
        }
    }
    Ok(())
}

async fn ready(store: &dyn PoolStore, file: &AccountsFile) {
    store.configure(file).await.expect("configure");
    store.mark_ready().await.expect("ready");
}

fn redis_store() -> RedisPools {
    RedisPools::new(&ringpath_tests::redis_url(), &format!("t{}", ringpath_tests::unique_suffix())).expect("redis client")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn the_in_process_store_keeps_the_pool_rules(size in 1usize..6, ops in proptest::collection::vec(op(), 1..150)) {
        let file = accounts("acc_model", size);
        let store = MemoryPools::default();
        let result = runtime().block_on(async { ready(&store, &file).await; check(&store, &file, &ops).await });
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn the_redis_store_keeps_the_pool_rules(size in 1usize..6, ops in proptest::collection::vec(op(), 1..150)) {
        let file = accounts("acc_model", size);
        let store = redis_store();
        let result = runtime().block_on(async { ready(&store, &file).await; check(&store, &file, &ops).await });
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

/// The same cases, one by one, on both stores.
async fn edges(store: &dyn PoolStore) {
    let file = accounts("acc_edges", 2);
    let account = &file.account[0];
    let pool = &account.dni.pool[0];
    let now = 1_800_000_000_000i64;
    let req = |session: &'static str, client: &'static str, at: i64, cap: usize| HoldRequest { account: "acc_edges", session, client, now: at, hold_ms: HOLD, client_cap: cap };
    // Not ready: no decision.
    assert!(store.needs_refill().await.expect("needs_refill"), "a new store waits for its refill");
    ready(store, &file).await;
    assert!(!store.needs_refill().await.expect("needs_refill"));
    // A client's cap: its third session gets no number; another client's does.
    assert!(store.assign(pool, req("a1", "203.0.113.9", now, 2)).await.expect("store").is_ok());
    assert!(store.assign(pool, req("a2", "203.0.113.9", now, 2)).await.expect("store").is_ok());
    assert_eq!(store.assign(pool, req("a3", "203.0.113.9", now, 2)).await.expect("store"), Err(Refusal::ClientCap));
    let other = store.assign(pool, req("v1", "198.51.100.7", now, 2)).await.expect("store").expect("number");
    assert!(other.shared, "two numbers, both held: the third client's session shares");
    assert_eq!(store.held_pool("acc_edges", &account.dni.pool, "a1", now).await.expect("held"), Some("ppc".into()));
    assert_eq!(store.held_pool("acc_edges", &account.dni.pool, "nobody", now).await.expect("held"), None);
    // A restored hold blocks its number; a hold past its end is not restored.
    let file2 = accounts("acc_edges", 3);
    store.configure(&file2).await.expect("reconfigure");
    let pool3 = &file2.account[0].dni.pool[0];
    store.restore("acc_edges", pool3, "r1", "+15550109002", now - 1_000, now + HOLD, now).await.expect("restore");
    store.restore("acc_edges", pool3, "r2", "+15550109002", now - HOLD, now - 1, now).await.expect("restore");
    let uses = store.utilisation(now).await.expect("utilisation");
    let u = uses.iter().find(|u| u.account == "acc_edges").expect("pool");
    assert_eq!((u.live, u.size, u.exhausted_total), (3, 3, 1), "a1, a2 (and v1 sharing one of theirs), r1 on the new number");
    // Reconfigured to fewer numbers: holds on the removed ones end.
    let file1 = accounts("acc_edges", 1);
    store.configure(&file1).await.expect("reconfigure");
    let u = store.utilisation(now).await.expect("utilisation").into_iter().find(|u| u.account == "acc_edges").expect("pool");
    assert_eq!((u.live, u.size), (1, 1));
}

#[tokio::test]
async fn both_stores_refuse_before_their_refill_cap_clients_restore_and_reconfigure_alike() {
    edges(&MemoryPools::default()).await;
    edges(&redis_store()).await;
}

#[tokio::test]
async fn a_missing_redis_is_an_error_not_a_number() {
    let store = RedisPools::new("redis://127.0.0.1:1/", "t-missing").expect("client");
    let file = accounts("acc_missing", 1);
    let req = HoldRequest { account: "acc_missing", session: "s", client: "c", now: 0, hold_ms: HOLD, client_cap: 10 };
    assert!(store.assign(&file.account[0].dni.pool[0], req).await.is_err(), "no pool number without the store");
    assert!(store.needs_refill().await.is_err());
}
