//! The walking skeleton, for real: a page with the one-line snippet, loaded
//! in headless Chromium, sends a page view that travels ingest → Kafka →
//! enrich → ClickHouse and comes back out of the dashboard API.

use std::time::Duration;

use ringpath_tests::browser::{Browser, PageServer};
use ringpath_tests::fixtures::*;
use ringpath_tests::{Stack, StackOptions};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_with_the_snippet_sends_a_pageview_through_the_whole_pipeline() {
    assert!(ringpath_tests::assets_dir().join("rp.wasm").exists(), "build the tracker first: tracker-wasm/build.sh");
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    let html = format!(
        r#"<!doctype html><html><head><title>Demo plumbing</title><link rel="icon" href="data:,"></head><body>
<p id="phone">Call us: (555) 010-0000</p>
<script async src="{}/rp.js" data-account="{DEMO_ACCOUNT}" data-consent="not-required"></script>
</body></html>"#,
        stack.ingest_url()
    );
    let pages = PageServer::start(vec![("/landing".into(), html)]).await.unwrap();
    let browser = Browser::start().await.unwrap();
    let page_url = pages.url("/landing?utm_source=newsletter&utm_medium=email&utm_campaign=nov");
    browser.goto(&page_url).await.unwrap();

    stack
        .wait_count(&format!("SELECT count() FROM events WHERE account_id = '{DEMO_ACCOUNT}' AND event_type = 'pageview'"), 1, Duration::from_secs(30))
        .await
        .unwrap();

    #[derive(clickhouse::Row, serde::Deserialize, Debug)]
    struct Stored {
        url: String,
        title: String,
        consent: String,
        visitor_id: String,
        session_id: String,
        channel: String,
        campaign: String,
        browser: String,
        ip: String,
    }
    let row: Stored = stack
        .ch
        .query("SELECT url, title, consent, visitor_id, session_id, channel, campaign, browser, ip FROM events WHERE event_type = 'pageview'")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(row.url, page_url);
    assert_eq!(row.title, "Demo plumbing");
    assert_eq!(row.consent, "granted", "data-consent=not-required grants");
    assert_eq!((row.channel.as_str(), row.campaign.as_str()), ("email", "nov"));
    assert_eq!(row.browser, "Chrome");
    assert_eq!(row.ip, "127.0.0.0", "loopback has no country: truncated, fail closed");

    // The ids in the row are the ones in the browser's own cookie jar.
    let cookies = browser.cookies().await.unwrap();
    let cookie = |name: &str| cookies.iter().find(|c| c["name"] == name).and_then(|c| c["value"].as_str()).map(str::to_owned);
    assert_eq!(cookie("_rp_vid").as_deref(), Some(row.visitor_id.as_str()));
    assert_eq!(cookie("_rp_sid").as_deref(), Some(row.session_id.as_str()));

    let path = format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?metric=pageviews&interval=hour&from={}", now_ms() - 3_600_000);
    let body = stack.wait_report(&path, DEMO_ACCOUNT, DEMO_TOKEN, Duration::from_secs(10), |b| b["total"] != 0).await.unwrap();
    assert_eq!(body["total"], 1, "{body}");

    let errors: Vec<Value> = browser.console().await.unwrap().into_iter().filter(|m| m["level"] == "SEVERE").collect();
    assert!(errors.is_empty(), "the page logged errors: {errors:?}");
    browser.quit().await;
    pages.stop().await;
    stack.stop().await.unwrap();
}

use ringpath_types::time::now_ms;
