//! Semantic checks on a parsed batch, number request or call record: limits,
//! identifiers, timestamps, consent rules. Pure functions. A failure is an
//! [`Invalid`]: the field it is about (a path such as `events[0].url`) and
//! the rule it breaks; its text goes verbatim into the 400 answer and the
//! dead letter.

use base64::Engine;
use ringpath_types::accounts::is_e164;
use ringpath_types::wire::{Batch, CallRecord, Consent, NumbersRequest};

pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const MAX_EVENTS_PER_BATCH: usize = 100;
const MAX_URL: usize = 4096;
const MAX_TITLE: usize = 1024;
const MAX_PROPS_BYTES: usize = 8 * 1024;
const MAX_PROPS_DEPTH: usize = 4;
/// Events may be queued in the browser for a while (offline, bfcache) …
const MAX_EVENT_AGE_MS: i64 = 7 * 24 * 3600 * 1000;
/// … but a client clock that far off is garbage, not skew.
const MAX_CLOCK_SKEW_MS: i64 = 30 * 24 * 3600 * 1000;

/// Longest reason text echoed back: serde's messages quote the offending
/// value, which a hostile client controls.
const MAX_REASON: usize = 300;

/// Why a request is refused: where, and which rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.text())]
pub struct Invalid {
    /// The field path (`events[0].url`, `session_id`), empty for the body as a whole.
    pub field: String,
    pub rule: Rule,
}

/// The rule a field breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Not JSON of the expected shape (serde's reason, shortened).
    Json(String),
    /// A batch version this collector does not speak.
    Version(u32),
    Empty,
    TooMany(usize),
    /// More than this many bytes.
    TooLong(usize),
    /// Not this many characters of this set (`8-64 characters of [A-Za-z0-9_-]`).
    Charset(&'static str),
    Repeated,
    /// Identifiers sent without consent.
    WithoutConsent,
    /// A time outside its window (the window, in words).
    OutOfWindow(&'static str),
    HttpUrl,
    AbsoluteUrl,
    E164,
    E164OrAnonymous,
    Rfc3339,
    NestedDeeper(usize),
    LargerThan(&'static str),
    /// The pixel's query: missing, empty or not base64url.
    Pixel(String),
}

impl Invalid {
    fn new(field: impl Into<String>, rule: Rule) -> Invalid {
        Invalid { field: field.into(), rule }
    }

    /// The same problem on a field one level down (`url` → `events[0].url`).
    fn under(mut self, parent: &str) -> Invalid {
        self.field = format!("{parent}.{}", self.field);
        self
    }

    fn text(&self) -> String {
        let f = &self.field;
        match &self.rule {
            Rule::Json(reason) => reason.clone(),
            Rule::Version(v) => format!("unsupported batch version v={v}; this collector speaks v=1"),
            Rule::Empty => format!("{f} must not be empty"),
            Rule::TooMany(max) => format!("more than {max} {f} in one batch"),
            Rule::TooLong(max) => format!("{f} longer than {max} bytes"),
            Rule::Charset(set) => format!("{f} must be {set}"),
            Rule::Repeated => format!("{f} repeats an earlier event of this batch"),
            Rule::WithoutConsent => "visitor_id/session_id must not be sent without consent".to_owned(),
            Rule::OutOfWindow(window) => format!("{f} must be {window}"),
            Rule::HttpUrl => format!("{f} must be an absolute http(s) URL"),
            Rule::AbsoluteUrl => format!("{f} must be an absolute URL"),
            Rule::E164 => format!("{f} must be E.164"),
            Rule::E164OrAnonymous => format!("{f} must be an E.164 number or anonymous"),
            Rule::Rfc3339 => format!("{f} must be RFC 3339"),
            Rule::NestedDeeper(max) => format!("{f} nested deeper than {max} levels"),
            Rule::LargerThan(limit) => format!("{f} larger than {limit}"),
            Rule::Pixel(reason) => reason.clone(),
        }
    }
}

/// Parses a JSON body into `T`; the reason names where it failed (`events[0].ts`).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Invalid> {
    // Fast path: one UTF-8 check of the whole body, then serde_json over a
    // `str`, which skips re-validating every string it reads. Only a failure
    // is parsed again, from the bytes, with path tracking, to name the field.
    if let Ok(text) = std::str::from_utf8(body) {
        if let Ok(v) = serde_json::from_str(text) {
            return Ok(v);
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        json_reason(&path, e.into_inner())
    })?;
    de.end().map_err(|e| json_reason("", e))?;
    Ok(value)
}

fn json_reason(path: &str, err: serde_json::Error) -> Invalid {
    // A hostile nesting makes the path itself huge: keep its head, where the field names are.
    let path = if path.len() > 80 { format!("{}…", &path[..path.char_indices().nth(80).map(|(i, _)| i).unwrap_or(path.len())]) } else { path.to_owned() };
    let mut reason = if path.is_empty() || path == "." { format!("invalid JSON: {err}") } else { format!("invalid JSON at {path}: {err}") };
    if reason.len() > MAX_REASON {
        let mut cut = MAX_REASON;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
        reason.push('…');
    }
    let field = if path == "." { String::new() } else { path };
    Invalid::new(field, Rule::Json(reason))
}

/// Why a pixel request carries no usable batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PixelError {
    /// `d` would decode to more than the body limit.
    TooLarge,
    Bad(Invalid),
}

