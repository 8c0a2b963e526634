//! Number pools on the open internet: `/v1/numbers` is public (DNI needs it),
//! so a script can open thousands of sessions. Each client (an IP, an IPv6
//! /64) holds at most `RINGPATH_POOL_HOLDS_PER_CLIENT` numbers of a pool;
//! beyond that it gets the site's (or source-level) number — never a pool
//! number shared with a real visitor. Run against the in-process store and
//! the real Redis, on the real collector and Kafka.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::future::join_all;
use ringpath_tests::ingest_support::*;
use ringpath_tests::{Stack, StackOptions};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

const POOL: usize = 30;
const CAP: usize = 10;
const ATTACK_SESSIONS: usize = 10_000;

async fn stack(redis: bool) -> Stack {
    let mut env = HashMap::from([
        ("RINGPATH_TRUSTED_PROXIES".to_string(), "127.0.0.1".to_string()),
        ("RINGPATH_RATE_PER_CLIENT".to_string(), "1000000".to_string()),
        ("RINGPATH_RATE_BURST".to_string(), "1000000".to_string()),
        ("RINGPATH_POOL_HOLDS_PER_CLIENT".to_string(), CAP.to_string()),
        ("RINGPATH_RESTORE_HOLDS".to_string(), "false".to_string()),
    ]);
    if redis {
        env.insert("RINGPATH_POOLS_REDIS_URL".into(), ringpath_tests::redis_url());
        env.insert("RINGPATH_POOLS_REDIS_NAMESPACE".into(), format!("abuse{}", ringpath_tests::unique_suffix()));
    }
    Stack::start(StackOptions { accounts: accounts_with_pool(POOL, 30), ingest_env: env, with_enrich: false, ..StackOptions::default() }).await.expect("stack")
}

/// Asks for a number for `session` as the client `ip` (behind the trusted proxy).
async fn ask_as(http: &reqwest::Client, ingest: &str, session: &str, ip: &str) -> Value {
    let body = json!({"account": POOL_ACCOUNT, "session_id": session, "visitor_id": format!("v-{session}"), "url": "https://pool.example/?utm_medium=cpc", "referrer": "https://www.google.com/"});
    let resp = http
        .post(format!("{ingest}/v1/numbers"))
        .header("content-type", "application/json")
        .header("user-agent", BROWSER_UA)
        .header("x-forwarded-for", ip)
        .body(body.to_string())
        .send()
        .await
        .expect("numbers");
    assert_eq!(resp.status(), 200, "{session} from {ip}");
    resp.json().await.expect("json")
}

async fn scripted_client_cannot_make_a_real_visitors_session_shared(redis: bool) {
    let stack = stack(redis).await;
    let ingest = stack.ingest_url();
    // The script: 10,000 random sessions from one IPv4 address, and some from
    // addresses that change inside one IPv6 /64.
    let permits = Arc::new(Semaphore::new(64));
    let attacks = (0..ATTACK_SESSIONS).map(|i| {
        let (http, ingest, permits) = (stack.http.clone(), ingest.clone(), permits.clone());
        async move {
            let _permit = permits.acquire().await.expect("permit");
            let ip = if i % 10 == 0 { format!("2001:db8:66:1::{:x}", i) } else { "203.0.113.66".to_owned() };
            ask_as(&http, &ingest, &format!("bot-{i:05}-{:08x}", rand::random::<u32>()), &ip).await
        }
    });
    let answers: Vec<Value> = join_all(attacks).await;
    let pool_numbers: HashSet<String> = answers.iter().filter(|a| a["kind"] == "session").map(|a| a["number"].as_str().expect("number").to_owned()).collect();
    let held = answers.iter().filter(|a| a["kind"] == "session").count();
    assert!(held <= 2 * CAP, "two clients (one IPv4, one IPv6 /64) hold at most {} pool numbers, not {held}", 2 * CAP);
    assert!(answers.iter().all(|a| a["kind"] == "session" || (a["kind"] == "site" && a["number"] == POOL_SITE_NUMBER)), "the rest get the site number");
    assert!(answers.iter().filter(|a| a["kind"] == "session").all(|a| a["shared"] == false), "the script never even shares: {pool_numbers:?}");

    // A real visitor from elsewhere still gets a number of their own, and keeps it.
    let visitor = ask_as(&stack.http, &ingest, "real-visitor-0001", "198.51.100.7").await;
    assert_eq!((visitor["kind"].as_str(), visitor["shared"].as_bool()), (Some("session"), Some(false)), "{visitor}");
    assert!(!pool_numbers.contains(visitor["number"].as_str().expect("number")), "not a number the script holds");
    let again = ask_as(&stack.http, &ingest, "real-visitor-0001", "198.51.100.7").await;
    assert_eq!(again["number"], visitor["number"]);

    // Counted by cause.
    let m = stack.http.get(stack.ingest_metrics_url()).send().await.expect("metrics").text().await.expect("text");
    let capped = metric_value(&m, "ringpath_ingest_numbers_without_pool_total", &[("cause", "client_cap")]).unwrap_or(0.0);
    assert_eq!(capped as usize, ATTACK_SESSIONS - held, "every refused session is counted");
    stack.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_process_a_scripted_client_cannot_make_a_real_visitors_session_shared() {
    scripted_client_cannot_make_a_real_visitors_session_shared(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_redis_a_scripted_client_cannot_make_a_real_visitors_session_shared() {
    scripted_client_cannot_make_a_real_visitors_session_shared(true).await;
}
