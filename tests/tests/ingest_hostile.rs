//! A table of malformed and hostile requests against the real collector on
//! the real broker. Every one gets the right 4xx with a JSON `{"error": …}`
//! that names the problem; bad input lands on the dead-letter topic with the
//! same reason; and after each one a good beacon is still accepted.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use ringpath_tests::fixtures::*;
use ringpath_tests::ingest_support::*;
use ringpath_tests::{Stack, StackOptions};
use serde_json::{json, Value};

/// How a case is sent.
enum Send {
    /// Through reqwest: method, path, headers, body.
    Http(&'static str, String, Vec<(&'static str, String)>, Vec<u8>),
    /// Raw bytes in parts with a pause between them (slow or lying clients).
    Raw(Vec<Vec<u8>>, Duration),
}

/// Marks a case the HTTP parser refuses before any handler runs: status only.
const HTTP_LAYER: &str = "(http layer)";

struct Case {
    name: &'static str,
    send: Send,
    status: u16,
    /// Lower-case text the error must contain.
    error: &'static str,
    /// The payload must be on the dead-letter topic, under this route.
    dlq: Option<&'static str>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn demo_auth() -> String {
    format!("Basic {}", b64(format!("{DEMO_ACCOUNT}:{DEMO_CALLS_TOKEN}").as_bytes()))
}

fn good() -> Value {
    good_batch(DEMO_ACCOUNT, "hostile", 1)
}

/// The good batch with one change.
fn with(f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut b = good();
    f(&mut b);
    serde_json::to_vec(&b).expect("json")
}

fn text() -> Vec<(&'static str, String)> {
    vec![("content-type", "text/plain;charset=UTF-8".into()), ("user-agent", BROWSER_UA.into())]
}

fn collect(body: Vec<u8>) -> Send {
    Send::Http("POST", "/v1/collect".into(), text(), body)
}

