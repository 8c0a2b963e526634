//! What every request of the collector shares: settings, the accounts file,
//! the pool store, the Kafka sink, metrics, the rate limiter and the snippet.
//! Publishing (with its one mapping of broker outcomes to answers) and the
//! accounting of a refused request (metric by cause, dead letter) live here,
//! so handlers do neither by hand.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use ringpath_types::accounts::AccountsFile;
use ringpath_types::time::now_ms;
use ringpath_types::wire::{DlqMessage, Received};

use crate::assets::Assets;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::pools::memory::MemoryPools;
use crate::pools::PoolStore;
use crate::ratelimit::RateLimiter;
use crate::records;
use crate::settings::Settings;
use crate::sink::{Record, Sink, SinkError};

/// The start of a refused payload kept in its dead letter: enough to see what
/// was wrong, not a store of whatever anyone sends.
pub const DLQ_PAYLOAD_BYTES: usize = 4 * 1024;

/// Wall-clock time in epoch milliseconds, plus an offset that only tests move
/// (to expire number holds without waiting half an hour).
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn now_ms(&self) -> i64 {
        now_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Moves this collector's clock forward (tests of hold expiry).
    pub fn advance(&self, by: Duration) {
        self.offset_ms.fetch_add(by.as_millis() as i64, Ordering::Relaxed);
    }
}

pub struct AppState {
    pub settings: Settings,
    pub clock: Clock,
    pub accounts: RwLock<Arc<AccountsFile>>,
    pub pools: Arc<dyn PoolStore>,
    pub sink: Arc<dyn Sink>,
    pub metrics: Metrics,
    pub limiter: RateLimiter,
    pub assets: RwLock<Arc<Assets>>,
    pub shutting_down: AtomicBool,
    /// The pool store missed the last accounts file (unreachable): configure it again.
    pub pools_stale: AtomicBool,
    /// Hold renewals from beacons, done off the request's path (`renewals::run`).
    pub renewals: tokio::sync::mpsc::Sender<crate::renewals::Renewal>,
    pub(crate) renewals_rx: Mutex<Option<tokio::sync::mpsc::Receiver<crate::renewals::Renewal>>>,
    pub recent_renewals: crate::renewals::Recent,
}

impl AppState {
    /// The state with in-process pools; [`AppState::with_pools`] takes another store.
    pub fn new(settings: Settings, accounts: AccountsFile, sink: Arc<dyn Sink>) -> AppState {
        Self::with_pools(settings, accounts, sink, Arc::new(MemoryPools::default()))
    }

    /// The state; call [`AppState::install_accounts`] before serving so the
    /// pool store knows the configured pools.
    pub fn with_pools(settings: Settings, accounts: AccountsFile, sink: Arc<dyn Sink>, pools: Arc<dyn PoolStore>) -> AppState {
        let assets = Assets::load(&settings.assets_dir);
        let limiter = RateLimiter::new(settings.rate_per_client, settings.rate_burst);
        let (renewals, renewals_rx) = tokio::sync::mpsc::channel(crate::renewals::QUEUE);
        AppState {
            settings,
            clock: Clock::default(),
            accounts: RwLock::new(Arc::new(accounts)),
            pools,
            sink,
            metrics: Metrics::new(),
            limiter,
            assets: RwLock::new(Arc::new(assets)),
            shutting_down: AtomicBool::new(false),
            pools_stale: AtomicBool::new(false),
            renewals,
            renewals_rx: Mutex::new(Some(renewals_rx)),
            recent_renewals: Default::default(),
        }
    }

    pub fn accounts(&self) -> Arc<AccountsFile> {
        self.accounts.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Swaps in a new accounts file; the pool store keeps live holds on
    /// numbers that stay in their pool. A store that cannot be reached is
    /// configured again by the pool keeper when it is back.
    pub async fn install_accounts(&self, file: AccountsFile) -> Result<(), String> {
        if let Err(e) = self.pools.configure(&file).await {
            tracing::warn!(error = %e, "pool store not configured; retrying in the background");
            self.pools_stale.store(true, Ordering::SeqCst);
        }
        for account in file.account.iter().filter(|a| a.calls_token_sha256.is_none()) {
            tracing::warn!(account = %account.id, "no calls_token_sha256: /v1/calls refuses this account's calls (401)");
        }
        *self.accounts.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(file);
        Ok(())
    }

    /// Re-reads the accounts file and the snippet (SIGHUP). A file that does
    /// not parse is refused and the running accounts stay.
    pub async fn reload(&self) -> Result<(), String> {
        let parsed = ringpath_service::load_accounts(&self.settings.config_path).map_err(|e| format!("{e:#}"));
        let installed = match parsed {
            Ok(file) => self.install_accounts(file).await,
            Err(e) => Err(e),
        };
        if let Err(e) = installed {
            self.metrics.config_reloads.with_label_values(&["failed"]).inc();
            return Err(e);
        }
        *self.assets.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Assets::load(&self.settings.assets_dir));
        self.metrics.config_reloads.with_label_values(&["ok"]).inc();
        Ok(())
    }

