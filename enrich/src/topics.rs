//! Creates the four topics when they are missing (idempotent), so a fresh
//! cluster with auto-creation off works, and enrich never subscribes to
//! nothing. Existing topics are left exactly as they are. The dead-letter
//! topic is bounded in bytes as well as time: anyone can fill it (its
//! senders need no valid account).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use ringpath_types::wire::Topics;

/// `retention.bytes` of a new dead-letter topic, per partition, unless
/// `RINGPATH_TOPIC_DLQ_RETENTION_BYTES` says otherwise.
pub const DLQ_RETENTION_BYTES: i64 = 256 * 1024 * 1024;

pub async fn ensure_topics(brokers: &str, topics: &Topics, partitions: i32, replication: i32, dlq_retention_bytes: i64) -> anyhow::Result<Vec<String>> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", brokers).create()?;
    let dlq_bytes = dlq_retention_bytes.to_string();
    let names = [&topics.events, &topics.calls, &topics.assignments];
    let mut new: Vec<NewTopic> = names.iter().map(|n| NewTopic::new(n, partitions, TopicReplication::Fixed(replication))).collect();
    new.push(NewTopic::new(&topics.dlq, partitions, TopicReplication::Fixed(replication)).set("retention.bytes", &dlq_bytes));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))).request_timeout(Some(Duration::from_secs(30)));
    let mut created = Vec::new();
    for result in admin.create_topics(&new, &opts).await? {
        match result {
            Ok(name) => created.push(name),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("creating topic {name}: {code}"),
        }
    }
    Ok(created)
}
