//! Data-subject requests against the real ClickHouse: export returns every
//! stored row about a visitor; erasure (202 + status URL) leaves no row in any
//! table — materialised-view targets included — holding their id, session
//! ids, IPs, URLs or click ids, keeps their calls counted but anonymous, and
//! leaves every other visitor exactly as they were.

mod dashboard_data;

use std::time::{Duration, Instant};

use clickhouse::Row;
use dashboard_data::*;
use ringpath_store::rows::{AssignmentRow, CallRow, EventRow};
use ringpath_tests::fixtures::*;
use ringpath_tests::{Stack, StackOptions};
use serde::Deserialize;
use serde_json::Value;

const V1_IP: &str = "198.51.100.23";
const V1_URL_MARK: &str = "v1-private-page";
const V1_SESSIONS: [&str; 3] = ["S1", "S2", "S3"];

/// The golden dataset, with V1's rows carrying their own IP, URLs and referrer.
async fn load(stack: &Stack) {
    let mut events = golden_events();
    for e in events.iter_mut().filter(|e| e.visitor_id == V1) {
        e.ip = V1_IP.into();
        e.url = format!("https://demo.example/{V1_URL_MARK}?gclid=gclid-{}", e.session_id);
        e.referrer = format!("https://www.google.com/search?q={V1_URL_MARK}");
    }
    insert::<EventRow>(stack, "events", &events).await;
    let mut assignments = golden_assignments();
    for a in assignments.iter_mut().filter(|a| a.visitor_id == V1) {
        a.ip = V1_IP.into();
        a.url = format!("https://demo.example/{V1_URL_MARK}?gclid=gclid-{}", a.session_id);
    }
    insert::<AssignmentRow>(stack, "assignments", &assignments).await;
    let mut calls = golden_calls();
    for c in calls.iter_mut().filter(|c| c.visitor_id == V1) {
        c.ip = V1_IP.into();
        c.referrer = format!("https://www.google.com/search?q={V1_URL_MARK}");
        c.from_number = "+15125559911".into();
    }
    insert::<CallRow>(stack, "calls", &calls).await;
}

#[derive(Debug, Row, Deserialize)]
struct Column {
    table: String,
    name: String,
    kind: String,
}

/// Every row of every table of the test database that holds one of `needles`
/// in any String or Array(String) column (whole value, array element, or
/// substring for the longer needles), as "table.column: n".
async fn scan(stack: &Stack, needles: &[&str]) -> Vec<String> {
    let columns: Vec<Column> = stack
        .ch
        .query("SELECT table, name, type FROM system.columns WHERE database = currentDatabase() AND (type = 'String' OR type = 'Array(String)') AND table NOT LIKE '.inner%'")
        .fetch_all()
        .await
        .unwrap();
    let mut hits = Vec::new();
    for c in &columns {
        for needle in needles {
            let test = match (c.kind.as_str(), needle.len() >= 6) {
                ("String", true) => format!("position({}, ?) > 0", c.name),
                ("String", false) => format!("{} = ?", c.name),
                (_, true) => format!("arrayExists(x -> position(x, ?) > 0, {})", c.name),
                (_, false) => format!("has({}, ?)", c.name),
            };
            let n = stack.ch.query(&format!("SELECT count() FROM {} WHERE {test}", c.table)).bind(*needle).fetch_one::<u64>().await.unwrap();
            if n > 0 {
                hits.push(format!("{}.{} holds {needle:?}: {n}", c.table, c.name));
            }
        }
    }
    assert!(columns.iter().any(|c| c.table == "event_stats"), "the scan covers the materialized view's target");
    assert!(columns.iter().any(|c| c.table == "sessions" && c.name == "visitor_id"), "the scan covers attribution's per-session summary");
    hits
}

fn count(body: &Value, key: &str) -> usize {
    body[key].as_array().map_or(0, |a| a.len())
}