    /// Publishes `records`; the answer maps the broker's outcome once:
    /// acknowledged → Ok, a record it can never take → 400, anything else → 503.
    pub async fn produce(&self, topic_label: &'static str, records: Vec<Record>) -> Result<(), ApiError> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.settings.produce_timeout + Duration::from_secs(1), self.sink.send(records)).await;
        self.metrics.produce_seconds.with_label_values(&[topic_label]).observe(started.elapsed().as_secs_f64());
        self.metrics.queue_depth.set(self.sink.queue_depth() as i64);
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(SinkError::Rejected(reason))) => Err(ApiError::BadRequest(format!("record rejected by the broker: {reason}"))),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "produce failed; answering 503");
                Err(ApiError::Unavailable(if matches!(e, SinkError::QueueFull) { 1 } else { 5 }))
            }
            Err(_) => Err(ApiError::Unavailable(5)),
        }
    }

    /// The one place a failed request is accounted for: counted by cause and,
    /// for bad input, dead-lettered with its reason. Returns the error to answer with.
    pub async fn reject(&self, route: &'static str, err: ApiError, account: Option<String>, raw: Option<&[u8]>, received: &Received) -> ApiError {
        self.metrics.events_rejected.with_label_values(&[err.cause()]).inc();
        if err.dead_letter() {
            let raw = raw.unwrap_or_default();
            let account = account.or_else(|| sniff_account(raw));
            self.dead_letter(route, &err, account, raw, received).await;
        }
        err
    }

    /// Publishes a rejected payload with its reason; never fails the request.
    async fn dead_letter(&self, route: &'static str, err: &ApiError, account: Option<String>, raw: &[u8], received: &Received) {
        let payload = String::from_utf8_lossy(&raw[..raw.len().min(DLQ_PAYLOAD_BYTES)]).into_owned();
        // Senders of refused requests need no valid account and gave no consent: their IP is kept truncated.
        let ip = received.ip.parse().map(|ip| ringpath_types::ip::truncate(ip).to_string()).unwrap_or_default();
        let received = Received { ip, ..received.clone() };
        let msg = DlqMessage { stage: route.to_owned(), reason: err.to_string(), account, payload, payload_bytes: raw.len(), received };
        let Ok(record) = records::dead_letter(&msg, &self.settings.topics.dlq) else { return };
        let sent = tokio::time::timeout(self.settings.produce_timeout + Duration::from_secs(1), self.sink.send(vec![record])).await;
        match sent {
            Ok(Ok(())) => self.metrics.dlq_written.with_label_values(&[route]).inc(),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, route, "could not dead-letter a rejected payload");
                self.metrics.dlq_failed.with_label_values(&[route]).inc();
            }
            Err(_) => {
                tracing::warn!(route, "dead-lettering timed out");
                self.metrics.dlq_failed.with_label_values(&[route]).inc();
            }
        }
    }

    /// Refreshes the per-pool gauges from the live holds (scrape time and after assignments).
    pub async fn update_pool_gauges(&self, now: i64) {
        let Ok(uses) = self.pools.utilisation(now).await else { return };
        for u in uses {
            self.metrics.pool_live.with_label_values(&[&u.account, &u.pool]).set(u.live as i64);
            self.metrics.pool_size.with_label_values(&[&u.account, &u.pool]).set(u.size as i64);
            let ratio = if u.size == 0 { 0.0 } else { u.live as f64 / u.size as f64 };
            self.metrics.pool_utilisation.with_label_values(&[&u.account, &u.pool]).set(ratio);
        }
    }
}

/// Account id from a raw body, for dead-letter context, without trusting it.
fn sniff_account(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("account")?.as_str().map(|s| s.chars().take(64).collect())
}
