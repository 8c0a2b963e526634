//! The SQL behind every report. Values are always bound (`?`); the only
//! things formatted into SQL are column names picked from fixed enums.
//! Bots are excluded unless asked for. Counts read deduplicated data
//! (uniqExact on ids, FINAL on calls), so replays never inflate them.

use std::collections::BTreeMap;

use clickhouse::{Client, Row};
use ringpath_store::erasure::{self, ErasureStatus};
use ringpath_store::erasure_job;
use ringpath_store::rows::{AssignmentRow, CallRow, ErasureJobRow, EventRow, SessionRow};
use ringpath_store::views::{PAGEVIEWS_STATE, SESSIONS_SKETCH, SESSIONS_STATE, VISITORS_SKETCH};
use ringpath_store::StoreError;
use serde::{Deserialize, Serialize};

use crate::answers::AttributionRow;
use crate::params::{AttributionQuery, CallsQuery, Choice, Dimension, Interval, Metric, Model, TimeseriesQuery};

/// A report that failed: what ClickHouse said, classed by `ringpath_store`.
pub type ReportError = StoreError;

/// Key of rows whose dimension is empty (a direct visit has no referrer host).
pub const NOT_SET: &str = "(not set)";
/// Key of calls credited to no session or source (the site's own number, unknown numbers).
pub const UNATTRIBUTED: &str = "(unattributed)";

/// An account's calls in [from, to) ms. The `started_at` (seconds) bounds repeat
/// the range on the partition column so whole months are skipped.
const CALLS_IN_RANGE: &str = "account_id = ? AND started_at >= toDateTime(?) AND started_at <= toDateTime(?) AND started_ms >= ? AND started_ms < ?";

/// Whole UTC hours of a range.
const STATS_IN_RANGE: &str = "account_id = ? AND hour >= toDateTime(?) AND hour < toDateTime(?)";
/// One of the partial hours at either end of a range (`Split::bind_edges`
/// binds the head, then the tail). Two plain ranges, not one OR: 18.16 only
/// skips granules and moves the filter to PREWHERE for the plain form.
/// PREWHERE is explicit: left to itself, 18.16 may pick `channel != ''` or
/// `is_bot = 0` and read a whole day of strings for a few minutes of events.
const EDGE_IN_RANGE: &str = "PREWHERE ts_ms >= ? AND ts_ms < ? WHERE account_id = ? AND ts >= toDateTime(?) AND ts <= toDateTime(?)";

/// A range as attribution reads it: whole UTC days, whole hours, and the ragged
/// ends (ms), each list without empty pieces. Days and hours in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Pieces {
    pub days: Vec<(u32, u32)>,
    pub hours: Vec<(u32, u32)>,
    pub edges: Vec<(u64, u64)>,
}

impl Pieces {
    pub fn new(from: i64, to: i64) -> Pieces {
        let split = Split::new(from, to);
        let edges: Vec<(u64, u64)> = [split.head, split.tail].into_iter().filter(|(lo, hi)| lo < hi).collect();
        let (h1, h2) = split.stats;
        if h1 >= h2 {
            return Pieces { days: Vec::new(), hours: Vec::new(), edges };
        }
        let d1 = h1.div_ceil(86_400) * 86_400;
        let d2 = h2 / 86_400 * 86_400;
        if d1 >= d2 {
            return Pieces { days: Vec::new(), hours: vec![(h1, h2)], edges };
        }
        let hours = [(h1, d1), (d2, h2)].into_iter().filter(|(lo, hi)| lo < hi).collect();
        Pieces { days: vec![(d1, d2)], hours, edges }
    }
}

/// A report range cut into the whole hours event_stats answers and the ragged
/// ends only events can. uniq states are sets, so an overlap would not count twice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    pub stats: (u32, u32),
    pub head: (u64, u64),
    pub tail: (u64, u64),
}

impl Split {
    pub fn new(from: i64, to: i64) -> Split {
        let (from, to) = (from.max(0) as u64, to.max(0) as u64);
        let first_hour = from.div_ceil(3_600_000) * 3_600_000;
        let last_hour = to / 3_600_000 * 3_600_000;
        if first_hour >= last_hour {
            return Split { stats: (0, 0), head: (from, to), tail: (to, to) };
        }
        Split { stats: ((first_hour / 1000) as u32, (last_hour / 1000) as u32), head: (from, first_hour), tail: (last_hour, to) }
    }

