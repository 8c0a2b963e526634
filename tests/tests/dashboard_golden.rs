//! Golden tests of the dashboard API: a known dataset (dashboard_data) in the
//! real ClickHouse, and the exact numbers an analyst must get back — every
//! dimension × model of /attribution, /timeseries per hour and day (UTC and an
//! account time zone across DST), the calls list and its cursor, journeys,
//! JSON and CSV.

mod dashboard_data;

use std::collections::BTreeMap;

use dashboard_data::*;
use ringpath_store::rows::CallRow;
use ringpath_tests::fixtures::*;
use ringpath_tests::{Stack, StackOptions};
use serde_json::Value;

async fn golden_stack(opts: StackOptions) -> Stack {
    let stack = Stack::start(StackOptions { with_enrich: false, ..opts }).await.expect("stack starts (Kafka and ClickHouse running?)");
    load_golden(&stack).await;
    stack
}

/// (key, sessions, visitors, calls, conversion_rate)
type Row = (&'static str, u64, u64, f64, f64);

const UN: &str = "(unattributed)";
const NS: &str = "(not set)";

#[rustfmt::skip]
fn expected() -> Vec<(&'static str, &'static str, Vec<Row>)> {
    vec![
        ("channel", "last_touch", vec![("paid_search", 2, 1, 1.0, 0.5), ("organic_social", 1, 1, 1.0, 1.0), ("direct", 1, 1, 1.0, 1.0), ("email", 1, 1, 0.0, 0.0), ("organic_search", 1, 0, 0.0, 0.0), (UN, 0, 0, 1.0, 0.0)]),
        ("channel", "first_touch", vec![("paid_search", 2, 1, 1.0, 0.5), ("organic_social", 1, 1, 1.0, 1.0), ("direct", 1, 1, 1.0, 1.0), ("email", 1, 1, 0.0, 0.0), ("organic_search", 1, 0, 0.0, 0.0), (UN, 0, 0, 1.0, 0.0)]),
        ("channel", "linear", vec![("paid_search", 2, 1, 0.6667, 0.3333), ("organic_social", 1, 1, 1.3333, 1.3333), ("direct", 1, 1, 1.0, 1.0), ("email", 1, 1, 0.0, 0.0), ("organic_search", 1, 0, 0.0, 0.0), (UN, 0, 0, 1.0, 0.0)]),
        ("source", "last_touch", vec![("google", 3, 1, 1.0, 0.3333), ("facebook", 1, 1, 0.0, 0.0), ("(direct)", 1, 1, 1.0, 1.0), ("newsletter", 1, 1, 0.0, 0.0), (NS, 0, 0, 1.0, 0.0), (UN, 0, 0, 1.0, 0.0)]),
        ("source", "first_touch", vec![("google", 3, 1, 1.0, 0.3333), ("facebook", 1, 1, 0.0, 0.0), ("(direct)", 1, 1, 1.0, 1.0), ("newsletter", 1, 1, 0.0, 0.0), (NS, 0, 0, 1.0, 0.0), (UN, 0, 0, 1.0, 0.0)]),
        ("source", "linear", vec![("google", 3, 1, 0.6667, 0.2222), ("facebook", 1, 1, 0.3333, 0.3333), ("(direct)", 1, 1, 1.0, 1.0), ("newsletter", 1, 1, 0.0, 0.0), (NS, 0, 0, 1.0, 0.0), (UN, 0, 0, 1.0, 0.0)]),
        ("medium", "last_touch", vec![("cpc", 2, 1, 1.0, 0.5), ("social", 1, 1, 0.0, 0.0), ("(none)", 1, 1, 1.0, 1.0), ("email", 1, 1, 0.0, 0.0), ("organic", 1, 0, 0.0, 0.0), (NS, 0, 0, 1.0, 0.0), (UN, 0, 0, 1.0, 0.0)]),
        ("medium", "first_touch", vec![("cpc", 2, 1, 1.0, 0.5), ("social", 1, 1, 0.0, 0.0), ("(none)", 1, 1, 1.0, 1.0), ("email", 1, 1, 0.0, 0.0), ("organic", 1, 0, 0.0, 0.0), (NS, 0, 0, 1.0, 0.0), (UN, 0, 0, 1.0, 0.0)]),
        ("medium", "linear", vec![("cpc", 2, 1, 0.6667, 0.3333), ("social", 1, 1, 0.3333, 0.3333), ("(none)", 1, 1, 1.0, 1.0), ("email", 1, 1, 0.0, 0.0), ("organic", 1, 0, 0.0, 0.0), (NS, 0, 0, 1.0, 0.0), (UN, 0, 0, 1.0, 0.0)]),
        ("campaign", "last_touch", vec![("Brand", 1, 1, 0.0, 0.0), ("Spring", 1, 1, 1.0, 1.0), ("Nov", 1, 1, 0.0, 0.0), (NS, 3, 2, 2.0, 0.6667), (UN, 0, 0, 1.0, 0.0)]),
        ("campaign", "first_touch", vec![("Brand", 1, 1, 1.0, 1.0), ("Spring", 1, 1, 0.0, 0.0), ("Nov", 1, 1, 0.0, 0.0), (NS, 3, 2, 2.0, 0.6667), (UN, 0, 0, 1.0, 0.0)]),
        ("campaign", "linear", vec![("Brand", 1, 1, 0.3333, 0.3333), ("Spring", 1, 1, 0.3333, 0.3333), ("Nov", 1, 1, 0.0, 0.0), (NS, 3, 2, 2.3333, 0.7778), (UN, 0, 0, 1.0, 0.0)]),
        ("landing_page", "last_touch", vec![("/pricing", 1, 1, 0.0, 0.0), ("/", 3, 2, 1.0, 0.3333), ("/emergency", 1, 1, 1.0, 1.0), ("/offers", 1, 1, 0.0, 0.0), (NS, 0, 0, 1.0, 0.0), (UN, 0, 0, 1.0, 0.0)]),
        ("landing_page", "first_touch", vec![("/pricing", 1, 1, 1.0, 1.0), ("/", 3, 2, 1.0, 0.3333), ("/emergency", 1, 1, 0.0, 0.0), ("/offers", 1, 1, 0.0, 0.0), (NS, 0, 0, 1.0, 0.0), (UN, 0, 0, 1.0, 0.0)]),
        ("landing_page", "linear", vec![("/pricing", 1, 1, 0.3333, 0.3333), ("/", 3, 2, 1.3333, 0.4444), ("/emergency", 1, 1, 0.3333, 0.3333), ("/offers", 1, 1, 0.0, 0.0), (NS, 0, 0, 1.0, 0.0), (UN, 0, 0, 1.0, 0.0)]),
        ("referrer_host", "last_touch", vec![("google.com", 3, 1, 1.0, 0.3333), ("facebook.com", 1, 1, 0.0, 0.0), (NS, 2, 2, 2.0, 1.0), (UN, 0, 0, 1.0, 0.0)]),
        ("referrer_host", "first_touch", vec![("google.com", 3, 1, 1.0, 0.3333), ("facebook.com", 1, 1, 0.0, 0.0), (NS, 2, 2, 2.0, 1.0), (UN, 0, 0, 1.0, 0.0)]),
        ("referrer_host", "linear", vec![("google.com", 3, 1, 0.6667, 0.2222), ("facebook.com", 1, 1, 0.3333, 0.3333), (NS, 2, 2, 2.0, 1.0), (UN, 0, 0, 1.0, 0.0)]),
    ]
}

fn rows_by_key(body: &Value) -> BTreeMap<String, (u64, u64, f64, f64)> {
    body["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let key = r["key"].as_str().expect("key").to_owned();
            (key, (r["sessions"].as_u64().expect("sessions"), r["visitors"].as_u64().expect("visitors"), r["calls"].as_f64().expect("calls"), r["conversion_rate"].as_f64().expect("rate")))
        })
        .collect()
}

