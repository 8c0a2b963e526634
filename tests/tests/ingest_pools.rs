//! Number pools through real HTTP on the real broker: many sessions at once
//! on a small pool, exhaustion and least-recently-used reuse, hold expiry and
//! renewal by beacons, restart recovery from the assignments topic, bots,
//! sticky numbers across pages, and the pool gauges at /metrics.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util_free::join_all;
use ringpath_tests::fixtures::*;
use ringpath_tests::ingest_support::*;
use ringpath_tests::{Stack, StackOptions};
use serde_json::{json, Value};

/// `futures::join_all` without the dependency: spawn and await in order.
mod futures_util_free {
    pub async fn join_all<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await.expect("task"));
        }
        out
    }
}

const LANDING: &str = "https://pool.example/?utm_source=google&utm_medium=cpc&gclid=xyz";
const HOUR: Duration = Duration::from_secs(3600);

fn env() -> HashMap<String, String> {
    HashMap::from([("RINGPATH_RATE_PER_CLIENT".to_string(), "100000".to_string()), ("RINGPATH_RATE_BURST".to_string(), "100000".to_string())])
}

async fn pool_stack(size: usize, hold_minutes: u32) -> Stack {
    Stack::start(StackOptions { accounts: accounts_with_pool(size, hold_minutes), ingest_env: env(), with_enrich: false, ..StackOptions::default() })
        .await
        .expect("stack")
}

/// Asks for a number; returns the JSON answer.
async fn ask(http: &reqwest::Client, ingest: &str, account: &str, session: &str, url: &str, ua: &str) -> Value {
    let resp = http
        .post(format!("{ingest}/v1/numbers"))
        .header("content-type", "application/json")
        .header("user-agent", ua)
        .body(numbers_request(account, session, url).to_string())
        .send()
        .await
        .expect("numbers answers");
    assert_eq!(resp.status(), 200, "numbers for {session}");
    resp.json().await.expect("json")
}

async fn ask_pool(stack: &Stack, session: &str) -> Value {
    ask(&stack.http, &stack.ingest_url(), POOL_ACCOUNT, session, LANDING, BROWSER_UA).await
}

fn number(v: &Value) -> String {
    v["number"].as_str().expect("number").to_owned()
}

fn shared(v: &Value) -> bool {
    v["shared"].as_bool().expect("shared")
}

async fn metrics(stack: &Stack) -> String {
    stack.http.get(stack.ingest_metrics_url()).send().await.expect("metrics").text().await.expect("text")
}

fn pool_metric(text: &str, name: &str) -> f64 {
    metric_value(text, name, &[("account", POOL_ACCOUNT), ("pool", "everyone")]).unwrap_or_else(|| panic!("{name} missing in /metrics"))
}

