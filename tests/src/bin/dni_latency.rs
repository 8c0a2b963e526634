//! Prints the DNI latency figure: how long after `DOMContentLoaded` a page
//! shows its tracking number, measured in the page itself (a
//! `MutationObserver` registered by an inline head script before the snippet,
//! `performance.now()`), in headless Chromium against an in-process ingest on
//! the shared Kafka. Two cases: a source-level number (consent pending, only
//! `/v1/config`) and a session number (granted, paid search: `/v1/config`
//! then the `/v1/numbers` round trip, whose answer waits for Kafka's ack).
//! Each case: one cold load (from about:blank, empty HTTP cache) reported on
//! its own, then 20 loads with a warm cache, each coming from a plain page of
//! the same site as a visitor's next page view would; every load starts with
//! an empty cookie jar, so each session asks for a number. Figures are
//! reported, not gated: it exits non-zero only when it cannot measure.
//!
//! `cargo run -q -p ringpath-tests --bin dni_latency` (Kafka and ClickHouse running).

use std::time::Duration;

use anyhow::{bail, Context};
use ringpath_tests::browser::{Browser, PageServer};
use ringpath_tests::fixtures::{POOL_NUMBERS, SOCIAL_NUMBER};
use ringpath_tests::{Stack, StackOptions};

const LOADS: usize = 20;
const GOAL_MS: f64 = 100.0;
/// The longest a swap may take before the run counts as failed.
const SWAP_LIMIT: Duration = Duration::from_secs(5);
const SITE_TEXT: &str = "Call 555-010-0000";

/// Records `window.__dni = {dcl, swapped}`: the page's clock at
/// DOMContentLoaded and at the first mutation after which the phone line no
/// longer shows the site number.
const PROBE: &str = r#"<script>(function () {
  var m = window.__dni = {dcl: null, swapped: null};
  document.addEventListener('DOMContentLoaded', function () { m.dcl = performance.now(); });
  new MutationObserver(function () {
    var el = document.getElementById('phone');
    if (m.swapped === null && el && el.textContent != 'Call 555-010-0000' && /\d{3}-\d{3}-\d{4}/.test(el.textContent)) m.swapped = performance.now();
  }).observe(document.documentElement, {childList: true, characterData: true, subtree: true});
})();</script>"#;

struct Case {
    name: &'static str,
    path: &'static str,
    query: &'static str,
    consent_attr: &'static str,
    /// The phone line once swapped, for each acceptable number.
    expect: Vec<String>,
}

/// `+15550108001` → `Call 555-010-8001`.
fn phone_line(e164: &str) -> String {
    let nsn = &e164[2..];
    format!("Call {}-{}-{}", &nsn[..3], &nsn[3..6], &nsn[6..])
}

fn page(ingest: &str, consent_attr: &str) -> String {
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>DNI latency</title><link rel="icon" href="data:,">
{PROBE}
<script async src="{ingest}/rp.js" data-account="acc_demo"{consent_attr}></script>
</head><body><h1>Plumbing</h1><p id="phone">{SITE_TEXT}</p></body></html>"#
    )
}

/// Loads the case's page once, coming from `from`, with an empty cookie jar;
/// milliseconds from DOMContentLoaded to the swap.
async fn measure(browser: &Browser, pages: &PageServer, case: &Case, from: &str) -> anyhow::Result<f64> {
    // Leaving the last page first: its pagehide may still write cookies.
    browser.goto(from).await?;
    browser.clear_cookies().await?;
    browser.goto(&pages.url(&format!("{}{}", case.path, case.query))).await?;
    let done = "var m = window.__dni; return m && m.dcl !== null && m.swapped !== null";
    browser.wait_for(done, SWAP_LIMIT).await.with_context(|| format!("{}: the number was not swapped within {SWAP_LIMIT:?}", case.name))?;
    let got = browser.eval("return [window.__dni.swapped - window.__dni.dcl, document.getElementById('phone').textContent]").await?;
    let shown = got[1].as_str().unwrap_or_default();
    if !case.expect.iter().any(|e| e == shown) {
        bail!("{}: the page shows {shown:?}, expected one of {:?}", case.name, case.expect);
    }
    got[0].as_f64().context("no measurement")
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

async fn run() -> anyhow::Result<()> {
    if !ringpath_tests::assets_dir().join("rp.wasm").exists() {
        bail!("build the tracker first: tracker-wasm/build.sh");
    }
    let stack = Stack::start(StackOptions { with_enrich: false, ..Default::default() }).await?;
    let ingest = stack.ingest_url();
    let cases = [
        Case {
            name: "source-level (pending: /v1/config)",
            path: "/source",
            query: "?utm_source=facebook&utm_medium=social",
            consent_attr: "",
            expect: vec![phone_line(SOCIAL_NUMBER)],
        },
        Case {
            name: "session (granted: + /v1/numbers)",
            path: "/session",
            query: "?utm_source=google&utm_medium=cpc",
            consent_attr: r#" data-consent="not-required""#,
            expect: POOL_NUMBERS.iter().map(|n| phone_line(n)).collect(),
        },
    ];
    let pages = PageServer::start(cases.iter().map(|c| (c.path.to_owned(), page(&ingest, c.consent_attr))).collect()).await?;
    pages.set("/about", r#"<!doctype html><title>About</title><link rel="icon" href="data:,">"#.into());
    let warm_from = pages.url("/about");
    let browser = Browser::start().await?;
    let mut rows = Vec::new();
    let mut failure = None;
    for case in &cases {
        let measured = async {
            browser.goto("about:blank").await?;
            browser.clear_cache().await?;
            let cold = measure(&browser, &pages, case, "about:blank").await?;
            let mut warm = Vec::with_capacity(LOADS);
            for _ in 0..LOADS {
                warm.push(measure(&browser, &pages, case, &warm_from).await?);
            }
            warm.sort_by(f64::total_cmp);
            anyhow::Ok((cold, warm))
        }
        .await;
        match measured {
            Ok((cold, warm)) => rows.push((case.name, cold, warm)),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    browser.quit().await;
    pages.stop().await;
    stack.stop().await?;
    if let Some(e) = failure {
        return Err(e);
    }

    println!("DOMContentLoaded → tracking number in the page, ms: {LOADS} loads per case (warm HTTP cache, no cookies, from a page");
    println!("of the same site) after one cold load (empty cache); headless Chromium, ingest of this build on loopback, Kafka acks=all.");
    println!("{:<36} {:>7} {:>7} {:>7} {:>7} {:>9}  goal ≤ {GOAL_MS} ms (median)", "case", "median", "p90", "min", "max", "cold 1st");
    for (name, cold, warm) in &rows {
        let mid = median(warm);
        let verdict = if mid <= GOAL_MS { "met" } else { "NOT met" };
        println!(
            "{name:<36} {mid:>7.1} {:>7.1} {:>7.1} {:>7.1} {cold:>9.1}  {verdict}",
            percentile(warm, 90.0),
            warm[0],
            warm[warm.len() - 1]
        );
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("dni_latency: could not measure: {e:#}");
        std::process::exit(1);
    }
}
