//! A 2xx means the data is in Kafka. A private broker is killed (SIGKILL)
//! while clients keep sending and later started again; afterwards every
//! batch that was answered 204 is in the topic, nothing was answered 2xx
//! while the broker was gone (503 + Retry-After instead), readiness followed
//! the broker, and ingest accepted again without a restart.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringpath_tests::fixtures::*;
use ringpath_tests::ingest_support::*;
use ringpath_tests::services::PrivateKafka;
use ringpath_tests::{Stack, StackOptions};

const EVENTS_PER_BATCH: usize = 5;

#[derive(Debug, Clone)]
struct Outcome {
    batch: String,
    started: Instant,
    finished: Instant,
    status: u16,
    retry_after: Option<String>,
}

/// Polls `done` until it holds; fails the test after `limit`.
async fn wait_until(what: &str, limit: Duration, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn readyz(stack: &Stack) -> u16 {
    stack.http.get(format!("{}/readyz", stack.ingest_url())).send().await.expect("readyz answers").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_2xx_is_lost_when_the_broker_dies_and_ingest_recovers_without_a_restart() {
    let mut kafka = PrivateKafka::start().expect("private kafka");
    let env = HashMap::from([
        ("RINGPATH_PRODUCE_TIMEOUT_MS".to_string(), "2000".to_string()),
        ("RINGPATH_RATE_PER_CLIENT".to_string(), "100000".to_string()),
        ("RINGPATH_RATE_BURST".to_string(), "100000".to_string()),
    ]);
    let stack = Stack::start(StackOptions { brokers: Some(kafka.brokers()), with_enrich: false, ingest_env: env, ..StackOptions::default() })
        .await
        .expect("stack on the private broker");
    assert_eq!(readyz(&stack).await, 200);

    // Four clients send batches back to back until told to stop.
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (outcomes, stop, counter) = (outcomes.clone(), stop.clone(), counter.clone());
        let url = format!("{}/v1/collect", stack.ingest_url());
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let batch = format!("b{}", counter.fetch_add(1, Ordering::SeqCst));
                let body = serde_json::to_vec(&good_batch(DEMO_ACCOUNT, &batch, EVENTS_PER_BATCH)).expect("json");
                let started = Instant::now();
                let resp = http.post(&url).header("content-type", "text/plain").header("user-agent", BROWSER_UA).body(body).send().await.expect("ingest answers");
                let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
                outcomes.lock().expect("lock").push(Outcome { batch, started, finished: Instant::now(), status: resp.status().as_u16(), retry_after });
                // Pacing of the load, not a wait for an outcome.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }

    // Conditions, not times: traffic is acknowledged before the kill, the
    // outage lasts until requests sent during it were answered (503) and
    // readiness has failed, and traffic is acknowledged again after the return.
    let count_where = |f: &dyn Fn(&Outcome) -> bool| outcomes.lock().expect("lock").iter().filter(|o| f(o)).count();
    wait_until("20 batches accepted before the outage", Duration::from_secs(60), || count_where(&|o| o.status == 204) >= 20).await;
    kafka.kill();
    let killed = Instant::now();
    wait_until("8 requests sent and answered during the outage", Duration::from_secs(90), || count_where(&|o| o.started > killed) >= 8).await;
    let started = Instant::now();
    let ready_during_outage = loop {
        let status = readyz(&stack).await;
        if status != 200 || started.elapsed() > Duration::from_secs(30) {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let resuming = Instant::now();
    kafka.resume().expect("broker restarts");

    // Ingest accepts again on its own (bounded), then some more traffic.
    wait_until("ingest accepting again after the broker's return", Duration::from_secs(90), || count_where(&|o| o.started > resuming && o.status == 204) >= 1).await;
    wait_until("10 more batches accepted after the return", Duration::from_secs(60), || count_where(&|o| o.started > resuming && o.status == 204) >= 10).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.expect("client task");
    }
    let ready_after = readyz(&stack).await;
    let outcomes = outcomes.lock().expect("lock").clone();

    let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let before = count(&|o| o.finished < killed && o.status == 204);
    let during: Vec<&Outcome> = outcomes.iter().filter(|o| o.started > killed && o.finished < resuming).collect();
    let after = count(&|o| o.started > resuming && o.status == 204);
    println!("batches: {} total; {before} accepted before the kill, {} sent and answered during the outage, {after} accepted after", outcomes.len(), during.len());

    assert!(before > 0, "nothing was accepted before the outage");
    assert!(!during.is_empty(), "no request fell entirely inside the outage");
    for o in &during {
        assert_eq!(o.status, 503, "{} got {} while the broker was down", o.batch, o.status);
        assert!(o.retry_after.as_deref().and_then(|v| v.parse::<u64>().ok()).is_some_and(|s| s >= 1), "{}: 503 without Retry-After", o.batch);
    }
    for o in &outcomes {
        assert!(o.status == 204 || o.status == 503, "{} got {}", o.batch, o.status);
    }
    assert_eq!(ready_during_outage, 503, "/readyz while the broker is down");
    assert_eq!(ready_after, 200, "/readyz after the broker returned");
    assert!(after > 0);

    // Every event of every 204 batch is in the topic.
    let messages = read_topic(&kafka.brokers(), &stack.topics.events).await.expect("read events");
    let in_topic: HashSet<String> = messages.iter().filter_map(|m| m.json()["event"]["id"].as_str().map(str::to_owned)).collect();
    let mut lost = Vec::new();
    for o in outcomes.iter().filter(|o| o.status == 204) {
        for i in 0..EVENTS_PER_BATCH {
            let id = format!("{}-{i}", o.batch);
            if !in_topic.contains(&id) {
                lost.push(id);
            }
        }
    }
    assert!(lost.is_empty(), "answered 204 but not in the topic: {lost:?}");
    let accepted = count(&|o| o.status == 204);
    println!("{accepted} batches answered 204, all {} of their events in the topic ({} messages there, duplicates and 503'd batches included)", accepted * EVENTS_PER_BATCH, messages.len());
    stack.stop().await.expect("stop");
}
