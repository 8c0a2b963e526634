//! The golden dataset of the dashboard tests, written straight into
//! ClickHouse with enrich's row types (enrich is not running), and small
//! helpers to ask the API about it. Every number the tests expect follows
//! from the tables below.
//!
//! | session | visitor | when (UTC)          | channel        | source     | medium  | campaign | landing    | referrer host |
//! |---------|---------|---------------------|----------------|------------|---------|----------|------------|---------------|
//! | S1      | V1      | 11-10 09:00, 2 pv + engagement | paid_search | google | cpc | Brand  | /pricing   | google.com    |
//! | S2      | V1      | 11-12 15:00, 1 pv   | organic_social | facebook   | social  |          | /          | facebook.com  |
//! | S3      | V1      | 11-14 10:00, 1 pv   | paid_search    | google     | cpc     | Spring   | /emergency | google.com    |
//! | S4      | V2      | 11-10 23:30, 3 pv   | direct         | (direct)   | (none)  |          | /          |               |
//! | S5      | V3      | 11-11 08:00, 1 pv   | email          | newsletter | email   | Nov      | /offers    |               |
//! | P6      | (none: no consent) | 11-11 12:00, 1 pv | organic_search | google | organic |    | /          | google.com    |
//! | P7      | (none)  | 11-11 12:05, 1 internal pv (no channel) |  |  |  |  |  |  |
//! | S8 bot  | V8      | 11-12 03:00, 2 pv   | direct         | (direct)   | (none)  |          | /          |               |
//!
//! S1's landing event is stored twice (a redelivery). Calls: C1 from S3
//! (first touch S1, linear S1 S2 S3; stored twice, two versions), C2 from S4,
//! C3 to the organic-social source number, C4 to the site's own number.
//! Another account (acc_other) has a visitor and a call of its own.

#![allow(dead_code)]

use ringpath_store::rows::{AssignmentRow, CallRow, EventRow};
use ringpath_tests::fixtures::*;
use ringpath_tests::Stack;
use serde_json::Value;

pub const V1: &str = "visitor_aaaa0001";
pub const V2: &str = "visitor_bbbb0002";
pub const V3: &str = "visitor_cccc0003";
pub const V8: &str = "visitor_bot00008";
pub const OTHER_VISITOR: &str = "visitor_other001";

pub fn ms(rfc3339: &str) -> u64 {
    ringpath_types::time::parse_rfc3339_ms(rfc3339).expect("valid time") as u64
}

/// One event row; `channel == ""` is an internal page (no new source).
#[allow(clippy::too_many_arguments)]
pub fn event(account: &str, id: &str, kind: &str, at: &str, visitor: &str, session: &str, page: &str, src: (&str, &str, &str, &str, &str, &str)) -> EventRow {
    let (channel, source, medium, campaign, path, referrer_host) = src;
    let t = ms(at);
    EventRow {
        account_id: account.into(),
        event_id: id.into(),
        event_type: kind.into(),
        ts: (t / 1000) as u32,
        ts_ms: t,
        received_at: (t / 1000) as u32 + 1,
        visitor_id: visitor.into(),
        session_id: session.into(),
        page_id: page.into(),
        consent: if visitor.is_empty() { "pending".into() } else { "granted".into() },
        ip: if visitor.is_empty() { "203.0.113.0".into() } else { "203.0.113.77".into() },
        country: "US".into(),
        url: format!("https://demo.example{}?ref={id}", if path.is_empty() { "/inner" } else { path }),
        path: if path.is_empty() { "/inner".into() } else { path.into() },
        referrer: if referrer_host.is_empty() { String::new() } else { format!("https://{referrer_host}/") },
        referrer_host: referrer_host.into(),
        title: "Page".into(),
        channel: channel.into(),
        source: source.into(),
        medium: medium.into(),
        campaign: campaign.into(),
        number: SITE_NUMBER.into(),
        props: "{}".into(),
        user_agent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36".into(),
        browser: "Chrome".into(),
        version: t + 1000,
        ..EventRow::default()
    }
}

pub const PAID_BRAND: (&str, &str, &str, &str, &str, &str) = ("paid_search", "google", "cpc", "Brand", "/pricing", "google.com");
pub const PAID_SPRING: (&str, &str, &str, &str, &str, &str) = ("paid_search", "google", "cpc", "Spring", "/emergency", "google.com");
pub const SOCIAL: (&str, &str, &str, &str, &str, &str) = ("organic_social", "facebook", "social", "", "/", "facebook.com");
pub const DIRECT: (&str, &str, &str, &str, &str, &str) = ("direct", "(direct)", "(none)", "", "/", "");
pub const EMAIL: (&str, &str, &str, &str, &str, &str) = ("email", "newsletter", "email", "Nov", "/offers", "");
pub const ORGANIC: (&str, &str, &str, &str, &str, &str) = ("organic_search", "google", "organic", "", "/", "google.com");
pub const INTERNAL: (&str, &str, &str, &str, &str, &str) = ("", "", "", "", "", "");

