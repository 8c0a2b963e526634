//! Wire types: what the browser and the telephony provider send to ingest
//! (README "Collector (ingest)"), and the JSON documents on the Kafka topics (README "Kafka topics"). Parsing
//! here is structural only; limits and semantic checks live in ingest.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const TOPIC_EVENTS: &str = "ringpath.events";
pub const TOPIC_CALLS: &str = "ringpath.calls";
pub const TOPIC_ASSIGNMENTS: &str = "ringpath.assignments";
pub const TOPIC_DLQ: &str = "ringpath.dlq";

/// Topic names; each can be moved with `RINGPATH_TOPIC_*` (tests use random names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub events: String,
    pub calls: String,
    pub assignments: String,
    pub dlq: String,
}

impl Topics {
    pub fn from_env(env: &std::collections::HashMap<String, String>) -> Topics {
        let get = |k: &str, d: &str| env.get(k).cloned().unwrap_or_else(|| d.to_owned());
        Topics {
            events: get("RINGPATH_TOPIC_EVENTS", TOPIC_EVENTS),
            calls: get("RINGPATH_TOPIC_CALLS", TOPIC_CALLS),
            assignments: get("RINGPATH_TOPIC_ASSIGNMENTS", TOPIC_ASSIGNMENTS),
            dlq: get("RINGPATH_TOPIC_DLQ", TOPIC_DLQ),
        }
    }

    /// The same four topics with a suffix, for isolated test runs.
    pub fn with_suffix(suffix: &str) -> Topics {
        Topics {
            events: [TOPIC_EVENTS, ".", suffix].concat(),
            calls: [TOPIC_CALLS, ".", suffix].concat(),
            assignments: [TOPIC_ASSIGNMENTS, ".", suffix].concat(),
            dlq: [TOPIC_DLQ, ".", suffix].concat(),
        }
    }
}

pub use crate::consent::Consent;

/// `POST /v1/collect` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub v: u32,
    pub account: String,
    pub sent_at: i64,
    pub consent: Consent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Per-page random id, the only identifier sent without consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub ts: i64,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(default)]
    pub props: Map<String, Value>,
}

/// `POST /v1/numbers` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumbersRequest {
    pub account: String,
    pub session_id: String,
    #[serde(default)]
    pub visitor_id: Option<String>,
    pub url: String,
    #[serde(default)]
    pub referrer: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumberKind {
    Session,
    Source,
    Site,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumbersResponse {
    pub number: String,
    pub kind: NumberKind,
    pub expires_at: i64,
    #[serde(default)]
    pub shared: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallStatus {
    Completed,
    Busy,
    NoAnswer,
    Failed,
    Canceled,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Failed => "failed",
            CallStatus::Canceled => "canceled",
        }
    }
}

/// `POST /v1/calls` body, from the telephony provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRecord {
    pub call_id: String,
    pub to: String,
    pub from: String,
    /// RFC 3339.
    pub started_at: String,
    pub duration_s: u32,
    pub status: CallStatus,
    #[serde(default)]
    pub caller_name: Option<String>,
    #[serde(default)]
    pub caller_city: Option<String>,
}

/// What the collector adds to everything it publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    pub received_at: i64,
    pub ip: String,
    pub user_agent: String,
}

/// One event on `ringpath.events`: the batch's shared fields flattened onto it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMessage {
    pub account: String,
    pub consent: Consent,
    pub visitor_id: Option<String>,
    pub session_id: Option<String>,
    pub page_id: Option<String>,
    pub sent_at: i64,
    pub screen: Option<String>,
    pub lang: Option<String>,
    pub tz: Option<String>,
    #[serde(flatten)]
    pub received: Received,
    /// Last, so a producer can write the shared fields once per batch (ingest's hot path).
    pub event: Event,
}

impl EventMessage {
    /// Kafka key (README "Kafka topics"): visitor, else session, else event id.
    pub fn key(&self) -> &str {
        self.visitor_id.as_deref().or(self.session_id.as_deref()).unwrap_or(&self.event.id)
    }
}

/// One call on `ringpath.calls`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallMessage {
    pub account: String,
    pub call: CallRecord,
    #[serde(flatten)]
    pub received: Received,
}

/// One number assignment or renewal on `ringpath.assignments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignmentMessage {
    pub account: String,
    pub number: String,
    pub kind: NumberKind,
    pub pool_id: Option<String>,
    pub session_id: String,
    pub visitor_id: Option<String>,
    pub assigned_at: i64,
    pub expires_at: i64,
    /// The pool was exhausted and this number is also live in another session.
    pub shared: bool,
    pub url: String,
    pub referrer: Option<String>,
    #[serde(flatten)]
    pub received: Received,
}

/// A payload that could not be accepted, with why, on `ringpath.dlq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DlqMessage {
    /// Where it failed: a route (`/v1/collect`) or a stage (`enrich:events`).
    pub stage: String,
    pub reason: String,
    pub account: Option<String>,
    /// The start of the payload as received, invalid UTF-8 replaced (ingest
    /// keeps 4 KiB, enrich 64 KiB).
    pub payload: String,
    /// The payload's whole size in bytes, before the cut.
    #[serde(default)]
    pub payload_bytes: usize,
    #[serde(flatten)]
    pub received: Received,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_batch_example_parses() {
        let body = r#"{"v":1,"account":"acc_demo","sent_at":1764374400000,"consent":"granted",
 "visitor_id":"v","session_id":"s","screen":"1920x1080","lang":"en-US","tz":"Europe/Berlin",
 "events":[{"id":"e1","type":"pageview","ts":1764374399000,
            "url":"https://demo.example/?utm_source=google&utm_medium=cpc&gclid=abc",
            "referrer":"https://www.google.com/","title":"Home","number":"+15550109001","props":{}}]}"#;
        let batch: Batch = serde_json::from_str(body).unwrap();
        assert_eq!(batch.consent, Consent::Granted);
        assert_eq!(batch.events[0].kind, "pageview");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let body = r#"{"v":1,"account":"a","sent_at":1,"consent":"granted","events":[],"evil":1}"#;
        assert!(serde_json::from_str::<Batch>(body).is_err());
    }

    #[test]
    fn spec_call_example_parses() {
        let body = r#"{"call_id":"CA1","to":"+15550109001","from":"+15557654321","started_at":"2026-11-29T10:00:00Z","duration_s":125,"status":"no-answer","caller_name":"x","caller_city":"y"}"#;
        let call: CallRecord = serde_json::from_str(body).unwrap();
        assert_eq!(call.status, CallStatus::NoAnswer);
    }

    #[test]
    fn event_message_key_prefers_visitor_then_session_then_event() {
        let mut m = EventMessage {
            account: "a".into(),
            consent: Consent::Denied,
            visitor_id: None,
            session_id: None,
            page_id: None,
            sent_at: 0,
            screen: None,
            lang: None,
            tz: None,
            event: Event { id: "e".into(), kind: "pageview".into(), ts: 0, url: String::new(), referrer: None, title: None, number: None, props: Map::new() },
            received: Received { received_at: 0, ip: String::new(), user_agent: String::new() },
        };
        assert_eq!(m.key(), "e");
        m.session_id = Some("s".into());
        assert_eq!(m.key(), "s");
        m.visitor_id = Some("v".into());
        assert_eq!(m.key(), "v");
    }
}
