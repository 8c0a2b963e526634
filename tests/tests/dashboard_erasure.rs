//! Data-subject requests against the real ClickHouse: export returns every
//! stored row about a visitor; erasure (202 + status URL) leaves no row in any
//! table — materialised-view targets included — holding their id, session
//! ids, IPs, URLs or click ids, keeps their calls counted but anonymous, and
//! leaves every other visitor exactly as they were. The erasure runs after
//! its 202: cut off by a crash anywhere (right after the answer, between a
//! summary table's delete and its rebuild) it is finished by the next start
//! with every other visitor's counts intact, and a job run by two replicas at
//! once finishes the same.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod dashboard_data;

use std::time::{Duration, Instant};

use clickhouse::Row;
use dashboard_data::*;
use ringpath_store::erasure_job::{JobPoint, JobStep, JOB_STEPS};
use ringpath_store::rows::{AssignmentRow, CallRow, EventRow};
use ringpath_tests::erasure::{options_pausing, JobPause};
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
    assert!(columns.iter().any(|c| c.table == "visitor_events" && c.name == "ip"), "the scan covers the events sorted by visitor");
    assert!(columns.iter().any(|c| c.table == "erasure_jobs" && c.name == "visitor_id"), "the scan covers the erasure jobs' records");
    hits
}

fn count(body: &Value, key: &str) -> usize {
    body[key].as_array().map_or(0, |a| a.len())
}

async fn erase_and_wait(stack: &Stack, visitor: &str, id: &str, token: &str) -> Value {
    let location = request_erasure(stack, visitor, id, token).await;
    wait_done(stack, &location, id, token).await
}

