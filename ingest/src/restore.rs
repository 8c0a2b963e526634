//! Restart recovery: replays recent `ringpath.assignments` so holds that were
//! live before a restart stay live, and no held number goes to a new session.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use ringpath_types::wire::AssignmentMessage;

use crate::numbers::PoolState;

/// Longest hold any account may configure that we look back for.
const LOOKBACK_MS: i64 = 24 * 3600 * 1000;

/// Reads assignments newer than the lookback and restores live holds.
/// Returns how many live holds were restored.
pub fn restore_holds(brokers: &str, topic: &str, pools: &mut HashMap<(String, String), PoolState>, now_ms: i64) -> Result<usize, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "ringpath-ingest-restore")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .map_err(|e| e.to_string())?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(Some(topic), timeout).map_err(|e| e.to_string())?;
    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else { return Ok(0) };
    if t.partitions().is_empty() {
        return Ok(0);
    }
    let mut by_time = TopicPartitionList::new();
    for p in t.partitions() {
        by_time.add_partition_offset(topic, p.id(), Offset::Offset(now_ms - LOOKBACK_MS)).map_err(|e| e.to_string())?;
    }
    let starts = consumer.offsets_for_times(by_time, timeout).map_err(|e| e.to_string())?;
    let mut ends = HashMap::new();
    let mut assign = TopicPartitionList::new();
    for el in starts.elements() {
        let (_, high) = consumer.fetch_watermarks(topic, el.partition(), timeout).map_err(|e| e.to_string())?;
        let start = match el.offset() {
            Offset::Offset(o) => o,
            _ => high,
        };
        if start < high {
            ends.insert(el.partition(), high);
            assign.add_partition_offset(topic, el.partition(), Offset::Offset(start)).map_err(|e| e.to_string())?;
        }
    }
    if ends.is_empty() {
        return Ok(0);
    }
    consumer.assign(&assign).map_err(|e| e.to_string())?;
    let mut replayed = 0usize;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() && std::time::Instant::now() < deadline {
        let Some(msg) = consumer.poll(Duration::from_millis(500)) else { continue };
        match msg {
            Ok(m) => {
                if m.offset() + 1 >= ends.get(&m.partition()).copied().unwrap_or(0) {
                    ends.remove(&m.partition());
                }
                let Some(Ok(a)) = m.payload().map(serde_json::from_slice::<AssignmentMessage>) else { continue };
                let Some(pool_id) = a.pool_id else { continue };
                if let Some(pool) = pools.get_mut(&(a.account, pool_id)) {
                    pool.restore(&a.session_id, &a.number, a.assigned_at, a.expires_at, now_ms);
                    replayed += 1;
                }
            }
            Err(rdkafka::error::KafkaError::PartitionEOF(p)) => {
                ends.remove(&p);
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(replayed)
}
