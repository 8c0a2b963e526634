//! Helpers for the enrich end-to-end tests: collector messages written
//! straight to the test topics (so times and IPs are exact), topics read back,
//! committed offsets, and a scan of every column of every table.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use ringpath_types::wire::{AssignmentMessage, CallMessage, CallRecord, CallStatus, Consent, Event, EventMessage, NumberKind, Received};
use serde_json::Map;

pub const CHROME_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

pub use ringpath_types::time::now_ms;

/// An idempotent, acks=all producer for the test topics.
pub struct TopicWriter {
    producer: FutureProducer,
}

impl TopicWriter {
    pub fn new(brokers: &str) -> anyhow::Result<TopicWriter> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .create()
            .context("creating a producer")?;
        Ok(TopicWriter { producer })
    }

    pub async fn send_raw(&self, topic: &str, key: &str, payload: &[u8]) -> anyhow::Result<()> {
        self.producer
            .send(FutureRecord::to(topic).key(key).payload(payload), Duration::from_secs(30))
            .await
            .map_err(|(e, _)| anyhow::anyhow!("producing to {topic}: {e}"))?;
        Ok(())
    }

    pub async fn send<T: serde::Serialize>(&self, topic: &str, key: &str, value: &T) -> anyhow::Result<()> {
        self.send_raw(topic, key, &serde_json::to_vec(value)?).await
    }

    /// Sends many messages, enqueued at once (one acknowledgement wait per chunk, not per message).
    pub async fn send_all(&self, topic: &str, messages: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
        for chunk in messages.chunks(5000) {
            let mut pending = Vec::with_capacity(chunk.len());
            for (key, payload) in chunk {
                loop {
                    match self.producer.send_result(FutureRecord::to(topic).key(key).payload(payload)) {
                        Ok(delivery) => {
                            pending.push(delivery);
                            break;
                        }
                        Err((rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), _)) => {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        Err((e, _)) => bail!("producing to {topic}: {e}"),
                    }
                }
            }
            for delivery in pending {
                delivery.await.context("producer dropped")?.map_err(|(e, _)| anyhow::anyhow!("producing to {topic}: {e}"))?;
            }
        }
        Ok(())
    }
}

/// A page view as ingest would publish it.
pub struct Visit<'a> {
    pub account: &'a str,
    pub consent: Consent,
    pub visitor: Option<&'a str>,
    pub session: Option<&'a str>,
    pub ip: &'a str,
    pub url: &'a str,
    pub referrer: &'a str,
    pub ts: i64,
}

pub fn event_message(id: &str, v: &Visit<'_>) -> EventMessage {
    EventMessage {
        account: v.account.to_owned(),
        consent: v.consent,
        visitor_id: v.visitor.map(str::to_owned),
        session_id: v.session.map(str::to_owned),
        page_id: Some(format!("page-{id}")),
        sent_at: v.ts,
        screen: Some("1920x1080".into()),
        lang: Some("en-US".into()),
        tz: Some("UTC".into()),
        event: Event {
            id: id.to_owned(),
            kind: "pageview".into(),
            ts: v.ts,
            url: v.url.to_owned(),
            referrer: Some(v.referrer.to_owned()).filter(|r| !r.is_empty()),
            title: Some("Page".into()),
            number: None,
            props: Map::new(),
        },
        received: Received { received_at: v.ts + 20, ip: v.ip.to_owned(), user_agent: CHROME_UA.into() },
    }
}

/// A session-level pool number assignment as ingest publishes it.
#[allow(clippy::too_many_arguments)]
pub fn assignment_message(account: &str, number: &str, pool: &str, session: &str, visitor: Option<&str>, assigned_at: i64, expires_at: i64, url: &str, referrer: &str, ip: &str) -> AssignmentMessage {
    AssignmentMessage {
        account: account.to_owned(),
        number: number.to_owned(),
        kind: NumberKind::Session,
        pool_id: Some(pool.to_owned()),
        session_id: session.to_owned(),
        visitor_id: visitor.map(str::to_owned),
        assigned_at,
        expires_at,
        shared: false,
        url: url.to_owned(),
        referrer: Some(referrer.to_owned()).filter(|r| !r.is_empty()),
        received: Received { received_at: assigned_at, ip: ip.to_owned(), user_agent: CHROME_UA.into() },
    }
}

/// A call record as ingest publishes it (`received_at` a little after the call ended).
pub fn call_message(account: &str, call_id: &str, to: &str, started_ms: i64, received_ms: i64) -> CallMessage {
    CallMessage {
        account: account.to_owned(),
        call: CallRecord {
            call_id: call_id.to_owned(),
            to: to.to_owned(),
            from: "+15557654321".into(),
            started_at: ringpath_types::time::format_rfc3339_ms(started_ms),
            duration_s: 125,
            status: CallStatus::Completed,
            caller_name: Some("Pat Caller".into()),
            caller_city: Some("Springfield".into()),
        },
        received: Received { received_at: received_ms, ip: "54.172.60.1".into(), user_agent: "TwilioProxy/1.1".into() },
    }
}