    /// Everything from events (no whole hours from event_stats).
    pub fn events_only(from: i64, to: i64) -> Split {
        let (from, to) = (from.max(0) as u64, to.max(0) as u64);
        Split { stats: (0, 0), head: (from, to), tail: (to, to) }
    }

    fn bind_stats(&self, q: clickhouse::query::Query, account: &str) -> clickhouse::query::Query {
        q.bind(account).bind(self.stats.0).bind(self.stats.1)
    }

    fn bind_edges(&self, q: clickhouse::query::Query, account: &str) -> clickhouse::query::Query {
        let secs = |ms: u64| (ms / 1000).min(u32::MAX as u64) as u32;
        let secs_up = |ms: u64| ms.div_ceil(1000).min(u32::MAX as u64) as u32;
        let mut q = q;
        for (lo, hi) in [self.head, self.tail] {
            q = q.bind(lo).bind(hi).bind(account).bind(secs(lo)).bind(secs_up(hi));
        }
        q
    }
}

/// Binds the five values of `CALLS_IN_RANGE`.
fn bind_range(q: clickhouse::query::Query, account: &str, from: i64, to: i64) -> clickhouse::query::Query {
    let from_s = (from.max(0) / 1000) as u32;
    let to_s = ((to.max(0) + 999) / 1000).min(u32::MAX as i64) as u32;
    q.bind(account).bind(from_s).bind(to_s).bind(from.max(0) as u64).bind(to.max(0) as u64)
}

/// The columns a dimension is read from: (events column, last-touch calls
/// column, first-touch calls column, linear calls array).
fn dimension_columns(dimension: Dimension) -> (&'static str, &'static str, &'static str, &'static str) {
    match dimension {
        Dimension::Channel => ("channel", "channel", "first_touch_channel", "linear_channel"),
        Dimension::Source => ("source", "source", "first_touch_source", "linear_source"),
        Dimension::Medium => ("medium", "medium", "first_touch_medium", "linear_medium"),
        Dimension::Campaign => ("campaign", "campaign", "first_touch_campaign", "linear_campaign"),
        Dimension::LandingPage => ("path", "landing_page", "first_touch_landing_page", "linear_landing_page"),
        Dimension::ReferrerHost => ("referrer_host", "referrer_host", "first_touch_referrer_host", "linear_referrer_host"),
    }
}

/// Sessions and visitors that landed from a key.
#[derive(Debug, Row, Deserialize)]
pub struct KeyCount {
    pub key: String,
    pub sessions: u64,
    pub visitors: u64,
}

/// Calls a model credits to a key (fractions under `linear`).
#[derive(Debug, Row, Deserialize)]
pub struct KeyCalls {
    pub key: String,
    pub calls: f64,
}

/// The SQL of the credited calls per key under `model`.
fn calls_by_key_sql(dimension: Dimension, model: Model) -> String {
    let (_, last_col, first_col, linear_col) = dimension_columns(dimension);
    let single = |col: &str| {
        format!(
            "SELECT if(attribution IN ('session', 'source'), if({col} = '', '{NOT_SET}', {col}), '{UNATTRIBUTED}') AS key, toFloat64(count()) AS calls \
             FROM calls FINAL WHERE {CALLS_IN_RANGE} GROUP BY key"
        )
    };
    match model {
        Model::LastTouch => single(last_col),
        Model::FirstTouch => single(first_col),
        Model::Linear => format!(
            "SELECT if(touch = '', '{NOT_SET}', touch) AS key, sum(1 / length(touches)) AS calls FROM ( \
               SELECT if(attribution IN ('session', 'source') AND length({linear_col}) > 0, {linear_col}, ['{UNATTRIBUTED}']) AS touches \
               FROM calls FINAL WHERE {CALLS_IN_RANGE} \
             ) ARRAY JOIN touches AS touch GROUP BY touch"
        ),
    }
}

