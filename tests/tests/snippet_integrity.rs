//! The pinned snippet tag: the README shows the tag of the current build,
//! and in real Chromium that tag (versioned URL + `integrity`, served by the
//! real ingest) runs the tracker, while a wrong hash on the tag, or an rp.wasm
//! other than the one rp.js was built with, runs nothing.

use std::path::Path;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use ringpath_ingest::assets::{Asset, Assets};
use ringpath_tests::browser::{Browser, PageServer};
use ringpath_tests::fixtures::*;
use ringpath_tests::ingest_support::{wait_topic, TopicMessage};
use ringpath_tests::{Stack, StackOptions};
use serde_json::Value;

const UPDATE_README: &str = "update the tag in README.md's \"The snippet\" section with the output of \
`cargo run -q -p ringpath-ingest -- snippet --account acc_demo --origin https://collect.example.com` \
(after tracker-wasm/build.sh; the tag changes with every change to rp.js or rp.wasm)";

/// The built tracker as ingest serves it; fails when it was not built.
fn current_build() -> (Assets, String, String) {
    let assets = Assets::load(&ringpath_tests::assets_dir());
    let version = assets.version.clone().expect("build the tracker first: tracker-wasm/build.sh");
    let integrity = assets.js.as_ref().map(|js| js.integrity.clone()).expect("build the tracker first: tracker-wasm/build.sh");
    (assets, version, integrity)
}

/// Every real version (`/v/` + 10 hex digits + `/rp.js`) and SRI hash
/// (`integrity="sha384-` + 64 base64 characters) in `text`; placeholders are not matched.
fn pinned_in(text: &str) -> (Vec<String>, Vec<String>) {
    let versions = text
        .match_indices("/v/")
        .filter_map(|(at, _)| text.get(at + 3..at + 3 + 10 + "/rp.js".len()))
        .filter(|s| s.ends_with("/rp.js") && s[..10].bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|s| s[..10].to_owned())
        .collect();
    let hashes = text
        .match_indices("integrity=\"sha384-")
        .filter_map(|(at, m)| text.get(at + m.len() - "sha384-".len()..at + m.len() + 64 + 1))
        .filter(|s| s.ends_with('"') && s["sha384-".len()..s.len() - 1].bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)))
        .map(|s| s[..s.len() - 1].to_owned())
        .collect();
    (versions, hashes)
}

#[test]
fn the_readme_shows_the_tag_of_the_current_build() {
    let (_, version, integrity) = current_build();
    let root = ringpath_tests::repo_root();
    let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (versions, hashes) = pinned_in(&read("README.md"));
    assert!(!versions.is_empty() && !hashes.is_empty(), "README.md shows no pinned tag: {UPDATE_README}");
    // The other READMEs need not show the tag, but any they show must be the current one too.
    for path in ["README.md", "ingest/README.md", "tracker-wasm/README.md"] {
        let (versions, hashes) = pinned_in(&read(path));
        for shown in versions {
            assert_eq!(shown, version, "{path} shows version {shown}, the build in tracker-wasm/pkg is {version}: {UPDATE_README}");
        }
        for shown in hashes {
            assert_eq!(shown, integrity, "{path} shows integrity {shown}, the build in tracker-wasm/pkg has {integrity}: {UPDATE_README}");
        }
    }
}