/// Every message's payload on `topic` (all partitions, from the start to the current end).
pub fn read_topic(brokers: &str, topic: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    Ok(crate::ingest_support::read_topic_blocking(brokers, topic)?.into_iter().map(|m| m.payload).collect())
}

/// The offset `group` has committed for one partition (None: nothing committed).
pub fn committed_offset(brokers: &str, group: &str, topic: &str, partition: i32) -> anyhow::Result<Option<i64>> {
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", group).set("enable.auto.commit", "false").create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
    Ok(committed.elements().first().and_then(|e| match e.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }))
}

/// How many members a consumer group has, and whether it is stable (no rebalance under way).
pub fn group_members(brokers: &str, group: &str) -> anyhow::Result<(usize, bool)> {
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", format!("reader-{}", crate::unique_suffix())).create()?;
    let list = consumer.fetch_group_list(Some(group), Duration::from_secs(10))?;
    Ok(list.groups().iter().find(|g| g.name() == group).map(|g| (g.members().len(), g.state() == "Stable")).unwrap_or((0, false)))
}

/// The end (next offset) of one partition.
pub fn end_offset(brokers: &str, topic: &str, partition: i32) -> anyhow::Result<i64> {
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", format!("reader-{}", crate::unique_suffix())).create()?;
    Ok(consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?.1)
}

/// One place a string was found by [`find_everywhere`].
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub table: String,
    pub column: String,
    pub needle: String,
    pub rows: u64,
}

#[derive(clickhouse::Row, serde::Deserialize)]
struct Column {
    table: String,
    name: String,
    #[serde(rename = "type")]
    kind: String,
}

/// Full scan: every String / Array(String) / Nullable(String) column of every
/// table in `database`, searched for each needle as a substring.
pub async fn find_everywhere(ch: &clickhouse::Client, database: &str, needles: &[&str]) -> anyhow::Result<Vec<Hit>> {
    let columns: Vec<Column> = ch.query("SELECT table, name, type FROM system.columns WHERE database = ? ORDER BY table, name").bind(database).fetch_all().await?;
    let mut hits = Vec::new();
    for col in &columns {
        let expr = match col.kind.as_str() {
            "String" | "Nullable(String)" | "LowCardinality(String)" => format!("position(ifNull(toString(`{}`), ''), ?) > 0", col.name),
            "Array(String)" => format!("arrayExists(x -> position(x, ?) > 0, `{}`)", col.name),
            _ => continue,
        };
        for needle in needles {
            let sql = format!("SELECT count() FROM `{database}`.`{}` WHERE {expr}", col.table);
            let rows: u64 = ch.query(&sql).bind(*needle).fetch_one().await.with_context(|| sql.clone())?;
            if rows > 0 {
                hits.push(Hit { table: col.table.clone(), column: col.name.clone(), needle: (*needle).to_owned(), rows });
            }
        }
    }
    Ok(hits)
}

/// Polls `sql` (one string) until it equals `want`, or fails after `limit`.
pub async fn wait_text(ch: &clickhouse::Client, sql: &str, want: &str, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let got = ch.query(sql).fetch_optional::<String>().await?.unwrap_or_default();
        if got == want {
            return Ok(());
        }
        if started.elapsed() > limit {
            bail!("{sql}: {got:?} after {limit:?}, wanted {want:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where a test crashes enrich: the `nth` time (1-based) it reaches `stage`
/// it is parked there for good and the test is told, so a kill lands exactly
/// at that point of the batch cycle however fast the machine is.
pub struct CrashPoint {
    pub hook: ringpath_enrich::pipeline::StageHook,
    reached: tokio::sync::watch::Receiver<bool>,
}

impl CrashPoint {
    pub fn new(stage: ringpath_enrich::pipeline::Stage, nth: u32) -> CrashPoint {
        let (tx, reached) = tokio::sync::watch::channel(false);
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let hook: ringpath_enrich::pipeline::StageHook = std::sync::Arc::new(move |at| {
            let park = at == stage && seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == nth;
            if park {
                let _ = tx.send(true);
            }
            Box::pin(async move {
                if park {
                    std::future::pending::<()>().await;
                }
            })
        });
        CrashPoint { hook, reached }
    }

    /// Waits until enrich is parked at the point (or fails after `limit`).
    pub async fn parked(&mut self, limit: Duration) -> anyhow::Result<()> {
        tokio::time::timeout(limit, self.reached.wait_for(|r| *r)).await.context("enrich never reached its crash point")?.context("hook dropped")?;
        Ok(())
    }
}
