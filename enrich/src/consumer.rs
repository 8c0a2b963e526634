//! enrich's place in the consumer group: one member over the three topics.
//! Offsets are never stored automatically: a batch's offsets are committed
//! (synchronously) only after every row it holds is stored. Rebalances are
//! logged, and offsets stored but not yet committed (a commit that failed)
//! are committed before partitions are given up. A partition revoked while
//! its batch is being written is replayed by its next owner; the tables'
//! ids make the replay harmless.

use std::collections::HashMap;
use std::sync::Mutex;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use crate::settings::Settings;

/// (topic, partition) → the next offset to read.
pub type Offsets = HashMap<(String, i32), i64>;

/// Logs rebalances and commits what was stored before partitions go.
#[derive(Default)]
pub struct GroupContext {
    /// Offsets whose rows are stored but whose commit failed.
    uncommitted: Mutex<Offsets>,
}

impl ClientContext for GroupContext {}

fn partitions(tpl: &TopicPartitionList) -> String {
    tpl.elements().iter().map(|e| format!("{}[{}]", e.topic(), e.partition())).collect::<Vec<_>>().join(",")
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(revoked) => {
                tracing::info!(partitions = %partitions(revoked), "rebalance: partitions revoked");
                let pending = std::mem::take(&mut *self.uncommitted.lock().unwrap_or_else(|p| p.into_inner()));
                if pending.is_empty() {
                    return;
                }
                match to_list(&pending).and_then(|tpl| consumer.commit(&tpl, CommitMode::Sync)) {
                    Ok(()) => tracing::info!(partitions = pending.len(), "rebalance: stored offsets committed before the revoke"),
                    Err(e) => tracing::warn!(error = %e, "rebalance: could not commit stored offsets; their rows will be replayed and deduplicated"),
                }
            }
            Rebalance::Assign(assigned) => tracing::info!(partitions = %partitions(assigned), "rebalance: partitions assigned"),
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

fn to_list(offsets: &Offsets) -> KafkaResult<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in offsets {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    Ok(tpl)
}

/// The group member.
pub struct Consumer {
    inner: StreamConsumer<GroupContext>,
}

impl Consumer {
    pub fn new(settings: &Settings) -> KafkaResult<Consumer> {
        let inner: StreamConsumer<GroupContext> = ClientConfig::new()
            .set("bootstrap.servers", &settings.kafka_brokers)
            .set("group.id", &settings.group_id)
            .set("client.id", "ringpath-enrich")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("session.timeout.ms", "10000")
            .set("max.poll.interval.ms", "600000")
            .set("fetch.wait.max.ms", "100")
            .set("topic.metadata.refresh.interval.ms", "5000")
            .create_with_context(GroupContext::default())?;
        let topics = [settings.topics.events.as_str(), settings.topics.calls.as_str(), settings.topics.assignments.as_str()];
        inner.subscribe(&topics)?;
        Ok(Consumer { inner })
    }

    pub async fn recv(&self) -> Result<BorrowedMessage<'_>, KafkaError> {
        self.inner.recv().await
    }

    /// Commits a stored batch's offsets. A failed commit is kept and tried
    /// again before a revoke; until then a crash only means a harmless replay.
    pub fn commit(&self, offsets: &Offsets) {
        let result = to_list(offsets).and_then(|tpl| self.inner.commit(&tpl, CommitMode::Sync));
        let mut uncommitted = self.inner.context().uncommitted.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(()) => {
                for key in offsets.keys() {
                    uncommitted.remove(key);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "offset commit failed; the batch will be replayed and deduplicated unless a later commit covers it");
                for (key, offset) in offsets {
                    let known = uncommitted.entry(key.clone()).or_insert(*offset);
                    *known = (*known).max(*offset);
                }
            }
        }
    }
}
