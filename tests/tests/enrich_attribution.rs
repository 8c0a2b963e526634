//! Call attribution scenarios with known answers, end to end through the real
//! topics and ClickHouse (answers read from `calls FINAL`, as the dashboard
//! reads them): an exclusively held pool number, an expired hold, a shared
//! number of an exhausted pool, source-level and site numbers, a call that
//! arrives before its assignment, a visitor with several sessions (first
//! touch vs last touch vs linear, also as the dashboard reports them), and a
//! visitor whose sessions were stored out of time order (the per-session
//! summary attribution reads, migration 0014, must still find the first).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::HashMap;
use std::time::Duration;

use ringpath_tests::enrich::*;
use ringpath_tests::fixtures::*;
use ringpath_tests::{Stack, StackOptions};
use ringpath_types::wire::Consent;
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(60);
const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * 60 * MINUTE;

#[derive(clickhouse::Row, serde::Deserialize, Debug, Default, PartialEq)]
struct Attributed {
    attribution: String,
    confidence: String,
    pool_id: String,
    session_id: String,
    visitor_id: String,
    channel: String,
    source: String,
    medium: String,
    campaign: String,
    landing_page: String,
    referrer_host: String,
    click_id_type: String,
    click_id: String,
    first_touch_session: String,
    first_touch_channel: String,
    linear_session: Vec<String>,
    linear_channel: Vec<String>,
}

async fn call_row(stack: &Stack, call_id: &str) -> Attributed {
    stack
        .ch
        .query(
            "SELECT attribution, confidence, pool_id, session_id, visitor_id, channel, source, medium, campaign, landing_page, referrer_host, \
             click_id_type, click_id, first_touch_session, first_touch_channel, linear_session, linear_channel FROM calls FINAL WHERE call_id = ?",
        )
        .bind(call_id)
        .fetch_one()
        .await
        .unwrap()
}

/// Waits until the call's current (FINAL) attribution is `want`.
async fn wait_attribution(stack: &Stack, call_id: &str, want: &str) {
    wait_text(&stack.ch, &format!("SELECT attribution FROM calls FINAL WHERE call_id = '{call_id}'"), want, LIMIT).await.unwrap();
}

async fn collect(stack: &Stack, visitor: &str, session: &str, id: &str, url: &str, referrer: &str) {
    let body = json!({"v": 1, "account": DEMO_ACCOUNT, "sent_at": now_ms(), "consent": "granted", "visitor_id": visitor, "session_id": session,
                      "events": [{"id": id, "type": "pageview", "ts": now_ms() - 5, "url": url, "referrer": referrer, "props": {}}]});
    let resp = stack.http.post(format!("{}/v1/collect", stack.ingest_url())).header("User-Agent", CHROME_UA).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 204);
}

