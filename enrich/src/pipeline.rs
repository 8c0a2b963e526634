//! The batch cycle: read a batch from the three topics ([`consumer`]),
//! decode it ([`transform::decode`]), drop what names an erased visitor
//! ([`suppression`]), store assignments, then events, then calls — attribution
//! ([`crate::calls`]) reads the first two —, and only then commit the batch's
//! offsets. A crash anywhere before the commit replays the batch;
//! ReplacingMergeTree on the ids makes the replay harmless. A message that can
//! never be stored goes to the dead-letter topic with its reason and its offset
//! moves on ([`dead_letters`], [`retry`]). A ClickHouse outage stops progress
//! and loses nothing. Erasures are read before consuming starts, before each
//! batch is filtered, and again after it is stored, to catch an erasure
//! written in between.
//!
//! [`consumer`]: crate::consumer
//! [`suppression`]: crate::suppression
//! [`dead_letters`]: crate::dead_letters
//! [`retry`]: crate::retry

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rdkafka::message::{BorrowedMessage, Message};
use ringpath_store::rows::{AssignmentRow, CallRow, EventRow};
use ringpath_types::accounts::AccountsFile;
use ringpath_types::wire::{CallMessage, DlqMessage};
use serde::Serialize;
use tokio::sync::watch;

use crate::consumer::{Consumer, Offsets};
use crate::dead_letters::{self, DeadLetters, KafkaDeadLetters};
use crate::geo::GeoLookup;
use crate::metrics::Metrics;
use crate::retry::{self, Error};
use crate::settings::Settings;
use crate::store::Store;
use crate::suppression::{self, ErasureCache};
use crate::transform::{self, Decoded, Topic};

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
    consumer: Consumer,
    dead_letters: KafkaDeadLetters,
    pub(crate) erasures: ErasureCache,
    hook: Option<StageHook>,
}

/// One batch: decoded rows, calls to attribute, dead letters, and where to commit.
#[derive(Default)]
struct Batch {
    events: Vec<EventRow>,
    assignments: Vec<AssignmentRow>,
    calls: Vec<CallMessage>,
    dead: Vec<DlqMessage>,
    offsets: Offsets,
    messages: usize,
}

/// How often calls still `pending` are attributed again.
const REATTRIBUTION_PERIOD: Duration = Duration::from_secs(5);

impl Pipeline {
    pub fn new(settings: Settings, geo: Arc<dyn GeoLookup>, accounts: Arc<RwLock<Arc<AccountsFile>>>, metrics: Arc<Metrics>, hook: Option<StageHook>) -> anyhow::Result<Pipeline> {
        let consumer = Consumer::new(&settings)?;
        let dead_letters = KafkaDeadLetters::new(&settings.kafka_brokers, &settings.topics.dlq)?;
        let store = Store::new(&settings.clickhouse);
        Ok(Pipeline { settings, store, geo, accounts, metrics, consumer, dead_letters, erasures: ErasureCache::default(), hook })
    }

