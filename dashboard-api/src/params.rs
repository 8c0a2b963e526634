//! Query-parameter parsing and validation. Every enum here is also what the
//! OpenAPI document lists, so the docs cannot drift from what is accepted.
//! Errors name the parameter.

use std::collections::HashMap;

use base64::Engine;

pub const MAX_RANGE_MS: i64 = 400 * 24 * 3600 * 1000;
pub const DEFAULT_RANGE_MS: i64 = 30 * 24 * 3600 * 1000;
pub const MAX_LIMIT: u32 = 1000;
pub const DEFAULT_LIMIT: u32 = 100;
/// DateTime (UInt32 seconds) ends in 2106; later instants cannot be stored or asked for.
pub const MAX_TIME_MS: i64 = 4_294_967_295_000 - 366 * 24 * 3600 * 1000;

pub const DIMENSIONS: &[&str] = &["channel", "source", "medium", "campaign", "landing_page", "referrer_host"];
pub const MODELS: &[&str] = &["last_touch", "first_touch", "linear"];
pub const INTERVALS: &[&str] = &["hour", "day"];
pub const METRICS: &[&str] = &["sessions", "calls", "pageviews"];

/// A rejected parameter: which one, and why (the message names it too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    pub param: String,
    pub message: String,
}

impl ParamError {
    pub fn new(param: &str, message: impl Into<String>) -> ParamError {
        ParamError { param: param.to_owned(), message: message.into() }
    }
}

impl std::fmt::Display for ParamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub type Query = HashMap<String, String>;

/// Parses a raw query string, rejecting repeated keys (ambiguous) and unknown ones.
pub fn parse_query(raw: &str, allowed: &[&str]) -> Result<Query, ParamError> {
    let mut q = HashMap::new();
    for (k, v) in ringpath_types::url::query_pairs(raw) {
        if !allowed.contains(&k.as_str()) {
            let shown: String = k.chars().take(40).collect();
            return Err(ParamError::new(&shown, format!("unknown parameter {shown:?}; allowed: {}", allowed.join(", "))));
        }
        if q.insert(k.clone(), v).is_some() {
            return Err(ParamError::new(&k, format!("parameter {k} given twice")));
        }
    }
    Ok(q)
}

/// RFC 3339 or epoch milliseconds.
pub fn parse_time(name: &str, value: &str) -> Result<i64, ParamError> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) && value.len() <= 15 {
        return value.parse().map_err(|_| ParamError::new(name, format!("{name} is not a valid epoch-ms timestamp")));
    }
    let bad = || ParamError::new(name, format!("{name} must be RFC 3339 (2026-11-29T10:00:00Z) or epoch milliseconds"));
    // Years 1970..=9999 only: earlier instants have no data and later ones overflow DateTime.
    let ms = ringpath_types::time::parse_rfc3339_ms(value).ok_or_else(bad)?;
    if ms < 0 {
        return Err(bad());
    }
    Ok(ms)
}

/// `from`/`to` with defaults (the last 30 days) and a cap on the span.
pub fn range(q: &Query, now_ms: i64) -> Result<(i64, i64), ParamError> {
    range_with_default(q, now_ms, DEFAULT_RANGE_MS)
}

/// Like `range`, with another default span (hourly charts default to a day).
pub fn range_with_default(q: &Query, now_ms: i64, default_span_ms: i64) -> Result<(i64, i64), ParamError> {
    let to = q.get("to").map(|v| parse_time("to", v)).transpose()?.unwrap_or(now_ms);
    let from = q.get("from").map(|v| parse_time("from", v)).transpose()?.unwrap_or(to - default_span_ms);
    if from < 0 {
        // Only a defaulted from can be negative: `to` is within the default span of 1970.
        return Err(ParamError::new("to", "to is too early: the default from (to minus the default span) is before 1970"));
    }
    if to > MAX_TIME_MS {
        return Err(ParamError::new("to", "to is after 2105"));
    }
    if from >= to {
        return Err(ParamError::new("from", "from must be before to"));
    }
    if to - from > MAX_RANGE_MS {
        return Err(ParamError::new("from", "from..to spans more than 400 days"));
    }
    Ok((from, to))
}

