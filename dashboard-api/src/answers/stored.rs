//! Stored rows as every answer shows them: each `ringpath_store::rows` type
//! without its bookkeeping (`version`, `rank`), its DateTime columns
//! rewritten as RFC 3339 (UTC, ms) from their epoch-ms twin. The
//! destructuring in each `From` names every stored column, so a column added
//! to the store does not compile until it is shown or left out here.

use ringpath_store::rows::{AssignmentRow, CallRow, EventRow, SessionRow};
use serde::Serialize;
use utoipa::ToSchema;

use super::rfc3339;

/// A call and its attribution (every stored column but bookkeeping and the
/// time it reached the server).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Call {
    pub account_id: String,
    pub call_id: String,
    /// RFC 3339 (UTC, ms) of `started_ms`
    #[schema(format = DateTime)]
    pub started_at: String,
    pub started_ms: u64,
    pub duration_s: u32,
    pub status: String,
    pub to_number: String,
    pub from_number: String,
    pub caller_name: String,
    pub caller_city: String,
    /// session | source | site | pending | none
    pub attribution: String,
    /// exclusive | shared | source | none
    pub confidence: String,
    pub pool_id: String,
    pub session_id: String,
    pub visitor_id: String,
    pub ip: String,
    pub country: String,
    pub source: String,
    pub medium: String,
    pub campaign: String,
    pub term: String,
    pub content: String,
    pub channel: String,
    pub landing_page: String,
    pub referrer: String,
    pub referrer_host: String,
    pub click_id_type: String,
    pub click_id: String,
    pub first_touch_session: String,
    pub first_touch_source: String,
    pub first_touch_medium: String,
    pub first_touch_campaign: String,
    pub first_touch_channel: String,
    pub first_touch_landing_page: String,
    pub first_touch_referrer_host: String,
    /// the visitor's sessions that share linear credit (as CSV: one cell, joined by `|`)
    pub linear_session: Vec<String>,
    pub linear_source: Vec<String>,
    pub linear_medium: Vec<String>,
    pub linear_campaign: Vec<String>,
    pub linear_channel: Vec<String>,
    pub linear_landing_page: Vec<String>,
    pub linear_referrer_host: Vec<String>,
}

impl From<CallRow> for Call {
    fn from(row: CallRow) -> Call {
        #[rustfmt::skip]
        let CallRow {
            account_id, call_id, started_at: _, started_ms, received_at: _, duration_s, status, to_number, from_number, caller_name,
            caller_city, attribution, confidence, pool_id, session_id, visitor_id, ip, country, source, medium, campaign, term, content,
            channel, landing_page, referrer, referrer_host, click_id_type, click_id, first_touch_session, first_touch_source,
            first_touch_medium, first_touch_campaign, first_touch_channel, first_touch_landing_page, first_touch_referrer_host,
            linear_session, linear_source, linear_medium, linear_campaign, linear_channel, linear_landing_page, linear_referrer_host,
            version: _,
        } = row;
        #[rustfmt::skip]
        let call = Call {
            account_id, call_id, started_at: rfc3339(started_ms), started_ms, duration_s, status, to_number, from_number, caller_name,
            caller_city, attribution, confidence, pool_id, session_id, visitor_id, ip, country, source, medium, campaign, term, content,
            channel, landing_page, referrer, referrer_host, click_id_type, click_id, first_touch_session, first_touch_source,
            first_touch_medium, first_touch_campaign, first_touch_channel, first_touch_landing_page, first_touch_referrer_host,
            linear_session, linear_source, linear_medium, linear_campaign, linear_channel, linear_landing_page, linear_referrer_host,
        };
        call
    }
}

/// A call with the time it was stored, as journeys and exports show it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StoredCall {
    #[serde(flatten)]
    pub call: Call,
    /// RFC 3339 (UTC, ms): when the call reached the server
    #[schema(format = DateTime)]
    pub received_at: String,
}

