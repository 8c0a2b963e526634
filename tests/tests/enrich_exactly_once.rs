//! Exactly-once into ClickHouse, against the real broker and server: enrich
//! killed mid-batch and restarted, every topic replayed from the start by a
//! new consumer group, ClickHouse killed and restarted under load, and poison
//! pills. Counts are the logical ones users see (FINAL / uniqExact, the
//! dashboard's totals); raw row counts are printed, not asserted.

#![allow(clippy::unwrap_used)] // tests may unwrap
#![allow(clippy::manual_is_multiple_of)] // is_multiple_of is newer than the workspace's rust-version

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringpath_tests::enrich::*;
use ringpath_tests::fixtures::*;
use ringpath_enrich::pipeline::Stage;
use ringpath_tests::services::PrivateClickHouse;
use ringpath_tests::{Stack, StackOptions};
use ringpath_types::wire::{Consent, DlqMessage};
use serde_json::{json, Value};

const MINUTE: i64 = 60_000;

/// (key, payload) messages for one topic, and the whole load by topic ("events", "assignments", "calls").
type Messages = Vec<(String, Vec<u8>)>;
type Workload = Vec<(String, Messages)>;

/// `events` page views over `visitors` visitors, `calls` sessions that took a
/// pool number and called it. Returns (topic, key, payload) in send order.
fn workload(tag: &str, events: usize, calls: usize) -> Workload {
    let now = now_ms();
    let mut ev = Vec::with_capacity(events);
    for i in 0..events {
        let visitor = format!("v-{tag}-{:05}", i % 2000);
        let session = format!("s-{tag}-{:05}", i % 3000);
        let url = if i % 3 == 0 { "https://demo.example/?utm_source=google&utm_medium=cpc&gclid=G" } else { "https://demo.example/page" };
        let visit = Visit { account: DEMO_ACCOUNT, consent: Consent::Granted, visitor: Some(&visitor), session: Some(&session), ip: "8.8.8.8", url, referrer: "https://www.google.com/", ts: now - 30 * MINUTE + i as i64 };
        ev.push((visitor.clone(), serde_json::to_vec(&event_message(&format!("e-{tag}-{i:06}"), &visit)).unwrap()));
    }
    let mut holds = Vec::new();
    let mut call_msgs = Vec::new();
    for c in 0..calls {
        // Numbers are reused one after another (holds of 1 minute), so every call has exactly one holder.
        let number = POOL_NUMBERS[c % POOL_NUMBERS.len()];
        let at = now - 20 * MINUTE + (c / POOL_NUMBERS.len()) as i64 * 2 * MINUTE / 100;
        let session = format!("s-{tag}-call-{c:04}");
        let hold = assignment_message(DEMO_ACCOUNT, number, "paid_search", &session, Some(&format!("v-{tag}-call-{c:04}")), at, at + MINUTE / 100 * 2 - 1, "https://demo.example/?utm_source=google&utm_medium=cpc", "", "8.8.8.8");
        holds.push((number.to_owned(), serde_json::to_vec(&hold).unwrap()));
        call_msgs.push((number.to_owned(), serde_json::to_vec(&call_message(DEMO_ACCOUNT, &format!("CA-{tag}-{c:04}"), number, at + 100, now)).unwrap()));
    }
    vec![("events".into(), ev), ("assignments".into(), holds), ("calls".into(), call_msgs)]
}

async fn send_workload(stack: &Stack, work: &[(String, Messages)]) {
    let writer = TopicWriter::new(&stack.brokers).unwrap();
    for (which, messages) in work {
        let topic = match which.as_str() {
            "events" => &stack.topics.events,
            "assignments" => &stack.topics.assignments,
            _ => &stack.topics.calls,
        };
        writer.send_all(topic, messages).await.unwrap();
    }
}

async fn count(stack: &Stack, sql: &str) -> u64 {
    stack.ch.query(sql).fetch_one::<u64>().await.unwrap()
}

#[derive(clickhouse::Row, serde::Deserialize, Debug, PartialEq)]
struct CallOutcome {
    call_id: String,
    attribution: String,
    session_id: String,
}

async fn call_outcomes(stack: &Stack) -> Vec<CallOutcome> {
    stack.ch.query("SELECT call_id, attribution, session_id FROM calls FINAL ORDER BY call_id").fetch_all().await.unwrap()
}

