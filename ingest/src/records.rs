//! What ingest publishes (README "Kafka topics"): one record per event on
//! `ringpath.events`, call records, number assignments and dead letters, each
//! keyed as the topic documents. Encoding only; sending is `sink`'s.

pub mod json_out;

use ringpath_types::wire::{AssignmentMessage, Batch, CallMessage, DlqMessage, Received};

use crate::sink::Record;

/// One record per event of `batch` for `topic`, each an `EventMessage`'s JSON.
/// The batch's fields are the same in every message: written once, each
/// message is that prefix, the event (its `ts` corrected by the browser's
/// clock `skew`), and a closing brace. `body_len` sizes the buffers.
pub fn events(batch: &Batch, received: &Received, skew: i64, topic: &str, body_len: usize) -> serde_json::Result<Vec<Record>> {
    let shared = SharedOut::new(batch, received);
    let head = serde_json::to_vec(&shared)?;
    let head = head.strip_suffix(b"}").unwrap_or(&head);
    let per_event = head.len() + body_len / batch.events.len().max(1) + 64;
    let mut records = Vec::with_capacity(batch.events.len());
    for event in &batch.events {
        let mut payload = Vec::with_capacity(per_event);
        payload.extend_from_slice(head);
        payload.extend_from_slice(b",\"event\":");
        json_out::write_event(&mut payload, event, event.ts + skew)?;
        payload.push(b'}');
        // Kafka key: visitor, else session, else event id — as `EventMessage::key`.
        let key = shared.visitor_id.or(shared.session_id).unwrap_or(&event.id);
        records.push(Record { topic: topic.to_owned(), key: key.to_owned(), payload });
    }
    Ok(records)
}

/// `EventMessage`'s fields other than `event`, borrowed: the hot path writes
/// them once per batch ([`events`]) and each event after them
/// (`json_out::write_event`). A unit test holds the result byte-for-byte equal
/// to `EventMessage`'s own serialisation, whose field order (shared fields,
/// `received`, then `event`) makes this possible.
#[derive(serde::Serialize)]
struct SharedOut<'a> {
    account: &'a str,
    consent: ringpath_types::wire::Consent,
    visitor_id: Option<&'a str>,
    session_id: Option<&'a str>,
    page_id: Option<&'a str>,
    sent_at: i64,
    screen: Option<&'a str>,
    lang: Option<&'a str>,
    tz: Option<&'a str>,
    #[serde(flatten)]
    received: &'a Received,
}

impl<'a> SharedOut<'a> {
    fn new(b: &'a Batch, received: &'a Received) -> SharedOut<'a> {
        SharedOut {
            account: &b.account,
            consent: b.consent,
            visitor_id: b.visitor_id.as_deref(),
            session_id: b.session_id.as_deref(),
            page_id: b.page_id.as_deref(),
            sent_at: b.sent_at,
            screen: b.screen.as_deref(),
            lang: b.lang.as_deref(),
            tz: b.tz.as_deref(),
            received,
        }
    }
}

/// A number assignment or renewal, keyed by the tracking number.
pub fn assignment(msg: &AssignmentMessage, topic: &str) -> serde_json::Result<Record> {
    Ok(Record { topic: topic.to_owned(), key: msg.number.clone(), payload: serde_json::to_vec(msg)? })
}

/// A call record, keyed by the tracking number dialled.
pub fn call(msg: &CallMessage, topic: &str) -> serde_json::Result<Record> {
    Ok(Record { topic: topic.to_owned(), key: msg.call.to.clone(), payload: serde_json::to_vec(msg)? })
}

/// A rejected payload with its reason, keyed by the route that refused it.
pub fn dead_letter(msg: &DlqMessage, topic: &str) -> serde_json::Result<Record> {
    Ok(Record { topic: topic.to_owned(), key: msg.stage.clone(), payload: serde_json::to_vec(msg)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringpath_types::wire::EventMessage;

    #[test]
    fn borrowed_event_json_is_the_event_message() {
        let body = r#"{"v":1,"account":"acc_demo","sent_at":1764374400000,"consent":"granted","visitor_id":"visitor-1","session_id":"session-1",
            "page_id":"page-0001","screen":"1920x1080","lang":"en-US","tz":"Europe/Berlin","events":[
            {"id":"e1","type":"pageview","ts":1764374399000,"url":"https://demo.example/?q=1","referrer":"https://www.google.com/","title":"Home \"quoted\" é","number":"+15550109001","props":{"a":[1,{"b":null}]}},
            {"id":"e2","type":"call_click","ts":1764374399500,"url":"https://demo.example/"}]}"#;
        let batch: Batch = serde_json::from_str(body).unwrap();
        let received = Received { received_at: 1764374400100, ip: "203.0.113.9".into(), user_agent: "Mozilla/5.0 \"x\"".into() };
        let records = events(&batch, &received, 100, "ringpath.events", body.len()).unwrap();
        assert_eq!(records.len(), 2);
        for (event, record) in batch.events.iter().zip(&records) {
            let mut owned_event = event.clone();
            owned_event.ts += 100;
            let owned = EventMessage {
                account: batch.account.clone(),
                consent: batch.consent,
                visitor_id: batch.visitor_id.clone(),
                session_id: batch.session_id.clone(),
                page_id: batch.page_id.clone(),
                sent_at: batch.sent_at,
                screen: batch.screen.clone(),
                lang: batch.lang.clone(),
                tz: batch.tz.clone(),
                received: received.clone(),
                event: owned_event,
            };
            assert_eq!(String::from_utf8(record.payload.clone()).unwrap(), serde_json::to_string(&owned).unwrap());
            assert_eq!(record.key, owned.key());
            assert_eq!(record.topic, "ringpath.events");
            let back: EventMessage = serde_json::from_slice(&record.payload).unwrap();
            assert_eq!(back, owned);
        }
        let mut anonymous = batch.clone();
        anonymous.visitor_id = None;
        anonymous.session_id = None;
        let keys: Vec<String> = events(&anonymous, &received, 0, "t", 0).unwrap().into_iter().map(|r| r.key).collect();
        assert_eq!(keys, ["e1", "e2"]);
    }
}
