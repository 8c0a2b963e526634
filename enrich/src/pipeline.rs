//! The consumer loop: read a batch from the three topics, turn it into rows,
//! insert them (assignments, then events, then calls — attribution reads the
//! first two), and only then commit the batch's offsets. A crash anywhere
//! before the commit replays the batch; ReplacingMergeTree on the ids makes
//! the replay harmless. A message that can never be processed goes to the
//! dead-letter topic with its reason and its offset moves on. A ClickHouse
//! outage stops progress (retry with backoff) and loses nothing. Rows that
//! name an erased visitor are not stored (suppression.rs): the list is read
//! before consuming starts and before each batch is filtered, and read again
//! after the batch is stored to catch an erasure written in between.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use ringpath_types::accounts::AccountsFile;
use ringpath_types::wire::{AssignmentMessage, CallMessage, DlqMessage, EventMessage, Received};
use tokio::sync::watch;

use crate::attribution::{self, Target};
use crate::geo::GeoLookup;
use crate::metrics::Metrics;
use crate::rows::{AssignmentRow, CallRow, EventRow};
use crate::settings::Settings;
use crate::store::{HolderQuery, SessionQuery, SessionTouch, Store, StoreError, TouchQuery};
use crate::suppression::Suppression;
use crate::transform;

/// The points of one batch's write, in order. Each is counted
/// (`ringpath_enrich_batch_stages_total`), and a [`StageHook`] runs at each:
/// tests park enrich at one to crash it exactly there, whatever the
/// machine's speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The batch's number assignments are stored; its events are not.
    AssignmentsStored,
    /// Its events are stored; its calls are not attributed yet.
    EventsStored,
    /// Its calls are stored; its offsets are not committed.
    CallsStored,
    /// Its offsets are committed.
    Committed,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::AssignmentsStored => "assignments_stored",
            Stage::EventsStored => "events_stored",
            Stage::CallsStored => "calls_stored",
            Stage::Committed => "committed",
        }
    }
}

/// Runs at every [`Stage`]; the batch goes on when its future completes.
pub type StageHook = Arc<dyn Fn(Stage) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

pub struct Pipeline {
    pub settings: Settings,
    pub store: Store,
    pub geo: Arc<dyn GeoLookup>,
    pub accounts: Arc<RwLock<Arc<AccountsFile>>>,
    pub metrics: Arc<Metrics>,
    consumer: StreamConsumer,
    dlq: FutureProducer,
    erasures: Mutex<ErasureList>,
    hook: Option<StageHook>,
}

/// The suppression list and when it was read.
#[derive(Default)]
struct ErasureList {
    set: Suppression,
    read_at: Option<Instant>,
    full_read_at: Option<Instant>,
}

#[derive(Default)]
struct Batch {
    events: Vec<EventRow>,
    assignments: Vec<AssignmentRow>,
    calls: Vec<CallMessage>,
    dead: Vec<DlqMessage>,
    /// (topic, partition) → next offset to commit.
    offsets: HashMap<(String, i32), i64>,
    messages: usize,
}

/// A call to a pool number that had a holder at the call's start.
struct Held<'h> {
    /// Index of the call in the rows being attributed.
    call: usize,
    holder: &'h AssignmentRow,
    shared: bool,
    /// The holder session's first assignment (its landing).
    origin: Option<&'h AssignmentRow>,
    visitor: String,
}

/// Longest wait for one ClickHouse operation before it is retried.
const STORE_TIMEOUT: Duration = Duration::from_secs(30);

/// How old the suppression list may be when a batch is filtered. The list is
/// read again after every batch is stored (which also keeps it this fresh
/// under load), so this bounds only how often a fresh erasure costs a
/// clean-up mutation instead of a dropped row.
const ERASURES_MAX_AGE: Duration = Duration::from_secs(1);

/// An incremental read starts this far before the newest `erased_at` seen:
/// the server stamps tombstones to the second, and a slow insert may become
/// visible after a newer one.
const ERASURES_OVERLAP_S: u32 = 300;