/// One report row per key that has sessions or credited calls, most credited
/// calls first, then most sessions, then by key. Credit and rate to 4
/// decimals, the rate from the unrounded credit.
pub fn merge_attribution(sessions: Vec<KeyCount>, calls: Vec<KeyCalls>) -> Vec<AttributionRow> {
    let mut rows: BTreeMap<String, AttributionRow> = BTreeMap::new();
    let empty = |key: String| AttributionRow { key, sessions: 0, visitors: 0, calls: 0.0, conversion_rate: 0.0 };
    for s in sessions {
        rows.insert(s.key.clone(), AttributionRow { sessions: s.sessions, visitors: s.visitors, ..empty(s.key) });
    }
    for c in calls {
        rows.entry(c.key.clone()).or_insert_with(|| empty(c.key)).calls += c.calls;
    }
    let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
    let mut out: Vec<AttributionRow> = rows
        .into_values()
        .map(|r| AttributionRow { conversion_rate: if r.sessions > 0 { round(r.calls / r.sessions as f64) } else { 0.0 }, calls: round(r.calls), ..r })
        .collect();
    out.sort_by(|a, b| b.calls.total_cmp(&a.calls).then(b.sessions.cmp(&a.sessions)).then(a.key.cmp(&b.key)));
    out
}

/// A timeseries bucket: its start (epoch seconds) and what it counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Row, Deserialize)]
pub struct Bucket {
    pub t: u32,
    pub value: u64,
}

#[derive(Debug, Row, Deserialize)]
struct BucketStart {
    t: u32,
}

/// ClickHouse's name of a bucket's start function.
fn bucket_fn(interval: Interval) -> &'static str {
    match interval {
        Interval::Hour => "toStartOfHour",
        Interval::Day => "toStartOfDay",
    }
}

#[derive(Debug, Clone, Row, Serialize, Deserialize, PartialEq)]
pub struct SessionSummary {
    pub session_id: String,
    pub started_ms: u64,
    pub ended_ms: u64,
    pub pageviews: u64,
    pub channel: String,
    pub source: String,
    pub medium: String,
    pub campaign: String,
    pub landing_page: String,
    pub referrer_host: String,
}

#[derive(Debug, Clone, Row, Serialize, Deserialize, PartialEq)]
pub struct PageRow {
    pub event_id: String,
    pub event_type: String,
    pub ts_ms: u64,
    pub session_id: String,
    pub url: String,
    pub title: String,
    pub number: String,
}

#[derive(Clone)]
pub struct Reports {
    pub reader: Client,
    pub writer: Client,
}

impl Reports {
    pub async fn attribution(&self, account: &str, q: &AttributionQuery) -> Result<Vec<AttributionRow>, ReportError> {
        let sessions = self.sessions_by_key(account, q).fetch_all::<KeyCount>();
        let calls = bind_range(self.reader.query(&calls_by_key_sql(q.dimension, q.model)), account, q.from, q.to).fetch_all::<KeyCalls>();
        // Two independent reads: run them side by side.
        let (sessions, calls) = tokio::try_join!(sessions, calls)?;
        Ok(merge_attribution(sessions, calls))
    }

