//! ringpath enrich: the consumer between Kafka and ClickHouse (SPEC §4, §5).
//! Geo-IP on the full address, then IP truncation, traffic classification,
//! call attribution, exactly-once storage (replays collapse on ids), retention.
//! It serves no API; the dashboard reads what it stores.

pub mod attribution;
pub mod geo;
pub mod metrics;
pub mod pipeline;
pub mod rows;
pub mod settings;
pub mod store;
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
    pub accounts: Arc<RwLock<Arc<AccountsFile>>>,
    pub metrics: Arc<metrics::Metrics>,
}

impl Running {
    /// Asks the worker to flush, commit and stop; waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.task.await?
    }
}

/// Starts the consumer loop and the retention job.
pub fn start(settings: Settings, accounts: AccountsFile, geo: Arc<dyn geo::GeoLookup>) -> anyhow::Result<Running> {
    let accounts = Arc::new(RwLock::new(Arc::new(accounts)));
    let metrics = Arc::new(metrics::Metrics::new());
    let (tx, rx) = watch::channel(false);
    let pipeline = pipeline::Pipeline::new(settings.clone(), geo, accounts.clone(), metrics.clone())?;
    let retention = retention_loop(settings.clone(), accounts.clone(), rx.clone());
    let task = tokio::spawn(async move {
        let retention = tokio::spawn(retention);
        let result = pipeline.run(rx).await;
        retention.abort();
        result
    });
    Ok(Running { shutdown: tx, task, accounts, metrics })
}

/// Deletes rows older than each account's `retention_days`, periodically.
async fn retention_loop(settings: Settings, accounts: Arc<RwLock<Arc<AccountsFile>>>, mut shutdown: watch::Receiver<bool>) {
    let store = store::Store::new(&settings.clickhouse);
    loop {
        let current = accounts.read().unwrap_or_else(|p| p.into_inner()).clone();
        for acc in &current.account {
            if let Err(e) = store.apply_retention(&acc.id, acc.retention_days).await {
                tracing::warn!(account = %acc.id, error = %e, "retention pass failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.retention_interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}