/// `DELETE …/visitors/{visitor}`: a 202 naming the status URL, which it returns.
async fn request_erasure(stack: &Stack, visitor: &str, id: &str, token: &str) -> String {
    let resp = stack.http.delete(format!("{}/v1/accounts/{DEMO_ACCOUNT}/visitors/{visitor}", stack.dashboard_url())).basic_auth(id, Some(token)).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status_url"], location);
    assert_eq!(location, format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{visitor}/erasure"));
    location
}

/// Polls the status URL until it says done (the erasure runs after its 202,
/// and ClickHouse mutations are asynchronous).
async fn wait_done(stack: &Stack, location: &str, id: &str, token: &str) -> Value {
    let visitor = location.rsplit('/').nth(1).unwrap_or_default().to_owned();
    let started = Instant::now();
    loop {
        let (status, body) = get(stack, location, id, token).await;
        assert_eq!(status, 200, "{body}");
        if body["status"] == "done" {
            assert_eq!((body["remaining_rows"].as_u64(), body["pending_mutations"].as_u64(), body["steps_remaining"].as_u64()), (Some(0), Some(0), Some(0)));
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

/// A visitor beside V1: a paid-search session in the hour and day of V1's
/// first session (2026-11-10 09:00 UTC), so that erasing V1 deletes and
/// rebuilds the summary rows that count them too.
const NEIGHBOUR: &str = "visitor_nbr00009";

async fn load_with_neighbour(stack: &Stack) {
    load(stack).await;
    let rows = vec![
        event(DEMO_ACCOUNT, "e-n-1", "pageview", "2026-11-10T09:20:00Z", NEIGHBOUR, "SN", "p-n-1", PAID_BRAND),
        event(DEMO_ACCOUNT, "e-n-2", "pageview", "2026-11-10T09:25:00Z", NEIGHBOUR, "SN", "p-n-2", INTERNAL),
    ];
    insert::<EventRow>(stack, "events", &rows).await;
}

/// What the three summary tables say about V1's first hour and day, each
/// through the report that reads it: page views in 09:00-10:00 (event_stats),
/// paid-search (sessions, visitors) in 08:00-11:00 (attribution_stats) and
/// over the golden week (attribution_daily).
#[derive(Debug, PartialEq)]
struct Summaries {
    pageviews_at_nine: u64,
    paid_in_the_hours: (u64, u64),
    paid_in_the_week: (u64, u64),
}

async fn summaries(stack: &Stack) -> Summaries {
    let hourly = demo(stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from=2026-11-10T09:00:00Z&to=2026-11-10T10:00:00Z&interval=hour&metric=pageviews")).await;
    let paid = |body: Value| {
        let row = body["rows"].as_array().unwrap().iter().find(|r| r["key"] == "paid_search").cloned().unwrap_or(Value::Null);
        (row["sessions"].as_u64().unwrap_or(0), row["visitors"].as_u64().unwrap_or(0))
    };
    Summaries {
        pageviews_at_nine: hourly["total"].as_u64().unwrap(),
        paid_in_the_hours: paid(demo(stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/attribution?from=2026-11-10T08:00:00Z&to=2026-11-10T11:00:00Z&dimension=channel")).await),
        paid_in_the_week: paid(demo(stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/attribution?from={FROM}&to={TO}&dimension=channel")).await),
    }
}

/// Before V1's erasure: their S1 and the neighbour's SN at nine (two page
/// views each), S3 later in the week.
const WITH_V1: Summaries = Summaries { pageviews_at_nine: 4, paid_in_the_hours: (2, 2), paid_in_the_week: (3, 2) };
/// After: the neighbour alone.
const WITHOUT_V1: Summaries = Summaries { pageviews_at_nine: 2, paid_in_the_hours: (1, 1), paid_in_the_week: (1, 1) };

async fn unfinished_mutations(stack: &Stack, table: &str) -> u64 {
    stack.ch.query("SELECT count() FROM system.mutations WHERE database = currentDatabase() AND table = ? AND is_done = 0").bind(table).fetch_one::<u64>().await.unwrap()
}

async fn wait_mutations_done(stack: &Stack, table: &str) {
    let started = Instant::now();
    while unfinished_mutations(stack, table).await > 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "mutations on {table} not done");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn needles() -> Vec<&'static str> {
    [V1, V1_IP, V1_URL_MARK, "gclid-S1", "gclid-S3", "+15125559911"].into_iter().chain(V1_SESSIONS).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_cut_off_right_after_its_202_is_finished_by_the_next_start() {
    let mut stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.unwrap();
    load_with_neighbour(&stack).await;
    assert_eq!(summaries(&stack).await, WITH_V1);
    let export_v2 = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{V2}/export")).await;
    let mut pause = JobPause::at(JobPoint::Before(JobStep::Find));
    stack.restart_dashboard_after_a_crash(options_pausing(&pause)).await.unwrap();

    let location = request_erasure(&stack, V1, DEMO_ACCOUNT, DEMO_TOKEN).await;
    // The 202 came while the job had not begun: the rest runs after the answer.
    pause.parked(Duration::from_secs(30)).await.unwrap();
    let tombstones = stack.ch.query("SELECT count() FROM erasures WHERE kind = 'visitor' AND id_hash = ?").bind(sha256_hex(V1)).fetch_one::<u64>().await.unwrap();
    assert_eq!(tombstones, 1, "the suppression tombstone is written before the 202");
    stack.restart_dashboard_after_a_crash(ringpath_dashboard_api::Options::default()).await.unwrap();
    // Nothing ran, and the status says so after the crash as before it.
    let (_, status) = get(&stack, &location, DEMO_ACCOUNT, DEMO_TOKEN).await;
    assert_eq!(status["status"], "pending", "{status}");
    assert!(status["steps_remaining"].as_u64().unwrap() > 0 && status["remaining_rows"].as_u64().unwrap() > 0, "{status}");

    // The new process resumed the job at start: no second DELETE is sent.
    wait_done(&stack, &location, DEMO_ACCOUNT, DEMO_TOKEN).await;
    assert_eq!(scan(&stack, &needles()).await, Vec::<String>::new(), "left after the resumed erasure");
    assert_eq!(summaries(&stack).await, WITHOUT_V1);
    assert_eq!(demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{V2}/export")).await["events"], export_v2["events"]);
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_visitors_counts_survive_an_erasure_cut_off_between_a_summary_delete_and_its_rebuild() {
    for (step, table) in ["event_stats", "attribution_stats", "attribution_daily"].into_iter().enumerate() {
        let mut stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.unwrap();
        load_with_neighbour(&stack).await;
        assert_eq!(summaries(&stack).await, WITH_V1);
        let mut pause = JobPause::at(JobPoint::PeriodsDeleted(table));
        stack.restart_dashboard_after_a_crash(options_pausing(&pause)).await.unwrap();
        let location = request_erasure(&stack, V1, DEMO_ACCOUNT, DEMO_TOKEN).await;
        pause.parked(Duration::from_secs(60)).await.unwrap();
        assert_eq!(JOB_STEPS[step + 1], JobStep::Rebuild(step));
        // Killed between the delete of V1's periods and their rebuild, and the
        // delete has run: the neighbour's rows in those periods are gone (the
        // next start is held before it redoes the step, to look).
        let mut held = JobPause::at(JobPoint::Before(JobStep::Rebuild(step)));
        stack.restart_dashboard_after_a_crash(options_pausing(&held)).await.unwrap();
        held.parked(Duration::from_secs(60)).await.unwrap();
        wait_mutations_done(&stack, table).await;
        let cut_off = summaries(&stack).await;
        let lost = match table {
            "event_stats" => cut_off.pageviews_at_nine == 0,
            "attribution_stats" => cut_off.paid_in_the_hours == (0, 0),
            _ => cut_off.paid_in_the_week == (0, 0),
        };
        assert!(lost, "{table}: the cut-off delete removed the periods' rows: {cut_off:?}");
        // The next start (this one without a pause) resumes the job: the delete and the rebuild again.
        stack.restart_dashboard_after_a_crash(ringpath_dashboard_api::Options::default()).await.unwrap();
        wait_done(&stack, &location, DEMO_ACCOUNT, DEMO_TOKEN).await;
        assert_eq!(summaries(&stack).await, WITHOUT_V1, "{table}: the neighbour is counted again, V1 not");
        assert_eq!(scan(&stack, &needles()).await, Vec::<String>::new(), "{table}: left after the resumed erasure");
        stack.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_run_by_two_replicas_at_once_ends_erased_with_every_other_count_kept() {
    let mut stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.unwrap();
    load_with_neighbour(&stack).await;
    // Replica A takes the request and stops between event_stats' delete and its rebuild.
    let mut pause = JobPause::at(JobPoint::PeriodsDeleted("event_stats"));
    stack.restart_dashboard_after_a_crash(options_pausing(&pause)).await.unwrap();
    let location = request_erasure(&stack, V1, DEMO_ACCOUNT, DEMO_TOKEN).await;
    pause.parked(Duration::from_secs(60)).await.unwrap();
    // Replica B (same replica name: a restart beside the live one) takes the job at its start and finishes it.
    let b = stack.start_dashboard(ringpath_dashboard_api::Options::default()).await.unwrap();
    wait_done(&stack, &location, DEMO_ACCOUNT, DEMO_TOKEN).await;
    assert_eq!(summaries(&stack).await, WITHOUT_V1);
    // A goes on from where it stopped: it inserts its (older) rebuild, deletes and rebuilds the other tables again, erases again.
    pause.release();
    pause.passed(JobPoint::Finished, Duration::from_secs(120)).await.unwrap();
    wait_done(&stack, &location, DEMO_ACCOUNT, DEMO_TOKEN).await;
    assert_eq!(summaries(&stack).await, WITHOUT_V1, "the second run changed no count");
    assert_eq!(scan(&stack, &needles()).await, Vec::<String>::new());
    assert_eq!(stack.ch.query("SELECT count() FROM erasure_jobs").fetch_one::<u64>().await.unwrap(), 0, "both runs' records are gone");
    b.stop().await;
    stack.stop().await.unwrap();
}
