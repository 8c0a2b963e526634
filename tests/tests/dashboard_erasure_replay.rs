//! An erased visitor stays erased when Kafka gives their messages back, on the
//! real broker and ClickHouse: after `DELETE …/visitors/{id}` has finished,
//! the same messages published again (a redelivery), the topics replayed from
//! the start by a new consumer group (a reset), and new events of the visitor
//! published after the erasure leave no row naming them in any table, while
//! another visitor's rows are stored as usual. Also: the rows enrich erases
//! itself when they were stored while an erasure was being written, and
//! tombstones that outlive every retention.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ringpath_store::rows::{AssignmentRow, CallRow, EventRow};
use ringpath_enrich::store::Store;
use ringpath_enrich::suppression::{LateIds, TombstoneSource};
use ringpath_tests::enrich::*;
use ringpath_tests::fixtures::*;
use ringpath_tests::{clickhouse_settings_at, Stack, StackOptions};
use ringpath_types::wire::Consent;
use serde_json::Value;

const MINUTE: i64 = 60_000;

const GONE: &str = "visitor-erased-0001";
const GONE_SESSIONS: [&str; 2] = ["sess-erased-0001", "sess-erased-0002"];
/// A session of the erased visitor begun after the erasure.
const GONE_NEW_SESSION: &str = "sess-erased-0003";
const GONE_IP: &str = "8.8.8.77";
/// In the query strings of the erased visitor's URLs (the site's own paths,
/// such as a call's landing page, are not theirs and stay).
const GONE_QUERY: &str = "erased-private-page";

const KEPT: &str = "visitor-kept-00001";
const KEPT_SESSION: &str = "sess-kept-000001";

/// Messages of one topic, as (key, JSON payload).
type Messages = Vec<(String, Vec<u8>)>;

/// The erased visitor's and the kept visitor's page views, number
/// assignments and calls (each call made while its session held the number).
fn before_erasure(now: i64) -> (Messages, Messages, Messages) {
    let visit = |visitor: &'static str, session: &'static str, ip: &'static str, url: &'static str, ts: i64| Visit {
        account: DEMO_ACCOUNT,
        consent: Consent::Granted,
        visitor: Some(visitor),
        session: Some(session),
        ip,
        url,
        referrer: "https://www.google.com/",
        ts,
    };
    let landing = "https://demo.example/offer?utm_source=google&utm_medium=cpc&gclid=G-ERASED&q=erased-private-page";
    let events = [
        ("e-gone-1", visit(GONE, GONE_SESSIONS[0], GONE_IP, landing, now - 30 * MINUTE)),
        ("e-gone-2", visit(GONE, GONE_SESSIONS[0], GONE_IP, "https://demo.example/offer?step=2&q=erased-private-page", now - 29 * MINUTE)),
        ("e-gone-3", visit(GONE, GONE_SESSIONS[1], GONE_IP, "https://demo.example/pricing?q=erased-private-page", now - 10 * MINUTE)),
        ("e-kept-1", visit(KEPT, KEPT_SESSION, "8.8.8.8", "https://demo.example/?utm_source=google&utm_medium=cpc", now - 28 * MINUTE)),
        ("e-kept-2", visit(KEPT, KEPT_SESSION, "8.8.8.8", "https://demo.example/pricing", now - 27 * MINUTE)),
    ];
    let events = events.iter().map(|(id, v)| (v.visitor.unwrap().to_owned(), serde_json::to_vec(&event_message(id, v)).unwrap())).collect();
    let gone_hold = assignment_message(DEMO_ACCOUNT, POOL_NUMBERS[0], "paid_search", GONE_SESSIONS[0], Some(GONE), now - 30 * MINUTE, now + 30 * MINUTE, landing, "https://www.google.com/", GONE_IP);
    let kept_hold = assignment_message(DEMO_ACCOUNT, POOL_NUMBERS[1], "paid_search", KEPT_SESSION, Some(KEPT), now - 28 * MINUTE, now + 30 * MINUTE, "https://demo.example/?utm_source=google&utm_medium=cpc", "", "8.8.8.8");
    let assignments = [gone_hold, kept_hold].iter().map(|a| (a.number.clone(), serde_json::to_vec(a).unwrap())).collect();
    let calls = [call_message(DEMO_ACCOUNT, "C-GONE", POOL_NUMBERS[0], now - 5 * MINUTE, now - 3 * MINUTE), call_message(DEMO_ACCOUNT, "C-KEPT", POOL_NUMBERS[1], now - 5 * MINUTE, now - 3 * MINUTE)];
    let calls = calls.iter().map(|c| (c.call.to.clone(), serde_json::to_vec(c).unwrap())).collect();
    (events, assignments, calls)
}