#[derive(serde::Deserialize)]
struct PixelQuery {
    d: Option<String>,
}

/// Longest `d` the pixel takes. Image URLs beyond ~32 KB are cut by proxies
/// and browsers alike (and the HTTP layer refuses URIs over 64 KiB), so a
/// bigger batch belongs in `POST /v1/collect`.
pub const MAX_PIXEL_D: usize = 32 * 1024;

/// The batch bytes of `GET /v1/p.gif?d=<base64url JSON>` (padding optional).
pub fn pixel_batch(query: &str) -> Result<Vec<u8>, PixelError> {
    let bad = |reason: String| PixelError::Bad(Invalid::new("d", Rule::Pixel(reason)));
    let q: PixelQuery = serde_urlencoded::from_str(query).map_err(|e| bad(format!("bad query string: {e}")))?;
    let d = q.d.ok_or_else(|| bad("missing query parameter d".into()))?;
    if d.len() > MAX_PIXEL_D {
        return Err(PixelError::TooLarge);
    }
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(d.trim_end_matches('=')).map_err(|e| bad(format!("d is not base64url: {e}")))?;
    if body.is_empty() {
        return Err(bad("d is empty".into()));
    }
    Ok(body)
}

const ID_8: &str = "8-64 characters of [A-Za-z0-9_-]";

/// Checks a `POST /v1/numbers` request.
pub fn numbers_request(r: &NumbersRequest) -> Result<(), Invalid> {
    if !id_ok(&r.session_id, 8) {
        return Err(Invalid::new("session_id", Rule::Charset(ID_8)));
    }
    if r.visitor_id.as_deref().is_some_and(|v| !id_ok(v, 8)) {
        return Err(Invalid::new("visitor_id", Rule::Charset(ID_8)));
    }
    check_url("url", &r.url)?;
    if let Some(referrer) = r.referrer.as_deref().filter(|r| !r.is_empty()) {
        check_referrer("referrer", referrer)?;
    }
    Ok(())
}

