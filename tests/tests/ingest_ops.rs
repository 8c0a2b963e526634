//! Operating the collector: reloading the accounts file while serving,
//! graceful shutdown that loses nothing it acknowledged, per-client rate
//! limits, X-Forwarded-For only from trusted proxies, and the small
//! endpoints (health, readiness, config, snippet, metrics).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringpath_tests::fixtures::*;
use ringpath_tests::ingest_support::*;
use ringpath_tests::{Stack, StackOptions};
use serde_json::Value;

fn no_limits() -> HashMap<String, String> {
    HashMap::from([("RINGPATH_RATE_PER_CLIENT".to_string(), "100000".to_string()), ("RINGPATH_RATE_BURST".to_string(), "100000".to_string())])
}

async fn beacon(http: &reqwest::Client, ingest: &str, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = http.post(format!("{ingest}/v1/collect")).header("content-type", "text/plain").header("user-agent", BROWSER_UA);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(body.to_string()).send().await.expect("ingest answers")
}

type Results = Arc<Mutex<Vec<(String, u16)>>>;

/// Clients sending batches back to back; returns (stop flag, [(batch, status)], tasks).
fn keep_sending(ingest: String, account: &'static str, clients: usize) -> (Arc<AtomicBool>, Results, Vec<tokio::task::JoinHandle<()>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let results: Results = Arc::default();
    let counter = Arc::new(AtomicUsize::new(0));
    let tasks = (0..clients)
        .map(|_| {
            let (stop, results, counter, ingest) = (stop.clone(), results.clone(), counter.clone(), ingest.clone());
            let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let batch = format!("bg{}", counter.fetch_add(1, Ordering::SeqCst));
                    let req = http
                        .post(format!("{ingest}/v1/collect"))
                        .header("content-type", "text/plain")
                        .header("user-agent", BROWSER_UA)
                        .body(good_batch(account, &batch, 3).to_string())
                        .send()
                        .await;
                    // A refused connection (the server is stopping) is no answer at all.
                    let status = req.map(|r| r.status().as_u16()).unwrap_or(0);
                    results.lock().expect("lock").push((batch, status));
                }
            })
        })
        .collect();
    (stop, results, tasks)
}

