//! What each endpoint answers, as types: the JSON bodies, the rows their CSV
//! form lists, and the OpenAPI schemas (`ToSchema`), all from one
//! definition. The API's one convention for times is kept here: every time
//! is an RFC 3339 string under its plain name beside its epoch-ms twin
//! (`started_at` and `started_ms`; UTC with milliseconds, except timeseries
//! buckets, which carry the account zone's offset). Stored rows become
//! answers in [`stored`], which also drops storage bookkeeping (`version`,
//! `rank`). No IO, no SQL.

use ringpath_store::rows::CallRow;
use ringpath_types::time::format_rfc3339_ms;
use serde::Serialize;
use utoipa::ToSchema;

use crate::params::{self, Dimension, Interval, Metric, Model};
use crate::reports::{Bucket, PageRow, SessionSummary};
use crate::zone::Zone;

pub mod stored;
pub use stored::{Assignment, Call, Event, Session, StoredCall};

/// An answer whose CSV form (`Accept: text/csv`) is one of its lists.
pub trait Table: Serialize {
    type Row: Serialize + ToSchema;
    fn rows(&self) -> &[Self::Row];
}

/// RFC 3339 (UTC, ms) of epoch milliseconds.
fn rfc3339(ms: u64) -> String {
    format_rfc3339_ms(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// `GET …/calls`: newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CallsPage {
    pub calls: Vec<Call>,
    /// pass as `cursor` for the next page; null on the last
    pub next_cursor: Option<String>,
}

impl CallsPage {
    /// A page from `limit` + 1 rows: the extra row only says there is a next page.
    pub fn new(mut rows: Vec<CallRow>, limit: u32) -> CallsPage {
        let limit = limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|r| params::encode_cursor(r.started_ms, &r.call_id))
        } else {
            None
        };
        CallsPage { calls: rows.into_iter().map(Call::from).collect(), next_cursor }
    }
}

impl Table for CallsPage {
    type Row = Call;
    fn rows(&self) -> &[Call] {
        &self.calls
    }
}

/// One key of an attribution report.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AttributionRow {
    /// the dimension's value; "(not set)" when empty, "(unattributed)" for calls credited to nothing
    pub key: String,
    /// sessions that landed from this key
    pub sessions: u64,
    /// their distinct visitors
    pub visitors: u64,
    /// calls credited by the model (fractions under `linear`), 4 decimals
    pub calls: f64,
    /// calls ÷ sessions, 4 decimals
    pub conversion_rate: f64,
}

/// `GET …/attribution`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attribution {
    /// most credited calls first, then most sessions, then by key
    pub rows: Vec<AttributionRow>,
    pub dimension: Dimension,
    pub model: Model,
    #[schema(format = DateTime)]
    pub from: String,
    #[schema(format = DateTime)]
    pub to: String,
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Attribution {
    pub fn new(q: &params::AttributionQuery, rows: Vec<AttributionRow>) -> Attribution {
        let (from, to) = (format_rfc3339_ms(q.from), format_rfc3339_ms(q.to));
        Attribution { rows, dimension: q.dimension, model: q.model, from, to, from_ms: q.from, to_ms: q.to }
    }
}

impl Table for Attribution {
    type Row = AttributionRow;
    fn rows(&self) -> &[AttributionRow] {
        &self.rows
    }
}

/// One bucket of a timeseries.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Point {
    /// bucket start with the zone's offset (`2026-03-29T00:00:00+01:00`)
    #[schema(format = DateTime)]
    pub t: String,
    /// the same instant in epoch ms
    pub t_ms: i64,
    pub value: u64,
}

/// `GET …/timeseries`: every bucket of the range, zero-filled.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Timeseries {
    pub points: Vec<Point>,
    pub metric: Metric,
    pub interval: Interval,
    /// the account's IANA zone the buckets follow
    pub timezone: String,
    pub total: u64,
    #[schema(format = DateTime)]
    pub from: String,
    #[schema(format = DateTime)]
    pub to: String,
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Timeseries {
    pub fn new(q: &params::TimeseriesQuery, zone: &Zone, buckets: Vec<Bucket>) -> Timeseries {
        let points: Vec<Point> = buckets.into_iter().map(|b| Point { t: zone.rfc3339(i64::from(b.t)), t_ms: i64::from(b.t) * 1000, value: b.value }).collect();
        let total = points.iter().map(|p| p.value).sum();
        #[rustfmt::skip]
        let series = Timeseries {
            points, metric: q.metric, interval: q.interval, timezone: zone.name().to_owned(), total,
            from: format_rfc3339_ms(q.from), to: format_rfc3339_ms(q.to), from_ms: q.from, to_ms: q.to,
        };
        series
    }
}

impl Table for Timeseries {
    type Row = Point;
    fn rows(&self) -> &[Point] {
        &self.points
    }
}

/// A session of a visitor's journey, named by where it first landed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct JourneySession {
    pub session_id: String,
    /// RFC 3339 (UTC, ms) of `started_ms`: the session's first event
    #[schema(format = DateTime)]
    pub started_at: String,
    pub started_ms: u64,
    /// RFC 3339 (UTC, ms) of `ended_ms`: its last event
    #[schema(format = DateTime)]
    pub ended_at: String,
    pub ended_ms: u64,
    pub pageviews: u64,
    pub channel: String,
    pub source: String,
    pub medium: String,
    pub campaign: String,
    pub landing_page: String,
    pub referrer_host: String,
}