    /// Sessions and visitors per key: whole UTC days from attribution_daily,
    /// whole hours around them from attribution_stats, ragged ends from
    /// events. Sketches merge as unions.
    fn sessions_by_key(&self, account: &str, q: &AttributionQuery) -> clickhouse::query::Query {
        let (ev_col, ..) = dimension_columns(q.dimension);
        let bots = if q.include_bots { "" } else { " AND is_bot = 0" };
        let pieces = Pieces::new(q.from, q.to);
        let mut parts: Vec<String> = Vec::new();
        for _ in &pieces.days {
            parts.push(format!("SELECT key, sessions AS s, visitors AS v FROM attribution_daily WHERE account_id = ? AND dimension = ? AND hour >= toDateTime(?) AND hour < toDateTime(?){bots}"));
        }
        for _ in &pieces.hours {
            parts.push(format!("SELECT key, sessions AS s, visitors AS v FROM attribution_stats WHERE account_id = ? AND dimension = ? AND hour >= toDateTime(?) AND hour < toDateTime(?){bots}"));
        }
        for _ in &pieces.edges {
            parts.push(format!("SELECT {ev_col} AS key, {SESSIONS_SKETCH} AS s, {VISITORS_SKETCH} AS v FROM events {EDGE_IN_RANGE} AND channel != ''{bots} GROUP BY key"));
        }
        let sql = format!("SELECT if(key = '', '{NOT_SET}', key) AS key, uniqHLL12Merge(s) AS sessions, uniqHLL12IfMerge(v) AS visitors FROM ({}) GROUP BY key", parts.join(" UNION ALL "));
        let mut query = self.reader.query(&sql);
        for (lo, hi) in pieces.days.iter().chain(pieces.hours.iter()) {
            query = query.bind(account).bind(q.dimension.as_str()).bind(*lo).bind(*hi);
        }
        for (lo, hi) in &pieces.edges {
            query = query.bind(*lo).bind(*hi).bind(account).bind(lo / 1000).bind(hi.div_ceil(1000));
        }
        query
    }

    /// Every bucket in [from, to), zero-filled. Buckets are hours or days of
    /// the zone `tz` (an IANA name, bound as a value): DST days are 23 or 25
    /// hours long, and zones with half-hour offsets get their own hours.
    /// Sessions count in the bucket where they landed (as in attribution).
    pub async fn timeseries(&self, account: &str, q: &TimeseriesQuery, tz: &str) -> Result<Vec<Bucket>, ReportError> {
        let starts = self.bucket_starts(q, tz).await?;
        // UTC hours of event_stats fit inside local hours and days unless the zone's
        // offset is not whole hours (India, Nepal, …): then read the events alone.
        let whole_hours = starts.iter().all(|t| t % 3600 == 0);
        let found: BTreeMap<u32, u64> = self.bucket_counts(account, q, tz, whole_hours).await?.into_iter().map(|b| (b.t, b.value)).collect();
        Ok(starts.into_iter().map(|t| Bucket { t, value: found.get(&t).copied().unwrap_or(0) }).collect())
    }

    /// The start (epoch seconds) of every bucket the range touches, by
    /// ClickHouse's own bucketing so the counts land on them exactly: one tick
    /// per hour always lands in each local hour and day, whatever the zone's
    /// offset or DST.
    async fn bucket_starts(&self, q: &TimeseriesQuery, tz: &str) -> Result<Vec<u32>, ReportError> {
        let bucket = bucket_fn(q.interval);
        let from_s = q.from.max(0) / 1000;
        let ticks = ((q.to.max(0) / 1000 - from_s + 3599) / 3600 + 1).max(1);
        let starts = self
            .reader
            .query(&format!("SELECT t FROM (SELECT toUInt32({bucket}(toDateTime(? + number * 3600), ?)) AS t FROM numbers(?) GROUP BY t) WHERE t < ? ORDER BY t"))
            .bind(from_s as u64)
            .bind(tz)
            .bind(ticks as u64)
            .bind(((q.to.max(0) + 999) / 1000) as u64)
            .fetch_all::<BucketStart>()
            .await?;
        Ok(starts.into_iter().map(|b| b.t).collect())
    }