fn id_ok(s: &str, min: usize) -> bool {
    (min..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_len(field: &str, value: &str, max: usize) -> Result<(), Invalid> {
    if value.len() > max {
        return Err(Invalid::new(field, Rule::TooLong(max)));
    }
    Ok(())
}

fn check_url(field: &str, value: &str) -> Result<(), Invalid> {
    check_len(field, value, MAX_URL)?;
    if !(value.starts_with("https://") || value.starts_with("http://")) || !ringpath_types::url::has_host(value) {
        return Err(Invalid::new(field, Rule::HttpUrl));
    }
    Ok(())
}

/// A referrer is any absolute URL with a host: besides http(s), Android apps
/// send `android-app://com.google.android.gm/` (Gmail) and the like, and a
/// page view must not be lost for it.
fn check_referrer(field: &str, value: &str) -> Result<(), Invalid> {
    check_len(field, value, MAX_URL)?;
    if !ringpath_types::url::has_host(value) {
        return Err(Invalid::new(field, Rule::AbsoluteUrl));
    }
    Ok(())
}

fn depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Bytes `value` takes as compact JSON, counted without building it.
fn json_len(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// Checks a batch received at `now_ms`. Returns the clock skew to add to
/// client timestamps (server time minus the browser's `sent_at`).
pub fn batch(b: &Batch, now_ms: i64) -> Result<i64, Invalid> {
    if b.v != 1 {
        return Err(Invalid::new("v", Rule::Version(b.v)));
    }
    if b.events.is_empty() {
        return Err(Invalid::new("events", Rule::Empty));
    }
    if b.events.len() > MAX_EVENTS_PER_BATCH {
        return Err(Invalid::new("events", Rule::TooMany(MAX_EVENTS_PER_BATCH)));
    }
    let skew = now_ms - b.sent_at;
    if skew.abs() > MAX_CLOCK_SKEW_MS {
        return Err(Invalid::new("sent_at", Rule::OutOfWindow("within 30 days of the collector's clock")));
    }
    if !matches!(b.consent, Consent::Granted) && (b.visitor_id.is_some() || b.session_id.is_some()) {
        return Err(Invalid::new(if b.visitor_id.is_some() { "visitor_id" } else { "session_id" }, Rule::WithoutConsent));
    }
    for (field, value) in [("visitor_id", &b.visitor_id), ("session_id", &b.session_id), ("page_id", &b.page_id)] {
        if value.as_deref().is_some_and(|v| !id_ok(v, 8)) {
            return Err(Invalid::new(field, Rule::Charset(ID_8)));
        }
    }
    check_len("screen", b.screen.as_deref().unwrap_or(""), 32)?;
    check_len("lang", b.lang.as_deref().unwrap_or(""), 35)?;
    check_len("tz", b.tz.as_deref().unwrap_or(""), 64)?;
    let mut seen = std::collections::HashSet::with_capacity(b.events.len());
    for (i, e) in b.events.iter().enumerate() {
        // Paths are built only on failure: this runs for every accepted event.
        let at = |field: &str, rule: Rule| Invalid::new(format!("events[{i}].{field}"), rule);
        if !id_ok(&e.id, 1) {
            return Err(at("id", Rule::Charset("1-64 characters of [A-Za-z0-9_-]")));
        }
        if !seen.insert(e.id.as_str()) {
            return Err(at("id", Rule::Repeated));
        }
        let type_ok = (1..=64).contains(&e.kind.len()) && e.kind.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
        if !type_ok {
            return Err(at("type", Rule::Charset("1-64 characters of [a-z0-9_]")));
        }
        if e.ts > b.sent_at + 60_000 || b.sent_at - e.ts > MAX_EVENT_AGE_MS {
            return Err(at("ts", Rule::OutOfWindow("within 7 days before sent_at")));
        }
        let prefixed = |invalid: Invalid| invalid.under(&format!("events[{i}]"));
        check_url("url", &e.url).map_err(prefixed)?;
        if let Some(r) = e.referrer.as_deref().filter(|r| !r.is_empty()) {
            check_referrer("referrer", r).map_err(prefixed)?;
        }
        check_len("title", e.title.as_deref().unwrap_or(""), MAX_TITLE).map_err(prefixed)?;
        if e.number.as_deref().is_some_and(|n| !is_e164(n)) {
            return Err(at("number", Rule::E164));
        }
        if 1 + e.props.values().map(depth).max().unwrap_or(0) > MAX_PROPS_DEPTH {
            return Err(at("props", Rule::NestedDeeper(MAX_PROPS_DEPTH)));
        }
        if json_len(&e.props) > MAX_PROPS_BYTES {
            return Err(at("props", Rule::LargerThan("8 KiB")));
        }
    }
    Ok(skew)
}

/// Checks a call record from the telephony provider.
pub fn call(c: &CallRecord, now_ms: i64) -> Result<i64, Invalid> {
    let ok_id = (1..=64).contains(&c.call_id.len()) && c.call_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if !ok_id {
        return Err(Invalid::new("call_id", Rule::Charset("1-64 characters of [A-Za-z0-9-_.:]")));
    }
    if !is_e164(&c.to) {
        return Err(Invalid::new("to", Rule::E164));
    }
    let anonymous = matches!(c.from.to_ascii_lowercase().as_str(), "anonymous" | "restricted" | "unknown" | "");
    if !anonymous && !is_e164(&c.from) {
        return Err(Invalid::new("from", Rule::E164OrAnonymous));
    }
    let started = ringpath_types::time::parse_rfc3339_ms(&c.started_at).ok_or_else(|| Invalid::new("started_at", Rule::Rfc3339))?;
    if started > now_ms + 3_600_000 || now_ms - started > 90 * 24 * 3_600_000 {
        return Err(Invalid::new("started_at", Rule::OutOfWindow("within the last 90 days")));
    }
    if c.duration_s > 7 * 24 * 3600 {
        return Err(Invalid::new("duration_s", Rule::OutOfWindow("at most a week")));
    }
    check_len("caller_name", c.caller_name.as_deref().unwrap_or(""), 256)?;
    check_len("caller_city", c.caller_city.as_deref().unwrap_or(""), 256)?;
    Ok(started)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_946_400_000;

    fn good() -> Batch {
        serde_json::from_value(serde_json::json!({"v":1,"account":"acc_demo","sent_at":NOW,"consent":"granted",
          "visitor_id":"v1234567","session_id":"s1234567","events":[{"id":"e1","type":"pageview","ts":NOW - 1000,
          "url":"https://demo.example/","referrer":"https://www.google.com/","number":"+15550109001","props":{}}]}))
        .unwrap()
    }

    #[test]
    fn a_good_batch_passes_with_its_skew() {
        assert_eq!(batch(&good(), NOW + 250), Ok(250));
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn bad_batches_name_the_problem() {
        let cases: Vec<(fn(&mut Batch), &str)> = vec![
            (|b| b.v = 2, "version"),
            (|b| b.events.clear(), "empty"),
            (|b| b.events = vec![b.events[0].clone(); 101].into_iter().enumerate().map(|(i, mut e)| { e.id = format!("e{i}"); e }).collect(), "more than 100"),
            (|b| b.consent = Consent::Denied, "without consent"),
            (|b| b.visitor_id = Some("short".into()), "visitor_id"),
            (|b| b.session_id = Some("bad id!!".into()), "session_id"),
            (|b| b.events[0].id = String::new(), "events[0].id"),
            (|b| b.events.push(b.events[0].clone()), "repeats"),
            (|b| b.events[0].kind = "Page View".into(), "type"),
            (|b| b.events[0].ts = NOW + 3_600_000, "ts"),
            (|b| b.events[0].url = "javascript:alert(1)".into(), "url"),
            (|b| b.events[0].url = format!("https://x.example/{}", "a".repeat(5000)), "url longer"),
            (|b| b.events[0].referrer = Some("not a url".into()), "referrer"),
            (|b| b.events[0].number = Some("555-0100".into()), "E.164"),
            (|b| { b.events[0].props.insert("a".into(), serde_json::json!({"b":{"c":{"d":{"e":1}}}})); }, "deeper"),
            (|b| { b.events[0].props.insert("a".into(), serde_json::json!("x".repeat(9000))); }, "8 KiB"),
            (|b| b.sent_at = NOW - 40 * 24 * 3_600_000, "30 days"),
            (|b| b.screen = Some("x".repeat(40)), "screen"),
        ];
        for (mutate, want) in cases {
            let mut b = good();
            mutate(&mut b);
            let err = batch(&b, NOW).unwrap_err().to_string();
            assert!(err.contains(want), "wanted {want:?} in {err:?}");
        }
    }

    #[test]
    fn a_refusal_names_its_field_and_rule() {
        let mut b = good();
        b.events[0].url = "javascript:alert(1)".into();
        let err = batch(&b, NOW).unwrap_err();
        assert_eq!((err.field.as_str(), &err.rule), ("events[0].url", &Rule::HttpUrl));
        assert_eq!(err.to_string(), "events[0].url must be an absolute http(s) URL");
        b = good();
        b.events.push(b.events[0].clone());
        assert_eq!(batch(&b, NOW).unwrap_err(), Invalid { field: "events[1].id".into(), rule: Rule::Repeated });
    }

    #[test]
    fn app_referrers_are_kept() {
        let mut b = good();
        b.events[0].referrer = Some("android-app://com.google.android.gm/".into());
        assert!(batch(&b, NOW).is_ok());
        b.events[0].referrer = Some("android-app://".into());
        assert_eq!(batch(&b, NOW).unwrap_err(), Invalid { field: "events[0].referrer".into(), rule: Rule::AbsoluteUrl });
    }

    #[test]
    fn pending_batches_without_ids_pass() {
        let mut b = good();
        b.consent = Consent::Pending;
        b.visitor_id = None;
        b.session_id = None;
        b.page_id = Some("p1234567".into());
        assert!(batch(&b, NOW).is_ok());
    }

    #[test]
    fn call_checks() {
        let c: CallRecord = serde_json::from_value(serde_json::json!({"call_id":"CA1","to":"+15550109001","from":"+15557654321",
            "started_at":"2026-11-29T10:00:00Z","duration_s":125,"status":"completed"})).unwrap();
        assert_eq!(call(&c, NOW), Ok(NOW));
        let mut anon = c.clone();
        anon.from = "anonymous".into();
        assert!(call(&anon, NOW).is_ok());
        for (f, want) in [
            ((|c: &mut CallRecord| c.to = "123".into()) as fn(&mut CallRecord), "to"),
            (|c| c.call_id = "a b".into(), "call_id"),
            (|c| c.started_at = "yesterday".into(), "RFC 3339"),
            (|c| c.started_at = "2020-01-01T00:00:00Z".into(), "90 days"),
        ] {
            let mut bad = c.clone();
            f(&mut bad);
            assert!(call(&bad, NOW).unwrap_err().to_string().contains(want));
        }
    }

    #[test]
    fn parse_errors_name_the_field_and_stay_short() {
        let err = parse_json::<Batch>(br#"{"v":1,"account":"acc_demo","sent_at":"soon","consent":"granted","events":[]}"#).unwrap_err();
        assert_eq!(err.field, "sent_at");
        let err = err.to_string();
        assert!(err.contains("sent_at"), "{err}");
        let body = format!(r#"{{"v":1,"account":"acc_demo","sent_at":1,"consent":"granted","events":[{{"id":"e","type":"pageview","ts":"{}","url":"x"}}]}}"#, "9".repeat(10_000));
        let err = parse_json::<Batch>(body.as_bytes()).unwrap_err();
        assert_eq!(err.field, "events[0].ts");
        let err = err.to_string();
        assert!(err.contains("events[0].ts") && err.len() <= MAX_REASON + 4, "{err}");
        assert!(parse_json::<Batch>(b"{} trailing").is_err());
    }

    #[test]
    fn pixel_queries() {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"v":1}"#);
        assert_eq!(pixel_batch(&format!("d={b64}")).unwrap(), br#"{"v":1}"#);
        assert_eq!(pixel_batch(&format!("d={b64}%3D%3D&x=1")).unwrap(), br#"{"v":1}"#, "padding and other parameters are fine");
        assert!(matches!(pixel_batch(""), Err(PixelError::Bad(e)) if e.to_string().contains("missing")));
        assert!(matches!(pixel_batch("d=%%%"), Err(PixelError::Bad(_))));
        assert!(matches!(pixel_batch("d=ab+/"), Err(PixelError::Bad(e)) if e.to_string().contains("base64url")));
        assert!(matches!(pixel_batch(&format!("d={}", "A".repeat(100_000))), Err(PixelError::TooLarge)));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn id(min: usize) -> impl Strategy<Value = String> {
            proptest::string::string_regex(&format!("[A-Za-z0-9_-]{{{min},64}}")).unwrap()
        }

        fn event(sent_at: i64) -> impl Strategy<Value = serde_json::Value> {
            (
                prop_oneof![Just("pageview"), Just("call_click"), Just("form_submit"), Just("engagement"), Just("x_1")],
                0i64..MAX_EVENT_AGE_MS,
                proptest::string::string_regex("[a-z]{1,20}(\\.[a-z]{2,6}){1,2}").unwrap(),
                proptest::string::string_regex("(/[A-Za-z0-9._~-]{0,12}){0,4}(\\?[a-z]{1,6}=[A-Za-z0-9%]{0,10})?").unwrap(),
                proptest::option::of(proptest::string::string_regex("\\PC{0,200}").unwrap()),
                proptest::option::of(proptest::string::string_regex("\\+[1-9][0-9]{7,14}").unwrap()),
                proptest::collection::btree_map("[a-z]{1,8}", prop_oneof![any::<i64>().prop_map(serde_json::Value::from), "\\PC{0,40}".prop_map(serde_json::Value::from)], 0..5),
            )
                .prop_map(move |(kind, age, host, path, title, number, props)| {
                    serde_json::json!({"type": kind, "ts": sent_at - age, "url": format!("https://{host}{path}"),
                        "referrer": "https://www.google.com/", "title": title, "number": number, "props": props})
                })
        }

        fn valid_batch() -> impl Strategy<Value = serde_json::Value> {
            (any::<bool>(), id(8), id(8), proptest::collection::vec(event(NOW), 1..=MAX_EVENTS_PER_BATCH)).prop_map(|(granted, visitor, session, events)| {
                let events: Vec<_> = events
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut e)| {
                        e["id"] = format!("e{i}").into();
                        e
                    })
                    .collect();
                let mut b = serde_json::json!({"v": 1, "account": "acc_demo", "sent_at": NOW, "consent": if granted { "granted" } else { "denied" },
                    "page_id": "page0001", "events": events});
                if granted {
                    b["visitor_id"] = visitor.into();
                    b["session_id"] = session.into();
                }
                b
            })
        }

        /// A value of one event field that its rule forbids (scheme, host, length, charset, E.164).
        fn hostile_field() -> impl Strategy<Value = (&'static str, String)> {
            prop_oneof![
                "(javascript:|data:|ftp://|/|//|mailto:)\\PC{0,200}".prop_map(|v| ("url", v)),
                "https://demo\\.example/[a-z]{4100,4200}".prop_map(|v| ("url", v)),
                "[a-z ]{1,60}".prop_map(|v| ("referrer", v)),
                "https://www\\.google\\.com/[a-z]{4100,4200}".prop_map(|v| ("referrer", v)),
                "\\PC{1025,1400}".prop_map(|v| ("title", v)),
                "[A-Za-z0-9]{0,10}[^A-Za-z0-9_-][A-Za-z0-9]{0,10}".prop_map(|v| ("id", v)),
                "[a-z]{65,90}".prop_map(|v| ("id", v)),
                Just(("id", String::new())),
                "[a-z0-9_]{0,10}[^a-z0-9_][a-z0-9_]{0,10}".prop_map(|v| ("type", v)),
                "[a-z]{65,90}".prop_map(|v| ("type", v)),
                "[0-9]{1,20}".prop_map(|v| ("number", v)),
                "\\+0[0-9]{7,14}".prop_map(|v| ("number", v)),
                "\\+[1-9][0-9]{0,5}".prop_map(|v| ("number", v)),
                "\\+[1-9][0-9]{15,20}".prop_map(|v| ("number", v)),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

            #[test]
            fn generated_valid_batches_are_accepted(b in valid_batch(), recv_skew in -MAX_CLOCK_SKEW_MS + 1..MAX_CLOCK_SKEW_MS) {
                let body = serde_json::to_vec(&b).unwrap();
                let parsed: Batch = parse_json(&body).unwrap();
                prop_assert_eq!(batch(&parsed, NOW + recv_skew), Ok(recv_skew));
                // …and through the pixel too.
                let d = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&body);
                if d.len() <= MAX_PIXEL_D {
                    prop_assert_eq!(pixel_batch(&format!("d={d}")).unwrap(), body);
                } else {
                    prop_assert_eq!(pixel_batch(&format!("d={d}")), Err(PixelError::TooLarge));
                }
            }

            #[test]
            fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
                if let Ok(b) = parse_json::<Batch>(&body) { let _ = batch(&b, NOW); }
                if let Ok(c) = parse_json::<CallRecord>(&body) { let _ = call(&c, NOW); }
                if let Ok(r) = parse_json::<NumbersRequest>(&body) { let _ = numbers_request(&r); }
                let _ = pixel_batch(&String::from_utf8_lossy(&body));
            }

            #[test]
            fn mutated_valid_batches_never_panic(b in valid_batch(), cut in any::<prop::sample::Index>(), byte in any::<u8>(), pos in any::<prop::sample::Index>()) {
                let mut body = serde_json::to_vec(&b).unwrap();
                // Flip one byte and cut the tail: near-valid JSON is where parsers break.
                let p = pos.index(body.len());
                body[p] = byte;
                body.truncate(cut.index(body.len() + 1));
                if let Ok(b) = parse_json::<Batch>(&body) { let _ = batch(&b, NOW); }
            }

            #[test]
            fn arbitrary_field_values_never_panic_and_a_refusal_names_the_event(field in prop_oneof![Just("url"), Just("referrer"), Just("title"), Just("id"), Just("type"), Just("number")],
                                                                                  value in "\\PC{0,5000}") {
                let mut b: serde_json::Value = serde_json::json!({"v":1,"account":"acc_demo","sent_at":NOW,"consent":"denied",
                    "events":[{"id":"e1","type":"pageview","ts":NOW,"url":"https://demo.example/"}]});
                b["events"][0][field] = value.into();
                if let Ok(parsed) = parse_json::<Batch>(&serde_json::to_vec(&b).unwrap()) {
                    if let Err(reason) = batch(&parsed, NOW) {
                        prop_assert!(reason.field.starts_with("events[0]."), "{}", reason);
                    }
                }
            }

            #[test]
            fn hostile_field_values_are_rejected_naming_the_field((field, value) in hostile_field()) {
                let mut b: serde_json::Value = serde_json::json!({"v":1,"account":"acc_demo","sent_at":NOW,"consent":"denied",
                    "events":[{"id":"e1","type":"pageview","ts":NOW,"url":"https://demo.example/"}]});
                b["events"][0][field] = value.clone().into();
                let parsed = parse_json::<Batch>(&serde_json::to_vec(&b).unwrap());
                prop_assert!(parsed.is_ok(), "a string value always parses: {:?}", parsed.err());
                let verdict = batch(&parsed.unwrap(), NOW);
                prop_assert!(verdict.is_err(), "{} = {:?} was accepted", field, value);
                let reason = verdict.unwrap_err();
                prop_assert_eq!(&reason.field, &format!("events[0].{field}"), "{} = {:?}: {}", field, value, reason);
                prop_assert!(reason.to_string().starts_with(&format!("events[0].{field} ")), "{}", reason);
            }

            #[test]
            fn valid_calls_are_accepted(id in "[A-Za-z0-9._:-]{1,64}", to in "\\+[1-9][0-9]{7,14}", from in prop_oneof!["\\+[1-9][0-9]{7,14}", Just("anonymous".to_string())],
                                       ago_s in 0i64..(89 * 24 * 3600), duration in 0u32..(7 * 24 * 3600), name in proptest::option::of("\\PC{0,60}")) {
                let started = ringpath_types::time::format_rfc3339_ms(NOW - ago_s * 1000);
                let c: CallRecord = serde_json::from_value(serde_json::json!({"call_id": id, "to": to, "from": from, "started_at": started,
                    "duration_s": duration, "status": "completed", "caller_name": name})).unwrap();
                prop_assert!(call(&c, NOW).is_ok(), "{:?}", call(&c, NOW));
            }

            #[test]
            fn valid_number_requests_are_accepted(session in id(8), visitor in proptest::option::of(id(8)), path in "(/[a-z0-9]{0,10}){0,3}") {
                let r = NumbersRequest { account: "acc_demo".into(), session_id: session, visitor_id: visitor, url: format!("https://demo.example{path}"), referrer: None };
                prop_assert_eq!(numbers_request(&r), Ok(()));
            }
        }
    }
}
