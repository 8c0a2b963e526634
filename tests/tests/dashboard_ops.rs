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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_time_zone_is_checked_against_the_tz_database() {
    captured();
    let with_zone = |zone: &str| {
        let toml = accounts_toml().replacen(&format!("id = \"{DEMO_ACCOUNT}\"\n"), &format!("id = \"{DEMO_ACCOUNT}\"\ntimezone = \"{zone}\"\n"), 1);
        ringpath_types::accounts::AccountsFile::parse(&toml).unwrap()
    };
    // A name the tz database does not know: a 500 that says what to fix; the reports that need no zone still work.
    let stack = Stack::start(StackOptions { with_enrich: false, accounts: with_zone("Europe/Atlantis"), ..StackOptions::default() }).await.unwrap();
    load_golden(&stack).await;
    let (status, body) = get(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from={FROM}&to={TO}"), DEMO_ACCOUNT, DEMO_TOKEN).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "account acc_demo has an invalid timezone \"Europe/Atlantis\" in the accounts file");
    assert_eq!(get(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/attribution?from={FROM}&to={TO}"), DEMO_ACCOUNT, DEMO_TOKEN).await.0, 200);
    stack.stop().await.unwrap();
    // The database's spelling is what ClickHouse is given and the answer names.
    let stack = Stack::start(StackOptions { with_enrich: false, accounts: with_zone("europe/berlin"), ..StackOptions::default() }).await.unwrap();
    load_golden(&stack).await;
    let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from=2026-11-10T00:00:00%2B01:00&to=2026-11-12T00:00:00%2B01:00")).await;
    assert_eq!(body["timezone"], "Europe/Berlin");
    let points: Vec<(&str, u64)> = body["points"].as_array().unwrap().iter().map(|p| (p["t"].as_str().unwrap(), p["value"].as_u64().unwrap())).collect();
    assert_eq!(points, [("2026-11-10T00:00:00+01:00", 2), ("2026-11-11T00:00:00+01:00", 6)], "{body}");
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

/// The schema `schema` points to (following `$ref`s into `components.schemas`).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => resolve(doc, &doc["components"]["schemas"][name]),
        None => schema,
    }
}

/// Checks that `value` is what `schema` describes: its JSON type, and for
/// objects every key documented and every required one there (recursively).
/// `at` names the place for the failure message.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(doc, schema);
    if let Some(parts) = schema["allOf"].as_array() {
        let mut merged = serde_json::Map::new();
        let mut required = Vec::new();
        for part in parts.iter().map(|p| resolve(doc, p)) {
            merged.extend(part["properties"].as_object().cloned().unwrap_or_default());
            required.extend(part["required"].as_array().cloned().unwrap_or_default());
        }
        let whole = serde_json::json!({"type": "object", "properties": merged, "required": required});
        return conforms(doc, &whole, value, at);
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return assert!(schema["enum"].is_array(), "{at}: a schema without a type: {schema}"),
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    assert!(types.contains(&actual) || (actual == "integer" && types.contains(&"number")), "{at}: {value} is {actual}, documented as {types:?}");
    if let Some(allowed) = schema["enum"].as_array() {
        assert!(allowed.contains(value), "{at}: {value} is not one of {allowed:?}");
    }
    if schema["format"] == "date-time" {
        assert!(ringpath_types::time::parse_rfc3339_ms(value.as_str().unwrap()).is_some(), "{at}: {value} is not RFC 3339");
    }
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                conforms(doc, &schema["items"], item, &format!("{at}[{i}]"));
            }
        }
        Value::Object(fields) => {
            let properties = schema["properties"].as_object().unwrap_or_else(|| panic!("{at}: an object without documented properties"));
            for (key, field) in fields {
                let documented = properties.get(key).unwrap_or_else(|| panic!("{at}.{key} is not documented"));
                conforms(doc, documented, field, &format!("{at}.{key}"));
            }
            for key in schema["required"].as_array().into_iter().flatten() {
                assert!(fields.contains_key(key.as_str().unwrap()), "{at}: required {key} missing");
            }
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_exactly_what_the_handlers_accept() {
    let stack = golden().await;
    let doc: Value = stack.http.get(format!("{}/openapi.json", stack.dashboard_url())).send().await.unwrap().json().await.unwrap();
    // utoipa 5 writes OpenAPI 3.1 (nullable fields as `"type": ["string", "null"]`).
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["components"]["securitySchemes"]["basic"], serde_json::json!({"type": "http", "scheme": "basic"}));
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = Vec::new();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            operations.push(format!("{} {path}", method.to_uppercase()));
            assert_eq!(op["security"], serde_json::json!([{"basic": []}]), "{method} {path} requires Basic auth");
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
            // And its answer is what the document says it is, field by field.
            let body: Value = resp.json().await.unwrap();
            conforms(&doc, &op["responses"][success.to_string()]["content"]["application/json"]["schema"], &body, &format!("{method} {path}"));
            // Every documented query parameter is validated by name; enums list exactly what is accepted.
            for p in op["parameters"].as_array().unwrap().iter().filter(|p| p["in"] == "query") {
                let name = p["name"].as_str().unwrap();
                let resp = call(format!("?{name}=%27nonsense%27")).await.unwrap();
                assert_eq!(resp.status(), 400, "{method} {path} {name}");
                let refused: Value = resp.json().await.unwrap();
                assert_eq!(refused["parameter"], name);
                // Refused for its value: the handler knows the parameter.
                assert!(!refused["error"].as_str().unwrap().contains("unknown parameter"), "{method} {path} documents {name} but does not accept it: {refused}");
                for allowed in p["schema"]["enum"].as_array().into_iter().flatten() {
                    let resp = call(format!("?{name}={}", allowed.as_str().unwrap())).await.unwrap();
                    assert_eq!(resp.status().as_u16(), success, "{method} {path} {name}={allowed}");
                }
                if let Some(default) = p["schema"].get("default") {
                    let value = default.as_str().map(str::to_owned).unwrap_or_else(|| default.to_string());
                    let resp = call(format!("?{name}={value}")).await.unwrap();
                    assert_eq!(resp.status().as_u16(), success, "{method} {path} {name}={value} (the documented default)");
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
    // The enums are the ones params.rs parses with.
    use ringpath_dashboard_api::params::{Choice, Dimension, Interval, Metric, Model};
    fn names<C: Choice>() -> Vec<&'static str> {
        C::ALL.iter().map(|c| c.as_str()).collect()
    }
    let documented = |path: &str, name: &str| -> Vec<String> {
        let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
        let p = params.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{path} documents {name}"));
        p["schema"]["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(documented("/v1/accounts/{account}/attribution", "dimension"), names::<Dimension>());
    assert_eq!(documented("/v1/accounts/{account}/attribution", "model"), names::<Model>());
    assert_eq!(documented("/v1/accounts/{account}/timeseries", "interval"), names::<Interval>());
    assert_eq!(documented("/v1/accounts/{account}/timeseries", "metric"), names::<Metric>());
    // The answer types, as a client generator would read them.
    let schema = |name: &str| doc["components"]["schemas"][name]["properties"].clone();
    assert_eq!((schema("Call")["started_at"]["type"].as_str(), schema("Call")["started_at"]["format"].as_str()), (Some("string"), Some("date-time")));
    assert_eq!(schema("Call")["started_ms"]["type"], "integer");
    assert_eq!(schema("Call")["linear_channel"], serde_json::json!({"type": "array", "items": {"type": "string"}}));
    assert!(schema("Call").get("version").is_none() && schema("Call").get("received_at").is_none(), "the calls list hides bookkeeping and received_at");
    assert_eq!(schema("AttributionRow")["calls"]["type"], "number");
    assert_eq!(schema("AttributionRow")["sessions"]["type"], "integer");
    assert_eq!(schema("Point")["t"]["format"], "date-time");
    assert_eq!(schema("Event")["ts"]["format"], "date-time");
    assert!(schema("Session").get("rank").is_none());
    assert_eq!(doc["components"]["schemas"]["Error"]["required"], serde_json::json!(["error"]));

    // Reports' answers in detail (the loop above calls them without a range, which finds no rows).
    for path in [
        format!("/v1/accounts/{DEMO_ACCOUNT}/calls?from={FROM}&to={TO}&limit=2"),
        format!("/v1/accounts/{DEMO_ACCOUNT}/attribution?from={FROM}&to={TO}&model=linear"),
        format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?from={FROM}&to={TO}&metric=sessions"),
        format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{V1}"),
        format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{V1}/export"),
    ] {
        let template = paths.keys().find(|t| path.split('?').next().unwrap() == t.replace("{account}", DEMO_ACCOUNT).replace("{visitor_id}", V1)).unwrap();
        let body = demo(&stack, &path).await;
        conforms(&doc, &doc["paths"][template]["get"]["responses"]["200"]["content"]["application/json"]["schema"], &body, &path);
        assert!(body.to_string().len() > 300, "{path} has rows to check: {body}");
    }
    stack.stop().await.unwrap();
}