    /// The buckets that counted anything. Sessions and page views from
    /// event_stats' whole UTC hours plus the ragged ends from events (all from
    /// events when the zone's hours are not UTC hours); calls from calls.
    async fn bucket_counts(&self, account: &str, q: &TimeseriesQuery, tz: &str, whole_hours: bool) -> Result<Vec<Bucket>, ReportError> {
        let bucket = bucket_fn(q.interval);
        let bots = if q.include_bots { "" } else { " AND is_bot = 0" };
        // (stats column, the same state from events, which events can hold it, which stats rows)
        let (state_col, state_expr, filter, stats_filter) = match q.metric {
            Metric::Calls => {
                let sql = format!("SELECT toUInt32({bucket}(started_at, ?)) AS t, uniqExact(call_id) AS value FROM calls WHERE {CALLS_IN_RANGE} GROUP BY t");
                return Ok(bind_range(self.reader.query(&sql).bind(tz), account, q.from, q.to).fetch_all::<Bucket>().await?);
            }
            Metric::Sessions => ("sessions", SESSIONS_STATE, " AND channel != ''", " AND channel != ''"),
            Metric::Pageviews => ("pageviews", PAGEVIEWS_STATE, " AND event_type = 'pageview'", ""),
        };
        let split = if whole_hours { Split::new(q.from, q.to) } else { Split::events_only(q.from, q.to) };
        let sql = format!(
            "SELECT toUInt32({bucket}(hour, ?)) AS t, uniqIfMerge(x) AS value FROM ( \
               SELECT hour, {state_col} AS x FROM event_stats WHERE {STATS_IN_RANGE}{stats_filter}{bots} \
               UNION ALL \
               SELECT toStartOfHour(ts) AS hour, {state_expr} AS x FROM events {EDGE_IN_RANGE}{filter}{bots} GROUP BY hour \
               UNION ALL \
               SELECT toStartOfHour(ts) AS hour, {state_expr} AS x FROM events {EDGE_IN_RANGE}{filter}{bots} GROUP BY hour \
             ) GROUP BY t"
        );
        let sql = if whole_hours { sql } else { sql.replace("toStartOfHour(ts) AS hour", "ts AS hour").replace("GROUP BY hour", "GROUP BY ts") };
        Ok(split.bind_edges(split.bind_stats(self.reader.query(&sql).bind(tz), account), account).fetch_all::<Bucket>().await?)
    }

    /// Calls newest first, after the cursor (the (started_ms, call_id) of the
    /// last row already served): one more than the page holds, which says
    /// whether there is a next page.
    pub async fn calls(&self, account: &str, q: &CallsQuery) -> Result<Vec<CallRow>, ReportError> {
        let (cursor_ms, cursor_id, use_cursor) = match &q.cursor {
            Some((ms, id)) => (*ms, id.clone(), 1u8),
            None => (0, String::new(), 0u8),
        };
        // The page's ids first, from the few columns that decide it; then whole
        // rows for just those ids, which the sort key finds (account, call id).
        // (The newest version of each by LIMIT BY, not FINAL, which would merge the
        // whole account's calls across every column.)
        let query = self.reader.query(&format!(
            "SELECT * FROM ( \
               SELECT ?fields FROM calls PREWHERE call_id IN ( \
                 SELECT call_id FROM calls FINAL WHERE {CALLS_IN_RANGE} \
                 AND (? = 0 OR started_ms < ? OR (started_ms = ? AND call_id < ?)) \
                 ORDER BY started_ms DESC, call_id DESC LIMIT ? \
               ) WHERE account_id = ? ORDER BY call_id, version DESC LIMIT 1 BY call_id \
             ) ORDER BY started_ms DESC, call_id DESC"
        ));
        Ok(bind_range(query, account, q.from, q.to)
            .bind(use_cursor)
            .bind(cursor_ms)
            .bind(cursor_ms)
            .bind(cursor_id)
            .bind(q.limit + 1)
            .bind(account)
            .fetch_all::<CallRow>()
            .await?)
    }

    /// A visitor's sessions, from `visitor_events` (one range of its sort key).
    /// Aliases differ from column names: 18.16 substitutes an alias inside the
    /// other expressions (`argMinIf(channel, …) AS channel` nests aggregates).
    /// Rows are read by position, so the names do not matter to the client.
    pub async fn journey_sessions(&self, account: &str, visitor: &str) -> Result<Vec<SessionSummary>, ReportError> {
        Ok(self
            .reader
            .query(
                "SELECT session_id, min(ts_ms) AS s_started, max(ts_ms) AS s_ended, uniqExactIf(event_id, event_type = 'pageview') AS s_pageviews, \
                 argMinIf(channel, ts_ms, channel != '') AS s_channel, argMinIf(source, ts_ms, channel != '') AS s_source, \
                 argMinIf(medium, ts_ms, channel != '') AS s_medium, argMinIf(campaign, ts_ms, channel != '') AS s_campaign, \
                 argMinIf(path, ts_ms, channel != '') AS s_landing_page, argMinIf(referrer_host, ts_ms, channel != '') AS s_referrer_host \
                 FROM visitor_events WHERE account_id = ? AND visitor_id = ? GROUP BY session_id ORDER BY s_started",
            )
            .bind(account)
            .bind(visitor)
            .fetch_all::<SessionSummary>()
            .await?)
    }

