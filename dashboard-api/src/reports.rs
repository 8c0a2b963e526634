//! The SQL behind every report. Values are always bound (`?`); the only
//! things formatted into SQL are column names picked from fixed enums.
//! Bots are excluded unless asked for. Counts read deduplicated data
//! (uniqExact on ids, FINAL on calls), so replays never inflate them.

use std::collections::BTreeMap;

use clickhouse::{Client, Row};
use ringpath_enrich::rows::{AssignmentRow, CallRow, EventRow};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("clickhouse: {0}")]
pub struct ReportError(#[from] pub clickhouse::error::Error);

/// Session-side column (events) and call-side columns for each model.
fn dimension_columns(dimension: &str) -> (&'static str, &'static str, &'static str, &'static str) {
    // (events column, last-touch calls column, first-touch calls column, linear array)
    match dimension {
        "source" => ("source", "source", "first_touch_source", "linear_source"),
        "medium" => ("medium", "medium", "first_touch_medium", "linear_medium"),
        "campaign" => ("campaign", "campaign", "first_touch_campaign", "linear_campaign"),
        "landing_page" => ("path", "landing_page", "first_touch_landing_page", "linear_landing_page"),
        "referrer_host" => ("referrer_host", "referrer_host", "first_touch_referrer_host", "linear_referrer_host"),
        _ => ("channel", "channel", "first_touch_channel", "linear_channel"),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributionRow {
    pub key: String,
    pub sessions: u64,
    pub visitors: u64,
    pub calls: f64,
    pub conversion_rate: f64,
}

#[derive(Debug, Row, Deserialize)]
struct KeyCount {
    key: String,
    sessions: u64,
    visitors: u64,
}

#[derive(Debug, Row, Deserialize)]
struct KeyCalls {
    key: String,
    calls: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub t: String,
    pub t_ms: i64,
    pub value: u64,
}

#[derive(Debug, Row, Deserialize)]
struct Bucket {
    t: u64,
    value: u64,
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
    pub async fn attribution(&self, account: &str, from: i64, to: i64, dimension: &str, model: &str, include_bots: bool) -> Result<Vec<AttributionRow>, ReportError> {
        let (ev_col, last_col, first_col, linear_col) = dimension_columns(dimension);
        let bots = if include_bots { "" } else { " AND is_bot = 0" };
        let sessions_sql = format!(
            "SELECT key, count() AS sessions, uniqExactIf(visitor, visitor != '') AS visitors FROM ( \
               SELECT if(session_id != '', session_id, page_id) AS sid, any(visitor_id) AS visitor, argMin({ev_col}, ts_ms) AS key \
               FROM events WHERE account_id = ? AND ts_ms >= ? AND ts_ms < ? AND channel != ''{bots} GROUP BY sid \
             ) GROUP BY key"
        );
        let sessions = self.reader.query(&sessions_sql).bind(account).bind(from).bind(to).fetch_all::<KeyCount>().await?;
        let calls_sql = match model {
            "first_touch" => format!(
                "SELECT if(attribution IN ('session', 'source'), {first_col}, '(unattributed)') AS key, toFloat64(count()) AS calls \
                 FROM calls FINAL WHERE account_id = ? AND started_ms >= ? AND started_ms < ? GROUP BY key"
            ),
            "linear" => format!(
                "SELECT key, sum(1 / length(touches)) AS calls FROM ( \
                   SELECT if(attribution IN ('session', 'source') AND length({linear_col}) > 0, {linear_col}, ['(unattributed)']) AS touches \
                   FROM calls FINAL WHERE account_id = ? AND started_ms >= ? AND started_ms < ? \
                 ) ARRAY JOIN touches AS key GROUP BY key"
            ),
            _ => format!(
                "SELECT if(attribution IN ('session', 'source'), {last_col}, '(unattributed)') AS key, toFloat64(count()) AS calls \
                 FROM calls FINAL WHERE account_id = ? AND started_ms >= ? AND started_ms < ? GROUP BY key"
            ),
        };
        let calls = self.reader.query(&calls_sql).bind(account).bind(from).bind(to).fetch_all::<KeyCalls>().await?;
        let mut rows: BTreeMap<String, AttributionRow> = BTreeMap::new();
        for s in sessions {
            rows.insert(s.key.clone(), AttributionRow { key: s.key, sessions: s.sessions, visitors: s.visitors, calls: 0.0, conversion_rate: 0.0 });
        }
        for c in calls {
            let row = rows.entry(c.key.clone()).or_insert(AttributionRow { key: c.key, sessions: 0, visitors: 0, calls: 0.0, conversion_rate: 0.0 });
            row.calls += c.calls;
        }
        let mut out: Vec<AttributionRow> = rows
            .into_values()
            .map(|mut r| {
                r.calls = (r.calls * 10_000.0).round() / 10_000.0;
                r.conversion_rate = if r.sessions > 0 { (r.calls / r.sessions as f64 * 10_000.0).round() / 10_000.0 } else { 0.0 };
                r
            })
            .collect();
        out.sort_by(|a, b| b.calls.total_cmp(&a.calls).then(b.sessions.cmp(&a.sessions)).then(a.key.cmp(&b.key)));
        Ok(out)
    }

    /// Points for every bucket in [from, to), zero-filled.
    pub async fn timeseries(&self, account: &str, from: i64, to: i64, interval: &str, metric: &str, include_bots: bool) -> Result<Vec<Point>, ReportError> {
        let step: i64 = if interval == "hour" { 3_600_000 } else { 86_400_000 };
        let bots = if include_bots { "" } else { " AND is_bot = 0" };
        let sql = match metric {
            "calls" => "SELECT intDiv(started_ms, ?) * ? AS t, uniqExact(call_id) AS value FROM calls WHERE account_id = ? AND started_ms >= ? AND started_ms < ? GROUP BY t".to_owned(),
            "sessions" => format!(
                "SELECT intDiv(ts_ms, ?) * ? AS t, uniqExact(if(session_id != '', session_id, page_id)) AS value FROM events \
                 WHERE account_id = ? AND ts_ms >= ? AND ts_ms < ?{bots} GROUP BY t"
            ),
            _ => format!(
                "SELECT intDiv(ts_ms, ?) * ? AS t, uniqExact(event_id) AS value FROM events \
                 WHERE account_id = ? AND event_type = 'pageview' AND ts_ms >= ? AND ts_ms < ?{bots} GROUP BY t"
            ),
        };
        let buckets = self.reader.query(&sql).bind(step).bind(step).bind(account).bind(from).bind(to).fetch_all::<Bucket>().await?;
        let found: BTreeMap<i64, u64> = buckets.into_iter().map(|b| (b.t as i64, b.value)).collect();
        let mut points = Vec::new();
        let mut t = from.div_euclid(step) * step;
        while t < to && points.len() < 20_000 {
            points.push(Point { t: ringpath_types::time::format_rfc3339_ms(t), t_ms: t, value: found.get(&t).copied().unwrap_or(0) });
            t += step;
        }
        Ok(points)
    }

    /// Calls newest first; `after` is the (started_ms, call_id) of the last row already served.
    pub async fn calls(&self, account: &str, from: i64, to: i64, limit: u32, after: Option<(u64, String)>) -> Result<Vec<CallRow>, ReportError> {
        let (cursor_ms, cursor_id, use_cursor) = match after {
            Some((ms, id)) => (ms, id, 1u8),
            None => (0, String::new(), 0u8),
        };
        Ok(self
            .reader
            .query(
                "SELECT ?fields FROM calls FINAL WHERE account_id = ? AND started_ms >= ? AND started_ms < ? \
                 AND (? = 0 OR started_ms < ? OR (started_ms = ? AND call_id < ?)) \
                 ORDER BY started_ms DESC, call_id DESC LIMIT ?",
            )
            .bind(account)
            .bind(from)
            .bind(to)
            .bind(use_cursor)
            .bind(cursor_ms)
            .bind(cursor_ms)
            .bind(cursor_id)
            .bind(limit)
            .fetch_all::<CallRow>()
            .await?)
    }

    pub async fn journey_sessions(&self, account: &str, visitor: &str) -> Result<Vec<SessionSummary>, ReportError> {
        Ok(self
            .reader
            .query(
                "SELECT session_id, min(ts_ms) AS started_ms, max(ts_ms) AS ended_ms, uniqExactIf(event_id, event_type = 'pageview') AS pageviews, \
                 argMinIf(channel, ts_ms, channel != '') AS channel, argMinIf(source, ts_ms, channel != '') AS source, \
                 argMinIf(medium, ts_ms, channel != '') AS medium, argMinIf(campaign, ts_ms, channel != '') AS campaign, \
                 argMin(path, ts_ms) AS landing_page, argMinIf(referrer_host, ts_ms, channel != '') AS referrer_host \
                 FROM events WHERE account_id = ? AND visitor_id = ? GROUP BY session_id ORDER BY started_ms",
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
                "SELECT event_id, any(event_type) AS event_type, any(ts_ms) AS ts_ms, any(session_id) AS session_id, any(url) AS url, \
                 any(title) AS title, any(number) AS number FROM events WHERE account_id = ? AND visitor_id = ? \
                 GROUP BY event_id ORDER BY ts_ms LIMIT 10000",
            )
            .bind(account)
            .bind(visitor)
            .fetch_all::<PageRow>()
            .await?)
    }

    pub async fn visitor_calls(&self, account: &str, visitor: &str) -> Result<Vec<CallRow>, ReportError> {
        Ok(self
            .reader
            .query("SELECT ?fields FROM calls FINAL WHERE account_id = ? AND visitor_id = ? ORDER BY started_ms")
            .bind(account)
            .bind(visitor)
            .fetch_all::<CallRow>()
            .await?)
    }

    /// Every stored row about a visitor (data subject access).
    pub async fn export(&self, account: &str, visitor: &str) -> Result<(Vec<EventRow>, Vec<CallRow>, Vec<AssignmentRow>), ReportError> {
        let events = self.reader.query("SELECT ?fields FROM events FINAL WHERE account_id = ? AND visitor_id = ? ORDER BY ts_ms").bind(account).bind(visitor).fetch_all::<EventRow>().await?;
        let calls = self.visitor_calls(account, visitor).await?;
        let assignments = self
            .reader
            .query("SELECT ?fields FROM assignments FINAL WHERE account_id = ? AND visitor_id = ? ORDER BY assigned_ms")
            .bind(account)
            .bind(visitor)
            .fetch_all::<AssignmentRow>()
            .await?;
        Ok((events, calls, assignments))
    }

    /// Starts erasure: deletes the visitor's events and assignments and strips
    /// every identifier from their calls (the call itself stays counted).
    pub async fn erase(&self, account: &str, visitor: &str) -> Result<(), ReportError> {
        let mut sessions: Vec<String> = self
            .writer
            .query("SELECT DISTINCT session_id FROM events WHERE account_id = ? AND visitor_id = ? AND session_id != '' UNION ALL SELECT DISTINCT session_id FROM assignments WHERE account_id = ? AND visitor_id = ? AND session_id != ''")
            .bind(account)
            .bind(visitor)
            .bind(account)
            .bind(visitor)
            .fetch_all::<String>()
            .await?;
        // Never empty (an empty array literal has no element type on old servers),
        // and "!" can never be a session id.
        sessions.push("!".to_owned());
        self.writer
            .query(
                "ALTER TABLE calls UPDATE visitor_id = '', session_id = '', ip = '', from_number = '', caller_name = '', caller_city = '', \
                 click_id = '', first_touch_session = '', linear_session = arrayMap(x -> '', linear_session) \
                 WHERE account_id = ? AND (visitor_id = ? OR has(?, session_id))",
            )
            .bind(account)
            .bind(visitor)
            .bind(&sessions)
            .execute()
            .await?;
        self.writer.query("ALTER TABLE events DELETE WHERE account_id = ? AND (visitor_id = ? OR has(?, session_id))").bind(account).bind(visitor).bind(&sessions).execute().await?;
        self.writer
            .query("ALTER TABLE assignments DELETE WHERE account_id = ? AND (visitor_id = ? OR has(?, session_id))")
            .bind(account)
            .bind(visitor)
            .bind(&sessions)
            .execute()
            .await?;
        Ok(())
    }

    /// Rows that still name the visitor (0 once erasure is complete).
    pub async fn remaining(&self, account: &str, visitor: &str) -> Result<u64, ReportError> {
        Ok(self
            .writer
            .query(
                "SELECT (SELECT count() FROM events WHERE account_id = ? AND visitor_id = ?) + (SELECT count() FROM calls WHERE account_id = ? AND visitor_id = ?) \
                 + (SELECT count() FROM assignments WHERE account_id = ? AND visitor_id = ?)",
            )
            .bind(account)
            .bind(visitor)
            .bind(account)
            .bind(visitor)
            .bind(account)
            .bind(visitor)
            .fetch_one::<u64>()
            .await?)
    }
}