pub fn golden_events() -> Vec<EventRow> {
    let a = DEMO_ACCOUNT;
    let mut rows = vec![
        event(a, "e-s1-1", "pageview", "2026-11-10T09:00:00Z", V1, "S1", "p-s1-1", PAID_BRAND),
        event(a, "e-s1-2", "pageview", "2026-11-10T09:05:00Z", V1, "S1", "p-s1-2", INTERNAL),
        event(a, "e-s1-3", "engagement", "2026-11-10T09:06:00Z", V1, "S1", "p-s1-2", INTERNAL),
        event(a, "e-s2-1", "pageview", "2026-11-12T15:00:00Z", V1, "S2", "p-s2-1", SOCIAL),
        event(a, "e-s3-1", "pageview", "2026-11-14T10:00:00Z", V1, "S3", "p-s3-1", PAID_SPRING),
        event(a, "e-s4-1", "pageview", "2026-11-10T23:30:00Z", V2, "S4", "p-s4-1", DIRECT),
        event(a, "e-s4-2", "pageview", "2026-11-10T23:40:00Z", V2, "S4", "p-s4-2", INTERNAL),
        event(a, "e-s4-3", "pageview", "2026-11-10T23:55:00Z", V2, "S4", "p-s4-3", INTERNAL),
        event(a, "e-s5-1", "pageview", "2026-11-11T08:00:00Z", V3, "S5", "p-s5-1", EMAIL),
        event(a, "e-p6-1", "pageview", "2026-11-11T12:00:00Z", "", "", "P6", ORGANIC),
        event(a, "e-p7-1", "pageview", "2026-11-11T12:05:00Z", "", "", "P7", INTERNAL),
        event(a, "e-s8-1", "pageview", "2026-11-12T03:00:00Z", V8, "S8", "p-s8-1", DIRECT),
        event(a, "e-s8-2", "pageview", "2026-11-12T03:01:00Z", V8, "S8", "p-s8-2", INTERNAL),
        // acc_other's visitor on the same days: never in acc_demo's reports.
        event(OTHER_ACCOUNT, "e-o-1", "pageview", "2026-11-10T09:00:00Z", OTHER_VISITOR, "SO1", "p-o-1", PAID_BRAND),
        event(OTHER_ACCOUNT, "e-o-2", "pageview", "2026-11-10T09:01:00Z", OTHER_VISITOR, "SO1", "p-o-2", INTERNAL),
    ];
    for r in rows.iter_mut().filter(|r| r.session_id == "S8") {
        r.is_bot = 1;
        r.user_agent = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)".into();
        r.browser = "Bot".into();
    }
    // A redelivered copy of S1's landing event (same id, later version).
    let mut again = rows[0].clone();
    again.version += 5;
    rows.push(again);
    rows
}

pub fn assignment(account: &str, session: &str, visitor: &str, number: &str, at: &str) -> AssignmentRow {
    let t = ms(at);
    AssignmentRow {
        account_id: account.into(),
        number: number.into(),
        kind: "session".into(),
        pool_id: "paid_search".into(),
        session_id: session.into(),
        visitor_id: visitor.into(),
        assigned_at: (t / 1000) as u32,
        assigned_ms: t,
        expires_ms: t + 30 * 60_000,
        ip: "203.0.113.77".into(),
        country: "US".into(),
        url: format!("https://demo.example/?gclid=gclid-{session}"),
        referrer: "https://www.google.com/".into(),
        referrer_host: "google.com".into(),
        channel: "paid_search".into(),
        source: "google".into(),
        medium: "cpc".into(),
        click_id_type: "gclid".into(),
        click_id: format!("gclid-{session}"),
        version: t,
        ..AssignmentRow::default()
    }
}

pub fn golden_assignments() -> Vec<AssignmentRow> {
    vec![
        assignment(DEMO_ACCOUNT, "S1", V1, POOL_NUMBERS[0], "2026-11-10T09:00:01Z"),
        assignment(DEMO_ACCOUNT, "S3", V1, POOL_NUMBERS[1], "2026-11-14T10:00:01Z"),
        assignment(OTHER_ACCOUNT, "SO1", OTHER_VISITOR, "+442071838751", "2026-11-10T09:00:01Z"),
    ]
}

