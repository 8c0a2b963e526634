//! Running the dashboard API: reports through the read-only ClickHouse user
//! (which cannot write), query timeouts, Prometheus metrics, access logs that
//! never hold credentials, and an OpenAPI document that matches what the
//! handlers accept.

mod dashboard_data;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use dashboard_data::*;
use ringpath_store::ClickHouseSettings;
use ringpath_tests::fixtures::*;
use ringpath_tests::{Stack, StackOptions};
use serde_json::Value;

/// Everything logged in this test process (all tests share it).
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn,access=info"))
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .finish();
        // Before any Stack starts (its own init is a try_init that then yields).
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn golden() -> Stack {
    captured();
    let stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.expect("stack starts");
    load_golden(&stack).await;
    stack
}

fn reader_settings(stack: &Stack) -> ClickHouseSettings {
    ClickHouseSettings { url: stack.clickhouse_url.clone(), user: "ringpath_ro".into(), password: "ringpath_ro".into(), database: stack.database.clone() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_run_as_the_read_only_user_which_cannot_write() {
    let stack = golden().await;
    let settings = ringpath_dashboard_api::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        config_path: "unused.toml".into(),
        reader: reader_settings(&stack),
        writer: ringpath_tests::clickhouse_settings_at(&stack.clickhouse_url, &stack.database),
    };
    let api = ringpath_dashboard_api::start(settings, accounts()).await.unwrap();
    let url = format!("http://{}", api.addr);
    let body: Value = stack
        .http
        .get(format!("{url}/v1/accounts/{DEMO_ACCOUNT}/attribution?from={FROM}&to={TO}&dimension=channel"))
        .basic_auth(DEMO_ACCOUNT, Some(DEMO_TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paid = body["rows"].as_array().unwrap().iter().find(|r| r["key"] == "paid_search").unwrap().clone();
    assert_eq!((paid["sessions"].as_u64(), paid["calls"].as_f64()), (Some(2), Some(1.0)), "{body}");
    for path in [format!("/v1/accounts/{DEMO_ACCOUNT}/calls?from={FROM}&to={TO}"), format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from={FROM}&to={TO}"), format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{V1}")] {
        let resp = stack.http.get(format!("{url}{path}")).basic_auth(DEMO_ACCOUNT, Some(DEMO_TOKEN)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }

    // The reports' own client: it reads, carries the time limit to the server, and cannot write.
    let reader = &api.state.reports.reader;
    let limit = reader.query("SELECT value FROM system.settings WHERE name = 'max_execution_time'").fetch_one::<String>().await.unwrap();
    assert_eq!(limit, "30");
    for write in [
        "INSERT INTO events (account_id, event_id) VALUES ('acc_demo', 'forged')",
        "ALTER TABLE events DELETE WHERE 1 = 1",
        "ALTER TABLE calls UPDATE visitor_id = 'x' WHERE 1 = 1",
        "CREATE TABLE stolen (a String) ENGINE = Memory",
        "DROP TABLE calls",
        "TRUNCATE TABLE events",
        "OPTIMIZE TABLE events FINAL",
    ] {
        let err = reader.query(write).execute().await.expect_err(write);
        assert!(err.to_string().contains("readonly"), "{write}: {err}");
    }
    let rows = stack.ch.query("SELECT count() FROM events WHERE event_id = 'forged'").fetch_one::<u64>().await.unwrap();
    assert_eq!(rows, 0);
    assert_eq!(stack.ch.query("SELECT count() FROM calls").fetch_one::<u64>().await.unwrap(), 6, "nothing dropped or rewritten");
    // Erasure uses the writer and still works next to the read-only reports.
    let resp = stack.http.delete(format!("{url}/v1/accounts/{DEMO_ACCOUNT}/visitors/{V3}")).basic_auth(DEMO_ACCOUNT, Some(DEMO_TOKEN)).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    api.stop().await;
    stack.stop().await.unwrap();
}

/// A "ClickHouse" that accepts connections and never answers.
async fn silent_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_hangs_gets_a_504_at_the_query_timeout() {
    captured();
    let ch = silent_server().await;
    let settings = ClickHouseSettings { url: ch, user: "default".into(), password: String::new(), database: "nowhere".into() };
    let api = ringpath_dashboard_api::start_with_timeout(
        ringpath_dashboard_api::Settings { listen: "127.0.0.1:0".parse().unwrap(), config_path: "unused.toml".into(), reader: settings.clone(), writer: settings },
        accounts(),
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    for path in [format!("/v1/accounts/{DEMO_ACCOUNT}/attribution"), format!("/v1/accounts/{DEMO_ACCOUNT}/calls"), format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{V1}/export")] {
        let resp = http.get(format!("http://{}{path}", api.addr)).basic_auth(DEMO_ACCOUNT, Some(DEMO_TOKEN)).send().await.expect("an answer, not a hung request");
        assert_eq!(resp.status(), 504, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "report timed out");
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_template_and_logs_never_hold_credentials() {
    let stack = golden().await;
    let secret_token = DEMO_TOKEN;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{DEMO_ACCOUNT}:{DEMO_TOKEN}"));
    for _ in 0..3 {
        demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/calls?from={FROM}&to={TO}")).await;
    }
    get(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/attribution?from={FROM}&to={TO}&model=bogus"), DEMO_ACCOUNT, DEMO_TOKEN).await;
    get(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{V1}"), AGENCY, AGENCY_TOKEN).await;
    get(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/calls"), DEMO_ACCOUNT, "wrong-token-123").await;
    let hostile = "/v1/accounts/acc_demo/calls/%27%20OR%201%3D1%20--%20injected-label";
    let _ = stack.http.get(format!("{}{hostile}", stack.dashboard_url())).basic_auth(DEMO_ACCOUNT, Some(DEMO_TOKEN)).send().await.unwrap();

    let metrics = stack.http.get(format!("{}/metrics", stack.dashboard_url())).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = metrics.text().await.unwrap();
    assert!(text.contains(r#"ringpath_dashboard_requests_total{route="/v1/accounts/{account}/calls",status="200"} 3"#), "{text}");
    assert!(text.contains(r#"ringpath_dashboard_requests_total{route="/v1/accounts/{account}/attribution",status="400"} 1"#), "{text}");
    assert!(text.contains(r#"ringpath_dashboard_requests_total{route="/v1/accounts/{account}/calls",status="401"} 1"#), "{text}");
    assert!(text.contains(r#"ringpath_dashboard_requests_total{route="unmatched",status="404"} 1"#), "{text}");
    assert!(text.contains("ringpath_dashboard_request_seconds_bucket{route=\"/v1/accounts/{account}/visitors/{visitor_id}\""), "{text}");
    for leak in ["acc_demo", "injected-label", "OR 1", secret_token] {
        assert!(!text.contains(leak), "metrics must not carry {leak:?}");
    }

    // Access logs: one structured line per request, route template and status, no credentials.
    let logs = String::from_utf8_lossy(&captured().lock().unwrap()).to_string();
    let access: Vec<&str> = logs.lines().filter(|l| l.contains("access") && l.contains("request")).collect();
    assert!(access.iter().any(|l| l.contains("route=/v1/accounts/{account}/calls") && l.contains("status=200") && l.contains("account=acc_demo")), "{logs}");
    assert!(access.iter().any(|l| l.contains("status=401")), "{logs}");
    for leak in [secret_token, encoded.as_str(), AGENCY_TOKEN, "wrong-token-123", "Authorization", "authorization", "Basic "] {
        assert!(!logs.contains(leak), "a log line holds {leak:?}: {logs}");
    }
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_exactly_what_the_handlers_accept() {
    let stack = golden().await;
    let doc: Value = stack.http.get(format!("{}/openapi.json", stack.dashboard_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = Vec::new();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            operations.push(format!("{} {path}", method.to_uppercase()));
            // DELETE a visitor nobody has, so the other operations still find V2.
            let visitor = if method == "delete" { "visitor_zzzz9999" } else { V2 };
            let concrete = path.replace("{account}", DEMO_ACCOUNT).replace("{visitor_id}", visitor).replace("{agency}", AGENCY);
            let (id, token) = if path.starts_with("/v1/agencies") { (AGENCY, AGENCY_TOKEN) } else { (DEMO_ACCOUNT, DEMO_TOKEN) };
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let call = |query: String| stack.http.request(m.clone(), format!("{}{concrete}{query}", stack.dashboard_url())).basic_auth(id, Some(token)).send();
            // The documented operation exists and succeeds with its documented status.
            let success: u16 = op["responses"].as_object().unwrap().keys().filter_map(|k| k.parse().ok()).find(|c: &u16| *c < 300).unwrap();
            let resp = call(String::new()).await.unwrap();
            assert_eq!(resp.status().as_u16(), success, "{method} {path}");
            // Every documented query parameter is validated by name; enums list exactly what is accepted.
            for p in op["parameters"].as_array().unwrap().iter().filter(|p| p["in"] == "query") {
                let name = p["name"].as_str().unwrap();
                let resp = call(format!("?{name}=%27nonsense%27")).await.unwrap();
                assert_eq!(resp.status(), 400, "{method} {path} {name}");
                assert_eq!(resp.json::<Value>().await.unwrap()["parameter"], name);
                for allowed in p["schema"]["enum"].as_array().into_iter().flatten() {
                    let resp = call(format!("?{name}={}", allowed.as_str().unwrap())).await.unwrap();
                    assert_eq!(resp.status().as_u16(), success, "{method} {path} {name}={allowed}");
                }
            }
            let resp = call("?undocumented=1".into()).await.unwrap();
            assert_eq!(resp.status(), 400, "{method} {path} takes no undocumented parameter");
        }
    }
    operations.sort();
    assert_eq!(
        operations,
        [
            "DELETE /v1/accounts/{account}/visitors/{visitor_id}",
            "GET /v1/accounts/{account}/attribution",
            "GET /v1/accounts/{account}/calls",
            "GET /v1/accounts/{account}/timeseries",
            "GET /v1/accounts/{account}/visitors/{visitor_id}",
            "GET /v1/accounts/{account}/visitors/{visitor_id}/erasure",
            "GET /v1/accounts/{account}/visitors/{visitor_id}/export",
            "GET /v1/agencies/{agency}/accounts",
        ]
    );
    stack.stop().await.unwrap();
}
