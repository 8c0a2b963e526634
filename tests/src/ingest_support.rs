//! Helpers for the collector's end-to-end tests (`tests/tests/ingest_*.rs`):
//! request builders, a topic reader, a raw HTTP/1.1 client for requests
//! reqwest will not send (slow bodies, lying headers), and extra accounts.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use ringpath_types::accounts::AccountsFile;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixtures;

/// A desktop Chrome; requests without a browser user agent count as bots.
pub const BROWSER_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";
pub const GOOGLEBOT_UA: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// An account with a larger pool matching every visit, for pool tests.
pub const POOL_ACCOUNT: &str = "acc_pool";
pub const POOL_TOKEN: &str = "pool-token";
pub const POOL_SITE_NUMBER: &str = "+15550200000";

/// The pool account's numbers: +1555020900{0..n}.
pub fn pool_numbers(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("+155502090{i:02}")).collect()
}

/// The fixture accounts plus `acc_pool`, whose pool of `n` numbers matches every visit.
pub fn accounts_with_pool_toml(n: usize, hold_minutes: u32) -> String {
    let numbers: Vec<String> = pool_numbers(n).iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        r#"{base}
[[account]]
id = "{POOL_ACCOUNT}"
token_sha256 = "{token}"

[account.dni]
site_numbers = ["{POOL_SITE_NUMBER}"]
hold_minutes = {hold_minutes}

[[account.dni.pool]]
id = "everyone"
numbers = [{numbers}]
"#,
        base = fixtures::accounts_toml(),
        token = fixtures::sha256_hex(POOL_TOKEN),
        numbers = numbers.join(", "),
    )
}

pub fn accounts_with_pool(n: usize, hold_minutes: u32) -> AccountsFile {
    AccountsFile::parse(&accounts_with_pool_toml(n, hold_minutes)).expect("pool accounts parse")
}

pub use ringpath_types::time::now_ms;

/// A valid granted batch of `n` page views with ids `{prefix}-{i}`.
pub fn good_batch(account: &str, prefix: &str, n: usize) -> Value {
    let now = now_ms();
    let events: Vec<Value> = (0..n)
        .map(|i| {
            json!({"id": format!("{prefix}-{i}"), "type": "pageview", "ts": now - 100, "url": "https://demo.example/pricing?utm_medium=cpc&utm_source=google",
                   "referrer": "https://www.google.com/", "title": "Pricing", "props": {}})
        })
        .collect();
    json!({"v": 1, "account": account, "sent_at": now, "consent": "granted", "visitor_id": "visitor-0000001", "session_id": "session-0000001",
           "page_id": "page00001", "screen": "1920x1080", "lang": "en-US", "tz": "Europe/Berlin", "events": events})
}

/// A `POST /v1/numbers` body for a session on a paid-search landing page.
pub fn numbers_request(account: &str, session: &str, url: &str) -> Value {
    json!({"account": account, "session_id": session, "visitor_id": format!("v-{session}"), "url": url, "referrer": "https://www.google.com/"})
}

/// A valid call record.
pub fn call_record(call_id: &str, to: &str) -> Value {
    let started = ringpath_types::time::format_rfc3339_ms(now_ms() - 60_000);
    json!({"call_id": call_id, "to": to, "from": "+15557654321", "started_at": started, "duration_s": 125, "status": "completed",
           "caller_name": "Jane Doe", "caller_city": "Austin"})
}

/// One message read back from a topic.
#[derive(Debug, Clone)]
pub struct TopicMessage {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub payload: Vec<u8>,
}

impl TopicMessage {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or(Value::Null)
    }
}

/// Every message now in `topic` (all partitions, up to their high watermark).
/// Fails if the broker does not answer: a missing Kafka is a failed test.
pub async fn read_topic(brokers: &str, topic: &str) -> anyhow::Result<Vec<TopicMessage>> {
    let brokers = brokers.to_owned();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || read_topic_blocking(&brokers, &topic)).await?
}

pub fn read_topic_blocking(brokers: &str, topic: &str) -> anyhow::Result<Vec<TopicMessage>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("rp-test-reader-{}", crate::unique_suffix()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()?;
    let timeout = Duration::from_secs(15);
    let metadata = consumer.fetch_metadata(Some(topic), timeout).context("topic metadata: is Kafka running?")?;
    let t = metadata.topics().iter().find(|t| t.name() == topic).context("topic missing")?;
    let mut ends = HashMap::new();
    let mut assign = TopicPartitionList::new();
    for p in t.partitions() {
        let (low, high) = consumer.fetch_watermarks(topic, p.id(), timeout)?;
        if high > low {
            ends.insert(p.id(), high);
            assign.add_partition_offset(topic, p.id(), Offset::Offset(low))?;
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return Ok(out);
    }
    consumer.assign(&assign)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() {
        if Instant::now() > deadline {
            bail!("reading {topic}: partitions {:?} not read to their end in 60 s", ends.keys().collect::<Vec<_>>());
        }
        let Some(msg) = consumer.poll(Duration::from_millis(500)) else { continue };
        match msg {
            Ok(m) => {
                if ends.get(&m.partition()).is_some_and(|end| m.offset() + 1 >= *end) {
                    ends.remove(&m.partition());
                }
                out.push(TopicMessage {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    payload: m.payload().unwrap_or_default().to_vec(),
                });
            }
            Err(rdkafka::error::KafkaError::PartitionEOF(p)) => {
                ends.remove(&p);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Polls `topic` until `done` holds for its messages (or fails after `limit`).
pub async fn wait_topic(brokers: &str, topic: &str, limit: Duration, done: impl Fn(&[TopicMessage]) -> bool) -> anyhow::Result<Vec<TopicMessage>> {
    let started = Instant::now();
    loop {
        let msgs = read_topic(brokers, topic).await?;
        if done(&msgs) {
            return Ok(msgs);
        }
        if started.elapsed() > limit {
            bail!("{topic}: condition not met after {limit:?} ({} messages)", msgs.len());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An answer read off a raw socket.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Sends `parts` over one connection, pausing `pause` between parts, and reads
/// the answer. A write the server refuses (it answered early and closed) is
/// not an error: the answer is still read.
pub async fn raw_http(addr: std::net::SocketAddr, parts: &[Vec<u8>], pause: Duration) -> anyhow::Result<RawResponse> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(pause).await;
        }
        if stream.write_all(part).await.is_err() {
            break;
        }
    }
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if let Some(resp) = parse_response(&buf) {
                if resp.body.len() >= resp.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(usize::MAX) {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read).await.context("no answer within 30 s")?;
    parse_response(&buf).with_context(|| format!("unparseable answer: {:?}", String::from_utf8_lossy(&buf)))
}

fn parse_response(buf: &[u8]) -> Option<RawResponse> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    Some(RawResponse { status, headers, body: buf[end + 4..].to_vec() })
}

/// The value of a Prometheus sample `name{labels}` in a /metrics text, if present.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
        if n != name {
            return None;
        }
        let all = labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        all.then(|| value.parse().ok()).flatten()
    })
}
