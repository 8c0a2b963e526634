//! The synthetic data generator against the real services: straight into
//! ClickHouse (and the hourly aggregates the reports read agree with the raw
//! events), and through the real collector → Kafka → enrich pipeline.

mod dashboard_data;

use std::time::Duration;

use clickhouse::Row;
use dashboard_data::*;
use ringpath_tests::generate::{self, Generator, Options};
use ringpath_tests::fixtures::*;
use ringpath_tests::{Stack, StackOptions};
use serde::Deserialize;

fn options(events: u64, calls: u64, end_ms: i64, collector: bool) -> Options {
    Options {
        account: accounts().account(DEMO_ACCOUNT).unwrap().clone(),
        events,
        calls,
        days: 7,
        end_ms,
        seed: 7,
        site: "https://demo.example".into(),
        collector_batches: collector,
    }
}

#[derive(Debug, Row, Deserialize, PartialEq)]
struct KeyCounts {
    key: String,
    sessions: u64,
    visitors: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_data_loads_into_clickhouse_and_the_aggregates_match_the_events() {
    let stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.unwrap();
    let end = ms("2026-11-20T00:00:00Z") as i64;
    let loaded = generate::load_clickhouse(&stack.ch, Generator::new(options(30_000, 400, end, false)), 7_000, |_| {}).await.unwrap();
    assert!(loaded.events >= 30_000 && loaded.events < 30_020, "{loaded:?}");
    assert_eq!(loaded.calls, 400);
    assert_eq!(stack.ch.query("SELECT count() FROM calls").fetch_one::<u64>().await.unwrap(), 400);

    let (from, to) = ("2026-11-13T00:00:00Z", "2026-11-20T00:00:00Z");
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/attribution?from={from}&to={to}&dimension=channel&model=linear")).await;
    let credited: f64 = body["rows"].as_array().unwrap().iter().map(|r| r["calls"].as_f64().unwrap()).sum();
    assert!((credited - 400.0).abs() < 0.01, "every call credited once: {credited}");
    // The API reads attribution_stats (HyperLogLog sketches kept by a
    // materialized view); the same numbers straight from events, exact, per
    // landing channel (no bots), agree within the sketches' error:
    let raw: Vec<KeyCounts> = stack
        .ch
        .query(
            "SELECT channel AS key, uniqExact(if(session_id != '', session_id, page_id)) AS s, uniqExactIf(visitor_id, visitor_id != '') AS v \
             FROM events WHERE channel != '' AND is_bot = 0 AND ts_ms >= ? AND ts_ms < ? GROUP BY key ORDER BY key",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all()
        .await
        .unwrap();
    assert!(raw.len() >= 6, "{raw:?}");
    for r in &raw {
        let row = body["rows"].as_array().unwrap().iter().find(|x| x["key"] == r.key.as_str()).unwrap_or_else(|| panic!("{} missing: {body}", r.key));
        let close = |got: u64, want: u64| (got as f64 - want as f64).abs() <= (want as f64 * 0.05).max(1.0);
        let (sessions, visitors) = (row["sessions"].as_u64().unwrap(), row["visitors"].as_u64().unwrap());
        assert!(close(sessions, r.sessions) && close(visitors, r.visitors), "{}: API {sessions}/{visitors}, exact {}/{}", r.key, r.sessions, r.visitors);
    }
    // Page views per day, from event_stats (uniq states, exact at this size), equal the distinct page view events.
    let series = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from={from}&to={to}&interval=day&metric=pageviews")).await;
    let exact = stack
        .ch
        .query("SELECT uniqExact(event_id) FROM events WHERE event_type = 'pageview' AND is_bot = 0 AND ts_ms >= ? AND ts_ms < ?")
        .bind(ms(from))
        .bind(ms(to))
        .fetch_one::<u64>()
        .await
        .unwrap();
    assert_eq!(series["total"].as_u64(), Some(exact));
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_visits_and_calls_go_through_the_real_pipeline() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let mut opts = options(400, 12, now, true);
    opts.days = 1;
    let sent = generate::load_ingest(&stack.ingest_url(), DEMO_CALLS_TOKEN, Generator::new(opts)).await.unwrap();
    assert!(sent.events >= 400 && sent.calls == 12, "{sent:?}");
    stack.wait_count("SELECT count() FROM events", sent.events, Duration::from_secs(60)).await.unwrap();
    stack.wait_count("SELECT uniqExact(call_id) FROM calls", 12, Duration::from_secs(60)).await.unwrap();
    // Calls the generator placed on pool sessions are credited to those sessions
    // by enrich (possibly after waiting for the assignment to be stored).
    let breakdown = stack.ch.query("SELECT groupArray(attribution) FROM calls FINAL").fetch_one::<Vec<String>>().await.unwrap();
    assert!(breakdown.iter().any(|a| a == "source" || a == "site"), "{breakdown:?}");
    stack
        .wait_count("SELECT uniqExact(call_id) FROM calls FINAL WHERE attribution = 'session'", 1, Duration::from_secs(90))
        .await
        .unwrap_or_else(|e| panic!("no pool call credited to its session: {e}; attributions {breakdown:?}"));
    stack.stop().await.unwrap();
}
