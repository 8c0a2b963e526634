//! Query-parameter parsing and validation: a raw query string in, one typed
//! struct per endpoint out (`CallsQuery`, `AttributionQuery`,
//! `TimeseriesQuery`), or a `ParamError` naming the parameter. Those structs
//! also document themselves (`IntoParams`), and the names a handler accepts
//! are read from that same documentation, so `/openapi.json` cannot list a
//! parameter the handler refuses or miss one it takes. No IO.

use std::collections::HashMap;

use base64::Engine;
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};
use utoipa::IntoParams;

pub const MAX_RANGE_MS: i64 = 400 * 24 * 3600 * 1000;
pub const DEFAULT_RANGE_MS: i64 = 30 * 24 * 3600 * 1000;
/// Hourly charts default to the last day.
pub const DEFAULT_HOURLY_RANGE_MS: i64 = 24 * 3600 * 1000;
/// Hourly charts span at most a month of hours.
pub const MAX_HOURLY_RANGE_MS: i64 = 31 * 24 * 3600 * 1000;
pub const MAX_LIMIT: u32 = 1000;
pub const DEFAULT_LIMIT: u32 = 100;
/// DateTime (UInt32 seconds) ends in 2106; later instants cannot be stored or asked for.
pub const MAX_TIME_MS: i64 = 4_294_967_295_000 - 366 * 24 * 3600 * 1000;

/// A query parameter with a fixed set of values.
pub trait Choice: Copy + 'static {
    const ALL: &'static [Self];
    const DEFAULT: Self;
    /// The value as the query string and the answers spell it.
    fn as_str(self) -> &'static str;
}

/// Declares a [`Choice`] enum: its variants and their wire names once, from
/// which come parsing, serialization and the OpenAPI schema (`enum`, `default`).
macro_rules! choice {
    ($(#[$meta:meta])* $name:ident, default $default:ident, { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl Choice for $name {
            const ALL: &'static [$name] = &[$($name::$variant),+];
            const DEFAULT: $name = $name::$default;
            fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                choice_schema::<$name>()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

choice!(
    /// What attribution groups sessions and calls by.
    Dimension, default Channel, {
        Channel => "channel",
        Source => "source",
        Medium => "medium",
        Campaign => "campaign",
        LandingPage => "landing_page",
        ReferrerHost => "referrer_host",
    }
);

choice!(
    /// How a call's credit is shared among the visitor's sessions.
    Model, default LastTouch, {
        LastTouch => "last_touch",
        FirstTouch => "first_touch",
        Linear => "linear",
    }
);

choice!(
    /// Bucket size of a timeseries, in the account's time zone.
    Interval, default Day, {
        Hour => "hour",
        Day => "day",
    }
);

choice!(
    /// What a timeseries counts.
    Metric, default Pageviews, {
        Sessions => "sessions",
        Calls => "calls",
        Pageviews => "pageviews",
    }
);

fn choice_schema<C: Choice>() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(C::ALL.iter().map(|c| c.as_str())))
        .default(Some(C::DEFAULT.as_str().into()))
        .into()
}

/// Declares a type that stands for a parameter's wire form in the OpenAPI
/// document (its field holds the parsed value) and gives its schema.
macro_rules! wire_schema {
    ($(#[$meta:meta])* $name:ident, $schema:expr) => {
        $(#[$meta])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

wire_schema!(
    /// `from` and `to`: RFC 3339 or epoch milliseconds.
    TimeParam,
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))))
        .item(ObjectBuilder::new().schema_type(Type::Integer).description(Some("epoch milliseconds")))
        .into()
);

wire_schema!(
    /// `limit`: a page size.
    LimitParam,
    ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(MAX_LIMIT)).default(Some(DEFAULT_LIMIT.into())).into()
);

wire_schema!(
    /// A flag: `true`/`1` or `false`/`0`.
    FlagParam,
    ObjectBuilder::new().schema_type(Type::Boolean).default(Some(false.into())).into()
);

