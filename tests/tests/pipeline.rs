//! The pipeline without a browser: beacons and calls posted to the real
//! collector travel through real Kafka and enrich into real ClickHouse, and
//! the dashboard API reports them.

use std::time::Duration;

use ringpath_tests::fixtures::*;
use ringpath_tests::{Stack, StackOptions};
use serde_json::{json, Value};

use ringpath_types::time::now_ms;

fn batch(consent: &str, visitor: Option<&str>, session: Option<&str>, events: Vec<Value>) -> Value {
    let mut b = json!({"v": 1, "account": DEMO_ACCOUNT, "sent_at": now_ms(), "consent": consent, "page_id": "page0001",
                       "screen": "1920x1080", "lang": "en-US", "tz": "Europe/Berlin", "events": events});
    if let Some(v) = visitor {
        b["visitor_id"] = json!(v);
    }
    if let Some(s) = session {
        b["session_id"] = json!(s);
    }
    b
}

fn pageview(id: &str, url: &str, referrer: &str) -> Value {
    json!({"id": id, "type": "pageview", "ts": now_ms() - 50, "url": url, "referrer": referrer, "title": "Home", "props": {}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_beacon_reaches_clickhouse_enriched_and_the_dashboard_counts_it() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    let body = batch(
        "granted",
        Some("visitor00000001"),
        Some("session0000001"),
        vec![pageview("ev-1", "https://demo.example/?utm_source=google&utm_medium=cpc&utm_campaign=Spring&gclid=abc", "https://www.google.com/")],
    );
    let resp = stack
        .http
        .post(format!("{}/v1/collect", stack.ingest_url()))
        .header("Content-Type", "text/plain;charset=UTF-8")
        .header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36")
        .header("X-Forwarded-For", "5.9.10.11")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    stack.wait_count("SELECT count() FROM events WHERE event_id = 'ev-1'", 1, Duration::from_secs(30)).await.unwrap();
    #[derive(clickhouse::Row, serde::Deserialize, Debug)]
    struct Stored {
        account_id: String,
        visitor_id: String,
        session_id: String,
        consent: String,
        ip: String,
        channel: String,
        source: String,
        medium: String,
        campaign: String,
        gclid: String,
        path: String,
        referrer_host: String,
        browser: String,
        is_bot: u8,
    }
    let row: Stored = stack
        .ch
        .query("SELECT account_id, visitor_id, session_id, consent, ip, channel, source, medium, campaign, gclid, path, referrer_host, browser, is_bot FROM events WHERE event_id = 'ev-1'")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(row.account_id, DEMO_ACCOUNT);
    assert_eq!((row.visitor_id.as_str(), row.session_id.as_str(), row.consent.as_str()), ("visitor00000001", "session0000001", "granted"));
    assert_eq!((row.channel.as_str(), row.source.as_str(), row.medium.as_str(), row.campaign.as_str()), ("paid_search", "google", "cpc", "Spring"));
    assert_eq!((row.gclid.as_str(), row.path.as_str(), row.referrer_host.as_str()), ("abc", "/", "google.com"));
    assert_eq!((row.browser.as_str(), row.is_bot), ("Chrome", 0));
    // The test client is 127.0.0.1, an untrusted peer: X-Forwarded-For is ignored,
    // and the loopback address has no country, so it is truncated (fail closed).
    assert_eq!(row.ip, "127.0.0.0");

    let day_start = now_ms() / 86_400_000 * 86_400_000;
    let path = format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?metric=pageviews&interval=day&from={day_start}&to={}", day_start + 86_400_000);
    let body = stack.wait_report(&path, DEMO_ACCOUNT, DEMO_TOKEN, Duration::from_secs(10), |b| b["total"] == 1).await.unwrap();
    assert_eq!(body["points"][0]["value"], 1, "{body}");
    stack.stop().await.unwrap();
}