async fn erase_and_wait(stack: &Stack, visitor: &str, id: &str, token: &str) -> Value {
    let resp = stack.http.delete(format!("{}/v1/accounts/{DEMO_ACCOUNT}/visitors/{visitor}", stack.dashboard_url())).basic_auth(id, Some(token)).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status_url"], location);
    assert_eq!(location, format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{visitor}/erasure"));
    // Poll the status URL until it says done (ClickHouse mutations are asynchronous).
    let started = Instant::now();
    loop {
        let (status, body) = get(stack, &location, id, token).await;
        assert_eq!(status, 200, "{body}");
        if body["status"] == "done" {
            assert_eq!((body["remaining_rows"].as_u64(), body["pending_mutations"].as_u64()), (Some(0), Some(0)));
            return body;
        }
        assert_eq!(body["status"], "pending");
        assert!(started.elapsed() < Duration::from_secs(120), "erasure of {visitor} not done: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_returns_every_stored_row_about_the_visitor() {
    let stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.unwrap();
    load(&stack).await;
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{V1}/export")).await;
    assert_eq!(body["visitor_id"], V1);
    let ids = |key: &str, field: &str| body[key].as_array().unwrap().iter().map(|r| r[field].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(ids("events", "event_id"), ["e-s1-1", "e-s1-2", "e-s1-3", "e-s2-1", "e-s3-1"], "each event once, its newest version");
    assert_eq!(ids("calls", "call_id"), ["C1"]);
    assert_eq!(body["calls"][0]["duration_s"], 95);
    assert_eq!(ids("assignments", "session_id"), ["S1", "S3"]);
    // Attribution's per-session summary: each session once (S1's landing was stored twice), from its landing.
    assert_eq!(ids("sessions", "session_id"), ["S1", "S2", "S3"]);
    assert_eq!((body["sessions"][0]["channel"].as_str(), body["sessions"][1]["channel"].as_str()), (Some("paid_search"), Some("organic_social")));
    // Every column is there, including the stored IP and the full URLs.
    assert_eq!(body["events"][0]["ip"], V1_IP);
    assert!(body["events"][0]["url"].as_str().unwrap().contains(V1_URL_MARK));
    // Every stored column but the row version (storage bookkeeping), times as RFC 3339 beside their ms.
    assert_eq!(body["events"][0].as_object().unwrap().len(), <EventRow as Row>::COLUMN_NAMES.len() - 1);
    assert_eq!(body["calls"][0].as_object().unwrap().len(), <CallRow as Row>::COLUMN_NAMES.len() - 1);
    assert!(body["events"][0].get("version").is_none() && body["sessions"][0].get("rank").is_none(), "no bookkeeping columns: {}", body["sessions"][0]);
    let ts = body["events"][0]["ts"].as_str().unwrap();
    assert_eq!(ringpath_types::time::parse_rfc3339_ms(ts), body["events"][0]["ts_ms"].as_i64(), "ts is the RFC 3339 form of ts_ms");
    // And nothing else: the number of distinct stored rows that name V1.
    let stored = stack
        .ch
        .query(
            "SELECT (SELECT uniqExact(event_id) FROM events WHERE visitor_id = ?) + (SELECT uniqExact(call_id) FROM calls WHERE visitor_id = ?) + (SELECT count() FROM assignments WHERE visitor_id = ?) \
             + (SELECT uniqExact(session_id) FROM sessions WHERE visitor_id = ?)",
        )
        .bind(V1)
        .bind(V1)
        .bind(V1)
        .bind(V1)
        .fetch_one::<u64>()
        .await
        .unwrap();
    assert_eq!(stored as usize, count(&body, "events") + count(&body, "calls") + count(&body, "assignments") + count(&body, "sessions"));
    let resp = stack.dashboard_get(&format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{V1}/export"), AGENCY, AGENCY_TOKEN).send().await.unwrap();
    assert_eq!(resp.headers()["content-disposition"], format!("attachment; filename=\"ringpath-{DEMO_ACCOUNT}-{V1}.json\""));
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_erasure_no_table_holds_anything_of_the_visitor_and_others_are_untouched() {
    let stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.unwrap();
    load(&stack).await;
    let needles: Vec<&str> = [V1, V1_IP, V1_URL_MARK, "gclid-S1", "gclid-S3", "+15125559911"].into_iter().chain(V1_SESSIONS).collect();
    let before = scan(&stack, &needles).await;
    assert!(before.len() >= 10, "the scan finds V1 before: {before:#?}");
    assert!(before.iter().any(|hit| hit.starts_with("sessions.visitor_id holds")), "V1 is in the sessions table before: {before:#?}");
    let summarised = || async { stack.ch.query("SELECT session_id FROM sessions GROUP BY session_id ORDER BY session_id").fetch_all::<String>().await.unwrap() };
    assert_eq!(summarised().await, ["S1", "S2", "S3", "S4", "S5", "S8", "SO1"]);
    let export_v2 = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{V2}/export")).await;
    let other = get(&stack, &format!("/v1/accounts/{OTHER_ACCOUNT}/visitors/{OTHER_VISITOR}/export"), OTHER_ACCOUNT, OTHER_TOKEN).await.1;
    let range = format!("?from={FROM}&to={TO}");
    let channel_before = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/attribution{range}&dimension=channel")).await;
    let paid = |b: &Value| b["rows"].as_array().unwrap().iter().find(|r| r["key"] == "paid_search").cloned().unwrap_or(Value::Null);
    assert_eq!((paid(&channel_before)["sessions"].as_u64(), paid(&channel_before)["visitors"].as_u64()), (Some(2), Some(1)));
    let events_before = stack.ch.query("SELECT count() FROM events").fetch_one::<u64>().await.unwrap();

    erase_and_wait(&stack, V1, DEMO_ACCOUNT, DEMO_TOKEN).await;

    let after = scan(&stack, &needles).await;
    assert!(after.is_empty(), "left after erasure: {after:#?}");
    // Their 6 event rows (one a redelivered copy) and 2 assignments are gone; nothing else.
    assert_eq!(stack.ch.query("SELECT count() FROM events").fetch_one::<u64>().await.unwrap(), events_before - 6);
    assert_eq!(stack.ch.query("SELECT count() FROM assignments").fetch_one::<u64>().await.unwrap(), 1);
    assert_eq!(summarised().await, ["S4", "S5", "S8", "SO1"], "V1's sessions are gone from the summary, the others' stay");
    assert_eq!(demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{V2}/export")).await["events"], export_v2["events"]);
    assert_eq!(demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{V2}/export")).await["calls"], export_v2["calls"]);
    assert_eq!(get(&stack, &format!("/v1/accounts/{OTHER_ACCOUNT}/visitors/{OTHER_VISITOR}/export"), OTHER_ACCOUNT, OTHER_TOKEN).await.1["events"], other["events"]);
    // The visitor is gone from the API.
    assert_eq!(get(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{V1}"), DEMO_ACCOUNT, DEMO_TOKEN).await.0, 404);
    let export = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{V1}/export")).await;
    assert_eq!((count(&export, "events"), count(&export, "calls"), count(&export, "assignments"), count(&export, "sessions")), (0, 0, 0, 0));

    // C1 stays counted, credited as before, with no identifier left on it.
    let calls = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/calls{range}")).await;
    let c1 = calls["calls"].as_array().unwrap().iter().find(|c| c["call_id"] == "C1").expect("C1 still listed").clone();
    for field in ["visitor_id", "session_id", "ip", "from_number", "caller_name", "caller_city", "click_id", "referrer", "first_touch_session"] {
        assert_eq!(c1[field], "", "{field}: {c1}");
    }
    assert_eq!(c1["linear_session"], serde_json::json!(["", "", ""]));
    assert_eq!((c1["attribution"].as_str(), c1["channel"].as_str(), c1["first_touch_campaign"].as_str()), (Some("session"), Some("paid_search"), Some("Brand")));
    assert_eq!(calls["calls"].as_array().unwrap().len(), 4);
    // Reports: V1's sessions and visitor no longer count (the hourly aggregates
    // were rebuilt without them); their call does, in every model.
    let channel_after = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/attribution{range}&dimension=channel")).await;
    assert_eq!((paid(&channel_after)["sessions"].as_u64(), paid(&channel_after)["visitors"].as_u64(), paid(&channel_after)["calls"].as_f64()), (Some(0), Some(0), Some(1.0)));
    let direct = |b: &Value| b["rows"].as_array().unwrap().iter().find(|r| r["key"] == "direct").cloned().unwrap();
    assert_eq!(direct(&channel_after), direct(&channel_before), "V2's numbers unchanged");
    let pageviews = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries{range}&interval=day&metric=pageviews")).await;
    let values: Vec<u64> = pageviews["points"].as_array().unwrap().iter().map(|p| p["value"].as_u64().unwrap()).collect();
    assert_eq!(values, [0, 3, 3, 0, 0, 0, 0], "V1's page views (2 on the 10th, 1 on the 12th and 14th) are gone");
    let linear = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/attribution{range}&dimension=channel&model=linear")).await;
    let credited: f64 = linear["rows"].as_array().unwrap().iter().map(|r| r["calls"].as_f64().unwrap()).sum();
    assert!((credited - 4.0).abs() < 0.001);

    // Erasing again, or a visitor never seen, is accepted and done at once.
    erase_and_wait(&stack, V1, DEMO_ACCOUNT, DEMO_TOKEN).await;
    erase_and_wait(&stack, "visitor_never_seen", DEMO_ACCOUNT, DEMO_TOKEN).await;
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agency_erases_a_visitor_of_its_account() {
    let stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.unwrap();
    load(&stack).await;
    erase_and_wait(&stack, V3, AGENCY, AGENCY_TOKEN).await;
    assert!(scan(&stack, &[V3, "S5"]).await.is_empty());
    assert_eq!(count(&demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{V1}/export")).await, "events"), 5);
    stack.stop().await.unwrap();
}
