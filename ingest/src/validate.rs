//! Semantic checks on a parsed batch or call record: limits, identifiers,
//! timestamps, consent rules. Pure functions; the reason text goes verbatim
//! into the 400 answer, so it names the field.

use ringpath_types::accounts::is_e164;
use ringpath_types::wire::{Batch, CallRecord, Consent};

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

fn id_ok(s: &str, min: usize) -> bool {
    (min..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_len(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!("{field} longer than {max} bytes"));
    }
    Ok(())
}

fn check_url(field: &str, value: &str) -> Result<(), String> {
    check_len(field, value, MAX_URL)?;
    if !(value.starts_with("https://") || value.starts_with("http://")) || ringpath_types::url::split(value).is_none() {
        return Err(format!("{field} must be an absolute http(s) URL"));
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

/// Checks a batch received at `now_ms`. Returns the clock skew to add to
/// client timestamps (server time minus the browser's `sent_at`).
pub fn batch(b: &Batch, now_ms: i64) -> Result<i64, String> {
    if b.v != 1 {
        return Err(format!("unsupported batch version v={}; this collector speaks v=1", b.v));
    }
    if b.events.is_empty() {
        return Err("events must not be empty".into());
    }
    if b.events.len() > MAX_EVENTS_PER_BATCH {
        return Err(format!("more than {MAX_EVENTS_PER_BATCH} events in one batch"));
    }
    let skew = now_ms - b.sent_at;
    if skew.abs() > MAX_CLOCK_SKEW_MS {
        return Err("sent_at is more than 30 days from the collector's clock".into());
    }
    match b.consent {
        Consent::Granted => {}
        Consent::Pending | Consent::Denied => {
            if b.visitor_id.is_some() || b.session_id.is_some() {
                return Err("visitor_id/session_id must not be sent without consent".into());
            }
        }
    }
    for (field, value) in [("visitor_id", &b.visitor_id), ("session_id", &b.session_id), ("page_id", &b.page_id)] {
        if let Some(v) = value {
            if !id_ok(v, 8) {
                return Err(format!("{field} must be 8-64 characters of [A-Za-z0-9_-]"));
            }
        }
    }
    check_len("screen", b.screen.as_deref().unwrap_or(""), 32)?;
    check_len("lang", b.lang.as_deref().unwrap_or(""), 35)?;
    check_len("tz", b.tz.as_deref().unwrap_or(""), 64)?;
    let mut seen = std::collections::HashSet::with_capacity(b.events.len());
    for (i, e) in b.events.iter().enumerate() {
        let at = |msg: &str| format!("events[{i}].{msg}");
        if !id_ok(&e.id, 1) {
            return Err(at("id must be 1-64 characters of [A-Za-z0-9_-]"));
        }
        if !seen.insert(e.id.as_str()) {
            return Err(at("id repeats an earlier event of this batch"));
        }
        let type_ok = (1..=64).contains(&e.kind.len()) && e.kind.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
        if !type_ok {
            return Err(at("type must be 1-64 characters of [a-z0-9_]"));
        }
        if e.ts > b.sent_at + 60_000 || b.sent_at - e.ts > MAX_EVENT_AGE_MS {
            return Err(at("ts must be within 7 days before sent_at"));
        }
        check_url(&at("url"), &e.url)?;
        if let Some(r) = e.referrer.as_deref().filter(|r| !r.is_empty()) {
            check_url(&at("referrer"), r)?;
        }
        check_len(&at("title"), e.title.as_deref().unwrap_or(""), MAX_TITLE)?;
        if let Some(n) = &e.number {
            if !is_e164(n) {
                return Err(at("number must be E.164"));
            }
        }
        let props = serde_json::Value::Object(e.props.clone());
        if depth(&props) > MAX_PROPS_DEPTH {
            return Err(at("props nested deeper than 4 levels"));
        }
        if serde_json::to_vec(&props).map(|v| v.len()).unwrap_or(usize::MAX) > MAX_PROPS_BYTES {
            return Err(at("props larger than 8 KiB"));
        }
    }
    Ok(skew)
}

/// Checks a call record from the telephony provider.
pub fn call(c: &CallRecord, now_ms: i64) -> Result<i64, String> {
    let ok_id = (1..=64).contains(&c.call_id.len()) && c.call_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if !ok_id {
        return Err("call_id must be 1-64 characters of [A-Za-z0-9-_.:]".into());
    }
    if !is_e164(&c.to) {
        return Err("to must be an E.164 number".into());
    }
    let anonymous = matches!(c.from.to_ascii_lowercase().as_str(), "anonymous" | "restricted" | "unknown" | "");
    if !anonymous && !is_e164(&c.from) {
        return Err("from must be an E.164 number or anonymous".into());
    }
    let started = ringpath_types::time::parse_rfc3339_ms(&c.started_at).ok_or("started_at must be RFC 3339")?;
    if started > now_ms + 3_600_000 || now_ms - started > 90 * 24 * 3_600_000 {
        return Err("started_at must be within the last 90 days".into());
    }
    if c.duration_s > 7 * 24 * 3600 {
        return Err("duration_s longer than a week".into());
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
            let err = batch(&b, NOW).unwrap_err();
            assert!(err.contains(want), "wanted {want:?} in {err:?}");
        }
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
            assert!(call(&bad, NOW).unwrap_err().contains(want));
        }
    }
}