/// The whole list is read again this often (a clock step on the server
/// could otherwise hide a tombstone from the incremental reads).
const ERASURES_FULL_READ: Duration = Duration::from_secs(3600);

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Pipeline {
    pub fn new(
        settings: Settings,
        geo: Arc<dyn GeoLookup>,
        accounts: Arc<RwLock<Arc<AccountsFile>>>,
        metrics: Arc<Metrics>,
        hook: Option<StageHook>,
    ) -> anyhow::Result<Pipeline> {
        let consumer: StreamConsumer = ClientConfig::new()
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
            .create()?;
        let topics = [settings.topics.events.as_str(), settings.topics.calls.as_str(), settings.topics.assignments.as_str()];
        consumer.subscribe(&topics)?;
        let dlq: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &settings.kafka_brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000")
            .create()?;
        let store = Store::new(&settings.clickhouse);
        Ok(Pipeline { settings, store, geo, accounts, metrics, consumer, dlq, erasures: Mutex::new(ErasureList::default()), hook })
    }

    /// Marks a point of the batch cycle passed.
    async fn reached(&self, stage: Stage) {
        self.metrics.batch_stages.with_label_values(&[stage.as_str()]).inc();
        if let Some(hook) = &self.hook {
            hook(stage).await;
        }
    }

    fn accounts(&self) -> Arc<AccountsFile> {
        self.accounts.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn erasures(&self) -> MutexGuard<'_, ErasureList> {
        self.erasures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs until `shutdown` flips to true; then flushes and commits what it holds.
    ///
    /// One batch is written while the next one fills: a cycle takes
    /// max(fill, write) instead of their sum, which keeps end-to-end latency
    /// near the batch period. Writes stay strictly in order (batch n+1 starts
    /// writing only after batch n committed), so calls still see the
    /// assignments of earlier batches and offsets are committed in order.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        // Nothing is stored before the suppression list is known.
        self.retry("erasures", &mut shutdown.clone(), || self.read_erasures(Duration::ZERO)).await?;
        let mut last_reattribution = Instant::now();
        let mut writing = None;
        loop {
            let fill = self.fill(&mut shutdown);
            let batch = match writing.take() {
                Some(previous) => {
                    let (batch, written) = tokio::join!(fill, previous);
                    written?;
                    batch
                }
                None => fill.await,
            };
            let stopping = *shutdown.borrow();
            let maintain = !stopping && last_reattribution.elapsed() > Duration::from_secs(5);
            if maintain {
                last_reattribution = Instant::now();
            }
            let cycle = self.write(batch, maintain, shutdown.clone());
            if stopping {
                cycle.await?;
                tracing::info!("enrich stopping: last batch committed");
                return Ok(());
            }
            writing = Some(cycle);
        }
    }

    /// Reads messages until the batch is full, its period is over, or shutdown.
    async fn fill(&self, shutdown: &mut watch::Receiver<bool>) -> Batch {
        let mut batch = Batch::default();
        let period = tokio::time::sleep(self.settings.batch_period);
        tokio::pin!(period);
        while batch.messages < self.settings.batch_rows && !*shutdown.borrow() {
            tokio::select! {
                msg = self.consumer.recv() => match msg {
                    Ok(m) => self.add(&mut batch, &m),
                    Err(e) => {
                        tracing::warn!(error = %e, "kafka receive error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
                _ = &mut period => break,
                _ = shutdown.changed() => break,
            }
        }
        batch
    }

    /// Writes and commits one batch (if it holds anything), then, when due,
    /// retries pending attributions.
    async fn write(&self, batch: Batch, maintain: bool, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        if batch.messages > 0 {
            self.flush(batch, &mut shutdown).await?;
        }
        if maintain {
            if let Err(e) = self.reattribute_pending().await {
                tracing::warn!(error = %e, "re-attribution pass failed; will retry");
            }
        }
        Ok(())
    }

    fn dead(batch: &mut Batch, stage: &str, reason: String, account: Option<String>, payload: &[u8]) {
        batch.dead.push(DlqMessage {
            stage: stage.to_owned(),
            reason,
            account,
            // A broken message's consent and policy cannot be trusted: every IP in it is truncated.
            payload: transform::scrub_ips(&String::from_utf8_lossy(&payload[..payload.len().min(64 * 1024)])),
            received: Received { received_at: now_ms(), ip: String::new(), user_agent: String::new() },
        });
    }

    fn add(&self, batch: &mut Batch, m: &BorrowedMessage<'_>) {
        batch.messages += 1;
        batch.offsets.insert((m.topic().to_owned(), m.partition()), m.offset() + 1);
        let payload = m.payload().unwrap_or(&[]);
        let accounts = self.accounts();
        let topics = &self.settings.topics;
        let topic = m.topic();
        if topic == topics.events {
            match serde_json::from_slice::<EventMessage>(payload) {
                Ok(msg) => match accounts.account(&msg.account) {
                    Some(acc) => batch.events.push(transform::event_row(&msg, acc, self.geo.as_ref())),
                    None => Self::dead(batch, "enrich:events", format!("unknown account {}", msg.account), Some(msg.account.clone()), payload),
                },
                Err(e) => Self::dead(batch, "enrich:events", format!("unparseable event message: {e}"), None, payload),
            }
        } else if topic == topics.assignments {
            match serde_json::from_slice::<AssignmentMessage>(payload) {
                Ok(msg) => match accounts.account(&msg.account) {
                    Some(acc) => batch.assignments.push(transform::assignment_row(&msg, acc, self.geo.as_ref())),
                    None => Self::dead(batch, "enrich:assignments", format!("unknown account {}", msg.account), Some(msg.account.clone()), payload),
                },
                Err(e) => Self::dead(batch, "enrich:assignments", format!("unparseable assignment message: {e}"), None, payload),
            }
        } else if topic == topics.calls {
            match serde_json::from_slice::<CallMessage>(payload) {
                Ok(msg) if accounts.account(&msg.account).is_some() => batch.calls.push(msg),
                Ok(msg) => Self::dead(batch, "enrich:calls", format!("unknown account {}", msg.account), Some(msg.account.clone()), payload),
                Err(e) => Self::dead(batch, "enrich:calls", format!("unparseable call message: {e}"), None, payload),
            }
        }
    }

    /// Retries `op` with backoff until it succeeds. Gives up only on shutdown,
    /// returning an error so the batch's offsets are not committed.
    async fn retry<T, F, Fut>(&self, what: &str, shutdown: &mut watch::Receiver<bool>, mut op: F) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let mut delay = Duration::from_millis(100);
        loop {
            // A hung server is an outage too; a timed-out insert may still have
            // landed, which the replay-safe tables make harmless.
            let attempt = match tokio::time::timeout(STORE_TIMEOUT, op()).await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(_) => Err(format!("no answer within {STORE_TIMEOUT:?}")),
            };
            match attempt {
                Ok(v) => return Ok(v),
                Err(e) => {
                    self.metrics.store_errors.with_label_values(&[what]).inc();
                    tracing::warn!(error = %e, what, retry_in_ms = delay.as_millis() as u64, "clickhouse write failed; holding offsets and retrying");
                    if *shutdown.borrow() {
                        anyhow::bail!("shutting down with an unwritten batch ({what}): it will be replayed");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn flush(&self, mut batch: Batch, shutdown: &mut watch::Receiver<bool>) -> anyhow::Result<()> {
        let started = Instant::now();
        for msg in &batch.dead {
            let body = serde_json::to_vec(msg).unwrap_or_default();
            loop {
                let rec = FutureRecord::to(&self.settings.topics.dlq).key(msg.stage.as_str()).payload(&body);
                match self.dlq.send(rec, Duration::from_secs(5)).await {
                    Ok(_) => break,
                    Err((e, _)) => {
                        tracing::warn!(error = %e, "could not dead-letter; retrying");
                        if *shutdown.borrow() {
                            anyhow::bail!("shutting down before the dead letters were written");
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            self.metrics.dead_letters.with_label_values(&[&msg.stage]).inc();
        }
        self.retry("erasures", shutdown, || self.read_erasures(ERASURES_MAX_AGE)).await?;
        let filtered_at = self.drop_erased(&mut batch);
        self.retry("assignments", shutdown, || self.store.insert_assignments(&batch.assignments)).await?;
        self.reached(Stage::AssignmentsStored).await;
        self.retry("events", shutdown, || self.store.insert_events(&batch.events)).await?;
        self.reached(Stage::EventsStored).await;
        self.retry("late attribution", shutdown, || self.claim_unresolved_calls(&batch.assignments)).await?;
        let attributed = self.retry("attribution", shutdown, || self.attribute_all(&batch.calls)).await?;
        let mut call_rows = self.retry("redelivered calls", shutdown, || self.without_redelivered_unresolved(&attributed)).await?;
        self.anonymise_erased(&mut call_rows);
        self.retry("calls", shutdown, || self.store.insert_calls(&call_rows)).await?;
        // Checked against `filtered_at` or a later generation (the list only grows).
        self.retry("erasure clean-up", shutdown, || self.erase_late(filtered_at, &batch.events, &batch.assignments, &call_rows)).await?;
        self.reached(Stage::CallsStored).await;

        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in &batch.offsets {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
        }
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Sync) {
            // Rows are stored; a lost commit only means a harmless replay.
            tracing::warn!(error = %e, "offset commit failed; the batch will be replayed and deduplicated");
        }
        self.reached(Stage::Committed).await;
        self.metrics.rows.with_label_values(&["events"]).inc_by(batch.events.len() as u64);
        self.metrics.rows.with_label_values(&["assignments"]).inc_by(batch.assignments.len() as u64);
        self.metrics.rows.with_label_values(&["calls"]).inc_by(call_rows.len() as u64);
        self.metrics.flush_seconds.observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Attributes a batch's calls, keeping their order.
    async fn attribute_all(&self, calls: &[CallMessage]) -> Result<Vec<CallRow>, StoreError> {
        let mut rows: Vec<(CallRow, i64)> = calls
            .iter()
            .map(|msg| {
                let received = msg.received.received_at;
                let started_ms = transform::plausible_ms(ringpath_types::time::parse_rfc3339_ms(&msg.call.started_at).unwrap_or(received), received, transform::MAX_CALL_AGE_MS);
                (attribution::base_row(msg, started_ms, received.max(0) as u64), received)
            })
            .collect();
        self.attribute_rows(&self.accounts(), &mut rows).await?;
        Ok(rows.into_iter().map(|(row, _)| row).collect())
    }

    /// Attributes calls in place (each with the time enrich first received
    /// it, which decides whether a call without a holder is still `pending`),
    /// from assignments and sessions already stored. The look-ups are made
    /// for all calls at once, a few queries per batch rather than a few per
    /// call: who held each number, the holders' visitors' sessions, and the
    /// holder sessions not among them.
    async fn attribute_rows(&self, accounts: &AccountsFile, calls: &mut [(CallRow, i64)]) -> Result<(), StoreError> {
        let mut pool_calls = Vec::new();
        for (i, (row, _)) in calls.iter_mut().enumerate() {
            let Some(account) = accounts.account(&row.account_id) else { continue };
            let target = attribution::target(account, &row.to_number);
            match &target {
                Target::Pool(_) => pool_calls.push(i),
                Target::Source { .. } => attribution::credit_source(row, &target),
                Target::Site => attribution::mark_site(row),
                Target::Unknown => {}
            }
        }
        if pool_calls.is_empty() {
            return Ok(());
        }
        // Who held each number; a call without a holder waits (`pending`) until the wait runs out (`none`).
        let holder_queries: Vec<HolderQuery> =
            pool_calls.iter().map(|i| HolderQuery { account: calls[*i].0.account_id.clone(), number: calls[*i].0.to_number.clone(), at_ms: calls[*i].0.started_ms }).collect();
        let histories = self.store.number_histories(&holder_queries).await?;
        let wait_ms = self.settings.attribution_wait.as_millis() as i64;
        let mut held = Vec::new();
        for (i, history) in pool_calls.iter().zip(&histories) {
            let (row, received_ms) = &mut calls[*i];
            let Some((holder, shared)) = attribution::pick_holder(history, row.started_ms) else {
                row.attribution = if now_ms() - *received_ms < wait_ms { "pending" } else { "none" }.into();
                continue;
            };
            let origin = history.iter().filter(|r| r.session_id == holder.session_id).min_by_key(|r| r.assigned_ms);
            let visitor = if holder.visitor_id.is_empty() { origin.map(|o| o.visitor_id.clone()).unwrap_or_default() } else { holder.visitor_id.clone() };
            held.push(Held { call: *i, holder, shared, origin, visitor });
        }
        // The holders' visitors' sessions (the `sessions` table, by visitor).
        let touch_queries: Vec<TouchQuery> = held
            .iter()
            .map(|h| {
                let at = calls[h.call].0.started_ms;
                TouchQuery { account: h.holder.account_id.clone(), visitor: h.visitor.clone(), from_ms: at.saturating_sub(attribution::LINEAR_LOOKBACK_MS), to_ms: at }
            })
            .collect();
        let touches = self.store.visitor_touches(&touch_queries).await?;
        // First touch from the visitor's whole history, linear from the lookback.
        let mut evidence: Vec<(Option<SessionTouch>, Vec<SessionTouch>)> = Vec::with_capacity(held.len());
        for (touches, q) in touches.into_iter().zip(&touch_queries) {
            let first = touches.iter().min_by_key(|t| (t.started_ms, t.session_id.clone())).cloned();
            let mut lookback: Vec<SessionTouch> = touches.into_iter().filter(|t| t.started_ms >= q.from_ms).collect();
            lookback.sort_by(|x, y| (x.started_ms, &x.session_id).cmp(&(y.started_ms, &y.session_id)));
            lookback.dedup_by(|x, y| x.session_id == y.session_id);
            evidence.push((first, lookback));
        }
        // Holder sessions that are not among their visitor's (no visitor id, or events without it).
        let missing: Vec<usize> = (0..held.len()).filter(|k| !evidence[*k].1.iter().any(|s| s.session_id == held[*k].holder.session_id)).collect();
        let session_queries: Vec<SessionQuery> =
            missing.iter().map(|k| SessionQuery { account: held[*k].holder.account_id.clone(), visitor: held[*k].visitor.clone(), session: held[*k].holder.session_id.clone() }).collect();
        let mut own: HashMap<usize, SessionTouch> = HashMap::new();
        for (k, found) in missing.iter().zip(self.store.sessions_by_id(&session_queries).await?) {
            if let Some(touch) = found {
                own.insert(*k, touch);
            }
        }
        // Last touch from the holder session's own landing, first touch and linear from the visitor's.
        for (k, (h, (first, lookback))) in held.iter().zip(&evidence).enumerate() {
            let session = lookback.iter().find(|s| s.session_id == h.holder.session_id).or_else(|| own.get(&k));
            let ev = attribution::SessionEvidence { holder: h.holder, shared: h.shared, origin: h.origin, session, first: first.as_ref(), lookback };
            attribution::credit_session(&mut calls[h.call].0, &ev);
        }
        Ok(())
    }

    /// An assignment that arrives after its call (out of order, or after
    /// the wait ran out) corrects that call: a new row with a higher version.
    async fn claim_unresolved_calls(&self, assignments: &[AssignmentRow]) -> Result<(), StoreError> {
        let Some(from) = assignments.iter().map(|a| a.assigned_ms).min() else { return Ok(()) };
        let to = assignments.iter().map(|a| a.expires_ms).max().unwrap_or(from);
        let mut keys: Vec<String> = assignments.iter().map(|a| [a.account_id.as_str(), "|", a.number.as_str()].concat()).collect();
        keys.sort_unstable();
        keys.dedup();
        // Chunked: the keys are bound inline and a query has a size limit (256 KiB by default).
        for chunk in keys.chunks(1000) {
            let unresolved = self.store.unresolved_calls(chunk, from, to).await?;
            self.correct(unresolved).await?;
        }
        Ok(())
    }

    /// Re-attributes stored calls; rows that now have an answer are written again with a newer version.
    async fn correct(&self, rows: Vec<CallRow>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let before: Vec<String> = rows.iter().map(|row| row.attribution.clone()).collect();
        let mut redone: Vec<(CallRow, i64)> = rows
            .into_iter()
            .map(|row| {
                let received_ms = i64::from(row.received_at) * 1000;
                (row, received_ms)
            })
            .collect();
        self.attribute_rows(&self.accounts(), &mut redone).await?;
        // Only calls whose answer changed are written again, with a newer version.
        let mut corrected: Vec<CallRow> = redone
            .into_iter()
            .zip(before)
            .filter(|((row, _), was)| row.attribution != *was)
            .map(|((mut row, _), _)| {
                row.version = (now_ms().max(0) as u64).max(row.version + 1);
                row
            })
            .collect();
        let filtered_at = self.anonymise_erased(&mut corrected);
        self.store.insert_calls(&corrected).await?;
        if !corrected.is_empty() {
            self.erase_late(filtered_at, &[], &[], &corrected).await?;
        }
        self.metrics.rows.with_label_values(&["calls_corrected"]).inc_by(corrected.len() as u64);
        Ok(())
    }

    /// The calls, less those that came out `pending` or `none` and are stored
    /// already with the same or a newer version: a redelivery of a message
    /// stored before (the version is its receive time). Their assignment may
    /// be gone since — deleted with an erased visitor, dropped by the
    /// suppression list on replay — and an equal version would replace the
    /// attribution the call earned (ReplacingMergeTree keeps the last insert).
    async fn without_redelivered_unresolved(&self, calls: &[CallRow]) -> Result<Vec<CallRow>, StoreError> {
        let is_unresolved = |c: &CallRow| c.attribution == "pending" || c.attribution == "none";
        let unresolved: Vec<&CallRow> = calls.iter().filter(|c| is_unresolved(c)).collect();
        let (Some(from), Some(to)) = (unresolved.iter().map(|c| c.started_at).min(), unresolved.iter().map(|c| c.started_at).max()) else {
            return Ok(calls.to_vec());
        };
        let key = |account: &str, call: &str| [account, "|", call].concat();
        let mut keys: Vec<String> = unresolved.iter().map(|c| key(&c.account_id, &c.call_id)).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut stored = HashMap::new();
        // Chunked: the keys are bound inline and a query has a size limit.
        for chunk in keys.chunks(1000) {
            for call in self.store.stored_call_versions(chunk, from, to).await? {
                stored.insert(key(&call.account_id, &call.call_id), call.newest);
            }
        }
        let redelivered = |c: &CallRow| is_unresolved(c) && stored.get(&key(&c.account_id, &c.call_id)).is_some_and(|v| *v >= c.version);
        Ok(calls.iter().filter(|c| !redelivered(c)).cloned().collect())
    }

    /// Reads the tombstones written since the last read into the suppression
    /// list, unless it was read less than `max_age` ago.
    async fn read_erasures(&self, max_age: Duration) -> Result<(), StoreError> {
        let since = {
            let list = self.erasures();
            if list.read_at.is_some_and(|at| at.elapsed() < max_age) {
                return Ok(());
            }
            match list.full_read_at {
                Some(at) if at.elapsed() < ERASURES_FULL_READ => list.set.newest().saturating_sub(ERASURES_OVERLAP_S),
                _ => 0,
            }
        };
        let started = Instant::now();
        let tombstones = self.store.erasures_since(since).await?;
        let mut list = self.erasures();
        for tombstone in &tombstones {
            list.set.add(tombstone);
        }
        list.read_at = Some(started);
        if since == 0 {
            list.full_read_at = Some(started);
        }
        self.metrics.erased_ids.set(list.set.len() as i64);
        Ok(())
    }

    /// Drops a batch's events and assignments that name an erased visitor or
    /// session; returns the list's generation they were checked against.
    fn drop_erased(&self, batch: &mut Batch) -> u64 {
        let list = self.erasures();
        let events = list.set.drop_erased_events(&mut batch.events);
        let assignments = list.set.drop_erased_assignments(&mut batch.assignments);
        self.metrics.erased_rows.with_label_values(&["events", "dropped"]).inc_by(events as u64);
        self.metrics.erased_rows.with_label_values(&["assignments", "dropped"]).inc_by(assignments as u64);
        list.set.generation()
    }

    /// Anonymises calls credited to an erased visitor or session (they stay
    /// counted); returns the list's generation they were checked against.
    fn anonymise_erased(&self, calls: &mut [CallRow]) -> u64 {
        let list = self.erasures();
        let anonymised = list.set.anonymise_erased_calls(calls);
        self.metrics.erased_rows.with_label_values(&["calls", "anonymised"]).inc_by(anonymised as u64);
        list.set.generation()
    }

    /// The second look after rows are stored. An erasure written after they
    /// were checked (generation `checked_at`) whose mutations ClickHouse
    /// created before the rows' insert landed would miss them: a mutation only
    /// touches parts older than itself. So the list is read again, and if it
    /// grew, stored rows that name a newly erased id are erased here.
    async fn erase_late(&self, checked_at: u64, events: &[EventRow], assignments: &[AssignmentRow], calls: &[CallRow]) -> Result<(), StoreError> {
        self.read_erasures(Duration::ZERO).await?;
        let late = {
            let list = self.erasures();
            if list.set.generation() == checked_at {
                return Ok(());
            }
            list.set.late_ids(events, assignments, calls)
        };
        for (account, ids) in &late {
            tracing::warn!(account, visitors = ids.visitors.len(), sessions = ids.sessions.len(), "rows were stored while their erasure was written; erasing them");
            self.store.erase_late_rows(account, ids).await?;
            self.metrics.erasure_cleanups.inc();
        }
        Ok(())
    }

    /// Retries calls stored as `pending`; a found holder or an expired wait
    /// writes a corrected row with a higher version.
    async fn reattribute_pending(&self) -> Result<(), StoreError> {
        let pending = self.store.pending_calls().await?;
        self.correct(pending).await
    }
}