fn collect_with(headers: Vec<(&'static str, String)>, body: Vec<u8>) -> Send {
    Send::Http("POST", "/v1/collect".into(), headers, body)
}

fn numbers(body: Vec<u8>) -> Send {
    Send::Http("POST", "/v1/numbers".into(), vec![("content-type", "application/json".into()), ("user-agent", BROWSER_UA.into())], body)
}

fn calls(auth: Option<String>, body: Vec<u8>) -> Send {
    let mut h = vec![("content-type", "application/json".into())];
    if let Some(a) = auth {
        h.push(("authorization", a));
    }
    Send::Http("POST", "/v1/calls".into(), h, body)
}

fn call_with(f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut c = call_record("CA-hostile", POOL_NUMBERS[0]);
    f(&mut c);
    serde_json::to_vec(&c).expect("json")
}

fn get(path: String) -> Send {
    Send::Http("GET", path, vec![("user-agent", BROWSER_UA.into())], Vec::new())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

fn raw_post(path: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!("POST {path} HTTP/1.1\r\nHost: ingest\r\nContent-Type: text/plain\r\nConnection: close\r\n{extra_headers}\r\n").into_bytes();
    r.extend_from_slice(body);
    r
}

fn cases() -> Vec<Case> {
    let c = |name, send, status, error, dlq| Case { name, send, status, error, dlq };
    const COLLECT: Option<&str> = Some("/v1/collect");
    const PIXEL: Option<&str> = Some("/v1/p.gif");
    const NUMBERS: Option<&str> = Some("/v1/numbers");
    const CALLS: Option<&str> = Some("/v1/calls");
    let big = "x".repeat(70 * 1024);
    let mut chunked = b"POST /v1/collect HTTP/1.1\r\nHost: ingest\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..9 {
        chunked.extend_from_slice(format!("{:x}\r\n{}\r\n", 8192, "y".repeat(8192)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    vec![
        // ---- /v1/collect: not JSON, or not a batch
        c("empty body", collect(vec![]), 400, "invalid json", COLLECT),
        c("lone brace", collect(b"{".to_vec()), 400, "invalid json", COLLECT),
        c("null", collect(b"null".to_vec()), 400, "invalid json", COLLECT),
        c("array", collect(b"[]".to_vec()), 400, "expected struct batch", COLLECT),
        c("a string", collect(br#""batch""#.to_vec()), 400, "invalid type", COLLECT),
        c("plain words", collect(b"hello world".to_vec()), 400, "invalid json", COLLECT),
        c("trailing garbage", collect([serde_json::to_vec(&good()).expect("json"), b"xyz".to_vec()].concat()), 400, "trailing", COLLECT),
        c("two batches concatenated", collect([serde_json::to_vec(&good()).expect("json"), serde_json::to_vec(&good()).expect("json")].concat()), 400, "trailing", COLLECT),
        c("only v", collect(br#"{"v":1}"#.to_vec()), 400, "missing field", COLLECT),
        c("missing account", collect(with(|b| { b.as_object_mut().expect("object").remove("account"); })), 400, "account", COLLECT),
        c("missing events", collect(with(|b| { b.as_object_mut().expect("object").remove("events"); })), 400, "events", COLLECT),
        // wrong types
        c("v as string", collect(with(|b| b["v"] = json!("1"))), 400, "at v:", COLLECT),
        c("v negative", collect(with(|b| b["v"] = json!(-1))), 400, "at v:", COLLECT),
        c("v huge", collect(with(|b| b["v"] = json!(99_999_999_999u64))), 400, "at v:", COLLECT),
        c("v = 2", collect(with(|b| b["v"] = json!(2))), 400, "version", COLLECT),
        c("sent_at string", collect(with(|b| b["sent_at"] = json!("now"))), 400, "sent_at", COLLECT),
        c("sent_at float", collect(with(|b| b["sent_at"] = json!(1.5))), 400, "sent_at", COLLECT),
        c("sent_at 1e30", collect(br#"{"v":1,"account":"acc_demo","sent_at":1e30,"consent":"granted","events":[]}"#.to_vec()), 400, "sent_at", COLLECT),
        c("sent_at year 2000", collect(with(|b| b["sent_at"] = json!(946_684_800_000i64))), 400, "30 days", COLLECT),
        c("account as number", collect(with(|b| b["account"] = json!(42))), 400, "account", COLLECT),
        c("consent unknown", collect(with(|b| b["consent"] = json!("maybe"))), 400, "consent", COLLECT),
        c("events an object", collect(with(|b| b["events"] = json!({"id": "x"}))), 400, "events", COLLECT),
        c("events empty", collect(with(|b| b["events"] = json!([])))  , 400, "empty", COLLECT),
        c("101 events", collect(serde_json::to_vec(&good_batch(DEMO_ACCOUNT, "many", 101)).expect("json")), 400, "more than 100", COLLECT),
        c("event without id", collect(with(|b| { b["events"][0].as_object_mut().expect("object").remove("id"); })), 400, "events[0]", COLLECT),
        c("event id with spaces", collect(with(|b| b["events"][0]["id"] = json!("a b c"))), 400, "events[0].id", COLLECT),
        c("event id 65 chars", collect(with(|b| b["events"][0]["id"] = json!("a".repeat(65)))), 400, "events[0].id", COLLECT),
        c("duplicate event ids", collect(serde_json::to_vec(&{ let mut b = good_batch(DEMO_ACCOUNT, "dup", 2); b["events"][1]["id"] = b["events"][0]["id"].clone(); b }).expect("json")), 400, "repeats", COLLECT),
        c("event type uppercase", collect(with(|b| b["events"][0]["type"] = json!("PageView"))), 400, "events[0].type", COLLECT),
        c("event type number", collect(with(|b| b["events"][0]["type"] = json!(7))), 400, "events[0].type", COLLECT),
        c("ts string", collect(with(|b| b["events"][0]["ts"] = json!("yesterday"))), 400, "events[0].ts", COLLECT),
        c("ts an hour ahead", collect(with(|b| b["events"][0]["ts"] = json!(now_ms() + 3_600_000))), 400, "events[0].ts", COLLECT),
        c("ts 8 days old", collect(with(|b| b["events"][0]["ts"] = json!(now_ms() - 8 * 86_400_000))), 400, "events[0].ts", COLLECT),
        c("javascript: url", collect(with(|b| b["events"][0]["url"] = json!("javascript:alert(1)"))), 400, "events[0].url", COLLECT),
        c("relative url", collect(with(|b| b["events"][0]["url"] = json!("/pricing"))), 400, "events[0].url", COLLECT),
        c("url 5000 bytes", collect(with(|b| b["events"][0]["url"] = json!(format!("https://demo.example/{}", "a".repeat(5000))))), 400, "longer than", COLLECT),
        c("referrer not a url", collect(with(|b| b["events"][0]["referrer"] = json!("google"))), 400, "events[0].referrer", COLLECT),
        c("title 2000 bytes", collect(with(|b| b["events"][0]["title"] = json!("t".repeat(2000)))), 400, "events[0].title", COLLECT),
        c("huge title string 60 KiB", collect(with(|b| b["events"][0]["title"] = json!("t".repeat(60 * 1024)))), 400, "events[0].title", COLLECT),
        c("number not E.164", collect(with(|b| b["events"][0]["number"] = json!("555-0100"))), 400, "e.164", COLLECT),
        c("props an array", collect(with(|b| b["events"][0]["props"] = json!([1, 2]))), 400, "props", COLLECT),
        c("props 5 levels deep", collect(with(|b| b["events"][0]["props"] = json!({"a": {"b": {"c": {"d": {"e": 1}}}}}))), 400, "deeper", COLLECT),
        c("props over 8 KiB", collect(with(|b| b["events"][0]["props"] = json!({"blob": "p".repeat(9000)}))), 400, "8 kib", COLLECT),
        c("nesting 10000 deep in props", collect(format!(r#"{{"v":1,"account":"acc_demo","sent_at":1,"consent":"granted","events":[{{"id":"e","type":"pageview","ts":1,"url":"https://demo.example/","props":{{"a":{}}}}}]}}"#, nested(10_000)).into_bytes()), 400, "recursion limit", COLLECT),
        c("nesting 30000 deep at the top", collect(nested(30_000).into_bytes()), 400, "invalid", COLLECT),
        c("unknown top-level field", collect(with(|b| b["evil"] = json!(true))), 400, "unknown field", COLLECT),
        c("unknown event field", collect(with(|b| b["events"][0]["password"] = json!("hunter2"))), 400, "unknown field", COLLECT),
        c("ids without consent", collect(with(|b| b["consent"] = json!("denied"))), 400, "without consent", COLLECT),
        c("visitor_id too short", collect(with(|b| b["visitor_id"] = json!("v1"))), 400, "visitor_id", COLLECT),
        c("session_id non-ascii", collect(with(|b| b["session_id"] = json!("séssion-00001"))), 400, "session_id", COLLECT),
        c("screen 100 bytes", collect(with(|b| b["screen"] = json!("9".repeat(100)))), 400, "screen", COLLECT),
        // encodings
        c("invalid UTF-8 in a string", collect([br#"{"v":1,"account":"acc_demo","sent_at":1,"consent":"granted","events":[{"id":"e","type":"pageview","ts":1,"url":"https://demo.example/"#.to_vec(), vec![0xff, 0xfe, 0xc3], br#""}]}"#.to_vec()].concat()), 400, "invalid", COLLECT),
        c("lone surrogate escape", collect(br#"{"v":1,"account":"acc_\ud800demo","sent_at":1,"consent":"granted","events":[]}"#.to_vec()), 400, "escape", COLLECT),
        c("raw control character", collect(b"{\"v\":1,\"account\":\"acc\x01demo\",\"sent_at\":1,\"consent\":\"granted\",\"events\":[]}".to_vec()), 400, "control character", COLLECT),
        c("UTF-16 body", collect(serde_json::to_string(&good()).expect("json").encode_utf16().flat_map(u16::to_le_bytes).collect()), 400, "invalid json", COLLECT),
        c("NUL bytes", collect(vec![0u8; 512]), 400, "invalid json", COLLECT),
        // accounts and origins
        c("unknown account", collect(with(|b| b["account"] = json!("acc_nobody"))), 400, "unknown account", COLLECT),
        c("empty account", collect(with(|b| b["account"] = json!(""))), 400, "unknown account", COLLECT),
        c("account 10 KiB", collect(with(|b| b["account"] = json!("a".repeat(10_240)))), 400, "unknown account", COLLECT),
        c("origin not allowed", collect_with([text(), vec![("origin", "https://evil.example".into())]].concat(), with(|b| b["account"] = json!(OTHER_ACCOUNT))), 403, "not allowed", COLLECT),
        c("origin null", collect_with([text(), vec![("origin", "null".into())]].concat(), with(|b| b["account"] = json!(OTHER_ACCOUNT))), 403, "not allowed", COLLECT),
        c("referer from another site", collect_with([text(), vec![("referer", "https://evil.example/page".into())]].concat(), with(|b| b["account"] = json!(OTHER_ACCOUNT))), 403, "not allowed", COLLECT),
        c("no Origin nor Referer for an account with allowed origins", collect_with(text(), with(|b| b["account"] = json!(OTHER_ACCOUNT))), 403, "neither origin nor referer", COLLECT),
        c("pixel without Origin nor Referer (no-referrer) for an account with allowed origins", get(format!("/v1/p.gif?d={}", b64url(&with(|b| b["account"] = json!(OTHER_ACCOUNT))))), 403, "neither origin nor referer", PIXEL),
        c("numbers without Origin nor Referer for an account with allowed origins", Send::Http("POST", "/v1/numbers".into(), vec![("content-type", "application/json".into())], serde_json::to_vec(&numbers_request(OTHER_ACCOUNT, "session-hostile2", "https://other.example/")).expect("json")), 403, "neither origin nor referer", NUMBERS),
        c("origin with a path trick", collect_with([text(), vec![("origin", "https://other.example.evil.example".into())]].concat(), with(|b| b["account"] = json!(OTHER_ACCOUNT))), 403, "not allowed", COLLECT),
        // content types
        c("form content type", collect_with(vec![("content-type", "application/x-www-form-urlencoded".into())], serde_json::to_vec(&good()).expect("json")), 415, "content type", COLLECT),
        c("no content type", collect_with(vec![], serde_json::to_vec(&good()).expect("json")), 415, "content type", COLLECT),
        c("image content type", collect_with(vec![("content-type", "image/png".into())], vec![0x89, b'P', b'N', b'G']), 415, "content type", COLLECT),
        c("multipart content type", collect_with(vec![("content-type", "multipart/form-data; boundary=x".into())], b"--x\r\n\r\n--x--".to_vec()), 415, "content type", COLLECT),
        // size and time
        c("declared 70 KiB body", Send::Raw(vec![raw_post("/v1/collect", &format!("Content-Length: {}\r\n", big.len()), big.as_bytes())], Duration::ZERO), 413, "larger than 65536", None),
        c("chunked 72 KiB body", Send::Raw(vec![chunked], Duration::ZERO), 413, "larger than 65536", None),
        c("70 KiB through reqwest", collect(format!(r#"{{"v":1,"account":"acc_demo","pad":"{big}"}}"#).into_bytes()), 413, "larger than", None),
        // Content-Encoding: the limit is on the decoded size; the header must be true.
        c("gzip bomb (10 MiB of spaces in 10 KiB)", collect_with([text(), vec![("content-encoding", "gzip".into())]].concat(), gzip(&vec![b' '; 10 * 1024 * 1024])), 413, "larger than 65536", None),
        c("plain JSON labelled gzip", collect_with([text(), vec![("content-encoding", "gzip".into())]].concat(), serde_json::to_vec(&good()).expect("json")), 400, "not valid gzip", COLLECT),
        c("plain JSON labelled deflate", collect_with([text(), vec![("content-encoding", "deflate".into())]].concat(), serde_json::to_vec(&good()).expect("json")), 400, "not valid deflate", COLLECT),
        c("gzip cut in half", collect_with([text(), vec![("content-encoding", "gzip".into())]].concat(), { let z = gzip(&serde_json::to_vec(&good()).expect("json")); z[..z.len() / 2].to_vec() }), 400, "not valid gzip", COLLECT),
        c("brotli encoding", collect_with([text(), vec![("content-encoding", "br".into())]].concat(), b"\x1b\x00".to_vec()), 415, "content encoding", COLLECT),
        c("gzip twice", collect_with([text(), vec![("content-encoding", "gzip, gzip".into())]].concat(), gzip(&gzip(&serde_json::to_vec(&good()).expect("json")))), 415, "content encoding", COLLECT),
        c("slow body", Send::Raw(vec![raw_post("/v1/collect", "Content-Length: 200\r\n", br#"{"v":1,"acc"#), b"ount".to_vec()], Duration::from_millis(2500)), 408, "in time", None),
        // ---- /v1/p.gif
        c("pixel without d", get("/v1/p.gif".into()), 400, "missing query parameter d", PIXEL),
        c("pixel d not base64", get("/v1/p.gif?d=***".into()), 400, "base64url", PIXEL),
        c("pixel d standard base64", get(format!("/v1/p.gif?d={}", b64(&[0xfb, 0xff, 0xfe]))), 400, "base64url", PIXEL),
        c("pixel bad percent-encoding", get("/v1/p.gif?d=%zz%".into()), 400, "", PIXEL),
        c("pixel d decodes to non-JSON", get(format!("/v1/p.gif?d={}", b64url(b"GIF89a"))), 400, "invalid json", PIXEL),
        c("pixel d decodes to invalid UTF-8", get(format!("/v1/p.gif?d={}", b64url(&[0xff; 40]))), 400, "invalid json", PIXEL),
        c("pixel unknown account", get(format!("/v1/p.gif?d={}", b64url(&with(|b| b["account"] = json!("acc_nobody"))))), 400, "unknown account", PIXEL),
        c("pixel bad batch", get(format!("/v1/p.gif?d={}", b64url(&with(|b| b["events"][0]["url"] = json!("ftp://x"))))), 400, "events[0].url", PIXEL),
        c("pixel 40 KB d", Send::Raw(vec![format!("GET /v1/p.gif?d={} HTTP/1.1\r\nHost: ingest\r\nConnection: close\r\n\r\n", "A".repeat(40_000)).into_bytes()], Duration::ZERO), 413, "larger than 32768", None),
        // Refused by the HTTP parser before any handler (no JSON body possible there).
        c("URI over 64 KiB", Send::Raw(vec![format!("GET /v1/p.gif?d={} HTTP/1.1\r\nHost: ingest\r\nConnection: close\r\n\r\n", "A".repeat(70_000)).into_bytes()], Duration::ZERO), 400, HTTP_LAYER, None),
        c("garbage request line", Send::Raw(vec![b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n".to_vec()], Duration::ZERO), 400, HTTP_LAYER, None),
        c("pixel by POST", Send::Http("POST", "/v1/p.gif".into(), text(), b"{}".to_vec()), 405, "not allowed", None),
        // ---- /v1/numbers
        c("numbers bad JSON", numbers(b"{session".to_vec()), 400, "invalid json", NUMBERS),
        c("numbers missing session_id", numbers(serde_json::to_vec(&json!({"account": DEMO_ACCOUNT, "url": "https://demo.example/"})).expect("json")), 400, "session_id", NUMBERS),
        c("numbers short session_id", numbers(serde_json::to_vec(&numbers_request(DEMO_ACCOUNT, "s1", "https://demo.example/")).expect("json")), 400, "session_id", NUMBERS),
        c("numbers session_id as number", numbers(serde_json::to_vec(&json!({"account": DEMO_ACCOUNT, "session_id": 12345678, "url": "https://demo.example/"})).expect("json")), 400, "session_id", NUMBERS),
        c("numbers url not http", numbers(serde_json::to_vec(&numbers_request(DEMO_ACCOUNT, "session-hostile1", "data:text/html,hi")).expect("json")), 400, "url", NUMBERS),
        c("numbers referrer not a url", numbers(serde_json::to_vec(&{ let mut r = numbers_request(DEMO_ACCOUNT, "session-hostile1", "https://demo.example/"); r["referrer"] = json!("nope"); r }).expect("json")), 400, "referrer", NUMBERS),
        c("numbers unknown account", numbers(serde_json::to_vec(&numbers_request("acc_nobody", "session-hostile1", "https://demo.example/")).expect("json")), 400, "unknown account", NUMBERS),
        c("numbers unknown field", numbers(serde_json::to_vec(&{ let mut r = numbers_request(DEMO_ACCOUNT, "session-hostile1", "https://demo.example/"); r["number"] = json!("+15550109001"); r }).expect("json")), 400, "unknown field", NUMBERS),
        c("numbers bad origin", Send::Http("POST", "/v1/numbers".into(), vec![("content-type", "application/json".into()), ("origin", "https://evil.example".into())], serde_json::to_vec(&numbers_request(OTHER_ACCOUNT, "session-hostile1", "https://other.example/")).expect("json")), 403, "not allowed", NUMBERS),
        c("numbers form content type", Send::Http("POST", "/v1/numbers".into(), vec![("content-type", "application/x-www-form-urlencoded".into())], b"account=acc_demo".to_vec()), 415, "content type", NUMBERS),
        c("numbers by GET", get("/v1/numbers".into()), 405, "not allowed", None),
        // ---- /v1/calls
        c("calls without auth", calls(None, call_with(|_| {})), 401, "credentials", None),
        c("calls wrong token", calls(Some(format!("Basic {}", b64(format!("{DEMO_ACCOUNT}:wrong").as_bytes()))), call_with(|_| {})), 401, "credentials", None),
        c("calls another account's token", calls(Some(format!("Basic {}", b64(format!("{DEMO_ACCOUNT}:{OTHER_TOKEN}").as_bytes()))), call_with(|_| {})), 401, "credentials", None),
        c("calls unknown account", calls(Some(format!("Basic {}", b64(format!("acc_nobody:{DEMO_CALLS_TOKEN}").as_bytes()))), call_with(|_| {})), 401, "credentials", None),
        c("calls with the API token", calls(Some(format!("Basic {}", b64(format!("{DEMO_ACCOUNT}:{DEMO_TOKEN}").as_bytes()))), call_with(|_| {})), 401, "credentials", None),
        c("calls bearer scheme", calls(Some(format!("Bearer {DEMO_CALLS_TOKEN}")), call_with(|_| {})), 401, "credentials", None),
        c("calls basic not base64", calls(Some("Basic ***".into()), call_with(|_| {})), 401, "credentials", None),
        c("calls basic without colon", calls(Some(format!("Basic {}", b64(DEMO_ACCOUNT.as_bytes()))), call_with(|_| {})), 401, "credentials", None),
        c("calls basic invalid UTF-8", calls(Some(format!("Basic {}", b64(&[0xff, b':', 0xfe]))), call_with(|_| {})), 401, "credentials", None),
        c("calls bad JSON", calls(Some(demo_auth()), b"{call".to_vec()), 400, "invalid json", CALLS),
        c("calls to not E.164", calls(Some(demo_auth()), call_with(|c| c["to"] = json!("5550109001"))), 400, "to must be", CALLS),
        c("calls from garbage", calls(Some(demo_auth()), call_with(|c| c["from"] = json!("<script>"))), 400, "from must be", CALLS),
        c("calls unknown status", calls(Some(demo_auth()), call_with(|c| c["status"] = json!("ringing"))), 400, "status", CALLS),
        c("calls started_at not RFC 3339", calls(Some(demo_auth()), call_with(|c| c["started_at"] = json!("last tuesday"))), 400, "started_at", CALLS),
        c("calls started_at in 2001", calls(Some(demo_auth()), call_with(|c| c["started_at"] = json!("2001-01-01T00:00:00Z"))), 400, "90 days", CALLS),
        c("calls negative duration", calls(Some(demo_auth()), call_with(|c| c["duration_s"] = json!(-5))), 400, "duration_s", CALLS),
        c("calls call_id with spaces", calls(Some(demo_auth()), call_with(|c| c["call_id"] = json!("CA 1"))), 400, "call_id", CALLS),
        c("calls caller_name 1 KiB", calls(Some(demo_auth()), call_with(|c| c["caller_name"] = json!("n".repeat(1024)))), 400, "caller_name", CALLS),
        c("calls plain JSON labelled gzip", Send::Http("POST", "/v1/calls".into(), vec![("content-type", "application/json".into()), ("content-encoding", "gzip".into()), ("authorization", demo_auth())], call_with(|_| {})), 400, "not valid gzip", CALLS),
        c("calls gzip bomb", Send::Http("POST", "/v1/calls".into(), vec![("content-type", "application/json".into()), ("content-encoding", "gzip".into()), ("authorization", demo_auth())], gzip(&vec![b'0'; 4 * 1024 * 1024])), 413, "larger than 65536", None),
        c("numbers plain JSON labelled gzip", Send::Http("POST", "/v1/numbers".into(), vec![("content-type", "application/json".into()), ("content-encoding", "gzip".into())], serde_json::to_vec(&numbers_request(DEMO_ACCOUNT, "session-hostile1", "https://demo.example/")).expect("json")), 400, "not valid gzip", NUMBERS),
        c("calls 70 KiB", Send::Http("POST", "/v1/calls".into(), vec![("authorization", demo_auth())], big.clone().into_bytes()), 413, "larger than", None),
        // ---- routes and methods
        c("unknown route", get("/v1/nothing".into()), 404, "not found", None),
        c("path below collect", get("/v1/collect/extra".into()), 404, "not found", None),
        c("path traversal", Send::Raw(vec![b"GET /../../etc/passwd HTTP/1.1\r\nHost: ingest\r\nConnection: close\r\n\r\n".to_vec()], Duration::ZERO), 404, "not found", None),
        c("config of unknown account", get("/v1/config/acc_nobody".into()), 400, "unknown account", None),
        c("GET collect", get("/v1/collect".into()), 405, "not allowed", None),
        c("PUT collect", Send::Http("PUT", "/v1/collect".into(), text(), serde_json::to_vec(&good()).expect("json")), 405, "not allowed", None),
        c("DELETE calls", Send::Http("DELETE", "/v1/calls".into(), vec![], vec![]), 405, "not allowed", None),
        c("metrics on the public listener", get("/metrics".into()), 404, "not found", None),
    ]
}

async fn send(stack: &Stack, case: &Send) -> (u16, HashMap<String, String>, Vec<u8>) {
    match case {
        Send::Http(method, path, headers, body) => {
            let mut req = stack.http.request(method.parse().expect("method"), format!("{}{path}", stack.ingest_url()));
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            let resp = req.body(body.clone()).send().await.expect("an answer");
            let status = resp.status().as_u16();
            let headers = resp.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
            (status, headers, resp.bytes().await.expect("body").to_vec())
        }
        Send::Raw(parts, pause) => {
            let addr = stack.ingest.as_ref().expect("ingest").addr;
            let resp = raw_http(addr, parts, *pause).await.expect("raw answer");
            let headers = resp.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
            (resp.status, headers, resp.body)
        }
    }
}

/// The request a browser would send, which must keep working after each hostile one.
async fn good_beacon_accepted(stack: &Stack, n: usize) -> bool {
    let resp = stack
        .http
        .post(format!("{}/v1/collect", stack.ingest_url()))
        .header("content-type", "text/plain;charset=UTF-8")
        .header("user-agent", BROWSER_UA)
        .body(serde_json::to_vec(&good_batch(DEMO_ACCOUNT, &format!("after-{n}"), 2)).expect("json"))
        .send()
        .await
        .expect("an answer");
    resp.status() == 204
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_request_gets_a_named_4xx_is_dead_lettered_and_the_service_keeps_serving() {
    let env = HashMap::from([
        ("RINGPATH_BODY_TIMEOUT_MS".to_string(), "1000".to_string()),
        ("RINGPATH_RATE_PER_CLIENT".to_string(), "10000".to_string()),
        ("RINGPATH_RATE_BURST".to_string(), "10000".to_string()),
    ]);
    let stack = Stack::start(StackOptions { ingest_env: env, with_enrich: false, ..StackOptions::default() }).await.expect("stack");
    let cases = cases();
    assert!(cases.len() >= 60, "corpus has {} cases", cases.len());

    let mut failures = Vec::new();
    let mut expected_dlq: Vec<(&str, String, &str)> = Vec::new(); // (route, reason, case)
    for (i, case) in cases.iter().enumerate() {
        let (status, headers, body) = send(&stack, &case.send).await;
        let parsed: Option<Value> = serde_json::from_slice(&body).ok();
        let error = parsed.as_ref().and_then(|v| v["error"].as_str()).map(str::to_owned);
        let json_ct = headers.get("content-type").is_some_and(|c| c.starts_with("application/json"));
        match &error {
            _ if status == case.status && case.error == HTTP_LAYER => {}
            _ if status != case.status => failures.push(format!("{}: status {status}, wanted {} ({:?})", case.name, case.status, String::from_utf8_lossy(&body))),
            None => failures.push(format!("{}: no JSON error in {:?}", case.name, String::from_utf8_lossy(&body))),
            Some(e) if !e.to_lowercase().contains(case.error) => failures.push(format!("{}: error {e:?} does not mention {:?}", case.name, case.error)),
            Some(_) if !json_ct => failures.push(format!("{}: content-type {:?}", case.name, headers.get("content-type"))),
            Some(e) => {
                if let Some(route) = case.dlq {
                    expected_dlq.push((route, e.clone(), case.name));
                }
            }
        }
        if status == 401 && !headers.contains_key("www-authenticate") {
            failures.push(format!("{}: 401 without WWW-Authenticate", case.name));
        }
        if status == 405 && !headers.contains_key("allow") {
            failures.push(format!("{}: 405 without Allow", case.name));
        }
        if !good_beacon_accepted(&stack, i).await {
            failures.push(format!("{}: a good beacon was refused afterwards", case.name));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases wrong:\n{}", failures.len(), cases.len(), failures.join("\n"));

    // Every dead-lettered case is on the topic with the reason the client saw.
    let dlq = wait_topic(&stack.brokers, &stack.topics.dlq, Duration::from_secs(30), |m| m.len() >= expected_dlq.len()).await.expect("dlq topic");
    let messages: Vec<Value> = dlq.iter().map(TopicMessage::json).collect();
    let missing: Vec<_> = expected_dlq
        .iter()
        .filter(|(route, reason, _)| !messages.iter().any(|m| m["stage"] == *route && m["reason"] == reason.as_str()))
        .map(|(route, reason, name)| format!("{name}: {route} {reason:?}"))
        .collect();
    assert!(missing.is_empty(), "not dead-lettered:\n{}", missing.join("\n"));
    assert_eq!(messages.len(), expected_dlq.len(), "one dead letter per rejected payload, no more");
    // A dead letter carries the start of the raw payload, the sender (IP truncated: a refused
    // sender gave no consent) and the time.
    let unknown = messages.iter().find(|m| m["reason"].as_str().is_some_and(|r| r.contains("\"acc_nobody\"")) && m["stage"] == "/v1/collect").expect("unknown-account dead letter");
    assert_eq!(serde_json::from_str::<Value>(unknown["payload"].as_str().expect("payload")).expect("payload is the batch")["account"], "acc_nobody");
    assert_eq!(unknown["account"], "acc_nobody");
    assert_eq!(unknown["ip"], "127.0.0.0", "the sender's IP, truncated");
    assert_eq!(unknown["payload_bytes"].as_u64(), unknown["payload"].as_str().map(|p| p.len() as u64), "a small payload is kept whole");
    // A large refused payload keeps its first 4 KiB and its size, not all of it.
    let big = messages.iter().find(|m| m["payload_bytes"].as_u64().is_some_and(|n| n > 8 * 1024)).expect("a dead letter of a payload over 8 KiB");
    assert!(big["payload"].as_str().is_some_and(|p| p.len() <= 4 * 1024 + 3), "payload cut at 4 KiB: {} bytes", big["payload"].as_str().map_or(0, str::len));
    assert!(unknown["received_at"].as_i64().is_some_and(|t| (t - now_ms()).abs() < 600_000));
    let utf8 = messages.iter().find(|m| m["stage"] == "/v1/collect" && m["payload"].as_str().is_some_and(|p| p.contains('\u{fffd}'))).expect("invalid UTF-8 dead letter");
    assert!(utf8["payload"].as_str().is_some_and(|p| p.contains("https://demo.example/\u{fffd}")), "invalid bytes replaced, the rest kept: {utf8}");
    let call = messages.iter().find(|m| m["stage"] == "/v1/calls" && m["reason"].as_str().is_some_and(|r| r.contains("to must be"))).expect("call dead letter");
    assert_eq!(call["account"], DEMO_ACCOUNT, "an authenticated call's dead letter names its account");

    // Nothing bad reached the events topic: only the good beacons (2 events each).
    let events = read_topic(&stack.brokers, &stack.topics.events).await.expect("events topic");
    assert_eq!(events.len(), cases.len() * 2);
    assert!(events.iter().all(|m| m.json()["event"]["id"].as_str().is_some_and(|id| id.starts_with("after-"))));

    // Every rejection is counted by cause.
    let metrics = stack.http.get(stack.ingest_metrics_url()).send().await.expect("metrics").text().await.expect("text");
    for (cause, at_least) in [("invalid", 50.0), ("unknown_account", 5.0), ("forbidden_origin", 5.0), ("media_type", 5.0), ("too_large", 5.0), ("timeout", 1.0), ("unauthorized", 8.0), ("encoding", 2.0)] {
        let n = metric_value(&metrics, "ringpath_ingest_events_rejected_total", &[("cause", cause)]).unwrap_or(0.0);
        assert!(n >= at_least, "rejected{{cause={cause}}} = {n}, wanted ≥ {at_least}");
    }
    assert_eq!(metric_value(&metrics, "ringpath_ingest_dlq_failed_total", &[]), None, "no dead letter was lost");
    stack.stop().await.expect("stop");
}

/// Server-side senders compress: a gzip or deflate body is decoded, accepted
/// and published exactly as its plain form would be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_beacons_and_call_records_are_decoded_and_accepted() {
    let stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.expect("stack");
    let beacon = good_batch(DEMO_ACCOUNT, "gz", 3);
    let resp = stack
        .http
        .post(format!("{}/v1/collect", stack.ingest_url()))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .header("user-agent", BROWSER_UA)
        .body(gzip(&serde_json::to_vec(&beacon).expect("json")))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), 204, "{:?}", resp.text().await);
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut zlib, &serde_json::to_vec(&good_batch(DEMO_ACCOUNT, "zl", 2)).expect("json")).expect("deflate");
    let resp = stack
        .http
        .post(format!("{}/v1/collect", stack.ingest_url()))
        .header("content-type", "text/plain")
        .header("content-encoding", "deflate")
        .body(zlib.finish().expect("deflate"))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), 204);
    let call = call_record("CA-gzip", SOCIAL_NUMBER);
    let resp = stack
        .http
        .post(format!("{}/v1/calls", stack.ingest_url()))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .header("authorization", demo_auth())
        .body(gzip(&serde_json::to_vec(&call).expect("json")))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), 202);

    let events = wait_topic(&stack.brokers, &stack.topics.events, Duration::from_secs(30), |m| m.len() >= 5).await.expect("events");
    let mut ids: Vec<String> = events.iter().filter_map(|m| m.json()["event"]["id"].as_str().map(str::to_owned)).collect();
    ids.sort();
    let mut want: Vec<String> = beacon["events"].as_array().expect("events").iter().map(|e| e["id"].as_str().expect("id").to_owned()).collect();
    want.extend(["zl-0", "zl-1"].map(String::from));
    want.sort();
    assert_eq!(ids, want, "every compressed event published once, as sent");
    let calls = wait_topic(&stack.brokers, &stack.topics.calls, Duration::from_secs(30), |m| !m.is_empty()).await.expect("calls");
    assert_eq!(calls[0].json()["call"]["call_id"], "CA-gzip");
    stack.stop().await.expect("stop");
}

/// The other side of the origin check: an account that lists its sites takes
/// beacons, pixels and number requests from them (Origin, or the Referer's origin).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_own_sites_pass_its_origin_check() {
    let stack = Stack::start(StackOptions { with_enrich: false, ..StackOptions::default() }).await.expect("stack");
    let ingest = stack.ingest_url();
    let resp = stack
        .http
        .post(format!("{ingest}/v1/collect"))
        .header("content-type", "text/plain")
        .header("origin", "https://other.example")
        .header("user-agent", BROWSER_UA)
        .body(serde_json::to_vec(&good_batch(OTHER_ACCOUNT, "own-post", 1)).expect("json"))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), 204, "{:?}", resp.text().await);
    let pixel = b64url(&serde_json::to_vec(&good_batch(OTHER_ACCOUNT, "own-pixel", 1)).expect("json"));
    let resp = stack.http.get(format!("{ingest}/v1/p.gif?d={pixel}")).header("referer", "https://other.example/pricing?x=1").header("user-agent", BROWSER_UA).send().await.expect("answer");
    assert!(resp.status().is_success(), "{}", resp.status());
    let resp = stack
        .http
        .post(format!("{ingest}/v1/numbers"))
        .header("origin", "https://other.example")
        .header("user-agent", BROWSER_UA)
        .json(&numbers_request(OTHER_ACCOUNT, "session-own-0001", "https://other.example/"))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    let events = wait_topic(&stack.brokers, &stack.topics.events, Duration::from_secs(30), |m| m.len() >= 2).await.expect("events");
    let mut ids: Vec<String> = events.iter().filter_map(|m| m.json()["event"]["id"].as_str().map(str::to_owned)).collect();
    ids.sort();
    assert_eq!(ids, ["own-pixel-0", "own-post-0"]);
    stack.stop().await.expect("stop");
}