/// One page view of a visitor who is not erased: when it is stored, enrich
/// has handled everything published before it on the (single-partition) topic.
fn marker(id: &str, visitor: &str, now: i64) -> (String, Vec<u8>) {
    let v = Visit { account: DEMO_ACCOUNT, consent: Consent::Granted, visitor: Some(visitor), session: Some(visitor), ip: "8.8.8.8", url: "https://demo.example/marker", referrer: "", ts: now };
    (visitor.to_owned(), serde_json::to_vec(&event_message(id, &v)).unwrap())
}

async fn publish(stack: &Stack, events: &[(String, Vec<u8>)], assignments: &[(String, Vec<u8>)], calls: &[(String, Vec<u8>)]) {
    let writer = TopicWriter::new(&stack.brokers).unwrap();
    writer.send_all(&stack.topics.assignments, assignments).await.unwrap();
    writer.send_all(&stack.topics.events, events).await.unwrap();
    writer.send_all(&stack.topics.calls, calls).await.unwrap();
}

async fn count(stack: &Stack, sql: &str) -> u64 {
    stack.ch.query(sql).fetch_one::<u64>().await.unwrap()
}

/// Waits until `group` has committed every topic's single partition to its end.
async fn wait_all_consumed(stack: &Stack, group: &str) {
    let started = Instant::now();
    let topics = [&stack.topics.events, &stack.topics.assignments, &stack.topics.calls];
    loop {
        let mut behind = Vec::new();
        for topic in topics {
            let end = end_offset(&stack.brokers, topic, 0).unwrap();
            let committed = committed_offset(&stack.brokers, group, topic, 0).unwrap().unwrap_or(0);
            if committed < end {
                behind.push(format!("{topic}: {committed}/{end}"));
            }
        }
        if behind.is_empty() {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "group {group} still behind: {behind:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn erase_and_wait(stack: &Stack, visitor: &str) {
    let url = format!("{}/v1/accounts/{DEMO_ACCOUNT}/visitors/{visitor}", stack.dashboard_url());
    let resp = stack.http.delete(&url).basic_auth(DEMO_ACCOUNT, Some(DEMO_TOKEN)).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let started = Instant::now();
    loop {
        let body: Value = stack.dashboard_get(&format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{visitor}/erasure"), DEMO_ACCOUNT, DEMO_TOKEN).send().await.unwrap().json().await.unwrap();
        if body["status"] == "done" {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "erasure of {visitor} not done: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every place in the test database (every String and Array(String) column
/// of every table) that still holds something of the erased visitor.
async fn traces_of_the_erased_visitor(stack: &Stack) -> Vec<Hit> {
    let needles = [GONE, GONE_SESSIONS[0], GONE_SESSIONS[1], GONE_NEW_SESSION, GONE_IP, GONE_QUERY, "G-ERASED"];
    find_everywhere(&stack.ch, &stack.database, &needles).await.unwrap()
}

/// The kept visitor, as stored: (event ids, assignments, their call's visitor and attribution).
async fn kept_visitor(stack: &Stack) -> (u64, u64, String) {
    let events = count(stack, &format!("SELECT uniqExact(event_id) FROM events WHERE visitor_id = '{KEPT}'")).await;
    let assignments = count(stack, &format!("SELECT count() FROM assignments FINAL WHERE visitor_id = '{KEPT}'")).await;
    let call = stack.ch.query("SELECT concat(visitor_id, '/', attribution) FROM calls FINAL WHERE call_id = 'C-KEPT'").fetch_one::<String>().await.unwrap();
    (events, assignments, call)
}

/// Every stored row (not only the newest) of the erased visitor's call, as
/// attribution/channel/visitor: a redelivery finds no assignment for it any
/// more, and must not store a `pending` row that would replace its credit.
async fn erased_call(stack: &Stack) -> Vec<String> {
    stack.ch.query("SELECT DISTINCT concat(attribution, '/', channel, '/', visitor_id) FROM calls WHERE call_id = 'C-GONE'").fetch_all().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_visitor_is_not_stored_again_when_kafka_redelivers_or_replays_their_messages() {
    let mut stack = Stack::start(StackOptions { partitions: 1, ..StackOptions::default() }).await.unwrap();
    let t0 = Instant::now();
    let now = now_ms();
    let (events, assignments, calls) = before_erasure(now);
    publish(&stack, &events, &assignments, &[]).await;
    stack.wait_count("SELECT uniqExact(event_id) FROM events", 5, Duration::from_secs(60)).await.unwrap();
    stack.wait_count("SELECT count() FROM assignments", 2, Duration::from_secs(60)).await.unwrap();
    publish(&stack, &[], &[], &calls).await;
    stack.wait_count(&format!("SELECT count() FROM calls FINAL WHERE attribution = 'session' AND visitor_id IN ('{GONE}', '{KEPT}')"), 2, Duration::from_secs(60)).await.unwrap();
    let before = traces_of_the_erased_visitor(&stack).await;
    assert!(before.len() >= 10, "the visitor is stored everywhere before the erasure");
    for table in ["events", "visitor_events", "sessions", "assignments", "calls"] {
        assert!(before.iter().any(|hit| hit.table == table && hit.needle == GONE), "the scan finds the visitor in {table} before: {before:?}");
    }
    let kept_before = kept_visitor(&stack).await;
    assert_eq!(kept_before, (2, 1, format!("{KEPT}/session")));

    println!("stored and attributed ({:?} into the test)", t0.elapsed());
    erase_and_wait(&stack, GONE).await;
    println!("erased ({:?} into the test)", t0.elapsed());
    assert_eq!(traces_of_the_erased_visitor(&stack).await, [], "erasure left something");
    let tombstones = stack.ch.query("SELECT kind FROM erasures WHERE account_id = ? ORDER BY kind").bind(DEMO_ACCOUNT).fetch_all::<String>().await.unwrap();
    assert_eq!(tombstones, ["session", "session", "visitor"], "the visitor and both their sessions, by hash");
    assert_eq!(count(&stack, &format!("SELECT count() FROM erasures WHERE id_hash = '{}'", sha256_hex(GONE))).await, 1);

    // A redelivery: the very same messages again, and new page views, a number
    // and a call of the erased visitor in a session begun after the erasure.
    let visit = Visit { account: DEMO_ACCOUNT, consent: Consent::Granted, visitor: Some(GONE), session: Some(GONE_NEW_SESSION), ip: GONE_IP, url: "https://demo.example/contact?q=erased-private-page", referrer: "", ts: now_ms() };
    let mut again_events = events.clone();
    again_events.push((GONE.to_owned(), serde_json::to_vec(&event_message("e-gone-after", &visit)).unwrap()));
    again_events.push(marker("e-marker-1", "visitor-marker-0001", now_ms()));
    let mut again_assignments = assignments.clone();
    let new_hold = assignment_message(DEMO_ACCOUNT, POOL_NUMBERS[2], "paid_search", GONE_NEW_SESSION, Some(GONE), now_ms(), now_ms() + 30 * MINUTE, "https://demo.example/contact?q=erased-private-page", "", GONE_IP);
    again_assignments.push((POOL_NUMBERS[2].to_owned(), serde_json::to_vec(&new_hold).unwrap()));
    let mut again_calls = calls.clone();
    again_calls.push((SITE_NUMBER.to_owned(), serde_json::to_vec(&call_message(DEMO_ACCOUNT, "C-MARKER-1", SITE_NUMBER, now_ms() - MINUTE, now_ms())).unwrap()));
    publish(&stack, &again_events, &again_assignments, &again_calls).await;
    stack.wait_count("SELECT count() FROM events WHERE event_id = 'e-marker-1'", 1, Duration::from_secs(60)).await.unwrap();
    stack.wait_count("SELECT count() FROM calls WHERE call_id = 'C-MARKER-1'", 1, Duration::from_secs(60)).await.unwrap();
    wait_all_consumed(&stack, &format!("enrich-{}", stack.suffix)).await;
    println!("redelivery consumed ({:?} into the test)", t0.elapsed());
    assert_eq!(traces_of_the_erased_visitor(&stack).await, [], "a redelivery stored the erased visitor again");
    assert_eq!(kept_visitor(&stack).await, kept_before, "the other visitor is stored as before");
    assert_eq!(erased_call(&stack).await, ["session/paid_search/"], "the erased visitor's call stays, credited, without them");
    let metrics = stack.enrich.as_ref().unwrap().metrics.clone();
    let dropped = |table: &str| metrics.erased_rows.with_label_values(&[table, "dropped"]).get();
    assert_eq!((dropped("events"), dropped("assignments")), (4, 2), "3 redelivered and 1 new page view, 1 redelivered and 1 new number");
    assert!(metrics.render().contains("ringpath_enrich_erased_ids 3"), "the list holds the visitor and two sessions");

    // A reset: a new consumer group replays every topic from the start, after
    // a restart that loads the list before consuming anything.
    stack.enrich.take().unwrap().stop().await.unwrap();
    let group = format!("enrich-replay-{}", stack.suffix);
    stack.start_enrich(HashMap::from([("RINGPATH_ENRICH_GROUP".to_string(), group.clone())])).unwrap();
    let writer = TopicWriter::new(&stack.brokers).unwrap();
    writer.send_all(&stack.topics.events, &[marker("e-marker-2", "visitor-marker-0002", now_ms())]).await.unwrap();
    stack.wait_count("SELECT count() FROM events WHERE event_id = 'e-marker-2'", 1, Duration::from_secs(60)).await.unwrap();
    wait_all_consumed(&stack, &group).await;
    println!("replay consumed ({:?} into the test)", t0.elapsed());
    assert_eq!(traces_of_the_erased_visitor(&stack).await, [], "a replay from the start stored the erased visitor again");
    assert_eq!(kept_visitor(&stack).await, kept_before);
    assert_eq!(erased_call(&stack).await, ["session/paid_search/"]);
    assert_eq!(count(&stack, "SELECT uniqExact(event_id) FROM events WHERE event_id LIKE 'e-marker-%'").await, 2);
    let replayed = stack.enrich.as_ref().unwrap().metrics.erased_rows.with_label_values(&["events", "dropped"]).get();
    assert_eq!(replayed, 7, "every page view of the erased visitor on the topic: 3 + 3 redelivered + 1 new");
    stack.stop().await.unwrap();
}

/// An event, an assignment and a call of one visitor and session, as enrich stores them.
fn rows_of(account: &str, visitor: &str, session: &str) -> (EventRow, AssignmentRow, CallRow) {
    let event = EventRow { account_id: account.into(), event_id: format!("e-{visitor}"), ts: 1_764_000_000, ts_ms: 1_764_000_000_000, visitor_id: visitor.into(), session_id: session.into(), version: 1, ..EventRow::default() };
    let assignment = AssignmentRow {
        account_id: account.into(),
        number: POOL_NUMBERS[0].into(),
        session_id: session.into(),
        visitor_id: visitor.into(),
        assigned_at: 1_764_000_000,
        assigned_ms: 1_764_000_000_000,
        version: 1,
        ..AssignmentRow::default()
    };
    let call = CallRow {
        account_id: account.into(),
        call_id: format!("C-{visitor}"),
        started_at: 1_764_000_100,
        started_ms: 1_764_000_100_000,
        attribution: "session".into(),
        channel: "paid_search".into(),
        session_id: session.into(),
        visitor_id: visitor.into(),
        from_number: "+15125559911".into(),
        linear_session: vec![session.into()],
        linear_channel: vec!["paid_search".into()],
        version: 1,
        ..CallRow::default()
    };
    (event, assignment, call)
}

#[derive(clickhouse::Row, serde::Deserialize, Debug, PartialEq)]
struct CallIds {
    call_id: String,
    visitor_id: String,
    session_id: String,
    from_number: String,
    linear_session: Vec<String>,
    channel: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_stored_while_their_erasure_was_written_are_erased_by_enrich_and_others_stay() {
    const LATE: &str = "visitor-late-0001";
    const LATE_SESSION: &str = "sess-late-0001";
    let stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.unwrap();
    let store = Store::new(&clickhouse_settings_at(&stack.clickhouse_url, &stack.database));
    let (late_event, late_assignment, late_call) = rows_of(DEMO_ACCOUNT, LATE, LATE_SESSION);
    let (kept_event, kept_assignment, kept_call) = rows_of(DEMO_ACCOUNT, KEPT, KEPT_SESSION);
    let (sessionless_event, _, _) = rows_of(DEMO_ACCOUNT, "", LATE_SESSION);
    let (other_account_event, _, _) = rows_of(OTHER_ACCOUNT, LATE, LATE_SESSION);
    store.insert_events(&[late_event, kept_event, EventRow { event_id: "e-sessionless".into(), ..sessionless_event }, other_account_event]).await.unwrap();
    store.insert_assignments(&[late_assignment, kept_assignment]).await.unwrap();
    store.insert_calls(&[late_call, kept_call]).await.unwrap();

    store.erase_late_rows(DEMO_ACCOUNT, &LateIds { visitors: vec![LATE.into()], sessions: vec![LATE_SESSION.into()] }).await.unwrap();
    let started = Instant::now();
    while count(&stack, "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND is_done = 0").await > 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "clean-up mutations not done");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let events: Vec<String> = stack.ch.query("SELECT concat(account_id, '/', event_id) FROM events ORDER BY account_id, event_id").fetch_all().await.unwrap();
    assert_eq!(events, [format!("{DEMO_ACCOUNT}/e-{KEPT}"), format!("{OTHER_ACCOUNT}/e-{LATE}")], "the visitor's and their session's events are gone, another account's are not");
    let assignments: Vec<String> = stack.ch.query("SELECT visitor_id FROM assignments").fetch_all().await.unwrap();
    assert_eq!(assignments, [KEPT]);
    let calls: Vec<CallIds> = stack.ch.query("SELECT ?fields FROM calls FINAL ORDER BY call_id").fetch_all().await.unwrap();
    let anonymous = CallIds { call_id: format!("C-{LATE}"), visitor_id: String::new(), session_id: String::new(), from_number: String::new(), linear_session: vec![String::new()], channel: "paid_search".into() };
    let kept = CallIds { call_id: format!("C-{KEPT}"), visitor_id: KEPT.into(), session_id: KEPT_SESSION.into(), from_number: "+15125559911".into(), linear_session: vec![KEPT_SESSION.into()], channel: "paid_search".into() };
    assert_eq!(calls, [kept, anonymous], "the call stays, counted and credited, without the visitor");
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_tombstones_outlive_every_retention() {
    let stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.unwrap();
    let store = Store::new(&clickhouse_settings_at(&stack.clickhouse_url, &stack.database));
    let two_years_ago = ((now_ms() - 730 * 24 * 60 * MINUTE) / 1000) as u32;
    stack
        .ch
        .query("INSERT INTO erasures (account_id, kind, id_hash, erased_at) SELECT ?, 'visitor', ?, toDateTime(?)")
        .bind(DEMO_ACCOUNT)
        .bind(sha256_hex(GONE))
        .bind(two_years_ago)
        .execute()
        .await
        .unwrap();
    let pass = ringpath_store::retention::apply_retention(store.client(), &[(DEMO_ACCOUNT.to_owned(), 30)], now_ms() / 1000).await.unwrap();
    assert!(pass.dropped_partitions.iter().all(|(table, _)| table != "erasures"), "{pass:?}");
    assert_eq!(store.erasures_since(0).await.unwrap().len(), 1, "a two-year-old erasure is still honoured");
    stack.stop().await.unwrap();
}