    pub async fn journey_pages(&self, account: &str, visitor: &str) -> Result<Vec<PageRow>, ReportError> {
        Ok(self
            .reader
            .query(
                "SELECT event_id, event_type, ts_ms, session_id, url, title, number FROM visitor_events WHERE account_id = ? AND visitor_id = ? \
                 ORDER BY ts_ms, event_id LIMIT 1 BY event_id LIMIT 10000",
            )
            .bind(account)
            .bind(visitor)
            .fetch_all::<PageRow>()
            .await?)
    }

    /// A visitor's calls as `calls FINAL` has them (the newest version of
    /// each, if that still names the visitor). The ids of calls any version
    /// of which names the visitor come from two small columns; whole rows
    /// only for those, which the sort key finds (account, call id), instead
    /// of FINAL merging the account's calls across every column.
    pub async fn visitor_calls(&self, account: &str, visitor: &str) -> Result<Vec<CallRow>, ReportError> {
        Ok(self
            .reader
            .query(
                "SELECT * FROM ( \
                   SELECT ?fields FROM calls PREWHERE call_id IN (SELECT call_id FROM calls WHERE account_id = ? AND visitor_id = ?) \
                   WHERE account_id = ? ORDER BY call_id, version DESC LIMIT 1 BY call_id \
                 ) WHERE visitor_id = ? ORDER BY started_ms",
            )
            .bind(account)
            .bind(visitor)
            .bind(account)
            .bind(visitor)
            .fetch_all::<CallRow>()
            .await?)
    }

    /// Every stored row about a visitor (data subject access): events (from
    /// `visitor_events`, their copy sorted by visitor), calls, number
    /// assignments and the sessions table, one row per logical row (the
    /// newest version of each id; no FINAL, which would merge the whole account).
    pub async fn export(&self, account: &str, visitor: &str) -> Result<VisitorRows, ReportError> {
        let events = self
            .reader
            .query("SELECT ?fields FROM visitor_events WHERE account_id = ? AND visitor_id = ? ORDER BY ts_ms, event_id, version DESC LIMIT 1 BY event_id")
            .bind(account)
            .bind(visitor)
            .fetch_all::<EventRow>();
        let assignments = self
            .reader
            .query("SELECT ?fields FROM assignments WHERE account_id = ? AND visitor_id = ? ORDER BY assigned_ms, number, session_id, version DESC LIMIT 1 BY number, assigned_ms, session_id")
            .bind(account)
            .bind(visitor)
            .fetch_all::<AssignmentRow>();
        // One row per session: the one its ReplacingMergeTree keeps (the earliest landing).
        let sessions = self
            .reader
            .query("SELECT ?fields FROM sessions WHERE account_id = ? AND visitor_id = ? ORDER BY started_ms, session_id LIMIT 1 BY session_id")
            .bind(account)
            .bind(visitor)
            .fetch_all::<SessionRow>();
        let events = async { events.await.map_err(ReportError::from) };
        let assignments = async { assignments.await.map_err(ReportError::from) };
        let sessions = async { sessions.await.map_err(ReportError::from) };
        let (events, calls, assignments, sessions) = tokio::try_join!(events, self.visitor_calls(account, visitor), assignments, sessions)?;
        Ok(VisitorRows { events, calls, assignments, sessions })
    }

    /// Records an erasure of a visitor (its job and the visitor's tombstone,
    /// `ringpath_store::erasure_job::request_erasure`); the erasure worker
    /// runs the rest.
    pub async fn request_erasure(&self, account: &str, visitor: &str, owner: &str) -> Result<ErasureJobRow, ReportError> {
        erasure_job::request_erasure(&self.writer, account, visitor, owner).await
    }

    /// How far a visitor's erasure is.
    pub async fn erasure_status(&self, account: &str, visitor: &str) -> Result<ErasureStatus, ReportError> {
        erasure::erasure_status(&self.reader, account, visitor).await
    }
}

