//! The topics `ringpath-enrich migrate` creates (the same call the test
//! harness uses): all four, once, and a dead-letter topic bounded in bytes —
//! anyone can send what ends up there, no valid account needed.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use ringpath_enrich::topics::{ensure_topics, DLQ_RETENTION_BYTES};
use ringpath_types::wire::Topics;

async fn topic_config(admin: &AdminClient<DefaultClientContext>, topic: &str, key: &str) -> String {
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(20)));
    let described = admin.describe_configs([&ResourceSpecifier::Topic(topic)], &opts).await.expect("describe configs");
    let resource = described.into_iter().next().expect("one resource").expect("the topic's configs");
    resource.get(key).and_then(|e| e.value.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_creates_the_four_topics_once_with_a_bounded_dead_letter_topic() {
    let brokers = ringpath_tests::kafka_brokers();
    let suffix = ringpath_tests::unique_suffix();
    let topics = Topics {
        events: format!("t-events-{suffix}"),
        calls: format!("t-calls-{suffix}"),
        assignments: format!("t-assignments-{suffix}"),
        dlq: format!("t-dlq-{suffix}"),
    };
    let created = ensure_topics(&brokers, &topics, 2, 1, DLQ_RETENTION_BYTES).await.expect("topics: is Kafka running?");
    assert_eq!(created.len(), 4, "{created:?}");
    assert!(ensure_topics(&brokers, &topics, 2, 1, DLQ_RETENTION_BYTES).await.expect("again").is_empty(), "a second run creates nothing");

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", &brokers).create().expect("admin");
    assert_eq!(topic_config(&admin, &topics.dlq, "retention.bytes").await, DLQ_RETENTION_BYTES.to_string(), "the dead letters are capped in bytes");
    // The data topics keep the broker's default (time only): accepted data is never dropped for size.
    assert_eq!(topic_config(&admin, &topics.events, "retention.bytes").await, "-1");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    admin.delete_topics(&[&topics.events, &topics.calls, &topics.assignments, &topics.dlq], &opts).await.expect("delete");
}