type Touch = (&'static str, (&'static str, &'static str, &'static str, &'static str, &'static str, &'static str));

pub fn call(account: &str, id: &str, at: &str, to: &str, attribution: &str) -> CallRow {
    let t = ms(at);
    CallRow {
        account_id: account.into(),
        call_id: id.into(),
        started_at: (t / 1000) as u32,
        started_ms: t,
        received_at: (t / 1000) as u32 + 90,
        duration_s: 85,
        status: "completed".into(),
        to_number: to.into(),
        from_number: format!("+1512555{:04}", id.len() * 37 % 10_000),
        caller_name: "JANE CALLER".into(),
        caller_city: "AUSTIN TX".into(),
        attribution: attribution.into(),
        confidence: if attribution == "session" { "exclusive" } else { "none" }.into(),
        version: t,
        ..CallRow::default()
    }
}

/// A call credited to `last`, with first touch and linear over `touches` (oldest first).
pub fn session_call(account: &str, id: &str, at: &str, visitor: &str, last: Touch, touches: &[Touch]) -> CallRow {
    let mut c = call(account, id, at, POOL_NUMBERS[1], "session");
    let (session, (channel, source, medium, campaign, path, host)) = last;
    c.pool_id = "paid_search".into();
    c.session_id = session.into();
    c.visitor_id = visitor.into();
    c.ip = "203.0.113.77".into();
    c.country = "US".into();
    (c.channel, c.source, c.medium, c.campaign, c.landing_page, c.referrer_host) = (channel.into(), source.into(), medium.into(), campaign.into(), path.into(), host.into());
    c.referrer = if host.is_empty() { String::new() } else { format!("https://{host}/") };
    c.click_id_type = "gclid".into();
    c.click_id = format!("gclid-{session}");
    let (first_session, (fc, fs, fm, fca, fp, fh)) = touches[0];
    c.first_touch_session = first_session.into();
    (c.first_touch_channel, c.first_touch_source, c.first_touch_medium, c.first_touch_campaign, c.first_touch_landing_page, c.first_touch_referrer_host) =
        (fc.into(), fs.into(), fm.into(), fca.into(), fp.into(), fh.into());
    c.linear_session = touches.iter().map(|t| t.0.to_owned()).collect();
    c.linear_channel = touches.iter().map(|t| t.1 .0.to_owned()).collect();
    c.linear_source = touches.iter().map(|t| t.1 .1.to_owned()).collect();
    c.linear_medium = touches.iter().map(|t| t.1 .2.to_owned()).collect();
    c.linear_campaign = touches.iter().map(|t| t.1 .3.to_owned()).collect();
    c.linear_landing_page = touches.iter().map(|t| t.1 .4.to_owned()).collect();
    c.linear_referrer_host = touches.iter().map(|t| t.1 .5.to_owned()).collect();
    c
}

pub fn golden_calls() -> Vec<CallRow> {
    let c1 = session_call(DEMO_ACCOUNT, "C1", "2026-11-14T10:10:00Z", V1, ("S3", PAID_SPRING), &[("S1", PAID_BRAND), ("S2", SOCIAL), ("S3", PAID_SPRING)]);
    // A later version of C1 (the provider re-sent it with the final duration).
    let mut c1b = c1.clone();
    c1b.version += 60_000;
    c1b.duration_s = 95;
    let c2 = session_call(DEMO_ACCOUNT, "C2", "2026-11-10T23:40:00Z", V2, ("S4", DIRECT), &[("S4", DIRECT)]);
    // Source-level number: the rule names only the channel.
    let mut c3 = call(DEMO_ACCOUNT, "C3", "2026-11-12T16:00:00Z", SOCIAL_NUMBER, "source");
    c3.confidence = "source".into();
    c3.channel = "organic_social".into();
    c3.first_touch_channel = "organic_social".into();
    c3.linear_session = vec![String::new()];
    c3.linear_channel = vec!["organic_social".into()];
    for v in [&mut c3.linear_source, &mut c3.linear_medium, &mut c3.linear_campaign, &mut c3.linear_landing_page, &mut c3.linear_referrer_host] {
        *v = vec![String::new()];
    }
    let c4 = call(DEMO_ACCOUNT, "C4", "2026-11-13T11:00:00Z", SITE_NUMBER, "site");
    let other = session_call(OTHER_ACCOUNT, "CO1", "2026-11-10T09:10:00Z", OTHER_VISITOR, ("SO1", PAID_BRAND), &[("SO1", PAID_BRAND)]);
    vec![c1, c1b, c2, c3, c4, other]
}

pub async fn insert<T: clickhouse::RowWrite>(stack: &Stack, table: &str, rows: &[T::Value<'_>]) {
    let mut ins = stack.ch.insert::<T>(table).await.expect("insert starts");
    for r in rows {
        ins.write(r).await.expect("row written");
    }
    ins.end().await.expect("insert ends");
}

/// Writes the whole golden dataset; each table in two inserts (two parts), like real batches.
pub async fn load_golden(stack: &Stack) {
    let events = golden_events();
    let (a, b) = events.split_at(events.len() / 2);
    insert::<EventRow>(stack, "events", a).await;
    insert::<EventRow>(stack, "events", b).await;
    insert::<AssignmentRow>(stack, "assignments", &golden_assignments()).await;
    let calls = golden_calls();
    let (a, b) = calls.split_at(1);
    insert::<CallRow>(stack, "calls", a).await;
    insert::<CallRow>(stack, "calls", b).await;
}

pub const FROM: &str = "2026-11-09T00:00:00Z";
pub const TO: &str = "2026-11-16T00:00:00Z";

pub async fn get(stack: &Stack, path: &str, id: &str, token: &str) -> (u16, Value) {
    let resp = stack.dashboard_get(path, id, token).send().await.expect("request sent");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body read");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON ({status}): {text}"));
    (status, body)
}

pub async fn demo(stack: &Stack, path: &str) -> Value {
    let (status, body) = get(stack, path, DEMO_ACCOUNT, DEMO_TOKEN).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}
