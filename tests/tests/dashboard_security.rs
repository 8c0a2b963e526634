//! Tenant isolation and hostile input on every dashboard endpoint, against
//! the real ClickHouse: other tenants' credentials get 404 (never data),
//! bad credentials 401, and garbage in any parameter a JSON 400 naming it —
//! with values bound, never spliced into SQL.

mod dashboard_data;

use base64::Engine;
use dashboard_data::*;
use reqwest::Method;
use ringpath_tests::fixtures::*;
use ringpath_tests::{Stack, StackOptions};
use serde_json::Value;

/// (method, path, query parameters the endpoint takes)
fn endpoints(account: &str, visitor: &str) -> Vec<(Method, String, &'static [&'static str])> {
    vec![
        (Method::GET, format!("/v1/accounts/{account}/calls"), &["from", "to", "limit", "cursor"]),
        (Method::GET, format!("/v1/accounts/{account}/attribution"), &["from", "to", "dimension", "model", "include_bots"]),
        (Method::GET, format!("/v1/accounts/{account}/timeseries"), &["from", "to", "interval", "metric", "include_bots"]),
        (Method::GET, format!("/v1/accounts/{account}/visitors/{visitor}"), &[]),
        (Method::GET, format!("/v1/accounts/{account}/visitors/{visitor}/export"), &[]),
        (Method::GET, format!("/v1/accounts/{account}/visitors/{visitor}/erasure"), &[]),
        (Method::DELETE, format!("/v1/accounts/{account}/visitors/{visitor}"), &[]),
    ]
}