/// `GET …/calls`: a page of calls in [from, to).
#[derive(Debug, Clone, PartialEq, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallsQuery {
    /// start (inclusive); default `to` − 30 days
    #[param(required = false, value_type = TimeParam, inline)]
    pub from: i64,
    /// end (exclusive); default now
    #[param(required = false, value_type = TimeParam, inline)]
    pub to: i64,
    /// page size
    #[param(required = false, value_type = LimitParam, inline)]
    pub limit: u32,
    /// `next_cursor` of the previous page
    #[param(required = false, value_type = String)]
    pub cursor: Option<(u64, String)>,
}

impl CallsQuery {
    pub fn parse(raw: &str, now_ms: i64) -> Result<CallsQuery, ParamError> {
        let q = parse_query(raw, &accepted::<CallsQuery>())?;
        let (from, to) = range(&q, now_ms)?;
        Ok(CallsQuery { from, to, limit: limit(&q)?, cursor: decode_cursor(&q)? })
    }
}

/// `GET …/attribution`: sessions, visitors and credited calls per key.
#[derive(Debug, Clone, PartialEq, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttributionQuery {
    /// start (inclusive); default `to` − 30 days
    #[param(required = false, value_type = TimeParam, inline)]
    pub from: i64,
    /// end (exclusive); default now
    #[param(required = false, value_type = TimeParam, inline)]
    pub to: i64,
    /// what to group by
    #[param(required = false, inline)]
    pub dimension: Dimension,
    /// attribution model
    #[param(required = false, inline)]
    pub model: Model,
    /// count bot traffic too
    #[param(required = false, value_type = FlagParam, inline)]
    pub include_bots: bool,
}

impl AttributionQuery {
    pub fn parse(raw: &str, now_ms: i64) -> Result<AttributionQuery, ParamError> {
        let q = parse_query(raw, &accepted::<AttributionQuery>())?;
        let (from, to) = range(&q, now_ms)?;
        Ok(AttributionQuery { from, to, dimension: one_of(&q, "dimension")?, model: one_of(&q, "model")?, include_bots: flag(&q, "include_bots")? })
    }
}

/// `GET …/timeseries`: one metric per local hour or day.
#[derive(Debug, Clone, PartialEq, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimeseriesQuery {
    /// start (inclusive); default `to` − 30 days (− 24 hours for interval=hour)
    #[param(required = false, value_type = TimeParam, inline)]
    pub from: i64,
    /// end (exclusive); default now
    #[param(required = false, value_type = TimeParam, inline)]
    pub to: i64,
    /// bucket size; hours span at most 31 days
    #[param(required = false, inline)]
    pub interval: Interval,
    /// what to count
    #[param(required = false, inline)]
    pub metric: Metric,
    /// count bot traffic too
    #[param(required = false, value_type = FlagParam, inline)]
    pub include_bots: bool,
}

impl TimeseriesQuery {
    pub fn parse(raw: &str, now_ms: i64) -> Result<TimeseriesQuery, ParamError> {
        let q = parse_query(raw, &accepted::<TimeseriesQuery>())?;
        let interval: Interval = one_of(&q, "interval")?;
        let default_span = if interval == Interval::Hour { DEFAULT_HOURLY_RANGE_MS } else { DEFAULT_RANGE_MS };
        let (from, to) = range_with_default(&q, now_ms, default_span)?;
        let metric = one_of(&q, "metric")?;
        let include_bots = flag(&q, "include_bots")?;
        if interval == Interval::Hour && to - from > MAX_HOURLY_RANGE_MS {
            return Err(ParamError::new("interval", "interval=hour spans at most 31 days"));
        }
        Ok(TimeseriesQuery { from, to, interval, metric, include_bots })
    }
}

/// The path of every per-account endpoint.
#[derive(Debug, Clone, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AccountPath {
    /// account id
    pub account: String,
}

/// The path of the per-visitor endpoints. `visitor_id` is checked by [`visitor_id`].
#[derive(Debug, Clone, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VisitorPath {
    /// account id
    pub account: String,
    /// the `_rp_vid` visitor id
    pub visitor_id: String,
}

/// The path of the agency endpoint.
#[derive(Debug, Clone, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AgencyPath {
    /// agency id
    pub agency: String,
}

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

/// The query parameters `P` documents: the only ones its endpoint accepts.
pub fn accepted<P: IntoParams>() -> Vec<String> {
    P::into_params(|| Some(ParameterIn::Query)).into_iter().map(|p| p.name).collect()
}