impl From<CallRow> for StoredCall {
    fn from(row: CallRow) -> StoredCall {
        let received_at = rfc3339(u64::from(row.received_at) * 1000);
        StoredCall { call: Call::from(row), received_at }
    }
}

/// A stored event (data subject export): every column but bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Event {
    pub account_id: String,
    pub event_id: String,
    pub event_type: String,
    /// RFC 3339 (UTC, ms) of `ts_ms`
    #[schema(format = DateTime)]
    pub ts: String,
    pub ts_ms: u64,
    /// RFC 3339 (UTC, ms): when the event reached the server
    #[schema(format = DateTime)]
    pub received_at: String,
    pub visitor_id: String,
    pub session_id: String,
    pub page_id: String,
    pub consent: String,
    pub ip: String,
    pub ip_truncated: u8,
    pub country: String,
    pub region: String,
    pub city: String,
    pub latitude: f32,
    pub longitude: f32,
    pub url: String,
    pub path: String,
    pub referrer: String,
    pub referrer_host: String,
    pub title: String,
    pub channel: String,
    pub source: String,
    pub medium: String,
    pub campaign: String,
    pub term: String,
    pub content: String,
    pub gclid: String,
    pub gbraid: String,
    pub wbraid: String,
    pub fbclid: String,
    pub msclkid: String,
    pub ttclid: String,
    pub li_fat_id: String,
    pub number: String,
    /// the event's custom properties, as the tracker sent them (JSON text)
    pub props: String,
    pub user_agent: String,
    pub browser: String,
    pub os: String,
    pub device: String,
    pub is_bot: u8,
    pub screen: String,
    pub lang: String,
    pub tz: String,
}

impl From<EventRow> for Event {
    fn from(row: EventRow) -> Event {
        #[rustfmt::skip]
        let EventRow {
            account_id, event_id, event_type, ts: _, ts_ms, received_at, visitor_id, session_id, page_id, consent, ip, ip_truncated,
            country, region, city, latitude, longitude, url, path, referrer, referrer_host, title, channel, source, medium, campaign,
            term, content, gclid, gbraid, wbraid, fbclid, msclkid, ttclid, li_fat_id, number, props, user_agent, browser, os, device,
            is_bot, screen, lang, tz, version: _,
        } = row;
        #[rustfmt::skip]
        let event = Event {
            account_id, event_id, event_type, ts: rfc3339(ts_ms), ts_ms, received_at: rfc3339(u64::from(received_at) * 1000), visitor_id,
            session_id, page_id, consent, ip, ip_truncated, country, region, city, latitude, longitude, url, path, referrer, referrer_host,
            title, channel, source, medium, campaign, term, content, gclid, gbraid, wbraid, fbclid, msclkid, ttclid, li_fat_id, number,
            props, user_agent, browser, os, device, is_bot, screen, lang, tz,
        };
        event
    }
}

/// A tracking number's assignment to a session (data subject export).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Assignment {
    pub account_id: String,
    pub number: String,
    pub kind: String,
    pub pool_id: String,
    pub session_id: String,
    pub visitor_id: String,
    /// RFC 3339 (UTC, ms) of `assigned_ms`
    #[schema(format = DateTime)]
    pub assigned_at: String,
    pub assigned_ms: u64,
    /// RFC 3339 (UTC, ms) of `expires_ms`
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub expires_ms: u64,
    pub shared: u8,
    pub ip: String,
    pub ip_truncated: u8,
    pub country: String,
    pub url: String,
    pub referrer: String,
    pub referrer_host: String,
    pub channel: String,
    pub source: String,
    pub medium: String,
    pub campaign: String,
    pub term: String,
    pub content: String,
    pub click_id_type: String,
    pub click_id: String,
}