/// Every stored row about one visitor.
#[derive(Debug, Clone)]
pub struct VisitorRows {
    pub events: Vec<EventRow>,
    pub calls: Vec<CallRow>,
    pub assignments: Vec<AssignmentRow>,
    /// The visitor's sessions as attribution reads them (migration 0014).
    pub sessions: Vec<SessionRow>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn ranges_split_into_whole_hours_and_ragged_ends() {
        let h: u64 = 3_600_000;
        let i = |v: u64| v as i64;
        let s = Split::new(i(10 * h + 5), i(13 * h + 7));
        assert_eq!(s, Split { stats: ((11 * h / 1000) as u32, (13 * h / 1000) as u32), head: (10 * h + 5, 11 * h), tail: (13 * h, 13 * h + 7) });
        let aligned = Split::new(i(10 * h), i(12 * h));
        assert_eq!((aligned.head.0, aligned.head.1, aligned.tail.0, aligned.tail.1), (10 * h, 10 * h, 12 * h, 12 * h));
        let inside = Split::new(i(10 * h + 5), i(10 * h + 9));
        assert_eq!((inside.stats, inside.head), ((0, 0), (10 * h + 5, 10 * h + 9)));
    }

    #[test]
    fn attribution_reads_whole_days_then_hours_then_ragged_ends() {
        let (h, d) = (3_600_000i64, 86_400_000i64);
        let s = |ms: i64| (ms / 1000) as u32;
        let p = Pieces::new(10 * d + 5 * h + 7, 13 * d + 2 * h + 9);
        assert_eq!(p.days, vec![(s(11 * d), s(13 * d))]);
        assert_eq!(p.hours, vec![(s(10 * d + 6 * h), s(11 * d)), (s(13 * d), s(13 * d + 2 * h))]);
        assert_eq!(p.edges, vec![((10 * d + 5 * h + 7) as u64, (10 * d + 6 * h) as u64), ((13 * d + 2 * h) as u64, (13 * d + 2 * h + 9) as u64)]);
        let aligned = Pieces::new(10 * d, 40 * d);
        assert_eq!((aligned.days, aligned.hours, aligned.edges), (vec![(s(10 * d), s(40 * d))], vec![], vec![]));
        let short = Pieces::new(10 * d + h, 10 * d + 5 * h + 1);
        assert_eq!((short.days.len(), short.hours, short.edges.len()), (0, vec![(s(10 * d + h), s(10 * d + 5 * h))], 1));
    }

    #[test]
    fn attribution_rows_merge_sessions_and_credit_rounded_and_sorted() {
        let count = |key: &str, sessions, visitors| KeyCount { key: key.into(), sessions, visitors };
        let credit = |key: &str, calls| KeyCalls { key: key.into(), calls };
        let rows = merge_attribution(
            vec![count("email", 1, 1), count("paid_search", 3, 1), count("direct", 1, 1)],
            vec![credit("paid_search", 1.0 / 3.0), credit("paid_search", 1.0 / 3.0), credit(UNATTRIBUTED, 1.0), credit("direct", 1.0)],
        );
        let got: Vec<(&str, u64, f64, f64)> = rows.iter().map(|r| (r.key.as_str(), r.sessions, r.calls, r.conversion_rate)).collect();
        assert_eq!(got, [("direct", 1, 1.0, 1.0), (UNATTRIBUTED, 0, 1.0, 0.0), ("paid_search", 3, 0.6667, 0.2222), ("email", 1, 0.0, 0.0)]);
    }

    #[test]
    fn every_model_reads_the_dimensions_own_columns() {
        for d in Dimension::ALL {
            let (_, last, first, linear) = dimension_columns(*d);
            assert!(calls_by_key_sql(*d, Model::LastTouch).contains(&format!("if({last} = ''")));
            assert!(calls_by_key_sql(*d, Model::FirstTouch).contains(&format!("if({first} = ''")));
            assert!(calls_by_key_sql(*d, Model::Linear).contains(&format!("length({linear}) > 0, {linear}")));
        }
    }
}