async fn send(stack: &Stack, method: Method, path: &str, auth: Option<&str>) -> (u16, String) {
    let mut req = stack.http.request(method, format!("{}{path}", stack.dashboard_url()));
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

fn basic(id: &str, token: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{token}")))
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

async fn other_tenant_rows(stack: &Stack) -> u64 {
    stack
        .ch
        .query("SELECT (SELECT count() FROM events WHERE account_id = ?) + (SELECT count() FROM calls WHERE account_id = ? AND visitor_id != '') + (SELECT count() FROM assignments WHERE account_id = ?)")
        .bind(OTHER_ACCOUNT)
        .bind(OTHER_ACCOUNT)
        .bind(OTHER_ACCOUNT)
        .fetch_one::<u64>()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_but_the_owners_or_its_agencys_read_or_erase_an_account() {
    let stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.unwrap();
    load_golden(&stack).await;
    let before = other_tenant_rows(&stack).await;
    assert_eq!(before, 4);
    let range = format!("?from={FROM}&to={TO}");

    // acc_other's data, asked for with acc_demo's and agc_demo's valid credentials: 404 on every endpoint.
    for (who, token) in [(DEMO_ACCOUNT, DEMO_TOKEN), (AGENCY, AGENCY_TOKEN), (ALWAYS_ACCOUNT, ALWAYS_TOKEN)] {
        for (method, path, params) in endpoints(OTHER_ACCOUNT, OTHER_VISITOR) {
            let full = if params.is_empty() { path.clone() } else { format!("{path}{range}") };
            let (status, body) = send(&stack, method.clone(), &full, Some(&basic(who, token))).await;
            assert_eq!(status, 404, "{who} {method} {full}: {body}");
            assert!(json(&body)["error"].is_string());
            assert!(!body.contains(OTHER_VISITOR) && !body.contains("CO1") && !body.contains("SO1"), "{body}");
        }
        // An account that does not exist looks the same as one that is not yours.
        for (method, path, _) in endpoints("acc_nobody", V1) {
            let (status, _) = send(&stack, method.clone(), &path, Some(&basic(who, token))).await;
            assert_eq!(status, 404, "{who} {method} {path}");
        }
    }
    // acc_other's own credentials on acc_demo: 404 too.
    for (method, path, _) in endpoints(DEMO_ACCOUNT, V1) {
        let (status, body) = send(&stack, method.clone(), &path, Some(&basic(OTHER_ACCOUNT, OTHER_TOKEN))).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert!(!body.contains(V1));
    }
    // The refused DELETEs erased nothing and started no mutation.
    assert_eq!(other_tenant_rows(&stack).await, before);
    let mutations = stack.ch.query("SELECT count() FROM system.mutations WHERE database = currentDatabase()").fetch_one::<u64>().await.unwrap();
    assert_eq!(mutations, 0);
    // Demo's data is still whole too.
    let (status, body) = send(&stack, Method::GET, &format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{V1}/export"), Some(&basic(DEMO_ACCOUNT, DEMO_TOKEN))).await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["events"].as_array().unwrap().len(), 5);

    // Missing, malformed or wrong credentials: 401 with a challenge, before anything else is looked at.
    let bad_auth: Vec<Option<String>> = vec![
        None,
        Some("Bearer demo-token-please-change".into()),
        Some("Basic".into()),
        Some("Basic !!!not-base64!!!".into()),
        Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("no-colon"))),
        Some(basic(DEMO_ACCOUNT, "wrong-token")),
        Some(basic(DEMO_ACCOUNT, "")),
        Some(basic(DEMO_ACCOUNT, &sha256_hex(DEMO_TOKEN))),
        Some(basic(DEMO_ACCOUNT, OTHER_TOKEN)),
        Some(basic(AGENCY, DEMO_TOKEN)),
        Some(basic("acc_nobody", DEMO_TOKEN)),
        Some(basic("", "")),
    ];
    for auth in &bad_auth {
        for account in [DEMO_ACCOUNT, OTHER_ACCOUNT, "acc_nobody"] {
            for (method, path, _) in endpoints(account, V1) {
                let resp_path = format!("{path}?from=garbage");
                let mut req = stack.http.request(method.clone(), format!("{}{resp_path}", stack.dashboard_url()));
                if let Some(a) = auth {
                    req = req.header("Authorization", a);
                }
                let resp = req.send().await.unwrap();
                assert_eq!(resp.status(), 401, "{auth:?} {method} {resp_path}");
                assert_eq!(resp.headers()["www-authenticate"], "Basic realm=\"ringpath\"");
                assert!(json(&resp.text().await.unwrap())["error"].is_string());
            }
        }
        let (status, _) = send(&stack, Method::GET, &format!("/v1/agencies/{AGENCY}/accounts"), auth.as_deref()).await;
        assert_eq!(status, 401, "{auth:?} agencies");
    }

    // The agency reads each of its accounts, and lists exactly them.
    let (status, body) = send(&stack, Method::GET, &format!("/v1/accounts/{DEMO_ACCOUNT}/calls{range}"), Some(&basic(AGENCY, AGENCY_TOKEN))).await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["calls"].as_array().unwrap().len(), 4);
    let (status, _) = send(&stack, Method::GET, &format!("/v1/accounts/{ALWAYS_ACCOUNT}/attribution"), Some(&basic(AGENCY, AGENCY_TOKEN))).await;
    assert_eq!(status, 200);
    let (status, body) = send(&stack, Method::GET, &format!("/v1/agencies/{AGENCY}/accounts"), Some(&basic(AGENCY, AGENCY_TOKEN))).await;
    assert_eq!(status, 200);
    let listed = json(&body);
    let ids: Vec<&str> = listed["accounts"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [ALWAYS_ACCOUNT, DEMO_ACCOUNT]);
    assert!(!body.contains("token"), "no token hashes in the list: {body}");
    // Nobody else lists the agency, and the agency lists no other agency.
    for (who, token, agency) in [(DEMO_ACCOUNT, DEMO_TOKEN, AGENCY), (OTHER_ACCOUNT, OTHER_TOKEN, AGENCY), (AGENCY, AGENCY_TOKEN, "agc_other"), (AGENCY, AGENCY_TOKEN, "agc_demo' OR '1'='1")] {
        let (status, body) = send(&stack, Method::GET, &format!("/v1/agencies/{}/accounts", agency.replace(' ', "%20").replace('\'', "%27")), Some(&basic(who, token))).await;
        assert_eq!(status, 404, "{who} → {agency}: {body}");
    }
    stack.stop().await.unwrap();
}

const HOSTILE: &[&str] = &[
    "x' OR '1'='1",
    "1; DROP TABLE events",
    "' UNION ALL SELECT * FROM system.users --",
    "channel) OR 1=1 --",
    "\\' OR 1=1",
    "%00",
    "ü🙂𝔘",
    "99999999999999999999999999",
    "18446744073709551616",
    "-1",
    "1e9",
    "0x10",
    "",
    " ",
    "../../etc/passwd",
    "{name:String}",
    "?",
    "NULL",
];

fn enc(v: &str) -> String {
    v.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_in_any_parameter_get_a_400_naming_it() {
    let stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.unwrap();
    load_golden(&stack).await;
    let auth = basic(DEMO_ACCOUNT, DEMO_TOKEN);
    let mut checked = 0;
    for (method, path, params) in endpoints(DEMO_ACCOUNT, V1) {
        for param in params {
            let mut values: Vec<String> = HOSTILE.iter().map(|v| v.to_string()).collect();
            match *param {
                "from" | "to" => values.extend(
                    ["2026-02-30T00:00:00Z", "2026-11-29", "2026-11-29T25:00:00Z", "29/11/2026", "1", "99999999999999", "2026-11-29T10:00:00+25:00", "2026-11-29T10:00:00.Z"].map(String::from),
                ),
                "limit" => values.extend(["0", "1001", "4294967296", "1.5", "１０"].map(String::from)),
                "dimension" => values.extend(["Channel", "channel ", "event_id", "visitor_id", "ｃhannel"].map(String::from)),
                "model" => values.extend(["LAST_TOUCH", "position_based"].map(String::from)),
                "interval" => values.extend(["week", "minute", "HOUR"].map(String::from)),
                "metric" => values.extend(["ip", "visitors", "calls;"].map(String::from)),
                "include_bots" => values.extend(["yes", "TRUE", "2"].map(String::from)),
                "cursor" => values.extend(["MTIz", "bm90LWEtY3Vyc29y", "!!!!", "MTc5NTk0NjQwMDAwMA"].map(String::from)),
                _ => {}
            }
            for value in values {
                // `from=1` alone is a valid epoch; pair it with a `to` so the span check is what trips.
                let url = format!("{path}?{param}={}", enc(&value));
                let (status, body) = send(&stack, method.clone(), &url, Some(&auth)).await;
                assert_eq!(status, 400, "{url}: {body}");
                let b = json(&body);
                let named = b["parameter"].as_str().unwrap_or("");
                let from_or_to = matches!(*param, "from" | "to") && matches!(named, "from" | "to");
                assert!(named == *param || from_or_to, "{url}: names {named:?}: {body}");
                assert!(b["error"].as_str().unwrap().contains(named), "{url}: {body}");
                checked += 1;
            }
        }
        // Unknown and repeated parameters are refused by name, on every endpoint.
        let (status, body) = send(&stack, method.clone(), &format!("{path}?evil=1"), Some(&auth)).await;
        assert_eq!((status, json(&body)["parameter"].as_str()), (400, Some("evil")), "{path}");
        if let Some(param) = params.first() {
            let (status, body) = send(&stack, method.clone(), &format!("{path}?{param}=2026-11-10T00:00:00Z&{param}=2026-11-11T00:00:00Z"), Some(&auth)).await;
            assert_eq!((status, json(&body)["parameter"].as_str()), (400, Some(*param)), "{path}");
        }
    }
    assert!(checked > 200, "{checked}");
    // Ranges: reversed, empty, too long, hourly over a month.
    for (query, param) in [
        (format!("from={TO}&to={FROM}"), "from"),
        (format!("from={FROM}&to={FROM}"), "from"),
        ("from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z".to_owned(), "from"),
        ("from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z&interval=hour".to_owned(), "interval"),
    ] {
        let (status, body) = send(&stack, Method::GET, &format!("/v1/accounts/{DEMO_ACCOUNT}/timeseries?{query}"), Some(&auth)).await;
        assert_eq!((status, json(&body)["parameter"].as_str()), (400, Some(param)), "{query}: {body}");
    }
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_path_segments_get_400_or_404_and_never_other_data() {
    let stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.unwrap();
    load_golden(&stack).await;
    let auth = basic(DEMO_ACCOUNT, DEMO_TOKEN);
    let bad_visitors = ["x' OR '1'='1", "visitor_aaaa0001' OR '1'='1", "short", &"a".repeat(65), "ü🙂visitor", "visitor%00aaaa", "..", "visitor aaaa 0001", "visitor_aaaa0001;DROP"];
    for v in bad_visitors {
        let encoded = enc(v);
        for (method, path) in [
            (Method::GET, format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{encoded}")),
            (Method::GET, format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{encoded}/export")),
            (Method::GET, format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{encoded}/erasure")),
            (Method::DELETE, format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{encoded}")),
        ] {
            let (status, body) = send(&stack, method.clone(), &path, Some(&auth)).await;
            assert!(status == 400 || status == 404, "{method} {path}: {status} {body}");
            let b = json(&body);
            if status == 400 {
                assert_eq!(b["parameter"], "visitor_id", "{path}");
            }
            assert!(!body.contains("e-s1-1") && !body.contains("203.0.113"), "no rows leak: {body}");
        }
    }
    // Hostile account ids and extra segments: 404 JSON, never a 5xx.
    for path in [
        format!("/v1/accounts/{}/calls", enc("acc_demo' OR '1'='1")),
        format!("/v1/accounts/{}/calls", enc("acc_demo/../acc_other")),
        "/v1/accounts/acc_demo/../acc_other/calls".to_owned(),
        format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{V1}/export/extra"),
        format!("/v1/accounts/{DEMO_ACCOUNT}/calls/extra"),
        format!("/v1/accounts/{}/attribution", enc(&"a".repeat(5000))),
    ] {
        let (status, body) = send(&stack, Method::GET, &path, Some(&auth)).await;
        assert!(status == 404 || status == 400, "{path}: {status} {body}");
        assert!(json(&body)["error"].is_string(), "{path}: {body}");
    }
    // Another tenant's visitor id, well-formed, under our account: nothing of theirs.
    let (status, _) = send(&stack, Method::GET, &format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{OTHER_VISITOR}"), Some(&auth)).await;
    assert_eq!(status, 404);
    let (status, body) = send(&stack, Method::GET, &format!("/v1/accounts/{DEMO_ACCOUNT}/visitors/{OTHER_VISITOR}/export"), Some(&auth)).await;
    assert_eq!(status, 200);
    let b = json(&body);
    assert_eq!((b["events"].as_array().unwrap().len(), b["calls"].as_array().unwrap().len(), b["assignments"].as_array().unwrap().len()), (0, 0, 0), "{body}");
    stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_text_that_reaches_sql_is_bound_not_spliced() {
    let stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.unwrap();
    load_golden(&stack).await;
    // A cursor is opaque to clients but decodes to (ms, call id): the id is free
    // text. Quotes, backslashes and `?` in it would break (or widen) a query that
    // spliced it in; bound, they only move the page position.
    for id in ["x' OR '1'='1", "C9' OR account_id != '", "a\\'b", "??", "C9') UNION ALL SELECT * FROM calls --", "{id:String}"] {
        let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}:{id}", ms("2026-11-13T11:00:00Z")));
        let body = demo(&stack, &format!("/v1/accounts/{DEMO_ACCOUNT}/calls?from={FROM}&to={TO}&cursor={cursor}")).await;
        let ids: Vec<&str> = body["calls"].as_array().unwrap().iter().map(|c| c["call_id"].as_str().unwrap()).collect();
        let want: &[&str] = if id.as_bytes()[0] > b'C' || id.starts_with("C9") { &["C4", "C3", "C2"] } else { &["C3", "C2"] };
        assert_eq!(ids, want, "cursor id {id:?}: {body}");
        for c in body["calls"].as_array().unwrap() {
            assert_eq!(c["account_id"], DEMO_ACCOUNT);
        }
    }
    stack.stop().await.unwrap();
}