/// Waits until `count()` reaches `want` (traffic moving), at most 30 s.
async fn wait_answers(count: &impl Fn() -> usize, want: usize) {
    let started = std::time::Instant::now();
    while count() < want {
        assert!(started.elapsed() < Duration::from_secs(30), "traffic stalled at {} answers, waiting for {want}", count());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reload_applies_new_accounts_without_dropping_requests_and_keeps_the_old_on_a_bad_file() {
    let dir = std::env::temp_dir().join(format!("rp-reload-{}", ringpath_tests::unique_suffix()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("ringpath.toml");
    std::fs::write(&path, accounts_toml()).expect("write config");
    let mut env = no_limits();
    env.insert("RINGPATH_CONFIG".into(), path.display().to_string());
    let stack = Stack::start(StackOptions { ingest_env: env, with_enrich: false, ..StackOptions::default() }).await.expect("stack");
    let ingest = stack.ingest_url();
    let state = stack.ingest.as_ref().expect("ingest").state.clone();

    let newcomer = good_batch(POOL_ACCOUNT, "new", 1);
    assert_eq!(beacon(&stack.http, &ingest, &newcomer, &[]).await.status(), 400, "acc_pool is not configured yet");

    let (stop, results, tasks) = keep_sending(ingest.clone(), DEMO_ACCOUNT, 3);
    let answered = || results.lock().expect("lock").len();
    wait_answers(&answered, 10).await;
    // Add acc_pool (what SIGHUP does in the binary), a few times while traffic
    // flows: requests are answered between every two reloads.
    std::fs::write(&path, accounts_with_pool_toml(2, 30)).expect("rewrite config");
    for _ in 0..5 {
        state.reload().await.expect("reload");
        wait_answers(&answered, answered() + 3).await;
    }
    assert_eq!(beacon(&stack.http, &ingest, &newcomer, &[]).await.status(), 204, "the new account is served after reload");
    let v: Value = stack.http.get(format!("{ingest}/v1/config/{POOL_ACCOUNT}")).send().await.expect("config").json().await.expect("json");
    assert_eq!(v["site_numbers"][0], POOL_SITE_NUMBER);

    // A broken file is refused and the running accounts stay.
    std::fs::write(&path, "[[account]]\nid = \"BROKEN!\"\n").expect("break config");
    let err = state.reload().await.expect_err("a broken file is refused");
    assert!(err.contains("account"), "{err}");
    assert_eq!(beacon(&stack.http, &ingest, &good_batch(POOL_ACCOUNT, "still", 1), &[]).await.status(), 204, "previous accounts kept");

    wait_answers(&answered, answered() + 10).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("client");
    }
    let results = results.lock().expect("lock").clone();
    assert!(results.len() > 10);
    let refused: Vec<_> = results.iter().filter(|(_, s)| *s != 204).collect();
    assert!(refused.is_empty(), "requests failed during reloads: {refused:?}");
    stack.stop().await.expect("stop");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_fails_readiness_and_loses_nothing_it_acknowledged() {
    let mut stack = Stack::start(StackOptions { ingest_env: no_limits(), with_enrich: false, ..StackOptions::default() }).await.expect("stack");
    let ingest = stack.ingest_url();
    assert_eq!(stack.http.get(format!("{ingest}/readyz")).send().await.expect("readyz").status(), 200);
    let (stop, results, tasks) = keep_sending(ingest.clone(), DEMO_ACCOUNT, 4);
    // Stop in mid-traffic: once acknowledgements flow (a broker that has just
    // started takes a moment to answer the first produce).
    let started = std::time::Instant::now();
    while results.lock().expect("lock").iter().filter(|(_, s)| *s == 204).count() <= 10 {
        assert!(started.elapsed() < Duration::from_secs(30), "no traffic acknowledged: {:?}", results.lock().expect("lock").last());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let acknowledged = || results.lock().expect("lock").iter().filter(|(_, s)| *s == 204).count();
    wait_answers(&acknowledged, acknowledged() + 5).await;

    let running = stack.ingest.take().expect("ingest");
    let state = running.state.clone();
    let mut stopping = Box::pin(running.stop());
    // The first step of stopping, before it waits for anything, fails readiness.
    let _ = std::future::poll_fn(|cx| std::task::Poll::Ready(stopping.as_mut().poll(cx))).await;
    assert!(state.shutting_down.load(Ordering::SeqCst), "readiness fails first");
    tokio::time::timeout(Duration::from_secs(30), stopping).await.expect("stops within its deadline");
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("client");
    }
    assert!(stack.http.get(format!("{ingest}/healthz")).send().await.is_err(), "no longer accepting connections");

    let results = results.lock().expect("lock").clone();
    let accepted: Vec<&String> = results.iter().filter(|(_, s)| *s == 204).map(|(b, _)| b).collect();
    assert!(accepted.len() > 10);
    assert!(results.iter().all(|(_, s)| [204, 503, 0].contains(s)), "only 204, 503 or a refused connection: {:?}", results.iter().filter(|(_, s)| ![204, 503, 0].contains(s)).collect::<Vec<_>>());
    let in_topic: HashSet<String> = read_topic(&stack.brokers, &stack.topics.events).await.expect("events").iter().filter_map(|m| m.json()["event"]["id"].as_str().map(str::to_owned)).collect();
    let lost: Vec<_> = accepted.iter().flat_map(|b| (0..3).map(move |i| format!("{b}-{i}"))).filter(|id| !in_topic.contains(id)).collect();
    assert!(lost.is_empty(), "acknowledged before shutdown but not in the topic: {lost:?}");
    stack.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_rate_gets_429_with_retry_after_and_others_are_unaffected() {
    let env = HashMap::from([
        ("RINGPATH_RATE_PER_CLIENT".to_string(), "0.5".to_string()),
        ("RINGPATH_RATE_BURST".to_string(), "3".to_string()),
        // The test client plays a proxy so each X-Forwarded-For is a separate client.
        ("RINGPATH_TRUSTED_PROXIES".to_string(), "127.0.0.1".to_string()),
    ]);
    let stack = Stack::start(StackOptions { ingest_env: env, with_enrich: false, ..StackOptions::default() }).await.expect("stack");
    let ingest = stack.ingest_url();
    let noisy = [("x-forwarded-for", "203.0.113.50")];
    for i in 0..3 {
        assert_eq!(beacon(&stack.http, &ingest, &good_batch(DEMO_ACCOUNT, &format!("burst{i}"), 1), &noisy).await.status(), 204, "within the burst");
    }
    let resp = beacon(&stack.http, &ingest, &good_batch(DEMO_ACCOUNT, "over", 1), &noisy).await;
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).expect("Retry-After seconds");
    assert!((1..=2).contains(&retry), "Retry-After {retry} at 0.5/s");
    let body: Value = resp.json().await.expect("json");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("too many requests")));
    // Numbers and calls count against the same client.
    let resp = stack.http.post(format!("{ingest}/v1/numbers")).header("x-forwarded-for", "203.0.113.50").header("content-type", "application/json").body(numbers_request(DEMO_ACCOUNT, "rate-session-1", "https://demo.example/").to_string()).send().await.expect("numbers");
    assert_eq!(resp.status(), 429);
    // Another client is served.
    assert_eq!(beacon(&stack.http, &ingest, &good_batch(DEMO_ACCOUNT, "other", 1), &[("x-forwarded-for", "203.0.113.51")]).await.status(), 204);
    let m = stack.http.get(stack.ingest_metrics_url()).send().await.expect("metrics").text().await.expect("text");
    assert_eq!(metric_value(&m, "ringpath_ingest_events_rejected_total", &[("cause", "rate_limited")]), Some(2.0));
    assert_eq!(metric_value(&m, "ringpath_ingest_requests_total", &[("route", "/v1/collect"), ("status", "429")]), Some(1.0));
    stack.stop().await.expect("stop");
}

async fn ip_seen(trusted: Option<&str>, xff: Option<&str>) -> String {
    ip_seen_lines(trusted, xff.as_slice()).await
}

/// The IP ingest records for a beacon with these `X-Forwarded-For` header lines.
async fn ip_seen_lines(trusted: Option<&str>, xff: &[&str]) -> String {
    let mut env = no_limits();
    if let Some(t) = trusted {
        env.insert("RINGPATH_TRUSTED_PROXIES".into(), t.into());
    }
    let stack = Stack::start(StackOptions { ingest_env: env, with_enrich: false, ..StackOptions::default() }).await.expect("stack");
    let headers: Vec<(&str, &str)> = xff.iter().map(|x| ("x-forwarded-for", *x)).collect();
    assert_eq!(beacon(&stack.http, &stack.ingest_url(), &good_batch(DEMO_ACCOUNT, "ip", 1), &headers).await.status(), 204);
    let msgs = wait_topic(&stack.brokers, &stack.topics.events, Duration::from_secs(30), |m| !m.is_empty()).await.expect("events");
    let ip = msgs[0].json()["ip"].as_str().expect("ip").to_owned();
    stack.stop().await.expect("stop");
    ip
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_is_believed_only_from_trusted_proxies() {
    assert_eq!(ip_seen(None, Some("81.2.69.142")).await, "127.0.0.1", "untrusted peer: header ignored");
    assert_eq!(ip_seen(Some("10.0.0.0/8"), Some("81.2.69.142")).await, "127.0.0.1", "peer not in the trusted list");
    assert_eq!(ip_seen(Some("127.0.0.1"), Some("81.2.69.142")).await, "81.2.69.142", "trusted proxy: its client");
    assert_eq!(ip_seen(Some("127.0.0.0/8, 10.0.0.0/8"), Some("6.6.6.6, 81.2.69.142, 10.1.2.3")).await, "81.2.69.142", "right-most untrusted hop; a spoofed left part is ignored");
    assert_eq!(ip_seen(Some("127.0.0.1"), Some("not-an-ip")).await, "127.0.0.1", "garbage header: the peer");
    assert_eq!(ip_seen(Some("127.0.0.1"), Some("2a01:4f8::1")).await, "2a01:4f8::1");
    // A proxy that adds its own header line (HAProxy `option forwardfor`) after the client's
    // forged one: the lines are one list, walked from the right.
    assert_eq!(ip_seen_lines(Some("127.0.0.1"), &["6.6.6.6", "81.2.69.142"]).await, "81.2.69.142", "the proxy's line, not the client's");
    assert_eq!(ip_seen_lines(Some("127.0.0.0/8"), &["6.6.6.6, 81.2.69.142", "127.0.0.9"]).await, "81.2.69.142", "a trusted hop on the last line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_small_endpoints_answer() {
    let stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.expect("stack");
    let ingest = stack.ingest_url();
    let get = |path: &str| stack.http.get(format!("{ingest}{path}")).send();
    assert_eq!(get("/healthz").await.expect("healthz").status(), 200);
    assert_eq!(get("/readyz").await.expect("readyz").status(), 200);

    let resp = get(&format!("/v1/config/{DEMO_ACCOUNT}")).await.expect("config");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    let cfg: Value = resp.json().await.expect("json");
    assert_eq!(cfg["site_numbers"][0], SITE_NUMBER);
    assert_eq!(cfg["pools"][0]["id"], "paid_search");
    assert!(cfg.to_string().find("+15550109001").is_none(), "pool numbers are not published in the config");
    assert!(cfg.to_string().find("token").is_none());

    // The pixel: a batch in the query, a GIF back.
    let d = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, good_batch(DEMO_ACCOUNT, "pixel", 2).to_string());
    let resp = get(&format!("/v1/p.gif?d={d}")).await.expect("pixel");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/gif");
    assert!(resp.bytes().await.expect("gif").starts_with(b"GIF89a"));
    // sendBeacon's text/plain and fetch's application/json both work.
    for ct in ["text/plain;charset=UTF-8", "application/json", "Application/JSON; charset=utf-8"] {
        let resp = stack.http.post(format!("{ingest}/v1/collect")).header("content-type", ct).body(good_batch(DEMO_ACCOUNT, &format!("ct-{}", ct.len()), 1).to_string()).send().await.expect("collect");
        assert_eq!(resp.status(), 204, "{ct}");
    }
    // CORS preflight for fetch with JSON (actix-cors answers it: 200, the methods and the headers asked for).
    let resp = stack
        .http
        .request(reqwest::Method::OPTIONS, format!("{ingest}/v1/collect"))
        .header("origin", "https://demo.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, content-encoding")
        .send()
        .await
        .expect("preflight");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    assert!(resp.headers()["access-control-allow-methods"].to_str().expect("methods").contains("POST"));
    assert_eq!(resp.headers()["access-control-allow-headers"], "content-type, content-encoding");

    let msgs = wait_topic(&stack.brokers, &stack.topics.events, Duration::from_secs(30), |m| m.len() >= 5).await.expect("events");
    assert_eq!(msgs.len(), 5);
    assert!(msgs.iter().all(|m| m.key.as_deref() == Some("visitor-0000001")), "events keyed by visitor");
    let e = msgs[0].json();
    for field in ["account", "consent", "visitor_id", "session_id", "event", "received_at", "ip", "user_agent"] {
        assert!(!e[field].is_null(), "{field} missing from {e}");
    }

    // Metrics are on their own listener, not the public one.
    assert_eq!(get("/metrics").await.expect("public /metrics").status(), 404);
    let m = stack.http.get(stack.ingest_metrics_url()).send().await.expect("metrics").text().await.expect("text");
    for name in ["ringpath_ingest_requests_total", "ringpath_ingest_events_accepted_total", "ringpath_ingest_produce_seconds_bucket", "ringpath_ingest_producer_queue_depth", "ringpath_ingest_pool_numbers"] {
        assert!(m.contains(name), "{name} missing from /metrics");
    }
    assert_eq!(metric_value(&m, "ringpath_ingest_events_accepted_total", &[("kind", "event")]), Some(5.0));
    // Three beacons and the preflight, all under the route template.
    assert_eq!(metric_value(&m, "ringpath_ingest_requests_total", &[("route", "/v1/collect"), ("status", "204")]), Some(3.0));
    assert_eq!(metric_value(&m, "ringpath_ingest_requests_total", &[("route", "/v1/collect"), ("status", "200")]), Some(1.0));

    // The snippet (built by tracker-wasm/build.sh, which infra/test runs first), with its caching headers.
    let js = get("/rp.js").await.expect("rp.js");
    assert_eq!(js.status(), 200, "rp.js: build it with tracker-wasm/build.sh");
    assert!(js.headers()["content-type"].to_str().expect("ct").starts_with("text/javascript"));
    assert_eq!(js.headers()["access-control-allow-origin"], "*");
    let etag = js.headers()["etag"].to_str().expect("etag").to_owned();
    let again = stack.http.get(format!("{ingest}/rp.js")).header("if-none-match", &etag).send().await.expect("rp.js");
    assert_eq!(again.status(), 304);
    let wasm = get("/rp.wasm").await.expect("rp.wasm");
    assert_eq!((wasm.status().as_u16(), wasm.headers()["content-type"].to_str().expect("ct")), (200, "application/wasm"));
    stack.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_versioned_snippet_url_is_immutable_an_archived_build_stays_served_and_an_unknown_one_is_a_404() {
    // A build of our own (not tracker-wasm/pkg), so the test can make a second one.
    let dir = std::env::temp_dir().join(format!("rp-assets-{}", ringpath_tests::unique_suffix()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("ringpath.toml");
    std::fs::write(&config, accounts_toml()).expect("write config");
    let (js, wasm) = (b"/*! build one */".to_vec(), b"\0asm\x01\0\0\0".to_vec());
    std::fs::write(dir.join("rp.js"), &js).expect("rp.js");
    std::fs::write(dir.join("rp.wasm"), &wasm).expect("rp.wasm");
    let env = HashMap::from([("RINGPATH_CONFIG".to_string(), config.display().to_string()), ("RINGPATH_ASSETS_DIR".to_string(), dir.display().to_string())]);
    let stack = Stack::start(StackOptions { ingest_env: env, with_enrich: false, ..StackOptions::default() }).await.expect("stack");
    let ingest = stack.ingest_url();
    let get = |path: String| stack.http.get(format!("{ingest}{path}")).send();
    let version = ringpath_ingest::assets::version_of(&js);

    let latest = get("/rp.js".into()).await.expect("rp.js");
    assert_eq!(latest.headers()["cache-control"], "public, max-age=300, stale-while-revalidate=86400", "/rp.js stays the short-lived latest");
    let etag = latest.headers()["etag"].to_str().expect("etag").to_owned();

    for (file, body, content_type) in [("rp.js", &js, "text/javascript; charset=utf-8"), ("rp.wasm", &wasm, "application/wasm")] {
        let resp = get(format!("/v/{version}/{file}")).await.expect("pinned");
        assert_eq!(resp.status(), 200, "{file}");
        let headers = resp.headers().clone();
        assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable", "{file}");
        assert_eq!(headers["content-type"], content_type);
        assert_eq!(headers["access-control-allow-origin"], "*", "{file}: SRI needs a CORS response");
        assert_eq!(headers["cross-origin-resource-policy"], "cross-origin");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(&resp.bytes().await.expect("body")[..], &body[..], "{file}: the same bytes as the latest");
    }
    // Revalidation works on the pinned URL too, with the same ETag as the latest.
    let again = stack.http.get(format!("{ingest}/v/{version}/rp.js")).header("if-none-match", &etag).send().await.expect("304");
    assert_eq!((again.status().as_u16(), again.headers()["cache-control"].to_str().expect("cc")), (304, "public, max-age=31536000, immutable"));
    let post = stack.http.post(format!("{ingest}/v/{version}/rp.js")).send().await.expect("post");
    assert_eq!((post.status().as_u16(), post.headers()["allow"].to_str().expect("allow")), (405, "GET"));

    let unknown = get("/v/0123456789/rp.js".into()).await.expect("unknown");
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.headers()["access-control-allow-origin"], "*");
    let reason = unknown.json::<Value>().await.expect("json")["error"].as_str().expect("reason").to_owned();
    assert!(reason.contains("0123456789") && reason.contains(&version), "{reason}");

    // A new build (SIGHUP): its version is served, the old one is a 404 that names it.
    let js2 = b"/*! build two */".to_vec();
    std::fs::write(dir.join("rp.js"), &js2).expect("rp.js");
    stack.ingest.as_ref().expect("ingest").state.reload().await.expect("reload");
    let version2 = ringpath_ingest::assets::version_of(&js2);
    assert_ne!(version, version2);
    let new = get(format!("/v/{version2}/rp.js")).await.expect("new");
    assert_eq!(new.status(), 200);
    assert_eq!(&new.bytes().await.expect("body")[..], &js2[..]);
    let old = get(format!("/v/{version}/rp.wasm")).await.expect("old");
    assert_eq!(old.status(), 404, "an old version is never answered with other bytes (they would fail its integrity)");
    let reason = old.json::<Value>().await.expect("json")["error"].as_str().expect("reason").to_owned();
    assert!(reason.contains(&version2) && reason.contains("ringpath-ingest snippet"), "{reason}");
    // Archived as tracker-wasm/build.sh does (v/{version}/), build one is served again: its pages keep working.
    std::fs::create_dir_all(dir.join("v").join(&version)).expect("archive dir");
    std::fs::write(dir.join("v").join(&version).join("rp.js"), &js).expect("archived rp.js");
    std::fs::write(dir.join("v").join(&version).join("rp.wasm"), &wasm).expect("archived rp.wasm");
    stack.ingest.as_ref().expect("ingest").state.reload().await.expect("reload");
    for (file, body) in [("rp.js", &js), ("rp.wasm", &wasm)] {
        let resp = get(format!("/v/{version}/{file}")).await.expect("archived");
        assert_eq!((resp.status().as_u16(), resp.headers()["cache-control"].to_str().expect("cc")), (200, "public, max-age=31536000, immutable"), "{file}");
        assert_eq!(&resp.bytes().await.expect("body")[..], &body[..], "{file}: the archived bytes");
    }
    assert_eq!(&get("/rp.js".into()).await.expect("latest").bytes().await.expect("body")[..], &js2[..], "/rp.js stays the current build");

    // Bounded metric labels: the route template, never the version a client made up.
    let m = stack.http.get(stack.ingest_metrics_url()).send().await.expect("metrics").text().await.expect("text");
    assert_eq!(metric_value(&m, "ringpath_ingest_requests_total", &[("route", "/v/{version}/rp.js"), ("status", "404")]), Some(1.0));
    assert!(!m.contains("0123456789"));
    stack.stop().await.expect("stop");
    let _ = std::fs::remove_dir_all(dir);
}
