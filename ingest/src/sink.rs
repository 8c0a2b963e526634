//! Where accepted data goes: Kafka, behind a small trait so handlers can be
//! unit-tested. `send` resolves only after the broker acknowledged every
//! record (acks=all, idempotent producer): the HTTP answer waits for it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::util::Timeout;
use tokio::sync::oneshot;

#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The local queue is full: backpressure, retry soon.
    #[error("producer queue full")]
    QueueFull,
    /// The broker did not acknowledge in time (down, or unreachable).
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// This record can never be produced (too large, bad topic).
    #[error("record rejected: {0}")]
    Rejected(String),
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

pub trait Sink: Send + Sync + 'static {
    /// Produces every record; resolves when all are acknowledged or one failed.
    fn send(&self, records: Vec<Record>) -> SendFuture<'_>;
    /// Whether the broker answers a metadata request now.
    fn ready(&self) -> bool;
    /// Waits for in-flight records (shutdown).
    fn flush(&self, timeout: Duration);
    /// Records waiting in the local queue.
    fn queue_depth(&self) -> u64;
}

pub struct KafkaSink {
    producer: ThreadedProducer<AckContext>,
}

/// Delivery reports of one `send`: every record carries a reference to it,
/// and the request is woken once, when the last record is acknowledged or the
/// first one fails — not once per record.
struct Ack {
    remaining: AtomicUsize,
    done: Mutex<Option<oneshot::Sender<Result<(), SinkError>>>>,
}

impl Ack {
    fn finish(&self, outcome: Result<(), SinkError>) {
        if let Some(tx) = self.done.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(outcome);
        }
    }
}

/// Routes librdkafka's delivery reports (on the producer's polling thread) to their `Ack`.
struct AckContext;

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Arc<Ack>;

    fn delivery(&self, result: &DeliveryResult<'_>, ack: Arc<Ack>) {
        match result {
            Ok(_) => {
                if ack.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                    ack.finish(Ok(()));
                }
            }
            Err((e, _)) => ack.finish(Err(classify(e))),
        }
    }
}

impl KafkaSink {
    /// `linger`: how long the producer waits to fill a batch. Every HTTP answer
    /// waits for its ack, so this is added to each request's latency; under
    /// load, batches fill before it runs out anyway. `compression`: librdkafka's
    /// `compression.type` (lz4, snappy, zstd, gzip or none).
    pub fn new(brokers: &str, delivery_timeout: Duration, linger: Duration, batch_messages: u32, compression: &str) -> Result<KafkaSink, KafkaError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("client.id", "ringpath-ingest")
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("compression.type", compression)
            .set("linger.ms", linger.as_millis().to_string())
            .set("batch.num.messages", batch_messages.to_string())
            // Bounded in-flight queue: past this, QueueFull → 503, not unbounded memory.
            .set("queue.buffering.max.messages", "200000")
            .set("queue.buffering.max.kbytes", "262144")
            // After this the record is failed and the client gets 503; with the
            // idempotent producer a retry inside this window never duplicates.
            .set("message.timeout.ms", delivery_timeout.as_millis().to_string())
            .set("socket.keepalive.enable", "true")
            // A broker that comes back is found within a second (default backoff grows to 10 s),
            // so ingest accepts again soon after an outage without a restart.
            .set("reconnect.backoff.ms", "50")
            .set("reconnect.backoff.max.ms", "1000")
            .set("retry.backoff.max.ms", "500")
            .set("socket.connection.setup.timeout.ms", "3000")
            .create_with_context(AckContext)?;
        Ok(KafkaSink { producer })
    }
}

fn classify(err: &KafkaError) -> SinkError {
    match err.rdkafka_error_code() {
        Some(RDKafkaErrorCode::QueueFull) => SinkError::QueueFull,
        Some(RDKafkaErrorCode::MessageSizeTooLarge) | Some(RDKafkaErrorCode::InvalidMessageSize) | Some(RDKafkaErrorCode::InvalidTopic) => {
            SinkError::Rejected(err.to_string())
        }
        _ => SinkError::Unavailable(err.to_string()),
    }
}

impl Sink for KafkaSink {
    fn send(&self, records: Vec<Record>) -> SendFuture<'_> {
        Box::pin(async move {
            if records.is_empty() {
                return Ok(());
            }
            let (tx, rx) = oneshot::channel();
            let ack = Arc::new(Ack { remaining: AtomicUsize::new(records.len()), done: Mutex::new(Some(tx)) });
            for rec in &records {
                let mut record = Some(BaseRecord::with_opaque_to(&rec.topic, ack.clone()).key(rec.key.as_bytes()).payload(&rec.payload));
                // Brief retry on QueueFull: it is backpressure, not failure.
                let mut attempt = 0;
                loop {
                    match self.producer.send(record.take().expect("record present")) {
                        Ok(()) => break,
                        Err((e, back)) => {
                            let err = classify(&e);
                            if matches!(err, SinkError::QueueFull) && attempt < 5 {
                                attempt += 1;
                                record = Some(back);
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                continue;
                            }
                            // Records already queued still get their reports; nobody waits for them.
                            return Err(err);
                        }
                    }
                }
            }
            drop(ack);
            match rx.await {
                Ok(outcome) => outcome,
                Err(_) => Err(SinkError::Unavailable("producer dropped the record".into())),
            }
        })
    }

    fn ready(&self) -> bool {
        self.producer.client().fetch_metadata(None, Timeout::After(Duration::from_millis(1500))).is_ok()
    }

    fn flush(&self, timeout: Duration) {
        let _ = self.producer.flush(Timeout::After(timeout));
    }

    fn queue_depth(&self) -> u64 {
        self.producer.in_flight_count().max(0) as u64
    }
}