fn attribution_path(dimension: &str, model: &str, extra: &str) -> String {
    format!("/v1/accounts/{DEMO_ACCOUNT}/attribution?from={FROM}&to={TO}&dimension={dimension}&model={model}{extra}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribution_gives_the_golden_numbers_for_every_dimension_and_model() {
    let stack = golden_stack(StackOptions::default()).await;
    for (dimension, model, rows) in expected() {
        let body = demo(&stack, &attribution_path(dimension, model, "")).await;
        let want: BTreeMap<String, (u64, u64, f64, f64)> = rows.iter().map(|(k, s, v, c, r)| ((*k).to_owned(), (*s, *v, *c, *r))).collect();
        assert_eq!(rows_by_key(&body), want, "{dimension} × {model}: {body}");
        // Sorted by calls, then sessions, then key.
        let order: Vec<(f64, u64)> = body["rows"].as_array().unwrap().iter().map(|r| (r["calls"].as_f64().unwrap(), r["sessions"].as_u64().unwrap())).collect();
        assert!(order.windows(2).all(|w| w[0].0 > w[1].0 || (w[0].0 == w[1].0 && w[0].1 >= w[1].1)), "{dimension} × {model} order: {order:?}");
        // Every call is credited exactly once in total, whatever the model.
        let credited: f64 = body["rows"].as_array().unwrap().iter().map(|r| r["calls"].as_f64().unwrap()).sum();
        assert!((credited - 4.0).abs() < 0.001, "{dimension} × {model}: {credited} calls credited");
        assert_eq!((body["dimension"].as_str(), body["model"].as_str()), (Some(dimension), Some(model)));
    }
    // A range that is not on whole days or hours (read from days, hours and raw
    // events together) still holds every golden session and call: same numbers.
    for (dimension, model, _) in expected() {
        let whole = demo(&stack, &attribution_path(dimension, model, "")).await;
        let ragged = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/attribution?from=2026-11-10T08:30:00Z&to=2026-11-14T10:30:00Z&dimension={dimension}&model={model}")).await;
        assert_eq!(rows_by_key(&ragged), rows_by_key(&whole), "{dimension} × {model} over a ragged range");
    }
    // Cut inside S3's edge hour: S3 landed at 10:00:00.000, so a range ending then leaves it out.
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/attribution?from=2026-11-10T08:30:00Z&to=2026-11-14T10:00:00Z&dimension=campaign")).await;
    assert_eq!(rows_by_key(&body).get("Spring"), None, "{body}");
    // Defaults: channel, last touch.
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/attribution?from={FROM}&to={TO}")).await;
    assert_eq!((body["dimension"].as_str(), body["model"].as_str()), (Some("channel"), Some("last_touch")));
    // The range is honoured: from 11-12 on, S1, S4, S5, P6 and calls C2 are outside.
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/attribution?from=2026-11-12T00:00:00Z&to={TO}&dimension=channel")).await;
    let got = rows_by_key(&body);
    assert_eq!(got.get("paid_search"), Some(&(1, 1, 1.0, 1.0)), "{body}");
    assert_eq!(got.get("organic_social"), Some(&(1, 1, 1.0, 1.0)));
    assert_eq!(got.get("direct"), None, "S4 and its call are before the range");
    assert_eq!(got.get(UN), Some(&(0, 0, 1.0, 0.0)));
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_are_left_out_unless_include_bots_is_true() {
    let stack = golden_stack(StackOptions::default()).await;
    let without = rows_by_key(&demo(&stack, &attribution_path("channel", "last_touch", "")).await);
    let explicit = rows_by_key(&demo(&stack, &attribution_path("channel", "last_touch", "&include_bots=false")).await);
    let with = rows_by_key(&demo(&stack, &attribution_path("channel", "last_touch", "&include_bots=true")).await);
    assert_eq!(without["direct"], (1, 1, 1.0, 1.0));
    assert_eq!(explicit, without);
    assert_eq!(with["direct"], (2, 2, 1.0, 0.5), "the bot's direct session and visitor count with include_bots=true");
    let day = |bots: &str| format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from={FROM}&to={TO}&interval=day&metric=pageviews{bots}");
    let values = |b: &Value| b["points"].as_array().unwrap().iter().map(|p| p["value"].as_u64().unwrap()).collect::<Vec<_>>();
    assert_eq!(values(&demo(&stack, &day("")).await), [0, 5, 3, 1, 0, 1, 0]);
    assert_eq!(values(&demo(&stack, &day("&include_bots=true")).await), [0, 5, 3, 3, 0, 1, 0]);
    let sessions = |bots: &str| format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from={FROM}&to={TO}&interval=day&metric=sessions{bots}");
    assert_eq!(values(&demo(&stack, &sessions("")).await), [0, 2, 2, 1, 0, 1, 0]);
    assert_eq!(values(&demo(&stack, &sessions("&include_bots=1")).await), [0, 2, 2, 2, 0, 1, 0]);
    stack.stop().await.unwrap();
}

fn points(body: &Value) -> Vec<(String, u64)> {
    body["points"].as_array().expect("points").iter().map(|p| (p["t"].as_str().unwrap().to_owned(), p["value"].as_u64().unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeseries_counts_per_utc_day_and_hour_zero_filled() {
    let stack = golden_stack(StackOptions::default()).await;
    let days = ["2026-11-09", "2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13", "2026-11-14", "2026-11-15"];
    let series = |values: [u64; 7]| days.iter().zip(values).map(|(d, v)| (format!("{d}T00:00:00Z"), v)).collect::<Vec<_>>();
    for (metric, values, total) in [("pageviews", [0, 5, 3, 1, 0, 1, 0], 10), ("sessions", [0, 2, 2, 1, 0, 1, 0], 6), ("calls", [0, 1, 0, 1, 1, 1, 0], 4)] {
        let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from={FROM}&to={TO}&interval=day&metric={metric}")).await;
        assert_eq!(points(&body), series(values), "{metric}: {body}");
        assert_eq!(body["total"], total, "{metric}");
        assert_eq!(body["timezone"], "UTC");
        // t_ms is the same instant as t.
        assert_eq!(body["points"][1]["t_ms"].as_u64(), Some(ms("2026-11-10T00:00:00Z")));
    }
    // Hours: S4's three page views at 23:30, 23:40, 23:55 and nothing in the hours around them.
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from=2026-11-10T21:00:00Z&to=2026-11-11T01:00:00Z&interval=hour&metric=pageviews")).await;
    assert_eq!(
        points(&body),
        [("2026-11-10T21:00:00Z", 0), ("2026-11-10T22:00:00Z", 0), ("2026-11-10T23:00:00Z", 3), ("2026-11-11T00:00:00Z", 0)].map(|(t, v)| (t.to_owned(), v))
    );
    // A range that starts mid-hour gets the hour it starts in, counting only what is in range.
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from=2026-11-10T23:35:00Z&to=2026-11-11T00:30:00Z&interval=hour&metric=pageviews")).await;
    assert_eq!(points(&body), [("2026-11-10T23:00:00Z", 2), ("2026-11-11T00:00:00Z", 0)].map(|(t, v)| (t.to_owned(), v)));
    // Defaults: a day of hours, a month of days, page views.
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?interval=hour")).await;
    assert!((24..=25).contains(&body["points"].as_array().unwrap().len()), "{body}");
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries")).await;
    assert!((30..=31).contains(&body["points"].as_array().unwrap().len()));
    assert_eq!((body["metric"].as_str(), body["interval"].as_str()), (Some("pageviews"), Some("day")));
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeseries_buckets_follow_the_accounts_time_zone_across_midnight_and_dst() {
    let toml = accounts_toml().replacen(&format!("id = \"{DEMO_ACCOUNT}\"\n"), &format!("id = \"{DEMO_ACCOUNT}\"\ntimezone = \"Europe/Berlin\"\n"), 1);
    let accounts = ringpath_types::accounts::AccountsFile::parse(&toml).unwrap();
    let stack = golden_stack(StackOptions { accounts, ..StackOptions::default() }).await;
    // Berlin is UTC+1 in November: S4 (23:30-23:55 UTC on the 10th) is past midnight, on the 11th.
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from=2026-11-09T00:00:00%2B01:00&to=2026-11-16T00:00:00%2B01:00&interval=day&metric=pageviews")).await;
    let days = ["2026-11-09", "2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13", "2026-11-14", "2026-11-15"];
    let want: Vec<(String, u64)> = days.iter().zip([0, 2, 6, 1, 0, 1, 0]).map(|(d, v)| (format!("{d}T00:00:00+01:00"), v)).collect();
    assert_eq!(points(&body), want, "{body}");
    assert_eq!(body["timezone"], "Europe/Berlin");
    assert_eq!(body["points"][0]["t_ms"].as_u64(), Some(ms("2026-11-08T23:00:00Z")));
    let sessions = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from=2026-11-09T00:00:00%2B01:00&to=2026-11-16T00:00:00%2B01:00&interval=day&metric=sessions")).await;
    assert_eq!(points(&sessions).iter().map(|p| p.1).collect::<Vec<_>>(), [0, 1, 3, 1, 0, 1, 0]);
    let calls = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from=2026-11-09T00:00:00%2B01:00&to=2026-11-16T00:00:00%2B01:00&interval=day&metric=calls")).await;
    assert_eq!(points(&calls).iter().map(|p| p.1).collect::<Vec<_>>(), [0, 0, 1, 1, 1, 1, 0], "C2 at 23:40 UTC is on the 11th in Berlin");
    // Hours in local time.
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from=2026-11-10T23:00:00%2B01:00&to=2026-11-11T02:00:00%2B01:00&interval=hour&metric=pageviews")).await;
    assert_eq!(
        points(&body),
        [("2026-11-10T23:00:00+01:00", 0), ("2026-11-11T00:00:00+01:00", 3), ("2026-11-11T01:00:00+01:00", 0)].map(|(t, v)| (t.to_owned(), v))
    );

    // DST ends in Berlin on 2026-10-25 (03:00 CEST → 02:00 CET): that day is 25 hours long.
    // A page view at 23:30 UTC on the 25th is 00:30 on the 26th in Berlin.
    let mut late = event(DEMO_ACCOUNT, "e-dst-1", "pageview", "2026-10-25T23:30:00Z", V3, "S9", "p-s9-1", DIRECT);
    let early = event(DEMO_ACCOUNT, "e-dst-0", "pageview", "2026-10-24T22:30:00Z", V3, "S10", "p-s10-1", DIRECT);
    late.session_id = "S9".into();
    insert::<ringpath_store::rows::EventRow>(&stack, "events", &[late, early]).await;
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from=2026-10-24T00:00:00%2B02:00&to=2026-10-27T00:00:00%2B01:00&interval=day&metric=pageviews")).await;
    assert_eq!(
        points(&body),
        [("2026-10-24T00:00:00+02:00", 0), ("2026-10-25T00:00:00+02:00", 1), ("2026-10-26T00:00:00+01:00", 1)].map(|(t, v)| (t.to_owned(), v)),
        "22:30 UTC on the 24th is 00:30 CEST on the 25th; 23:30 UTC on the 25th is 00:30 CET on the 26th"
    );
    let t_ms: Vec<u64> = body["points"].as_array().unwrap().iter().map(|p| p["t_ms"].as_u64().unwrap()).collect();
    assert_eq!((t_ms[1] - t_ms[0], t_ms[2] - t_ms[1]), (24 * 3_600_000, 25 * 3_600_000), "the 25th has 25 hours");
    // Hourly across the change: 01:00 and 02:00 CEST, then 02:00 CET again, 03:00 CET.
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from=2026-10-24T23:00:00Z&to=2026-10-25T03:00:00Z&interval=hour&metric=pageviews")).await;
    let ts: Vec<String> = points(&body).into_iter().map(|p| p.0).collect();
    assert_eq!(ts, ["2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"]);
    stack.stop().await.unwrap();
}

fn call_ids(body: &Value) -> Vec<String> {
    body["calls"].as_array().expect("calls").iter().map(|c| c["call_id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_come_newest_first_with_their_attribution() {
    let stack = golden_stack(StackOptions::default()).await;
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/calls?from={FROM}&to={TO}")).await;
    assert_eq!(call_ids(&body), ["C1", "C4", "C3", "C2"], "newest first, C1 once although stored in two versions; acc_other's call absent");
    assert_eq!(body["next_cursor"], Value::Null);
    let c1 = &body["calls"][0];
    assert_eq!(c1["duration_s"], 95, "the newest version of C1");
    assert_eq!(c1["started_at"], "2026-11-14T10:10:00.000Z");
    assert_eq!((c1["attribution"].as_str(), c1["channel"].as_str(), c1["campaign"].as_str(), c1["landing_page"].as_str()), (Some("session"), Some("paid_search"), Some("Spring"), Some("/emergency")));
    assert_eq!((c1["first_touch_campaign"].as_str(), c1["session_id"].as_str(), c1["visitor_id"].as_str()), (Some("Brand"), Some("S3"), Some(V1)));
    assert_eq!(c1["linear_channel"], serde_json::json!(["paid_search", "organic_social", "paid_search"]));
    assert_eq!(body["calls"][1]["attribution"], "site");
    // The range cuts by the call's start.
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/calls?from=2026-11-11T00:00:00Z&to=2026-11-14T00:00:00Z")).await;
    assert_eq!(call_ids(&body), ["C4", "C3"]);
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calls_cursor_pages_without_duplicates_or_gaps_while_calls_arrive() {
    let stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.unwrap();
    // 25 calls, one per hour, with three pairs starting in the same millisecond (ties broken by id).
    let mut calls: Vec<CallRow> = (0..25)
        .map(|i| {
            let mut c = call(DEMO_ACCOUNT, &format!("CP{i:02}"), "2026-11-10T00:00:00Z", SITE_NUMBER, "site");
            let hour = if i % 8 == 1 { i - 1 } else { i };
            c.started_ms += hour as u64 * 3_600_000;
            c.started_at = (c.started_ms / 1000) as u32;
            c
        })
        .collect();
    insert::<CallRow>(&stack, "calls", &calls).await;
    calls.sort_by(|a, b| (b.started_ms, &b.call_id).cmp(&(a.started_ms, &a.call_id)));
    let original: Vec<String> = calls.iter().map(|c| c.call_id.clone()).collect();

    let base = format!("/v1/accounts/{DEMO_ACCOUNT}/calls?from=2026-11-09T00:00:00Z&to=2026-11-20T00:00:00Z&limit=10");
    let page1 = demo(&stack, &base).await;
    assert_eq!(call_ids(&page1), original[..10]);
    let cursor = page1["next_cursor"].as_str().expect("a next page").to_owned();

    // Between pages: a newer call, a call older than the whole list, one inside the next page's span.
    let mut newer = call(DEMO_ACCOUNT, "CP-new", "2026-11-12T00:00:00Z", SITE_NUMBER, "site");
    newer.started_at = (newer.started_ms / 1000) as u32;
    let older = call(DEMO_ACCOUNT, "CP-old", "2026-11-09T12:00:00Z", SITE_NUMBER, "site");
    let mut inside = call(DEMO_ACCOUNT, "CP-mid", "2026-11-10T05:30:00Z", SITE_NUMBER, "site");
    inside.started_at = (inside.started_ms / 1000) as u32;
    insert::<CallRow>(&stack, "calls", &[newer, older, inside]).await;

    let page2 = demo(&stack, &format!("{base}&cursor={cursor}")).await;
    let cursor2 = page2["next_cursor"].as_str().expect("a third page").to_owned();
    let page3 = demo(&stack, &format!("{base}&cursor={cursor2}")).await;
    let mut seen: Vec<String> = call_ids(&page1);
    seen.extend(call_ids(&page2));
    seen.extend(call_ids(&page3));
    if let Some(c) = page3["next_cursor"].as_str() {
        seen.extend(call_ids(&demo(&stack, &format!("{base}&cursor={c}")).await));
    }
    let unique: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no call twice: {seen:?}");
    assert!(!seen.contains(&"CP-new".to_owned()), "a call newer than page 1 does not shift the pages after it");
    let without_new_arrivals: Vec<&String> = seen.iter().filter(|c| !c.starts_with("CP-")).collect();
    assert_eq!(without_new_arrivals, original.iter().collect::<Vec<_>>(), "every original call, in order, no gaps");
    assert!(seen.contains(&"CP-old".to_owned()) && seen.contains(&"CP-mid".to_owned()), "calls that arrived behind the cursor still show up");
    // And a fresh first page shows the new call on top.
    assert_eq!(call_ids(&demo(&stack, &base).await)[0], "CP-new");
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_journey_lists_sessions_pages_and_calls() {
    let stack = golden_stack(StackOptions::default()).await;
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{V1}")).await;
    assert_eq!(body["visitor_id"], V1);
    let sessions: Vec<(String, u64, String, String, String)> = body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["session_id"].as_str().unwrap().into(), s["pageviews"].as_u64().unwrap(), s["channel"].as_str().unwrap().into(), s["campaign"].as_str().unwrap().into(), s["landing_page"].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        sessions,
        [("S1", 2, "paid_search", "Brand", "/pricing"), ("S2", 1, "organic_social", "", "/"), ("S3", 1, "paid_search", "Spring", "/emergency")]
            .map(|(a, b, c, d, e)| (a.to_owned(), b, c.to_owned(), d.to_owned(), e.to_owned()))
    );
    assert_eq!(body["sessions"][0]["started_ms"].as_u64(), Some(ms("2026-11-10T09:00:00Z")));
    assert_eq!(body["sessions"][0]["ended_ms"].as_u64(), Some(ms("2026-11-10T09:06:00Z")));
    let pages: Vec<&str> = body["pages"].as_array().unwrap().iter().map(|p| p["event_id"].as_str().unwrap()).collect();
    assert_eq!(pages, ["e-s1-1", "e-s1-2", "e-s1-3", "e-s2-1", "e-s3-1"], "in time order, the redelivered event once");
    assert_eq!(call_ids(&body), ["C1"]);
    assert_eq!(body["calls"][0]["duration_s"], 95);
    // A visitor without consent has no journey; an unknown one is 404.
    let (status, body) = get(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/visitor_nobody00"), DEMO_ACCOUNT, DEMO_TOKEN).await;
    assert_eq!(status, 404, "{body}");
    // CSV: one line per event.
    let csv = stack.dashboard_get(&format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{V1}"), DEMO_ACCOUNT, DEMO_TOKEN).header("Accept", "text/csv").send().await.unwrap().text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "event_id,event_type,ts,ts_ms,session_id,url,title,number");
    assert_eq!(lines.len(), 6);
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_come_as_csv_on_accept_text_csv() {
    let stack = golden_stack(StackOptions::default()).await;
    let csv = |path: String| {
        let req = stack.dashboard_get(&path, DEMO_ACCOUNT, DEMO_TOKEN).header("Accept", "text/csv");
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
            resp.text().await.unwrap()
        }
    };
    let text = csv(attribution_path("channel", "linear", "")).await;
    assert_eq!(
        text,
        "key,sessions,visitors,calls,conversion_rate\r\n\
         organic_social,1,1,1.3333,1.3333\r\ndirect,1,1,1.0,1.0\r\n(unattributed),0,0,1.0,0.0\r\npaid_search,2,1,0.6667,0.3333\r\n\
         email,1,1,0.0,0.0\r\norganic_search,1,0,0.0,0.0\r\n"
    );
    let text = csv(format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from={FROM}&to={TO}&interval=day&metric=calls")).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "t,t_ms,value");
    assert_eq!(lines[2], format!("2026-11-10T00:00:00Z,{},1", ms("2026-11-10T00:00:00Z")));
    assert_eq!(lines.len(), 8);
    let text = csv(format!("/v1/accounts/{DEMO_ACCOUNT}/calls?from={FROM}&to={TO}")).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[0].starts_with("account_id,call_id,started_at,started_ms,"), "{}", lines[0]);
    assert!(lines[1].starts_with("acc_demo,C1,2026-11-14T10:10:00.000Z,"));
    assert!(lines[1].contains(",paid_search|organic_social|paid_search,"), "a list is one cell joined by |: {}", lines[1]);
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_lands_again_from_another_source_counts_once_under_each() {
    let stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.unwrap();
    let vr = "visitor_reentry01";
    let rows = vec![
        event(DEMO_ACCOUNT, "e-r-1", "pageview", "2026-11-10T10:00:00Z", vr, "SR", "p-r-1", PAID_BRAND),
        event(DEMO_ACCOUNT, "e-r-2", "pageview", "2026-11-10T10:10:00Z", vr, "SR", "p-r-2", INTERNAL),
        // Back 10 minutes later from a Facebook post, same session cookie.
        event(DEMO_ACCOUNT, "e-r-3", "pageview", "2026-11-10T10:20:00Z", vr, "SR", "p-r-3", SOCIAL),
    ];
    insert::<ringpath_store::rows::EventRow>(&stack, "events", &rows).await;
    let got = rows_by_key(&demo(&stack, &attribution_path("channel", "last_touch", "")).await);
    assert_eq!(got.get("paid_search"), Some(&(1, 1, 0.0, 0.0)));
    assert_eq!(got.get("organic_social"), Some(&(1, 1, 0.0, 0.0)));
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from={FROM}&to={TO}&interval=day&metric=sessions")).await;
    assert_eq!(body["total"], 1, "one session that day: {body}");
    // The journey names the session by where it first landed.
    let journey = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{vr}")).await;
    assert_eq!((journey["sessions"][0]["channel"].as_str(), journey["sessions"][0]["pageviews"].as_u64()), (Some("paid_search"), Some(3)));
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeseries_in_a_half_hour_zone_buckets_local_days_and_hours() {
    let toml = accounts_toml().replacen(&format!("id = \"{DEMO_ACCOUNT}\"\n"), &format!("id = \"{DEMO_ACCOUNT}\"\ntimezone = \"Asia/Kolkata\"\n"), 1);
    let accounts = ringpath_types::accounts::AccountsFile::parse(&toml).unwrap();
    let stack = golden_stack(StackOptions { accounts, ..StackOptions::default() }).await;
    // UTC+05:30: S4 (23:30-23:55 UTC on the 10th) is 05:00-05:25 on the 11th.
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from=2026-11-10T00:00:00%2B05:30&to=2026-11-13T00:00:00%2B05:30&interval=day&metric=pageviews")).await;
    assert_eq!(points(&body), [("2026-11-10T00:00:00+05:30", 2), ("2026-11-11T00:00:00+05:30", 6), ("2026-11-12T00:00:00+05:30", 1)].map(|(t, v)| (t.to_owned(), v)), "{body}");
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from=2026-11-11T04:30:00%2B05:30&to=2026-11-11T07:30:00%2B05:30&interval=hour&metric=pageviews")).await;
    assert_eq!(
        points(&body),
        [("2026-11-11T04:00:00+05:30", 0), ("2026-11-11T05:00:00+05:30", 3), ("2026-11-11T06:00:00+05:30", 0), ("2026-11-11T07:00:00+05:30", 0)].map(|(t, v)| (t.to_owned(), v))
    );
    let sessions = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from=2026-11-10T00:00:00%2B05:30&to=2026-11-13T00:00:00%2B05:30&interval=day&metric=sessions")).await;
    assert_eq!(points(&sessions).iter().map(|p| p.1).collect::<Vec<_>>(), [1, 3, 1]);
    stack.stop().await.unwrap();
}