impl From<AssignmentRow> for Assignment {
    fn from(row: AssignmentRow) -> Assignment {
        #[rustfmt::skip]
        let AssignmentRow {
            account_id, number, kind, pool_id, session_id, visitor_id, assigned_at: _, assigned_ms, expires_ms, shared, ip, ip_truncated,
            country, url, referrer, referrer_host, channel, source, medium, campaign, term, content, click_id_type, click_id, version: _,
        } = row;
        #[rustfmt::skip]
        let assignment = Assignment {
            account_id, number, kind, pool_id, session_id, visitor_id, assigned_at: rfc3339(assigned_ms), assigned_ms,
            expires_at: rfc3339(expires_ms), expires_ms, shared, ip, ip_truncated, country, url, referrer, referrer_host, channel, source,
            medium, campaign, term, content, click_id_type, click_id,
        };
        assignment
    }
}

/// A session's landing as attribution reads it (the `sessions` table; data subject export).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Session {
    pub account_id: String,
    pub visitor_id: String,
    pub session_id: String,
    /// RFC 3339 (UTC, ms) of `started_ms`
    #[schema(format = DateTime)]
    pub started_at: String,
    pub started_ms: u64,
    pub channel: String,
    pub source: String,
    pub medium: String,
    pub campaign: String,
    pub landing_page: String,
    pub referrer_host: String,
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Session {
        #[rustfmt::skip]
        let SessionRow { account_id, visitor_id, session_id, started_at: _, started_ms, channel, source, medium, campaign, landing_page, referrer_host, rank: _ } = row;
        #[rustfmt::skip]
        let session = Session { account_id, visitor_id, session_id, started_at: rfc3339(started_ms), started_ms, channel, source, medium, campaign, landing_page, referrer_host };
        session
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use clickhouse::Row;

    use super::*;

    fn keys(v: &impl Serialize) -> Vec<String> {
        let mut keys: Vec<String> = serde_json::to_value(v).unwrap().as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    fn columns(all: &[&str], without: &[&str], with: &[&str]) -> Vec<String> {
        let mut keys: Vec<String> = all.iter().filter(|c| !without.contains(c)).chain(with).map(|c| (*c).to_owned()).collect();
        keys.sort();
        keys
    }

    #[test]
    fn stored_rows_show_every_column_but_bookkeeping_with_times_beside_their_ms() {
        assert_eq!(keys(&Call::from(CallRow::default())), columns(CallRow::COLUMN_NAMES, &["version", "received_at"], &[]));
        assert_eq!(keys(&StoredCall::from(CallRow::default())), columns(CallRow::COLUMN_NAMES, &["version"], &[]));
        assert_eq!(keys(&Event::from(EventRow::default())), columns(EventRow::COLUMN_NAMES, &["version"], &[]));
        assert_eq!(keys(&Assignment::from(AssignmentRow::default())), columns(AssignmentRow::COLUMN_NAMES, &["version"], &["expires_at"]));
        assert_eq!(keys(&Session::from(SessionRow::default())), columns(SessionRow::COLUMN_NAMES, &["rank"], &[]));
    }

    #[test]
    fn times_are_rfc3339_of_their_ms_twin() {
        let row = CallRow { started_at: 1, started_ms: 1_794_651_000_123, received_at: 1_794_651_090, ..CallRow::default() };
        let call = StoredCall::from(row);
        assert_eq!((call.call.started_at.as_str(), call.received_at.as_str()), ("2026-11-14T10:10:00.123Z", "2026-11-14T10:11:30.000Z"));
        let event = Event::from(EventRow { ts: 9, ts_ms: 1_794_301_200_000, received_at: 1_794_301_201, ..EventRow::default() });
        assert_eq!((event.ts.as_str(), event.received_at.as_str()), ("2026-11-10T09:00:00.000Z", "2026-11-10T09:00:01.000Z"));
        let a = Assignment::from(AssignmentRow { assigned_ms: 1_794_301_200_000, expires_ms: 1_794_303_000_000, ..AssignmentRow::default() });
        assert_eq!((a.assigned_at.as_str(), a.expires_at.as_str()), ("2026-11-10T09:00:00.000Z", "2026-11-10T09:30:00.000Z"));
    }
}