#[test]
fn pinned_tags_are_found_and_placeholders_are_not() {
    let tag = r#"<script async src="https://c.example/v/083d665c11/rp.js" integrity="sha384-2+qtJwNvcqn11C7z3M4UtH2+dfUvX09p5e2uLGedNCpp7TTb5n629IdPOn5z/+8B" crossorigin="anonymous"></script>"#;
    let (versions, hashes) = pinned_in(tag);
    assert_eq!(versions, ["083d665c11"]);
    assert_eq!(hashes, ["sha384-2+qtJwNvcqn11C7z3M4UtH2+dfUvX09p5e2uLGedNCpp7TTb5n629IdPOn5z/+8B"]);
    assert_eq!(pinned_in(r#"/v/{version}/rp.js integrity="sha384-…" /v/0123456789/rp.wasm"#), (vec![], vec![]));
}

/// A page with the phone number and `tag`; the visit classifies as organic social.
fn page(tag: &str) -> String {
    format!(
        r#"<!doctype html><html><head><title>Pinned</title><link rel="icon" href="data:,"></head><body>
<p id="phone">Call us: (555) 010-0000</p>
{tag}
</body></html>"#
    )
}

const LANDING: &str = "?utm_source=facebook&utm_medium=social";
const SITE_NUMBER_SHOWN: &str = "(555) 010-0000";
/// SOCIAL_NUMBER (+15550108001), written as the page writes the site number.
const SOCIAL_NUMBER_SHOWN: &str = "(555) 010-8001";

fn phone_text(browser: &Browser) -> impl std::future::Future<Output = anyhow::Result<Value>> + '_ {
    browser.eval("return document.getElementById('phone').textContent")
}

/// Console messages until one mentions `needle` (or `limit` passes); returns all seen.
async fn console_until(browser: &Browser, needle: &str, limit: Duration) -> Vec<String> {
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < limit {
        let batch = browser.console().await.expect("console");
        seen.extend(batch.iter().filter_map(|m| m["message"].as_str().map(str::to_owned)));
        if seen.iter().any(|m| m.contains(needle)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

/// Waits until the page and every async script on it have loaded or failed.
async fn loaded(browser: &Browser) {
    browser.wait_for("return document.readyState === 'complete'", Duration::from_secs(15)).await.expect("page loaded");
}

/// Waits for a page view whose URL contains `marker` on the events topic;
/// returns the URLs of every page view there.
async fn page_views_once(stack: &Stack, marker: &str) -> Vec<String> {
    let urls = |messages: &[TopicMessage]| -> Vec<String> { messages.iter().filter_map(|m| m.json()["event"]["url"].as_str().map(str::to_owned)).collect() };
    let messages = wait_topic(&stack.brokers, &stack.topics.events, Duration::from_secs(30), |m| urls(m).iter().any(|u| u.contains(marker)))
        .await
        .unwrap_or_else(|e| panic!("no page view from {marker} reached the collector: {e}"));
    urls(&messages)
}

/// Serves fixed files (path, content type, bytes) on loopback: a site that
/// hosts its own copy of the snippet, as a first-party proxy would.
async fn serve(files: Vec<(String, &'static str, Vec<u8>)>) -> (String, actix_web::dev::ServerHandle) {
    let files = std::sync::Arc::new(files);
    let server = HttpServer::new(move || {
        let files = files.clone();
        App::new().default_service(web::to(move |req: actix_web::HttpRequest| {
            let files = files.clone();
            async move {
                match files.iter().find(|(p, _, _)| p == req.path()) {
                    Some((_, ct, body)) => HttpResponse::Ok().content_type(*ct).body(body.clone()),
                    None => HttpResponse::NotFound().finish(),
                }
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .expect("bind");
    let url = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (url, handle)
}

fn read_pkg(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e} (build the tracker first: tracker-wasm/build.sh)"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pinned_tag_runs_the_tracker_and_a_wrong_hash_or_a_tampered_wasm_runs_nothing() {
    let (assets, version, _) = current_build();
    let stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.expect("stack");
    let ingest = stack.ingest_url();
    // Exactly what `ringpath-ingest snippet` prints for this collector (consent left at "required").
    let tag = assets.script_tag(&ingest, DEMO_ACCOUNT).expect("tag");
    let real_integrity = assets.js.as_ref().expect("rp.js").integrity.clone();
    let wrong_integrity = Asset::new(b"some other rp.js".to_vec(), "text/javascript").integrity;
    let wrong_tag = tag.replace(&real_integrity, &wrong_integrity);
    assert_ne!(tag, wrong_tag);
    let pages = PageServer::start(vec![("/pinned".into(), page(&tag)), ("/wrong-hash".into(), page(&wrong_tag))]).await.expect("pages");

    // A site serving its own copy of rp.js (a first-party proxy): /intact/ has
    // the real rp.wasm, /tampered/ a different one that is still a valid
    // module (the real one plus a custom section).
    let dir = ringpath_tests::assets_dir();
    let (js, wasm) = (read_pkg(&dir, "rp.js"), read_pkg(&dir, "rp.wasm"));
    let mut tampered = wasm.clone();
    tampered.extend_from_slice(&[0, 5, 4, b'e', b'v', b'i', b'l']);
    let own_tag = |prefix: &str| tag.replace(&format!("{ingest}/v/"), &format!("/{prefix}/v/")).replace("<script ", &format!(r#"<script data-endpoint="{ingest}" "#));
    let mut files = vec![("/intact/page".to_string(), "text/html", page(&own_tag("intact")).into_bytes()), ("/tampered/page".to_string(), "text/html", page(&own_tag("tampered")).into_bytes())];
    for (prefix, module) in [("intact", &wasm), ("tampered", &tampered)] {
        files.push((format!("/{prefix}/v/{version}/rp.js"), "text/javascript", js.clone()));
        files.push((format!("/{prefix}/v/{version}/rp.wasm"), "application/wasm", module.clone()));
    }
    let (site, site_handle) = serve(files).await;

    let browser = Browser::start().await.expect("browser");
    let swapped = format!("return document.getElementById('phone').textContent.indexOf('{SOCIAL_NUMBER_SHOWN}') >= 0");

    // The README's tag, loaded cross-origin from the collector: the tracker runs
    // and, with consent pending, shows the source-level number for social visits.
    browser.goto(&pages.url(&format!("/pinned{LANDING}"))).await.expect("goto");
    browser.wait_for(&swapped, Duration::from_secs(20)).await.expect("the pinned tag swaps the number");
    assert_eq!(browser.eval("return typeof ringpath").await.expect("eval"), "function");
    let severe: Vec<Value> = browser.console().await.expect("console").into_iter().filter(|m| m["level"] == "SEVERE").collect();
    assert!(severe.is_empty(), "the pinned page logged errors: {severe:?}");

    // The same tag with another hash: Chromium refuses rp.js, nothing runs.
    browser.goto(&pages.url(&format!("/wrong-hash{LANDING}"))).await.expect("goto");
    let seen = console_until(&browser, "integrity", Duration::from_secs(15)).await;
    assert!(seen.iter().any(|m| m.contains("integrity") && m.contains("rp.js")), "no integrity refusal of rp.js in the console: {seen:?}");
    loaded(&browser).await;
    assert_eq!(phone_text(&browser).await.expect("eval"), format!("Call us: {SITE_NUMBER_SHOWN}"), "a refused rp.js must not swap the number");
    assert_eq!(browser.eval("return typeof ringpath").await.expect("eval"), "undefined", "a refused rp.js must not run at all");

    // Control for the proxy site: its copy of rp.js with the intact rp.wasm
    // runs, swaps and sends its page view to the collector — the path the
    // refused page would have used, so its silence there is proven, not assumed.
    browser.goto(&format!("{site}/intact/page{LANDING}")).await.expect("goto");
    browser.wait_for(&swapped, Duration::from_secs(20)).await.expect("the site's own copy with the real rp.wasm swaps the number");
    let beacons = page_views_once(&stack, "/intact/page").await;
    assert!(!beacons.iter().any(|url| url.contains("/wrong-hash")), "the refused rp.js sent a page view: {beacons:?}");

    // A tampered rp.wasm behind a correct rp.js: rp.js runs (its hash matches)
    // but refuses the module it was not built with, so the tracker never starts.
    browser.goto(&format!("{site}/tampered/page{LANDING}")).await.expect("goto");
    let seen = console_until(&browser, "rp.wasm", Duration::from_secs(15)).await;
    assert!(seen.iter().any(|m| m.contains("integrity") && m.contains("rp.wasm")), "no integrity refusal of rp.wasm in the console: {seen:?}");
    loaded(&browser).await;
    assert_eq!(phone_text(&browser).await.expect("eval"), format!("Call us: {SITE_NUMBER_SHOWN}"), "a tampered rp.wasm must not swap the number");
    // rp.js installed only its command-queue stub: calls queue up, nothing handles them.
    let queued = browser.eval("ringpath('page'); return [typeof ringpath, Array.isArray(ringpath.q) && ringpath.q.length]").await.expect("eval");
    assert_eq!(queued, serde_json::json!(["function", 1]), "the tracker must not have started");
    // The refusal is the hash, not broken bytes: the tampered module instantiates fine.
    browser
        .eval(&format!("window.__rp = ''; fetch('/tampered/v/{version}/rp.wasm').then(function (r) {{ return r.arrayBuffer(); }}).then(function (b) {{ return WebAssembly.instantiate(b); }}).then(function () {{ window.__rp = 'instantiated'; }}, function (e) {{ window.__rp = String(e); }})"))
        .await
        .expect("eval");
    assert_eq!(browser.wait_for("return window.__rp", Duration::from_secs(10)).await.expect("instantiate"), "instantiated");
    // Control again: the pinned page's next view reaches the collector; the tampered page's never did.
    browser.goto(&pages.url(&format!("/pinned{LANDING}&again=1"))).await.expect("goto");
    let beacons = page_views_once(&stack, "again=1").await;
    assert!(!beacons.iter().any(|url| url.contains("/tampered/")), "the tracker with a tampered rp.wasm sent a page view: {beacons:?}");

    browser.quit().await;
    site_handle.stop(false).await;
    pages.stop().await;
    stack.stop().await.expect("stop");
}
