//! Row types of the ClickHouse tables (`store/migrations`). Field names are
//! column names; DateTime columns are seconds as u32 (RowBinary).

use clickhouse::Row;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize, Default)]
pub struct EventRow {
    pub account_id: String,
    pub event_id: String,
    pub event_type: String,
    pub ts: u32,
    pub ts_ms: u64,
    pub received_at: u32,
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
    pub props: String,
    pub user_agent: String,
    pub browser: String,
    pub os: String,
    pub device: String,
    pub is_bot: u8,
    pub screen: String,
    pub lang: String,
    pub tz: String,
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize, Default)]
pub struct CallRow {
    pub account_id: String,
    pub call_id: String,
    pub started_at: u32,
    pub started_ms: u64,
    pub received_at: u32,
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
    pub linear_session: Vec<String>,
    pub linear_source: Vec<String>,
    pub linear_medium: Vec<String>,
    pub linear_campaign: Vec<String>,
    pub linear_channel: Vec<String>,
    pub linear_landing_page: Vec<String>,
    pub linear_referrer_host: Vec<String>,
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize, Default)]
pub struct AssignmentRow {
    pub account_id: String,
    pub number: String,
    pub kind: String,
    pub pool_id: String,
    pub session_id: String,
    pub visitor_id: String,
    pub assigned_at: u32,
    pub assigned_ms: u64,
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
    pub version: u64,
}

/// A row of `sessions` (migration 0014): one landing of a session, as its
/// materialized view copied it from `events`. The session's row is its
/// earliest landing (the highest `rank`, which is `!started_ms`).
/// [`SessionRow::touch`] is what attribution reads of it.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize, Default)]
pub struct SessionRow {
    pub account_id: String,
    pub visitor_id: String,
    pub session_id: String,
    pub started_at: u32,
    pub started_ms: u64,
    pub channel: String,
    pub source: String,
    pub medium: String,
    pub campaign: String,
    pub landing_page: String,
    pub referrer_host: String,
    pub rank: u64,
}

impl SessionRow {
    /// The session's landing, as attribution credits it.
    pub fn touch(self) -> SessionTouch {
        SessionTouch {
            session_id: self.session_id,
            started_ms: self.started_ms,
            channel: self.channel,
            source: self.source,
            medium: self.medium,
            campaign: self.campaign,
            landing_page: self.landing_page,
            referrer_host: self.referrer_host,
        }
    }
}

/// Where a session came from (its landing): what first touch, last touch and
/// linear credit. Read from `sessions` ([`SessionRow::touch`]); built from a
/// number assignment when a session has no landing event.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize, Default)]
pub struct SessionTouch {
    pub session_id: String,
    pub started_ms: u64,
    pub channel: String,
    pub source: String,
    pub medium: String,
    pub campaign: String,
    pub landing_page: String,
    pub referrer_host: String,
}

/// A row of `erasure_jobs` (migration 0020): one step of an erasure done,
/// or the request itself (`step` 0). A job is (`account_id`, `visitor_id`,
/// `requested_ms`); its progress is its newest row (`updated_ms`).
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize, Default)]
pub struct ErasureJobRow {
    pub account_id: String,
    pub visitor_id: String,
    pub requested_ms: u64,
    /// How many of `erasure::JOB_STEPS` are done.
    pub step: u8,
    /// The visitor's session ids (found by the first step).
    pub sessions: Vec<String>,
    /// The hours (epoch seconds) the visitor had events in (found by the first step).
    pub hours: Vec<u32>,
    /// The dashboard-api process that wrote the row.
    pub owner: String,
    pub updated_ms: u64,
}
