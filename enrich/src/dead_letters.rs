//! Messages enrich can never store — undecodable, an unknown account, rows
//! ClickHouse refuses for good — go to the dead-letter topic with their
//! reason, and their offsets move on. The DLQ is written after enrich, so
//! every IP in a dead letter is truncated (its consent and policy cannot be
//! trusted), and the payload is capped.

use std::future::Future;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use ringpath_types::time::now_ms;
use ringpath_types::wire::{DlqMessage, Received};

use crate::transform;

/// Longest payload kept in a dead letter.
const MAX_PAYLOAD: usize = 64 * 1024;

/// Where dead letters go.
pub trait DeadLetters: Sync {
    fn send(&self, letter: &DlqMessage) -> impl Future<Output = Result<(), String>> + Send;
}

/// A dead letter from `stage` (`enrich:events`, `enrich:store:calls`, …).
pub fn letter(stage: &str, reason: String, account: Option<String>, payload: &[u8]) -> DlqMessage {
    DlqMessage {
        stage: stage.to_owned(),
        reason,
        account,
        payload: transform::scrub_ips(&String::from_utf8_lossy(&payload[..payload.len().min(MAX_PAYLOAD)])),
        payload_bytes: payload.len(),
        received: Received { received_at: now_ms(), ip: String::new(), user_agent: String::new() },
    }
}

/// The dead-letter topic, written `acks=all` and idempotent, keyed by stage.
pub struct KafkaDeadLetters {
    producer: FutureProducer,
    topic: String,
}

impl KafkaDeadLetters {
    pub fn new(brokers: &str, topic: &str) -> rdkafka::error::KafkaResult<KafkaDeadLetters> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000")
            .create()?;
        Ok(KafkaDeadLetters { producer, topic: topic.to_owned() })
    }
}

impl DeadLetters for KafkaDeadLetters {
    async fn send(&self, letter: &DlqMessage) -> Result<(), String> {
        let body = serde_json::to_vec(letter).map_err(|e| e.to_string())?;
        let record = FutureRecord::to(&self.topic).key(letter.stage.as_str()).payload(&body);
        self.producer.send(record, Duration::from_secs(5)).await.map(|_| ()).map_err(|(e, _)| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_carries_no_full_ip_and_at_most_64_kib() {
        let d = letter("enrich:events", "unknown account acc_x".into(), Some("acc_x".into()), br#"{"ip":"203.0.113.77","x":"2001:db8:1:2::9"}"#);
        assert!(d.payload.contains("203.0.113.0") && !d.payload.contains("203.0.113.77"), "{}", d.payload);
        assert!(!d.payload.contains("2001:db8:1:2::9"), "{}", d.payload);
        let big = vec![b'a'; 100_000];
        assert_eq!(letter("s", "r".into(), None, &big).payload.len(), MAX_PAYLOAD);
    }
}
