//! ringpath enrich: the consumer between Kafka and ClickHouse (README "Kafka topics", README "ClickHouse tables").
//! Geo-IP on the full address, then IP truncation, traffic classification,
//! call attribution, exactly-once storage (replays collapse on ids), the
//! erasure suppression list (an erased visitor is not stored again), retention.
//! It serves no API; the dashboard reads what it stores.

#![cfg_attr(test, allow(clippy::unwrap_used))] // tests may unwrap

pub mod attribute;
pub mod attribution;
pub mod calls;
pub mod consumer;
pub mod dead_letters;
pub mod geo;
pub mod metrics;
pub mod pipeline;
pub mod retry;
pub mod settings;
pub mod store;
pub mod suppression;
pub mod topics;
pub mod transform;

use std::sync::{Arc, RwLock};

use ringpath_types::accounts::AccountsFile;
use tokio::sync::watch;

pub use settings::Settings;

/// A running enrich worker.
pub struct Running {
    pub shutdown: watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub retention: tokio::task::JoinHandle<()>,
    pub accounts: Arc<RwLock<Arc<AccountsFile>>>,
    pub metrics: Arc<metrics::Metrics>,
}

impl Running {
    /// Asks the worker to flush, commit and stop; waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        let result = self.task.await;
        self.retention.abort();
        result?
    }

    /// Stops dead, as a crash would: no flush, no commit (for tests).
    pub async fn kill(self) {
        self.task.abort();
        self.retention.abort();
        let _ = self.task.await;
        let _ = self.retention.await;
    }
}

/// Starts the consumer loop and the retention job.
pub fn start(settings: Settings, accounts: AccountsFile, geo: Arc<dyn geo::GeoLookup>) -> anyhow::Result<Running> {
    start_with_hook(settings, accounts, geo, None)
}

/// Like [`start`], running `hook` at every point of the batch cycle (tests
/// park enrich there to crash it at a known point).
pub fn start_with_hook(settings: Settings, accounts: AccountsFile, geo: Arc<dyn geo::GeoLookup>, hook: Option<pipeline::StageHook>) -> anyhow::Result<Running> {
    let accounts = Arc::new(RwLock::new(Arc::new(accounts)));
    let metrics = Arc::new(metrics::Metrics::new());
    let (tx, rx) = watch::channel(false);
    let pipeline = pipeline::Pipeline::new(settings.clone(), geo, accounts.clone(), metrics.clone(), hook)?;
    let retention = tokio::spawn(retention_loop(settings.clone(), accounts.clone(), metrics.clone(), rx.clone()));
    let task = tokio::spawn(async move { pipeline.run(rx).await.map_err(anyhow::Error::from) });
    Ok(Running { shutdown: tx, task, retention, accounts, metrics })
}

/// Deletes rows older than each account's `retention_days`, periodically.
async fn retention_loop(settings: Settings, accounts: Arc<RwLock<Arc<AccountsFile>>>, metrics: Arc<metrics::Metrics>, mut shutdown: watch::Receiver<bool>) {
    let client = settings.clickhouse.client();
    loop {
        let current = accounts.read().unwrap_or_else(|p| p.into_inner()).clone();
        let policy: Vec<(String, u32)> = current.account.iter().map(|a| (a.id.clone(), a.retention_days)).collect();
        match ringpath_store::retention::apply_retention(&client, &policy, ringpath_types::time::now_ms() / 1000).await {
            Ok(pass) => {
                for (table, partition) in &pass.dropped_partitions {
                    tracing::info!(table, partition, "retention: dropped a partition past every account's retention");
                }
                for (table, accounts) in &pass.deletions {
                    tracing::info!(table, accounts = accounts.join(","), "retention: deleting rows past their account's retention");
                }
                metrics.retention_actions.with_label_values(&["drop_partition"]).inc_by(pass.dropped_partitions.len() as u64);
                metrics.retention_actions.with_label_values(&["delete"]).inc_by(pass.deletions.len() as u64);
            }
            Err(e) => tracing::warn!(error = %e, "retention pass failed; retrying next period"),
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.retention_interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}