/// For endpoints that take no query parameters at all.
pub fn no_query(raw: &str) -> Result<(), ParamError> {
    parse_query::<&str>(raw, &[]).map(|_| ())
}

/// Parses a raw query string, rejecting repeated keys (ambiguous) and unknown ones.
pub fn parse_query<S: AsRef<str>>(raw: &str, allowed: &[S]) -> Result<Query, ParamError> {
    let mut q = HashMap::new();
    for (k, v) in ringpath_types::url::query_pairs(raw) {
        if !allowed.iter().any(|a| a.as_ref() == k) {
            let shown: String = k.chars().take(40).collect();
            let names: Vec<&str> = allowed.iter().map(AsRef::as_ref).collect();
            return Err(ParamError::new(&shown, format!("unknown parameter {shown:?}; allowed: {}", names.join(", "))));
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

/// The value of parameter `name`, one of `C::ALL`; `C::DEFAULT` when absent.
pub fn one_of<C: Choice>(q: &Query, name: &str) -> Result<C, ParamError> {
    let Some(given) = q.get(name) else { return Ok(C::DEFAULT) };
    C::ALL.iter().copied().find(|c| c.as_str() == given).ok_or_else(|| {
        let names: Vec<&str> = C::ALL.iter().map(|c| c.as_str()).collect();
        ParamError::new(name, format!("{name} must be one of {}", names.join(", ")))
    })
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
        assert!(one_of::<Dimension>(&query, "dimension").is_err());
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

    #[test]
    fn each_endpoint_accepts_exactly_the_parameters_it_documents() {
        assert_eq!(accepted::<CallsQuery>(), ["from", "to", "limit", "cursor"]);
        assert_eq!(accepted::<AttributionQuery>(), ["from", "to", "dimension", "model", "include_bots"]);
        assert_eq!(accepted::<TimeseriesQuery>(), ["from", "to", "interval", "metric", "include_bots"]);
        let now = 1_795_946_400_000;
        assert_eq!(CallsQuery::parse("model=linear", now).unwrap_err().param, "model");
        assert_eq!(AttributionQuery::parse("limit=5", now).unwrap_err().param, "limit");
        assert_eq!(TimeseriesQuery::parse("cursor=x", now).unwrap_err().param, "cursor");
        assert_eq!(no_query("from=1").unwrap_err().param, "from");
    }

    #[test]
    fn queries_parse_into_typed_values_with_their_defaults() {
        let now = 1_795_946_400_000;
        let a = AttributionQuery::parse("", now).unwrap();
        assert_eq!((a.from, a.to, a.dimension, a.model, a.include_bots), (now - DEFAULT_RANGE_MS, now, Dimension::Channel, Model::LastTouch, false));
        let a = AttributionQuery::parse("dimension=landing_page&model=linear&include_bots=1", now).unwrap();
        assert_eq!((a.dimension, a.model, a.include_bots), (Dimension::LandingPage, Model::Linear, true));
        let t = TimeseriesQuery::parse("interval=hour", now).unwrap();
        assert_eq!((t.from, t.interval, t.metric), (now - DEFAULT_HOURLY_RANGE_MS, Interval::Hour, Metric::Pageviews));
        let too_long = TimeseriesQuery::parse("from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z&interval=hour", now);
        assert_eq!(too_long.unwrap_err().param, "interval");
        let c = CallsQuery::parse(&format!("limit=7&cursor={}", encode_cursor(5, "C9")), now).unwrap();
        assert_eq!((c.limit, c.cursor), (7, Some((5, "C9".to_owned()))));
    }

    #[test]
    fn choices_serialize_as_their_wire_names() {
        for d in Dimension::ALL {
            assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
        }
        for m in Model::ALL {
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
        assert_eq!(serde_json::to_value(Interval::Hour).unwrap(), "hour");
        assert_eq!(serde_json::to_value(Metric::Calls).unwrap(), "calls");
        let schema = serde_json::to_value(<Metric as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["enum"], serde_json::json!(["sessions", "calls", "pageviews"]));
        assert_eq!(schema["default"], "pageviews");
    }
}
