//! Restart recovery: reads recent `ringpath.assignments` so holds that were
//! live before a restart stay live, and no held number goes to a new session.
//! Reading is here; replaying them into the pool store is `restore_into`.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use ringpath_types::wire::AssignmentMessage;

use ringpath_types::accounts::AccountsFile;

use crate::pools::PoolStore;

/// Longest hold any account may configure that we look back for.
const LOOKBACK_MS: i64 = 24 * 3600 * 1000;

/// Reads the pool assignments newer than the lookback that are still live at `now_ms`.
pub fn live_assignments(brokers: &str, topic: &str, now_ms: i64) -> Result<Vec<AssignmentMessage>, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "ringpath-ingest-restore")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .map_err(|e| e.to_string())?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(Some(topic), timeout).map_err(|e| e.to_string())?;
    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else { return Ok(Vec::new()) };
    if t.partitions().is_empty() {
        return Ok(Vec::new());
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
        return Ok(Vec::new());
    }
    consumer.assign(&assign).map_err(|e| e.to_string())?;
    let mut live = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() && std::time::Instant::now() < deadline {
        let Some(msg) = consumer.poll(Duration::from_millis(500)) else { continue };
        match msg {
            Ok(m) => {
                if m.offset() + 1 >= ends.get(&m.partition()).copied().unwrap_or(0) {
                    ends.remove(&m.partition());
                }
                let Some(Ok(a)) = m.payload().map(serde_json::from_slice::<AssignmentMessage>) else { continue };
                if a.pool_id.is_some() && a.expires_at > now_ms {
                    live.push(a);
                }
            }
            Err(rdkafka::error::KafkaError::PartitionEOF(p)) => {
                ends.remove(&p);
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(live)
}

/// Replays live assignments into `store`, for the pools still configured;
/// returns how many holds were restored.
pub async fn restore_into(store: &dyn PoolStore, accounts: &AccountsFile, live: &[AssignmentMessage], now_ms: i64) -> Result<usize, crate::pools::PoolError> {
    let mut restored = 0;
    for a in live {
        let Some(pool) = accounts.account(&a.account).and_then(|acc| acc.dni.pool.iter().find(|p| Some(&p.id) == a.pool_id.as_ref())) else { continue };
        store.restore(&a.account, pool, &a.session_id, &a.number, a.assigned_at, a.expires_at, now_ms).await?;
        restored += 1;
    }
    Ok(restored)
}