pub fn one_of<'a>(q: &Query, name: &str, allowed: &'a [&'a str], default: &'a str) -> Result<&'a str, ParamError> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => allowed.iter().find(|a| **a == v).copied().ok_or_else(|| ParamError::new(name, format!("{name} must be one of {}", allowed.join(", ")))),
    }
}

pub fn limit(q: &Query) -> Result<u32, ParamError> {
    match q.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => v.parse::<u32>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| ParamError::new("limit", format!("limit must be 1..{MAX_LIMIT}"))),
    }
}

pub fn flag(q: &Query, name: &str) -> Result<bool, ParamError> {
    match q.get(name).map(String::as_str) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(_) => Err(ParamError::new(name, format!("{name} must be true or false"))),
    }
}

/// Opaque position in the calls list: (started_ms, call_id) of the last row served.
pub fn encode_cursor(started_ms: u64, call_id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{started_ms}:{call_id}"))
}

pub fn decode_cursor(q: &Query) -> Result<Option<(u64, String)>, ParamError> {
    let Some(raw) = q.get("cursor") else { return Ok(None) };
    let bad = || ParamError::new("cursor", "cursor is not one this API issued");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (ms, id) = text.split_once(':').ok_or_else(bad)?;
    if id.is_empty() || id.len() > 256 {
        return Err(bad());
    }
    Ok(Some((ms.parse().map_err(|_| bad())?, id.to_owned())))
}

/// Visitor ids as the tracker makes them.
pub fn visitor_id(v: &str) -> Result<(), ParamError> {
    if (8..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        Ok(())
    } else {
        Err(ParamError::new("visitor_id", "visitor_id must be 8-64 characters of [A-Za-z0-9_-]"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn q(raw: &str) -> Result<Query, ParamError> {
        parse_query(raw, &["from", "to", "limit", "cursor", "dimension", "include_bots"])
    }

    #[test]
    fn times_accept_rfc3339_and_epoch_ms() {
        assert_eq!(parse_time("from", "1795946400000"), Ok(1_795_946_400_000));
        assert_eq!(parse_time("from", "2026-11-29T10:00:00Z"), Ok(1_795_946_400_000));
        assert!(parse_time("from", "yesterday").unwrap_err().message.contains("from"));
        assert!(parse_time("from", "1; DROP TABLE events").is_err());
    }

    #[test]
    fn range_defaults_and_caps() {
        let now = 1_795_946_400_000;
        assert_eq!(range(&q("").unwrap(), now), Ok((now - DEFAULT_RANGE_MS, now)));
        assert!(range(&q("from=2026-11-29T10:00:00Z&to=2026-11-28T10:00:00Z").unwrap(), now).is_err());
        assert!(range(&q("from=2020-01-01T00:00:00Z&to=2026-11-28T10:00:00Z").unwrap(), now).unwrap_err().message.contains("400 days"));
    }

    #[test]
    fn unknown_or_repeated_parameters_are_rejected() {
        assert!(q("evil=1").unwrap_err().message.contains("unknown parameter"));
        assert!(q("limit=1&limit=2").unwrap_err().message.contains("twice"));
    }

    #[test]
    fn enums_and_limits() {
        let query = q("dimension=channel%27%20OR%201%3D1&limit=0").unwrap();
        assert!(one_of(&query, "dimension", DIMENSIONS, "channel").is_err());
        assert!(limit(&query).is_err());
        assert_eq!(limit(&q("limit=1000").unwrap()), Ok(1000));
        assert!(flag(&q("include_bots=maybe").unwrap(), "include_bots").is_err());
    }

    #[test]
    fn cursors_round_trip_and_reject_forgeries() {
        let c = encode_cursor(42, "CA1");
        let query = q(&format!("cursor={c}")).unwrap();
        assert_eq!(decode_cursor(&query), Ok(Some((42, "CA1".into()))));
        assert!(decode_cursor(&q("cursor=%21%21").unwrap()).is_err());
    }
}