/// Logical counts: (events, uniq event ids, calls, assignments, dead letters in ClickHouse terms = 0).
async fn logical(stack: &Stack) -> (u64, u64, u64, u64) {
    (
        count(stack, "SELECT count() FROM events FINAL").await,
        count(stack, "SELECT uniqExact(event_id) FROM events").await,
        count(stack, "SELECT count() FROM calls FINAL").await,
        count(stack, "SELECT count() FROM assignments FINAL").await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrich_killed_mid_batch_and_restarted_stores_every_message_exactly_once() {
    // Many calls: attributing them happens after the batch's events are
    // inserted and before its offsets are committed, so crashes land there too.
    let (events, calls) = (8_000u64, 600u64);
    let mut stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.unwrap();
    send_workload(&stack, &workload("kill", events as usize, calls as usize)).await;
    let env = HashMap::from([("RINGPATH_ENRICH_BATCH_ROWS".to_string(), "1000".to_string())]);

    // Crashes at four points of the batch cycle, each reached by enrich
    // itself (its stage hook), not guessed from a row count: between a
    // batch's assignments and its events, between its events and its calls,
    // between its calls and its commit, and just after a commit.
    let crash_points = [(Stage::AssignmentsStored, 1), (Stage::EventsStored, 2), (Stage::CallsStored, 1), (Stage::Committed, 2)];
    let mut at_kill = Vec::new();
    let t0 = Instant::now();
    for (round, (stage, nth)) in crash_points.into_iter().enumerate() {
        let mut crash = CrashPoint::new(stage, nth);
        stack.start_enrich_with_hook(env.clone(), Some(crash.hook.clone())).unwrap();
        crash.parked(Duration::from_secs(120)).await.unwrap();
        stack.enrich.take().unwrap().kill().await;
        at_kill.push(count(&stack, "SELECT count() FROM events").await);
        println!("crash {round} at {stage:?} #{nth}: {} raw event rows stored ({:?} into the test)", at_kill[round], t0.elapsed());
    }
    // (Raw counts can fall between crashes: background merges collapse replayed duplicates.)
    assert_eq!(at_kill[0], 0, "the first crash came after the first batch's assignments, before any event: {at_kill:?}");
    assert!(at_kill.iter().all(|n| *n < events), "every crash left work behind: {at_kill:?}");

    stack.start_enrich(env).unwrap();
    println!("restarted after the last crash ({:?} into the test)", t0.elapsed());
    stack.wait_count("SELECT uniqExact(event_id) FROM events", events, Duration::from_secs(120)).await.unwrap();
    stack.wait_count("SELECT count() FROM calls FINAL WHERE attribution = 'session'", calls, Duration::from_secs(60)).await.unwrap();
    assert_eq!(logical(&stack).await, (events, events, calls, calls));
    println!("all stored and attributed ({:?} into the test)", t0.elapsed());
    let raw = count(&stack, "SELECT count() FROM events").await;
    println!("after the last restart {raw} raw rows for {events} events ({} replayed duplicates collapsed by FINAL)", raw - events);
    let outcomes = call_outcomes(&stack).await;
    assert!(outcomes.iter().all(|c| c.attribution == "session" && c.session_id == format!("s-kill-call-{}", &c.call_id[8..])), "{outcomes:?}");
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_enrich_processes_share_the_partitions_and_store_everything_once() {
    let (events, calls) = (6_000u64, 30u64);
    let mut stack = Stack::start(StackOptions { partitions: 4, with_enrich: false, ..StackOptions::default() }).await.unwrap();
    let env = HashMap::from([("RINGPATH_ENRICH_BATCH_ROWS".to_string(), "500".to_string())]);
    stack.start_enrich(env.clone()).unwrap();
    let first = stack.enrich.take().unwrap();
    stack.start_enrich(env).unwrap();
    let second = stack.enrich.take().unwrap();
    let group = format!("enrich-{}", stack.suffix);
    let started = Instant::now();
    while group_members(&stack.brokers, &group).unwrap() != (2, true) {
        assert!(started.elapsed() < Duration::from_secs(60), "the two processes never formed a stable group");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    send_workload(&stack, &workload("pair", events as usize, calls as usize)).await;
    stack.wait_count("SELECT uniqExact(event_id) FROM events", events, Duration::from_secs(60)).await.unwrap();
    stack.wait_count("SELECT count() FROM calls FINAL WHERE attribution = 'session'", calls, Duration::from_secs(60)).await.unwrap();
    assert_eq!(logical(&stack).await, (events, events, calls, calls));
    let (a, b) = (first.metrics.rows.with_label_values(&["events"]).get(), second.metrics.rows.with_label_values(&["events"]).get());
    println!("events written by the two processes: {a} + {b}");
    assert!(a > 0 && b > 0 && a + b >= events, "both processes took partitions: {a} + {b}");
    first.stop().await.unwrap();
    second.stop().await.unwrap();
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_every_topic_from_the_start_changes_no_count_a_user_sees() {
    let (events, calls) = (5_000u64, 30u64);
    let mut stack = Stack::start(StackOptions::default()).await.unwrap();
    send_workload(&stack, &workload("replay", events as usize, calls as usize)).await;
    stack.wait_count("SELECT uniqExact(event_id) FROM events", events, Duration::from_secs(60)).await.unwrap();
    stack.wait_count("SELECT count() FROM calls FINAL WHERE attribution = 'session'", calls, Duration::from_secs(60)).await.unwrap();
    let before = logical(&stack).await;
    let outcomes_before = call_outcomes(&stack).await;
    let dashboard = |stack: &Stack| {
        let from = now_ms() - 2 * 3600 * 1000;
        let (req_ts, req_attr) = (
            stack.dashboard_get(&format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?metric=pageviews&interval=hour&from={from}"), DEMO_ACCOUNT, DEMO_TOKEN),
            stack.dashboard_get(&format!("/v1/accounts/{DEMO_ACCOUNT}/attribution?dimension=channel&from={from}"), DEMO_ACCOUNT, DEMO_TOKEN),
        );
        async move {
            let ts: Value = req_ts.send().await.unwrap().json().await.unwrap();
            let attr: Value = req_attr.send().await.unwrap().json().await.unwrap();
            (ts["total"].clone(), attr["rows"].clone())
        }
    };
    let seen_before = dashboard(&stack).await;
    assert_eq!(seen_before.0, json!(events), "{seen_before:?}");

    stack.enrich.take().unwrap().stop().await.unwrap();
    let replay_group = format!("replay-{}", stack.suffix);
    stack.start_enrich(HashMap::from([("RINGPATH_ENRICH_GROUP".to_string(), replay_group)])).unwrap();
    let metrics = stack.enrich.as_ref().unwrap().metrics.clone();
    let started = Instant::now();
    while metrics.rows.with_label_values(&["events"]).get() < events || metrics.rows.with_label_values(&["calls"]).get() < calls {
        assert!(started.elapsed() < Duration::from_secs(120), "replay did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let raw = count(&stack, "SELECT count() FROM events").await;
    println!("after replay: {raw} raw event rows for {events} events");
    assert_eq!(logical(&stack).await, before);
    assert_eq!(call_outcomes(&stack).await, outcomes_before);
    assert_eq!(dashboard(&stack).await, seen_before);
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_killed_and_restarted_under_load_loses_nothing_and_enrich_resumes_by_itself() {
    let mut ch = PrivateClickHouse::start().unwrap();
    let stack = Arc::new(Stack::start(StackOptions { clickhouse_url: Some(ch.url()), ..StackOptions::default() }).await.unwrap());
    let accepted = Arc::new(AtomicU64::new(0));
    let calls_accepted = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stack, accepted, calls_accepted, stop) = (stack.clone(), accepted.clone(), calls_accepted.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let events: Vec<Value> = (0..5)
                    .map(|j| json!({"id": format!("ev-out-{i:05}-{j}"), "type": "pageview", "ts": now_ms() - 5, "url": "https://demo.example/", "referrer": "https://www.bing.com/", "props": {}}))
                    .collect();
                let body = json!({"v": 1, "account": DEMO_ACCOUNT, "sent_at": now_ms(), "consent": "denied", "page_id": format!("page-out-{i:05}"), "events": events});
                let resp = stack.http.post(format!("{}/v1/collect", stack.ingest_url())).header("User-Agent", CHROME_UA).json(&body).send().await.unwrap();
                if resp.status() == 204 {
                    accepted.fetch_add(5, Ordering::SeqCst);
                }
                if i % 50 == 0 {
                    let call = json!({"call_id": format!("CA-out-{i:05}"), "to": SOCIAL_NUMBER, "from": "+15557654321",
                                      "started_at": ringpath_types::time::format_rfc3339_ms(now_ms()), "duration_s": 30, "status": "completed"});
                    let resp = stack.http.post(format!("{}/v1/calls", stack.ingest_url())).basic_auth(DEMO_ACCOUNT, Some(DEMO_CALLS_TOKEN)).json(&call).send().await.unwrap();
                    if resp.status() == 202 {
                        calls_accepted.fetch_add(1, Ordering::SeqCst);
                    }
                }
                i += 1;
                // Pacing of the load generator (about 500 events/s), not a wait for an outcome.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    // Enrich is storing under load before the outage …
    stack.wait_count("SELECT count() FROM events", 200, Duration::from_secs(60)).await.unwrap();
    ch.kill();
    let stored_before_outage = accepted.load(Ordering::SeqCst);
    // … the outage lasts until enrich has failed to store and the collector
    // has gone on accepting (conditions, not a fixed time) …
    let errors = || stack.enrich.as_ref().unwrap().metrics.store_errors.with_label_values(&["events"]).get();
    let started = Instant::now();
    while errors() == 0 || accepted.load(Ordering::SeqCst) < stored_before_outage + 500 {
        assert!(started.elapsed() < Duration::from_secs(120), "outage: {} failed inserts, {} events accepted since the kill", errors(), accepted.load(Ordering::SeqCst) - stored_before_outage);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ch.resume().unwrap();
    // … and the load goes on after ClickHouse is back.
    let at_resume = accepted.load(Ordering::SeqCst);
    let started = Instant::now();
    while accepted.load(Ordering::SeqCst) < at_resume + 200 {
        assert!(started.elapsed() < Duration::from_secs(60), "the collector stopped accepting after the outage");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
    let (events, calls) = (accepted.load(Ordering::SeqCst), calls_accepted.load(Ordering::SeqCst));
    assert!(events > stored_before_outage + 500, "load continued through the outage ({stored_before_outage} → {events})");

    stack.wait_count("SELECT uniqExact(event_id) FROM events", events, Duration::from_secs(120)).await.unwrap();
    stack.wait_count("SELECT count() FROM calls FINAL", calls, Duration::from_secs(60)).await.unwrap();
    assert_eq!(count(&stack, "SELECT count() FROM events FINAL").await, events);
    assert_eq!(count(&stack, "SELECT count() FROM calls FINAL WHERE attribution = 'source'").await, calls);
    let errors = errors();
    println!("{events} events and {calls} calls accepted; all stored; {errors} failed event inserts retried during the outage");
    assert!(errors > 0, "the outage was noticed by enrich");
    let stack = Arc::try_unwrap(stack).ok().expect("load task finished");
    stack.stop().await.unwrap();
    drop(ch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_pill_goes_to_the_dead_letter_topic_with_its_reason_and_the_offset_moves_on() {
    let stack = Stack::start(StackOptions { partitions: 1, ..StackOptions::default() }).await.unwrap();
    let writer = TopicWriter::new(&stack.brokers).unwrap();
    let events = &stack.topics.events;
    writer.send_raw(events, "k", b"\x00\x01 not json at all").await.unwrap();
    writer.send_raw(events, "k", br#"{"account":"acc_demo","event":{"id":"half"}}"#).await.unwrap();
    let visit = Visit { account: "acc_unknown", consent: Consent::Granted, visitor: None, session: None, ip: "8.8.8.8", url: "https://x.example/", referrer: "", ts: now_ms() };
    writer.send(events, "k", &event_message("ev-unknown", &visit)).await.unwrap();
    writer.send(&stack.topics.calls, "k", &call_message("acc_unknown", "CA-unknown", SITE_NUMBER, now_ms(), now_ms())).await.unwrap();
    writer.send_raw(&stack.topics.assignments, "k", b"[]").await.unwrap();
    let good = Visit { account: DEMO_ACCOUNT, consent: Consent::Granted, visitor: Some("visitor-after"), session: Some("session-after"), ip: "8.8.8.8", url: "https://demo.example/", referrer: "", ts: now_ms() };
    writer.send(events, "k", &event_message("ev-after-poison", &good)).await.unwrap();

    stack.wait_count("SELECT count() FROM events WHERE event_id = 'ev-after-poison'", 1, Duration::from_secs(30)).await.unwrap();
    let started = Instant::now();
    let group = format!("enrich-{}", stack.suffix);
    loop {
        let committed = committed_offset(&stack.brokers, &group, events, 0).unwrap();
        if committed == Some(end_offset(&stack.brokers, events, 0).unwrap()) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "offset stuck at {committed:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dead: Vec<DlqMessage> = read_topic(&stack.brokers, &stack.topics.dlq).unwrap().iter().map(|m| serde_json::from_slice(m).unwrap()).collect();
    let mut seen: Vec<(&str, &str)> = dead.iter().map(|d| (d.stage.as_str(), d.reason.as_str())).collect();
    seen.sort();
    let want = [
        ("enrich:assignments", "unparseable assignment message: invalid type"),
        ("enrich:calls", "unknown account acc_unknown"),
        ("enrich:events", "unknown account acc_unknown"),
        ("enrich:events", "unparseable event message: expected value"),
        ("enrich:events", "unparseable event message: missing field"),
    ];
    assert_eq!(seen.len(), want.len(), "{seen:?}");
    for ((stage, reason), (want_stage, want_reason)) in seen.iter().zip(want) {
        assert!(*stage == want_stage && reason.starts_with(want_reason), "{stage}: {reason} — wanted {want_stage}: {want_reason}…");
    }
    assert!(dead.iter().any(|d| d.payload.contains("not json at all")), "the payload is kept for inspection");
    assert_eq!(stack.enrich.as_ref().unwrap().metrics.dead_letters.with_label_values(&["enrich:events"]).get(), 3);
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_clickhouse_refuses_for_good_is_dead_lettered_and_its_partition_moves_on() {
    let mut stack = Stack::start(StackOptions { partitions: 1, with_enrich: false, ..StackOptions::default() }).await.unwrap();
    // A check on the server that refuses some rows for good, as a type or
    // constraint check does: a view on `events` that reads the title as a
    // number, for titles starting with "poison" (ClickHouse: Code 6,
    // CANNOT_PARSE_TEXT, on every insert holding such a row).
    stack
        .ch
        .query("CREATE MATERIALIZED VIEW poison_check ENGINE = MergeTree ORDER BY n AS SELECT toUInt32(title) AS n FROM events WHERE startsWith(title, 'poison')")
        .execute()
        .await
        .unwrap();
    let writer = TopicWriter::new(&stack.brokers).unwrap();
    let now = now_ms();
    let mut messages = Vec::new();
    for i in 0..300 {
        let visit = Visit { account: DEMO_ACCOUNT, consent: Consent::Granted, visitor: Some("visitor-poison"), session: Some("session-poison"), ip: "8.8.8.8", url: "https://demo.example/", referrer: "", ts: now - 60_000 + i };
        let mut msg = event_message(&format!("ev-p-{i:03}"), &visit);
        if i == 150 {
            msg.event.title = Some("poison pill".into());
        }
        messages.push(("visitor-poison".to_owned(), serde_json::to_vec(&msg).unwrap()));
    }
    writer.send_all(&stack.topics.events, &messages).await.unwrap();
    stack.start_enrich(HashMap::from([("RINGPATH_ENRICH_BATCH_ROWS".to_string(), "1000".to_string())])).unwrap();

    // Every other row of the batch is stored, and the partition's offset reaches its end.
    stack.wait_count("SELECT uniqExact(event_id) FROM events WHERE event_id != 'ev-p-150'", 299, Duration::from_secs(60)).await.unwrap();
    let started = Instant::now();
    let group = format!("enrich-{}", stack.suffix);
    loop {
        let committed = committed_offset(&stack.brokers, &group, &stack.topics.events, 0).unwrap();
        if committed == Some(end_offset(&stack.brokers, &stack.topics.events, 0).unwrap()) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "offset stuck at {committed:?}: the poison row stalls its partition");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The refused row is on the dead-letter topic with ClickHouse's reason; nothing else is.
    let dead: Vec<DlqMessage> = read_topic(&stack.brokers, &stack.topics.dlq).unwrap().iter().map(|m| serde_json::from_slice(m).unwrap()).collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!((dead[0].stage.as_str(), dead[0].account.as_deref()), ("enrich:store:events", Some(DEMO_ACCOUNT)));
    assert!(dead[0].reason.contains("Code: 6"), "ClickHouse's code is in the reason: {}", dead[0].reason);
    assert!(dead[0].payload.contains("ev-p-150") && dead[0].payload.contains("poison pill"), "{}", dead[0].payload);
    let metrics = &stack.enrich.as_ref().unwrap().metrics;
    assert_eq!(metrics.dead_letters.with_label_values(&["enrich:store:events"]).get(), 1);
    // Later messages on the same partition are stored too.
    let after = Visit { account: DEMO_ACCOUNT, consent: Consent::Granted, visitor: Some("visitor-poison"), session: Some("session-poison"), ip: "8.8.8.8", url: "https://demo.example/", referrer: "", ts: now_ms() };
    writer.send(&stack.topics.events, "visitor-poison", &event_message("ev-p-after", &after)).await.unwrap();
    stack.wait_count("SELECT count() FROM events WHERE event_id = 'ev-p-after'", 1, Duration::from_secs(30)).await.unwrap();
    stack.enrich.take().unwrap().stop().await.unwrap();
    stack.stop().await.unwrap();
}