async fn ask_number(stack: &Stack, visitor: &str, session: &str, url: &str, referrer: &str) -> Value {
    let resp = stack
        .http
        .post(format!("{}/v1/numbers", stack.ingest_url()))
        .header("User-Agent", CHROME_UA)
        .json(&json!({"account": DEMO_ACCOUNT, "session_id": session, "visitor_id": visitor, "url": url, "referrer": referrer}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

fn ingest_clock(stack: &Stack) -> &ringpath_ingest::state::Clock {
    &stack.ingest.as_ref().unwrap().state.clock
}

async fn post_call(stack: &Stack, call_id: &str, to: &str, started_ms: i64) {
    let resp = stack
        .http
        .post(format!("{}/v1/calls", stack.ingest_url()))
        .basic_auth(DEMO_ACCOUNT, Some(DEMO_CALLS_TOKEN))
        .json(&json!({"call_id": call_id, "to": to, "from": "+15557654321", "started_at": ringpath_types::time::format_rfc3339_ms(started_ms),
                      "duration_s": 95, "status": "completed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
}

fn wait_env(seconds: &str) -> StackOptions {
    StackOptions { enrich_env: HashMap::from([("RINGPATH_ATTRIBUTION_WAIT_S".to_string(), seconds.to_string())]), ..StackOptions::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_an_exclusively_held_pool_number_goes_to_that_session_with_its_landing_page_and_click_id() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    let landing = "https://demo.example/plumbing?utm_source=google&utm_medium=cpc&utm_campaign=Spring&gclid=GCLID-exclusive";
    collect(&stack, "visitor-excl-01", "session-excl-01", "ev-excl-1", landing, "https://www.google.com/").await;
    let number = ask_number(&stack, "visitor-excl-01", "session-excl-01", landing, "https://www.google.com/").await;
    assert_eq!((number["kind"].as_str(), number["shared"].as_bool()), (Some("session"), Some(false)), "{number}");
    let number = number["number"].as_str().unwrap().to_owned();
    // An internal page renews the hold; the renewal only knows that page. (Past
    // the collector's renewal coalescing: the number request just renewed it.)
    ingest_clock(&stack).advance(Duration::from_millis(ringpath_ingest::renewals::COALESCE_MS as u64 + 1_000));
    collect(&stack, "visitor-excl-01", "session-excl-01", "ev-excl-2", "https://demo.example/contact", "https://demo.example/plumbing").await;
    stack.wait_count("SELECT count() FROM assignments FINAL WHERE session_id = 'session-excl-01'", 2, LIMIT).await.unwrap();
    // enrich writes a batch's assignments before its events: wait for the event too.
    stack.wait_count("SELECT count() FROM events WHERE event_id = 'ev-excl-2'", 1, LIMIT).await.unwrap();
    // The internal page (same-site referrer) is not a new source: no channel of its own.
    let internal: String = stack.ch.query("SELECT channel FROM events WHERE event_id = 'ev-excl-2'").fetch_one().await.unwrap();
    assert_eq!(internal, "");

    post_call(&stack, "CA-excl", &number, now_ms()).await;
    wait_attribution(&stack, "CA-excl", "session").await;
    let row = call_row(&stack, "CA-excl").await;
    assert_eq!(
        row,
        Attributed {
            attribution: "session".into(),
            confidence: "exclusive".into(),
            pool_id: "paid_search".into(),
            session_id: "session-excl-01".into(),
            visitor_id: "visitor-excl-01".into(),
            channel: "paid_search".into(),
            source: "google".into(),
            medium: "cpc".into(),
            campaign: "Spring".into(),
            landing_page: "/plumbing".into(),
            referrer_host: "google.com".into(),
            click_id_type: "gclid".into(),
            click_id: "GCLID-exclusive".into(),
            first_touch_session: "session-excl-01".into(),
            first_touch_channel: "paid_search".into(),
            linear_session: vec!["session-excl-01".into()],
            linear_channel: vec!["paid_search".into()],
        }
    );
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_after_the_hold_expired_waits_briefly_then_stays_unattributed() {
    let stack = Stack::start(wait_env("2")).await.unwrap();
    let writer = TopicWriter::new(&stack.brokers).unwrap();
    let t0 = now_ms() - 2 * 60 * MINUTE;
    let landing = "https://demo.example/?utm_source=google&utm_medium=cpc&gclid=GCLID-expired";
    let visit = Visit { account: DEMO_ACCOUNT, consent: Consent::Granted, visitor: Some("visitor-exp-01"), session: Some("session-exp-01"), ip: "8.8.8.8", url: landing, referrer: "https://www.google.com/", ts: t0 };
    writer.send(&stack.topics.events, "visitor-exp-01", &event_message("ev-exp-1", &visit)).await.unwrap();
    let hold = assignment_message(DEMO_ACCOUNT, POOL_NUMBERS[1], "paid_search", "session-exp-01", Some("visitor-exp-01"), t0, t0 + 30 * MINUTE, landing, "https://www.google.com/", "8.8.8.8");
    writer.send(&stack.topics.assignments, POOL_NUMBERS[1], &hold).await.unwrap();
    stack.wait_count("SELECT count() FROM assignments", 1, LIMIT).await.unwrap();

    let now = now_ms();
    writer.send(&stack.topics.calls, POOL_NUMBERS[1], &call_message(DEMO_ACCOUNT, "CA-expired", POOL_NUMBERS[1], now, now + 1000)).await.unwrap();
    wait_attribution(&stack, "CA-expired", "none").await;
    let row = call_row(&stack, "CA-expired").await;
    assert_eq!((row.session_id.as_str(), row.visitor_id.as_str(), row.channel.as_str(), row.click_id.as_str()), ("", "", "", ""));
    let was_pending: u64 = stack.ch.query("SELECT count() FROM calls WHERE call_id = 'CA-expired' AND attribution = 'pending'").fetch_one().await.unwrap();
    assert!(was_pending >= 1, "the call first waited for a possibly late assignment");
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_shares_a_number_and_its_call_goes_to_the_latest_holder_with_lower_confidence() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    let landing = "https://demo.example/?utm_source=google&utm_medium=cpc&utm_campaign=Shared";
    let mut numbers = Vec::new();
    for i in 1..=4 {
        let (visitor, session) = (format!("visitor-shared-{i}"), format!("session-shared-{i}"));
        collect(&stack, &visitor, &session, &format!("ev-shared-{i}"), landing, "https://www.google.com/").await;
        numbers.push(ask_number(&stack, &visitor, &session, landing, "https://www.google.com/").await);
        // Each hold starts 20 ms after the previous one on the collector's clock, whatever the machine's speed.
        ingest_clock(&stack).advance(Duration::from_millis(20));
    }
    let shared: Vec<bool> = numbers.iter().map(|n| n["shared"].as_bool().unwrap()).collect();
    assert_eq!(shared, [false, false, false, true], "three numbers for four sessions: {numbers:?}");
    let reused = numbers[3]["number"].as_str().unwrap().to_owned();
    assert_eq!(reused, numbers[0]["number"].as_str().unwrap(), "the least recently used number is reused");
    stack.wait_count("SELECT count() FROM assignments", 4, LIMIT).await.unwrap();

    // The calls start after the last hold, on the same clock.
    let call_at = ingest_clock(&stack).now_ms();
    post_call(&stack, "CA-shared", &reused, call_at).await;
    post_call(&stack, "CA-alone", numbers[1]["number"].as_str().unwrap(), call_at).await;
    wait_attribution(&stack, "CA-shared", "session").await;
    wait_attribution(&stack, "CA-alone", "session").await;
    let row = call_row(&stack, "CA-shared").await;
    assert_eq!((row.session_id.as_str(), row.confidence.as_str(), row.campaign.as_str()), ("session-shared-4", "shared", "Shared"));
    let row = call_row(&stack, "CA-alone").await;
    assert_eq!((row.session_id.as_str(), row.confidence.as_str()), ("session-shared-2", "exclusive"));
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_source_level_number_credit_that_source_and_calls_to_the_site_number_stay_unattributed() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    post_call(&stack, "CA-social", SOCIAL_NUMBER, now_ms()).await;
    post_call(&stack, "CA-site", SITE_NUMBER, now_ms()).await;
    wait_attribution(&stack, "CA-social", "source").await;
    wait_attribution(&stack, "CA-site", "site").await;
    let social = call_row(&stack, "CA-social").await;
    assert_eq!((social.confidence.as_str(), social.channel.as_str(), social.session_id.as_str(), social.visitor_id.as_str()), ("source", "organic_social", "", ""));
    assert_eq!((social.first_touch_channel.as_str(), social.linear_channel.clone()), ("organic_social", vec!["organic_social".to_string()]));
    let site = call_row(&stack, "CA-site").await;
    assert_eq!((site.confidence.as_str(), site.channel.as_str(), site.session_id.as_str()), ("none", "", ""));

    // What the analyst sees: one call from organic social, one unattributed.
    let resp = stack.dashboard_get(&format!("/v1/accounts/{DEMO_ACCOUNT}/attribution?dimension=channel"), DEMO_ACCOUNT, DEMO_TOKEN).send().await.unwrap();
    let body: Value = resp.json().await.unwrap();
    let calls: HashMap<String, f64> = body["rows"].as_array().unwrap().iter().map(|r| (r["key"].as_str().unwrap().to_owned(), r["calls"].as_f64().unwrap())).collect();
    assert_eq!((calls.get("organic_social"), calls.get("(unattributed)")), (Some(&1.0), Some(&1.0)), "{body}");
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_arrives_before_its_assignment_is_pending_then_corrected() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    let writer = TopicWriter::new(&stack.brokers).unwrap();
    let started = now_ms() - 5_000;
    writer.send(&stack.topics.calls, POOL_NUMBERS[2], &call_message(DEMO_ACCOUNT, "CA-early", POOL_NUMBERS[2], started, started + 2_000)).await.unwrap();
    wait_attribution(&stack, "CA-early", "pending").await;

    let landing = "https://demo.example/offer?utm_source=bing&utm_medium=cpc&msclkid=MS-late";
    let t0 = started - 3 * MINUTE;
    let visit = Visit { account: DEMO_ACCOUNT, consent: Consent::Granted, visitor: Some("visitor-late-01"), session: Some("session-late-01"), ip: "8.8.8.8", url: landing, referrer: "https://www.bing.com/", ts: t0 };
    writer.send(&stack.topics.events, "visitor-late-01", &event_message("ev-late-1", &visit)).await.unwrap();
    let hold = assignment_message(DEMO_ACCOUNT, POOL_NUMBERS[2], "paid_search", "session-late-01", Some("visitor-late-01"), t0, t0 + 30 * MINUTE, landing, "https://www.bing.com/", "8.8.8.8");
    writer.send(&stack.topics.assignments, POOL_NUMBERS[2], &hold).await.unwrap();

    wait_attribution(&stack, "CA-early", "session").await;
    let row = call_row(&stack, "CA-early").await;
    assert_eq!((row.session_id.as_str(), row.visitor_id.as_str(), row.source.as_str(), row.channel.as_str()), ("session-late-01", "visitor-late-01", "bing", "paid_search"));
    assert_eq!((row.click_id_type.as_str(), row.click_id.as_str(), row.landing_page.as_str()), ("msclkid", "MS-late", "/offer"));
    let logical: u64 = stack.ch.query("SELECT count() FROM calls FINAL WHERE call_id = 'CA-early'").fetch_one().await.unwrap();
    assert_eq!(logical, 1, "the correction replaces the pending row");
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignment_arriving_after_the_wait_ran_out_still_claims_its_call() {
    let stack = Stack::start(wait_env("1")).await.unwrap();
    let writer = TopicWriter::new(&stack.brokers).unwrap();
    let started = now_ms() - 5_000;
    writer.send(&stack.topics.calls, POOL_NUMBERS[0], &call_message(DEMO_ACCOUNT, "CA-very-late", POOL_NUMBERS[0], started, started + 1_000)).await.unwrap();
    wait_attribution(&stack, "CA-very-late", "none").await;
    let landing = "https://demo.example/?utm_source=google&utm_medium=cpc";
    let hold = assignment_message(DEMO_ACCOUNT, POOL_NUMBERS[0], "paid_search", "session-vlate-1", Some("visitor-vlate-1"), started - MINUTE, started + 29 * MINUTE, landing, "", "8.8.8.8");
    writer.send(&stack.topics.assignments, POOL_NUMBERS[0], &hold).await.unwrap();
    wait_attribution(&stack, "CA-very-late", "session").await;
    assert_eq!(call_row(&stack, "CA-very-late").await.session_id, "session-vlate-1");
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitors_sessions_give_first_touch_last_touch_and_linear_credit() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    let writer = TopicWriter::new(&stack.brokers).unwrap();
    let now = now_ms();
    let event = |id: &'static str, visitor: &'static str, session: &'static str, url: &'static str, referrer: &'static str, ts: i64| {
        event_message(id, &Visit { account: DEMO_ACCOUNT, consent: Consent::Granted, visitor: Some(visitor), session: Some(session), ip: "8.8.8.8", url, referrer, ts })
    };
    let paid = "https://demo.example/?utm_source=google&utm_medium=cpc&gclid=G-two";
    let messages = [
        // Visitor A: organic social three days ago, then paid search today.
        event("ev-a1", "visitor-two-a", "session-a1", "https://demo.example/blog", "https://www.facebook.com/", now - 3 * DAY),
        event("ev-a1b", "visitor-two-a", "session-a1", "https://demo.example/pricing", "https://demo.example/blog", now - 3 * DAY + MINUTE),
        event("ev-a2", "visitor-two-a", "session-a2", paid, "https://www.google.com/", now - 10 * MINUTE),
        // Visitor B: a newsletter click 40 days ago (before the linear lookback), then paid search today.
        event("ev-b1", "visitor-two-b", "session-b1", "https://demo.example/?utm_source=newsletter&utm_medium=email", "", now - 40 * DAY),
        event("ev-b2", "visitor-two-b", "session-b2", paid, "https://www.google.com/", now - 9 * MINUTE),
    ];
    for m in &messages {
        writer.send(&stack.topics.events, m.visitor_id.as_deref().unwrap(), m).await.unwrap();
    }
    for (number, session, visitor, at) in [(POOL_NUMBERS[0], "session-a2", "visitor-two-a", now - 10 * MINUTE), (POOL_NUMBERS[1], "session-b2", "visitor-two-b", now - 9 * MINUTE)] {
        let hold = assignment_message(DEMO_ACCOUNT, number, "paid_search", session, Some(visitor), at, at + 30 * MINUTE, paid, "https://www.google.com/", "8.8.8.8");
        writer.send(&stack.topics.assignments, number, &hold).await.unwrap();
    }
    stack.wait_count("SELECT count() FROM events", messages.len() as u64, LIMIT).await.unwrap();
    stack.wait_count("SELECT count() FROM assignments", 2, LIMIT).await.unwrap();
    writer.send(&stack.topics.calls, POOL_NUMBERS[0], &call_message(DEMO_ACCOUNT, "CA-two-a", POOL_NUMBERS[0], now - MINUTE, now)).await.unwrap();
    writer.send(&stack.topics.calls, POOL_NUMBERS[1], &call_message(DEMO_ACCOUNT, "CA-two-b", POOL_NUMBERS[1], now - MINUTE, now)).await.unwrap();
    wait_attribution(&stack, "CA-two-a", "session").await;
    wait_attribution(&stack, "CA-two-b", "session").await;

    let a = call_row(&stack, "CA-two-a").await;
    assert_eq!((a.session_id.as_str(), a.channel.as_str()), ("session-a2", "paid_search"), "last touch");
    assert_eq!((a.first_touch_session.as_str(), a.first_touch_channel.as_str()), ("session-a1", "organic_social"), "first touch");
    assert_eq!(a.linear_session, ["session-a1", "session-a2"], "linear: both sessions");
    assert_eq!(a.linear_channel, ["organic_social", "paid_search"]);
    let b = call_row(&stack, "CA-two-b").await;
    assert_eq!((b.session_id.as_str(), b.channel.as_str()), ("session-b2", "paid_search"), "last touch");
    assert_eq!((b.first_touch_session.as_str(), b.first_touch_channel.as_str()), ("session-b1", "email"), "first touch looks past the linear lookback");
    assert_eq!(b.linear_session, ["session-b2"], "linear: only sessions within 30 days");

    // The dashboard switches models on the stored columns.
    let mut by_model = HashMap::new();
    for model in ["last_touch", "first_touch", "linear"] {
        let from = now - 60 * DAY;
        let resp = stack
            .dashboard_get(&format!("/v1/accounts/{DEMO_ACCOUNT}/attribution?dimension=channel&model={model}&from={from}"), DEMO_ACCOUNT, DEMO_TOKEN)
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        let mut calls: Vec<(String, f64)> = body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["calls"].as_f64().unwrap() > 0.0)
            .map(|r| (r["key"].as_str().unwrap().to_owned(), r["calls"].as_f64().unwrap()))
            .collect();
        calls.sort_by(|x, y| x.0.cmp(&y.0));
        by_model.insert(model, calls);
    }
    let s = |k: &str, v: f64| (k.to_owned(), v);
    assert_eq!(by_model["last_touch"], [s("paid_search", 2.0)]);
    assert_eq!(by_model["first_touch"], [s("email", 1.0), s("organic_social", 1.0)]);
    assert_eq!(by_model["linear"], [s("organic_social", 0.5), s("paid_search", 1.5)]);
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_touch_is_the_visitors_earliest_session_whatever_order_its_events_were_stored_in() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    let writer = TopicWriter::new(&stack.brokers).unwrap();
    let now = now_ms();
    let paid = "https://demo.example/?utm_source=google&utm_medium=cpc&gclid=G-three";
    // Stored newest first, one insert each: the visitor's first session comes
    // last, and the middle session's two landings come in time order (a
    // summary that kept the last stored row would credit the later one).
    let stored_in_this_order = [
        ("ev-three-new", "session-three-new", paid, "https://www.google.com/", now - 10 * MINUTE),
        ("ev-three-mid-1", "session-three-mid", "https://demo.example/blog", "https://www.facebook.com/", now - 10 * DAY),
        ("ev-three-mid-2", "session-three-mid", "https://demo.example/pricing", "https://www.google.com/", now - 10 * DAY + MINUTE),
        ("ev-three-old", "session-three-old", "https://demo.example/?utm_source=newsletter&utm_medium=email", "", now - 40 * DAY),
    ];
    for (n, (id, session, url, referrer, ts)) in stored_in_this_order.into_iter().enumerate() {
        let visit = Visit { account: DEMO_ACCOUNT, consent: Consent::Granted, visitor: Some("visitor-three"), session: Some(session), ip: "8.8.8.8", url, referrer, ts };
        writer.send(&stack.topics.events, "visitor-three", &event_message(id, &visit)).await.unwrap();
        stack.wait_count("SELECT count() FROM events", n as u64 + 1, LIMIT).await.unwrap();
    }
    let hold = assignment_message(DEMO_ACCOUNT, POOL_NUMBERS[0], "paid_search", "session-three-new", Some("visitor-three"), now - 10 * MINUTE, now + 20 * MINUTE, paid, "https://www.google.com/", "8.8.8.8");
    writer.send(&stack.topics.assignments, POOL_NUMBERS[0], &hold).await.unwrap();
    stack.wait_count("SELECT count() FROM assignments", 1, LIMIT).await.unwrap();

    let expect = |row: &Attributed| {
        assert_eq!((row.session_id.as_str(), row.channel.as_str()), ("session-three-new", "paid_search"), "last touch");
        assert_eq!((row.first_touch_session.as_str(), row.first_touch_channel.as_str()), ("session-three-old", "email"), "first touch: stored last, started first");
        assert_eq!(row.linear_session, ["session-three-mid", "session-three-new"], "linear: the 30-day lookback");
        assert_eq!(row.linear_channel, ["organic_social", "paid_search"], "the middle session's first landing, not its later one");
    };
    // Read before the summary's parts are merged (several rows per session) …
    writer.send(&stack.topics.calls, POOL_NUMBERS[0], &call_message(DEMO_ACCOUNT, "CA-three-1", POOL_NUMBERS[0], now - 2 * MINUTE, now)).await.unwrap();
    wait_attribution(&stack, "CA-three-1", "session").await;
    expect(&call_row(&stack, "CA-three-1").await);
    // … and after: the merge keeps each session's earliest landing.
    stack.ch.query("OPTIMIZE TABLE sessions FINAL").execute().await.unwrap();
    let kept: Vec<String> = stack.ch.query("SELECT channel FROM sessions WHERE session_id = 'session-three-mid'").fetch_all().await.unwrap();
    assert_eq!(kept, ["organic_social"]);
    writer.send(&stack.topics.calls, POOL_NUMBERS[0], &call_message(DEMO_ACCOUNT, "CA-three-2", POOL_NUMBERS[0], now - MINUTE, now)).await.unwrap();
    wait_attribution(&stack, "CA-three-2", "session").await;
    expect(&call_row(&stack, "CA-three-2").await);
    stack.stop().await.unwrap();
}