    pub(crate) fn accounts(&self) -> Arc<AccountsFile> {
        self.accounts.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Marks a point of the batch cycle passed.
    async fn reached(&self, stage: Stage) {
        self.metrics.batch_stages.with_label_values(&[stage.as_str()]).inc();
        if let Some(hook) = &self.hook {
            hook(stage).await;
        }
    }

    /// Runs until `shutdown` flips to true; then flushes and commits what it holds.
    ///
    /// One batch is written while the next one fills: a cycle takes
    /// max(fill, write) instead of their sum, which keeps end-to-end latency
    /// near the batch period. Writes stay strictly in order (batch n+1 starts
    /// writing only after batch n committed), so calls still see the
    /// assignments of earlier batches and offsets are committed in order.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) -> Result<(), Error> {
        // Nothing is stored before the suppression list is known.
        self.refresh_erasures(Duration::ZERO, &mut shutdown.clone()).await?;
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
            let maintain = !stopping && last_reattribution.elapsed() > REATTRIBUTION_PERIOD;
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

    fn add(&self, batch: &mut Batch, m: &BorrowedMessage<'_>) {
        batch.messages += 1;
        batch.offsets.insert((m.topic().to_owned(), m.partition()), m.offset() + 1);
        let topics = &self.settings.topics;
        let topic = match m.topic() {
            t if t == topics.events => Topic::Events,
            t if t == topics.assignments => Topic::Assignments,
            t if t == topics.calls => Topic::Calls,
            _ => return,
        };
        let payload = m.payload().unwrap_or(&[]);
        match transform::decode(topic, payload, &self.accounts(), self.geo.as_ref()) {
            Decoded::Event(row) => batch.events.push(*row),
            Decoded::Assignment(row) => batch.assignments.push(*row),
            Decoded::Call(msg) => batch.calls.push(*msg),
            Decoded::Dead { stage, reason, account } => batch.dead.push(dead_letters::letter(stage, reason, account, payload)),
        }
    }

    /// Writes and commits one batch (if it holds anything), then, when due,
    /// retries pending attributions.
    async fn write(&self, batch: Batch, maintain: bool, mut shutdown: watch::Receiver<bool>) -> Result<(), Error> {
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

    async fn flush(&self, mut batch: Batch, shutdown: &mut watch::Receiver<bool>) -> Result<(), Error> {
        let started = Instant::now();
        self.send_dead_letters(&batch.dead, shutdown).await?;
        self.refresh_erasures(suppression::MAX_AGE, shutdown).await?;
        let filtered_at = self.drop_erased(&mut batch);
        let refused = retry::insert_isolating("assignments", &batch.assignments, &self.metrics, shutdown, |rows| self.store.insert_assignments(rows)).await?;
        self.send_refused("assignments", refused, shutdown).await?;
        self.reached(Stage::AssignmentsStored).await;
        let refused = retry::insert_isolating("events", &batch.events, &self.metrics, shutdown, |rows| self.store.insert_events(rows)).await?;
        self.send_refused("events", refused, shutdown).await?;
        self.reached(Stage::EventsStored).await;
        let call_rows = self.store_calls(&batch.calls, &batch.assignments, shutdown).await?;
        // Checked against `filtered_at` or a later generation (the list only grows).
        retry::retry("erasure clean-up", &self.metrics, shutdown, || self.erase_late(filtered_at, &batch.events, &batch.assignments, &call_rows)).await?;
        self.reached(Stage::CallsStored).await;
        self.consumer.commit(&batch.offsets);
        self.reached(Stage::Committed).await;
        self.metrics.rows.with_label_values(&["events"]).inc_by(batch.events.len() as u64);
        self.metrics.rows.with_label_values(&["assignments"]).inc_by(batch.assignments.len() as u64);
        self.metrics.rows.with_label_values(&["calls"]).inc_by(call_rows.len() as u64);
        self.metrics.flush_seconds.observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Publishes dead letters, retrying until the topic takes them (or shutdown).
    pub(crate) async fn send_dead_letters(&self, letters: &[DlqMessage], shutdown: &mut watch::Receiver<bool>) -> Result<(), Error> {
        for letter in letters {
            while let Err(e) = self.dead_letters.send(letter).await {
                tracing::warn!(error = %e, "could not dead-letter; retrying");
                if *shutdown.borrow() {
                    return Err(Error::DeadLetters(e));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            self.metrics.dead_letters.with_label_values(&[&letter.stage]).inc();
        }
        Ok(())
    }

    /// Dead-letters rows ClickHouse refused for good (as the row enrich made).
    pub(crate) async fn send_refused<R: Serialize>(&self, table: &'static str, refused: Vec<(R, String)>, shutdown: &mut watch::Receiver<bool>) -> Result<(), Error> {
        if refused.is_empty() {
            return Ok(());
        }
        let stage = match table {
            "events" => "enrich:store:events",
            "assignments" => "enrich:store:assignments",
            _ => "enrich:store:calls",
        };
        let letters: Vec<DlqMessage> = refused
            .iter()
            .map(|(row, reason)| {
                let payload = serde_json::to_vec(row).unwrap_or_default();
                let account = serde_json::to_value(row).ok().and_then(|v| v["account_id"].as_str().map(str::to_owned));
                dead_letters::letter(stage, format!("refused by ClickHouse: {reason}"), account, &payload)
            })
            .collect();
        tracing::error!(table, rows = letters.len(), "rows refused by ClickHouse for good; dead-lettered");
        self.send_dead_letters(&letters, shutdown).await
    }

    /// Reads new tombstones unless the list is fresher than `max_age`.
    async fn refresh_erasures(&self, max_age: Duration, shutdown: &mut watch::Receiver<bool>) -> Result<(), Error> {
        let held = retry::retry("erasures", &self.metrics, shutdown, || self.erasures.refresh(&self.store, max_age)).await?;
        self.metrics.erased_ids.set(held as i64);
        Ok(())
    }

    /// Drops a batch's events and assignments that name an erased visitor or
    /// session; returns the list's generation they were checked against.
    fn drop_erased(&self, batch: &mut Batch) -> u64 {
        let list = self.erasures.list();
        let events = list.drop_erased_events(&mut batch.events);
        let assignments = list.drop_erased_assignments(&mut batch.assignments);
        self.metrics.erased_rows.with_label_values(&["events", "dropped"]).inc_by(events as u64);
        self.metrics.erased_rows.with_label_values(&["assignments", "dropped"]).inc_by(assignments as u64);
        list.generation()
    }

    /// Anonymises calls credited to an erased visitor or session (they stay
    /// counted); returns the list's generation they were checked against.
    pub(crate) fn anonymise_erased(&self, calls: &mut [CallRow]) -> u64 {
        let list = self.erasures.list();
        let anonymised = list.anonymise_erased_calls(calls);
        self.metrics.erased_rows.with_label_values(&["calls", "anonymised"]).inc_by(anonymised as u64);
        list.generation()
    }

    /// The second look after rows are stored. An erasure written after they
    /// were checked (generation `checked_at`) whose mutations ClickHouse
    /// created before the rows' insert landed would miss them: a mutation only
    /// touches parts older than itself. So the list is read again, and if it
    /// grew, stored rows that name a newly erased id are erased here.
    pub(crate) async fn erase_late(&self, checked_at: u64, events: &[EventRow], assignments: &[AssignmentRow], calls: &[CallRow]) -> Result<(), ringpath_store::StoreError> {
        let held = self.erasures.refresh(&self.store, Duration::ZERO).await?;
        self.metrics.erased_ids.set(held as i64);
        let late = {
            let list = self.erasures.list();
            if list.generation() == checked_at {
                return Ok(());
            }
            list.late_ids(events, assignments, calls)
        };
        for (account, ids) in &late {
            tracing::warn!(account, visitors = ids.visitors.len(), sessions = ids.sessions.len(), "rows were stored while their erasure was written; erasing them");
            self.store.erase_late_rows(account, ids).await?;
            self.metrics.erasure_cleanups.inc();
        }
        Ok(())
    }
}
