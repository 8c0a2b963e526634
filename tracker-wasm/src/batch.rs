//! The `/v1/collect` batch document (SPEC §3) as JSON text. Pure: the browser
//! adapter fills the fields. Optional fields are omitted, never `null`, because
//! ingest rejects unknown or mistyped fields.

use crate::consent::Consent;
use crate::json::Writer;

/// One tracked event, ready to serialise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub kind: String,
    pub ts: i64,
    pub url: String,
    pub referrer: Option<String>,
    pub title: Option<String>,
    /// The tracking number shown when the event happened, E.164.
    pub number: Option<String>,
    /// A JSON object (already serialised), `{}` when there are no properties.
    pub props: String,
}

/// What every batch from this page carries besides its events.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    pub account: String,
    pub visitor_id: Option<String>,
    pub session_id: Option<String>,
    pub page_id: String,
    pub screen: Option<String>,
    pub lang: Option<String>,
    pub tz: Option<String>,
}

/// Serialises a batch. Identifiers are written only when consent is granted,
/// whatever the envelope holds, so a caller's slip cannot leak them.
pub fn to_json(envelope: &Envelope, consent: Consent, sent_at: i64, events: &[Event]) -> String {
    let granted = consent == Consent::Granted;
    let mut w = Writer::new();
    w.begin_object();
    w.field_int("v", 1);
    w.field_str("account", &envelope.account);
    w.field_int("sent_at", sent_at);
    w.field_str("consent", consent.as_str());
    if granted {
        w.field_opt_str("visitor_id", envelope.visitor_id.as_deref());
        w.field_opt_str("session_id", envelope.session_id.as_deref());
    }
    w.field_str("page_id", &envelope.page_id);
    w.field_opt_str("screen", envelope.screen.as_deref());
    w.field_opt_str("lang", envelope.lang.as_deref());
    w.field_opt_str("tz", envelope.tz.as_deref());
    w.key("events");
    w.begin_array();
    for event in events {
        w.begin_object();
        w.field_str("id", &event.id);
        w.field_str("type", &event.kind);
        w.field_int("ts", event.ts);
        w.field_str("url", &event.url);
        w.field_opt_str("referrer", event.referrer.as_deref().filter(|r| !r.is_empty()));
        w.field_opt_str("title", event.title.as_deref().filter(|t| !t.is_empty()));
        w.field_opt_str("number", event.number.as_deref());
        w.key("props");
        w.raw(if is_json_object(&event.props) { &event.props } else { "{}" });
        w.end_object();
    }
    w.end_array();
    w.end_object();
    w.out
}

/// Guards the one raw splice: props must parse as a JSON object.
fn is_json_object(text: &str) -> bool {
    matches!(crate::json::parse(text), Some(crate::json::Value::Object(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            account: "acc_demo".into(),
            visitor_id: Some("v1".into()),
            session_id: Some("s1".into()),
            page_id: "p1".into(),
            screen: Some("1920x1080".into()),
            lang: Some("en-US".into()),
            tz: Some("Europe/Berlin".into()),
        }
    }

    fn pageview() -> Event {
        Event {
            id: "e1".into(),
            kind: "pageview".into(),
            ts: 1_764_374_399_000,
            url: "https://demo.example/?utm_source=google".into(),
            referrer: Some("https://www.google.com/".into()),
            title: Some("Home".into()),
            number: Some("+15550109001".into()),
            props: "{}".into(),
        }
    }

    #[test]
    fn granted_batch_matches_the_wire_contract() {
        let json = to_json(&envelope(), Consent::Granted, 1_764_374_400_000, &[pageview()]);
        assert_eq!(
            json,
            r#"{"v":1,"account":"acc_demo","sent_at":1764374400000,"consent":"granted","visitor_id":"v1","session_id":"s1","page_id":"p1","screen":"1920x1080","lang":"en-US","tz":"Europe/Berlin","events":[{"id":"e1","type":"pageview","ts":1764374399000,"url":"https://demo.example/?utm_source=google","referrer":"https://www.google.com/","title":"Home","number":"+15550109001","props":{}}]}"#
        );
    }

    #[test]
    fn pending_batch_carries_no_visitor_or_session_id() {
        for consent in [Consent::Pending, Consent::Denied] {
            let json = to_json(&envelope(), consent, 1, &[pageview()]);
            assert!(!json.contains("visitor_id") && !json.contains("session_id"), "{json}");
            assert!(json.contains(r#""page_id":"p1""#));
        }
    }

    #[test]
    fn absent_optional_fields_are_omitted_not_null() {
        let mut event = pageview();
        event.referrer = Some(String::new());
        event.title = None;
        event.number = None;
        event.props = "not json".into();
        let env = Envelope { account: "a".into(), page_id: "p".into(), ..Envelope::default() };
        let json = to_json(&env, Consent::Granted, 1, &[event]);
        assert!(!json.contains("null"), "{json}");
        assert!(!json.contains("referrer") && !json.contains("title") && !json.contains("screen"), "{json}");
        assert!(json.ends_with(r#""props":{}}]}"#), "{json}");
    }
}