fn clock(stack: &Stack) -> &ringpath_ingest::state::Clock {
    &stack.ingest.as_ref().expect("ingest").state.clock
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_sessions_at_once_never_share_a_number_until_the_pool_is_exhausted() {
    const SIZE: usize = 8;
    const SESSIONS: usize = 40;
    let stack = pool_stack(SIZE, 30).await;

    // 40 sessions ask at the same moment for a pool of 8.
    let ingest = stack.ingest_url();
    let tasks = (0..SESSIONS)
        .map(|i| {
            let (http, ingest) = (stack.http.clone(), ingest.clone());
            tokio::spawn(async move { (format!("burst-session-{i:03}"), ask(&http, &ingest, POOL_ACCOUNT, &format!("burst-session-{i:03}"), LANDING, BROWSER_UA).await) })
        })
        .collect();
    let answers: Vec<(String, Value)> = join_all(tasks).await;
    assert!(answers.iter().all(|(_, a)| a["kind"] == "session"));
    let exclusive: Vec<&(String, Value)> = answers.iter().filter(|(_, a)| !shared(a)).collect();
    let exclusive_numbers: HashSet<String> = exclusive.iter().map(|(_, a)| number(a)).collect();
    assert_eq!(exclusive.len(), SIZE, "exactly one exclusive hold per number");
    assert_eq!(exclusive_numbers, pool_numbers(SIZE).into_iter().collect(), "every number handed out once before any is shared");
    assert_eq!(answers.iter().filter(|(_, a)| shared(a)).count(), SESSIONS - SIZE, "the rest share, marked shared");

    // Shared reuse spreads over the pool by least recent use: no number gets
    // a third session before every number has a second.
    let mut per_number: HashMap<String, usize> = HashMap::new();
    for (_, a) in &answers {
        *per_number.entry(number(a)).or_default() += 1;
    }
    assert!(per_number.values().all(|&n| n == SESSIONS / SIZE), "reuse is spread evenly: {per_number:?}");

    // The same live session gets the same number back.
    for (session, a) in answers.iter().take(10) {
        assert_eq!(number(&ask_pool(&stack, session).await), number(a), "{session} keeps its number");
    }

    // LRU: renew one session on every number but one; a new session then
    // gets that one. The collector's clock moves between uses, so their order
    // is wall-clock order whatever the machine's speed.
    clock(&stack).advance(Duration::from_millis(20));
    let mut by_number: HashMap<String, &str> = HashMap::new();
    for (s, a) in &answers {
        by_number.entry(number(a)).or_insert(s.as_str());
    }
    let numbers = pool_numbers(SIZE);
    let (idle, busy) = numbers.split_last().expect("numbers");
    for n in busy {
        clock(&stack).advance(Duration::from_millis(2));
        ask_pool(&stack, by_number[n]).await;
    }
    let late = ask_pool(&stack, "late-session-0001").await;
    assert!(shared(&late));
    assert_eq!(&number(&late), idle, "the least recently used number is the one reused");

    // Utilisation at /metrics: all live, every sharing assignment counted.
    let m = metrics(&stack).await;
    assert_eq!(pool_metric(&m, "ringpath_ingest_pool_live_numbers"), SIZE as f64);
    assert_eq!(pool_metric(&m, "ringpath_ingest_pool_numbers"), SIZE as f64);
    assert_eq!(pool_metric(&m, "ringpath_ingest_pool_utilisation_ratio"), 1.0);
    assert_eq!(pool_metric(&m, "ringpath_ingest_pool_exhausted_total"), (SESSIONS - SIZE + 1) as f64);

    // Every assignment and renewal is on the assignments topic with its flags.
    let want = SESSIONS + 10 + busy.len() + 1;
    let msgs = wait_topic(&stack.brokers, &stack.topics.assignments, Duration::from_secs(30), |m| m.len() >= want).await.expect("assignments");
    assert_eq!(msgs.len(), want);
    for (session, a) in &answers {
        let found = msgs.iter().map(TopicMessage::json).find(|m| m["session_id"] == session.as_str()).expect("published");
        assert_eq!((found["number"].as_str(), found["shared"].as_bool(), found["pool_id"].as_str()), (Some(number(a).as_str()), Some(shared(a)), Some("everyone")));
        assert_eq!(found["account"], POOL_ACCOUNT);
    }
    assert!(msgs.iter().all(|m| m.key.as_deref() == m.json()["number"].as_str()), "keyed by tracking number");
    stack.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_expire_after_the_hold_window_and_beacons_renew_them() {
    let stack = pool_stack(2, 30).await;
    let a = ask_pool(&stack, "expiry-session-a").await;
    let b = ask_pool(&stack, "expiry-session-b").await;
    assert!(!shared(&a) && !shared(&b) && number(&a) != number(&b));
    assert!(shared(&ask_pool(&stack, "expiry-session-c").await), "pool of 2 is exhausted by a third session");
    let live = |m: &str| pool_metric(m, "ringpath_ingest_pool_live_numbers");
    assert_eq!(live(&metrics(&stack).await), 2.0);

    // 20 minutes on, session a is still browsing: its page view renews the hold.
    clock(&stack).advance(Duration::from_secs(20 * 60));
    let mut beacon = good_batch(POOL_ACCOUNT, "expiry", 1);
    beacon["session_id"] = json!("expiry-session-a");
    let resp = stack.http.post(format!("{}/v1/collect", stack.ingest_url())).header("content-type", "text/plain").header("user-agent", BROWSER_UA).body(beacon.to_string()).send().await.expect("collect");
    assert_eq!(resp.status(), 204);
    // The renewal happens beside the request (coalesced, off its path): it is done when it is published.
    let renewed_at = clock(&stack).now_ms() - 1_000;
    wait_topic(&stack.brokers, &stack.topics.assignments, Duration::from_secs(30), |m| {
        m.iter().any(|a| a.json()["session_id"] == "expiry-session-a" && a.json()["assigned_at"].as_i64().is_some_and(|t| t >= renewed_at))
    })
    .await
    .expect("the beacon's renewal is published");

    // 40 minutes after b and c were last seen their holds are over; a's (renewed at 20) is not.
    clock(&stack).advance(Duration::from_secs(20 * 60));
    assert_eq!(live(&metrics(&stack).await), 1.0, "only a's hold is live");
    let d = ask_pool(&stack, "expiry-session-d").await;
    assert!(!shared(&d), "an expired hold frees its number");
    assert_eq!(number(&d), number(&b), "d gets b's freed number, not a's live one");
    let a_again = ask_pool(&stack, "expiry-session-a").await;
    assert_eq!(number(&a_again), number(&a), "a renewed by its beacon keeps its number");
    assert!(!shared(&a_again));

    // An hour later everything has expired; a returning session starts afresh.
    clock(&stack).advance(HOUR);
    assert_eq!(live(&metrics(&stack).await), 0.0);
    let e = ask_pool(&stack, "expiry-session-e").await;
    assert!(!shared(&e));
    stack.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_collector_restores_live_holds_from_the_assignments_topic() {
    let mut stack = pool_stack(3, 30).await;
    let a = ask_pool(&stack, "restart-session-a").await;
    let b = ask_pool(&stack, "restart-session-b").await;
    assert!(!shared(&a) && !shared(&b));

    // Stop this collector and start a new one on the same topics.
    let old_url = stack.ingest_url();
    stack.ingest.take().expect("ingest").stop().await;
    assert!(stack.http.get(format!("{old_url}/healthz")).send().await.is_err(), "the old collector is gone");
    stack.start_ingest(env()).await.expect("new ingest");
    assert_ne!(stack.ingest_url(), old_url);

    let c = ask_pool(&stack, "restart-session-c").await;
    assert!(!shared(&c), "the one free number is free");
    let held: HashSet<String> = [number(&a), number(&b)].into();
    assert!(!held.contains(&number(&c)), "a new session never gets a number held before the restart");
    assert_eq!(number(&ask_pool(&stack, "restart-session-a").await), number(&a), "a session keeps its number across the restart");
    assert!(shared(&ask_pool(&stack, "restart-session-d").await), "all three holds are live after the restart");
    let m = metrics(&stack).await;
    assert_eq!(pool_metric(&m, "ringpath_ingest_pool_live_numbers"), 3.0);
    stack.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_never_take_pool_numbers_and_sessions_keep_theirs_across_pages() {
    let stack = pool_stack(2, 30).await;
    let ingest = stack.ingest_url();
    // Crawlers (and clients without a user agent) on a paid landing page get the site number.
    for (i, ua) in [GOOGLEBOT_UA, "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "curl/8.5.0", "python-requests/2.32", ""].iter().enumerate() {
        let v = ask(&stack.http, &ingest, POOL_ACCOUNT, &format!("bot-session-{i:04}"), LANDING, ua).await;
        assert_eq!((v["kind"].as_str(), v["number"].as_str()), (Some("site"), Some(POOL_SITE_NUMBER)), "user agent {ua:?}");
    }
    let m = metrics(&stack).await;
    assert_eq!(metric_value(&m, "ringpath_ingest_pool_live_numbers", &[("account", POOL_ACCOUNT)]).unwrap_or(0.0), 0.0, "no bot holds a number");

    // acc_demo: a paid-search visitor takes a pool number and keeps it on internal pages.
    let landing = ask(&stack.http, &ingest, DEMO_ACCOUNT, "pages-session-01", "https://demo.example/?utm_source=google&utm_medium=cpc", BROWSER_UA).await;
    assert_eq!(landing["kind"], "session");
    assert!(POOL_NUMBERS.contains(&number(&landing).as_str()));
    for page in ["https://demo.example/pricing", "https://demo.example/contact?x=1", "https://demo.example/"] {
        let v = ask(&stack.http, &ingest, DEMO_ACCOUNT, "pages-session-01", page, BROWSER_UA).await;
        assert_eq!((v["kind"].as_str(), number(&v)), (Some("session"), number(&landing)), "{page}");
    }
    // An organic-search visitor gets the site number, an organic-social one the source-level number.
    let social = ask(&stack.http, &ingest, DEMO_ACCOUNT, "social-session-1", "https://demo.example/", BROWSER_UA).await;
    assert_eq!(social["kind"], "site", "{social}");
    let resp = stack
        .http
        .post(format!("{ingest}/v1/numbers"))
        .header("content-type", "application/json")
        .header("user-agent", BROWSER_UA)
        .body(json!({"account": DEMO_ACCOUNT, "session_id": "social-session-2", "url": "https://demo.example/", "referrer": "https://www.facebook.com/"}).to_string())
        .send()
        .await
        .expect("numbers");
    let v: Value = resp.json().await.expect("json");
    assert_eq!((v["kind"].as_str(), v["number"].as_str()), (Some("source"), Some(SOCIAL_NUMBER)));
    stack.stop().await.expect("stop");
}