impl From<SessionSummary> for JourneySession {
    fn from(s: SessionSummary) -> JourneySession {
        let SessionSummary { session_id, started_ms, ended_ms, pageviews, channel, source, medium, campaign, landing_page, referrer_host } = s;
        #[rustfmt::skip]
        let session = JourneySession {
            session_id, started_at: rfc3339(started_ms), started_ms, ended_at: rfc3339(ended_ms), ended_ms, pageviews, channel, source,
            medium, campaign, landing_page, referrer_host,
        };
        session
    }
}

/// An event of a visitor's journey.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PageEvent {
    pub event_id: String,
    pub event_type: String,
    /// RFC 3339 (UTC, ms) of `ts_ms`
    #[schema(format = DateTime)]
    pub ts: String,
    pub ts_ms: u64,
    pub session_id: String,
    pub url: String,
    pub title: String,
    /// the tracking number the page showed
    pub number: String,
}

impl From<PageRow> for PageEvent {
    fn from(p: PageRow) -> PageEvent {
        let PageRow { event_id, event_type, ts_ms, session_id, url, title, number } = p;
        PageEvent { event_id, event_type, ts: rfc3339(ts_ms), ts_ms, session_id, url, title, number }
    }
}

/// `GET …/visitors/{visitor_id}`: sessions, events and calls, oldest first
/// (as CSV: one line per event).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Journey {
    pub visitor_id: String,
    pub sessions: Vec<JourneySession>,
    pub pages: Vec<PageEvent>,
    pub calls: Vec<StoredCall>,
}

impl Table for Journey {
    type Row = PageEvent;
    fn rows(&self) -> &[PageEvent] {
        &self.pages
    }
}

/// `GET …/visitors/{visitor_id}/export`: every stored row about the visitor.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Export {
    pub account: String,
    pub visitor_id: String,
    #[schema(format = DateTime)]
    pub exported_at: String,
    pub events: Vec<Event>,
    pub calls: Vec<StoredCall>,
    pub assignments: Vec<Assignment>,
    pub sessions: Vec<Session>,
}

/// Where an erasure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ErasureState {
    /// steps, rows or mutations about the visitor remain
    Pending,
    /// every step ran, no row names the visitor and no mutation for them is pending
    Done,
}

/// `DELETE …/visitors/{visitor_id}`: accepted; poll `status_url` (also in `Location`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErasureAccepted {
    /// always `pending`
    pub status: ErasureState,
    pub status_url: String,
}

impl ErasureAccepted {
    pub fn new(account: &str, visitor: &str) -> ErasureAccepted {
        ErasureAccepted { status: ErasureState::Pending, status_url: format!("/v1/accounts/{account}/visitors/{visitor}/erasure") }
    }
}

/// `GET …/visitors/{visitor_id}/erasure`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErasureStatus {
    pub status: ErasureState,
    /// stored rows that still name the visitor
    pub remaining_rows: u64,
    /// unfinished ClickHouse mutations that erase them
    pub pending_mutations: u64,
    /// steps of the erasure still to run (it runs after the 202, resumed after a restart)
    pub steps_remaining: u64,
}

impl From<ringpath_store::erasure::ErasureStatus> for ErasureStatus {
    fn from(s: ringpath_store::erasure::ErasureStatus) -> ErasureStatus {
        let status = if s.done() { ErasureState::Done } else { ErasureState::Pending };
        ErasureStatus { status, remaining_rows: s.remaining_rows, pending_mutations: s.pending_mutations, steps_remaining: s.steps_remaining }
    }
}

/// An account an agency's credentials cover.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgencyAccount {
    pub id: String,
    /// IANA zone of its reports; null for UTC
    pub timezone: Option<String>,
    pub retention_days: u32,
}

/// `GET /v1/agencies/{agency}/accounts`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgencyAccounts {
    pub agency: String,
    pub accounts: Vec<AgencyAccount>,
}

impl AgencyAccounts {
    pub fn new(agency: &str, accounts: &[&ringpath_types::accounts::Account]) -> AgencyAccounts {
        let accounts = accounts.iter().map(|a| AgencyAccount { id: a.id.clone(), timezone: a.timezone.clone(), retention_days: a.retention_days }).collect();
        AgencyAccounts { agency: agency.to_owned(), accounts }
    }
}

/// `GET /healthz`.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub status: &'static str,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn a_calls_page_says_where_the_next_one_starts() {
        let rows: Vec<CallRow> = (0..3).map(|i| CallRow { call_id: format!("C{i}"), started_ms: 100 - i, ..CallRow::default() }).collect();
        let page = CallsPage::new(rows.clone(), 2);
        assert_eq!(page.calls.iter().map(|c| c.call_id.as_str()).collect::<Vec<_>>(), ["C0", "C1"]);
        assert_eq!(page.next_cursor, Some(params::encode_cursor(99, "C1")));
        assert_eq!(CallsPage::new(rows, 3).next_cursor, None);
    }

    #[test]
    fn erasure_answers_say_pending_until_nothing_is_left() {
        let status = |remaining_rows, pending_mutations, steps_remaining| ErasureStatus::from(ringpath_store::erasure::ErasureStatus { remaining_rows, pending_mutations, steps_remaining }).status;
        assert_eq!((status(0, 0, 0), status(1, 0, 0), status(0, 1, 0), status(0, 0, 1)), (ErasureState::Done, ErasureState::Pending, ErasureState::Pending, ErasureState::Pending));
        let accepted = serde_json::to_value(ErasureAccepted::new("acc_a", "visitor_1")).unwrap();
        assert_eq!(accepted, serde_json::json!({"status": "pending", "status_url": "/v1/accounts/acc_a/visitors/visitor_1/erasure"}));
    }
}
