//! ringpath ingest: the collector (README "Collector (ingest)"). Beacons, number requests and
//! call webhooks are validated and made durable in Kafka before the client
//! gets a 2xx. It does no enrichment and keeps no data beyond live number holds.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod assets;
pub mod client_ip;
pub mod encoding;
pub mod error;
pub mod handlers;
pub mod keeper;
pub mod metrics;
pub mod pools;
pub mod ratelimit;
pub mod records;
pub mod renewals;
pub mod request;
pub mod restore;
pub mod routes;
pub mod settings;
pub mod sink;
pub mod state;
pub mod validate;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix_web::{middleware, web, App, HttpServer};
use ringpath_types::accounts::AccountsFile;

pub use state::AppState;
pub use settings::Settings;

/// A running collector: its addresses, shared state and server handles.
pub struct Running {
    pub addr: SocketAddr,
    /// The metrics listener's address (`None`: `RINGPATH_INGEST_METRICS_LISTEN=off`).
    pub metrics_addr: Option<SocketAddr>,
    pub state: web::Data<AppState>,
    pub server: actix_web::dev::ServerHandle,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    metrics_server: Option<(actix_web::dev::ServerHandle, tokio::task::JoinHandle<std::io::Result<()>>)>,
}

impl Running {
    /// Graceful stop: fail readiness, stop accepting, finish in-flight requests, flush the producer.
    pub async fn stop(self) {
        self.state.shutting_down.store(true, Ordering::SeqCst);
        self.server.stop(true).await;
        let _ = self.task.await;
        if let Some((server, task)) = self.metrics_server {
            server.stop(true).await;
            let _ = task.await;
        }
        let sink = self.state.sink.clone();
        let timeout = self.state.settings.shutdown_timeout;
        let _ = tokio::task::spawn_blocking(move || sink.flush(timeout)).await;
    }
}

/// Starts the collector with a Kafka sink; `accounts` is the parsed config file.
pub async fn start(settings: Settings, accounts: AccountsFile) -> anyhow::Result<Running> {
    let sink = Arc::new(sink::KafkaSink::new(&settings.kafka_brokers, settings.produce_timeout, settings.kafka_linger, settings.kafka_batch_messages, &settings.kafka_compression)?);
    start_with_sink(settings, accounts, sink).await
}

pub async fn start_with_sink(settings: Settings, accounts: AccountsFile, sink: Arc<dyn sink::Sink>) -> anyhow::Result<Running> {
    let pools: Arc<dyn pools::PoolStore> = match &settings.pools_redis_url {
        Some(url) => Arc::new(pools::redis::RedisPools::new(url, &settings.pools_redis_namespace).map_err(anyhow::Error::from)?),
        None => Arc::new(pools::memory::MemoryPools::default()),
    };
    let state = web::Data::new(AppState::with_pools(settings.clone(), accounts.clone(), sink, pools));
    state.install_accounts(accounts).await.map_err(anyhow::Error::msg)?;
    // Before serving: a fresh in-process store is refilled now; a shared one
    // that is away or being refilled decides nothing until it is ready.
    let holder = format!("ingest-{}-{}", std::process::id(), rand::random::<u32>());
    if let Err(e) = keeper::tick(&state, &holder).await {
        tracing::warn!(error = %e, "pool store not ready at start; number requests get source-level numbers meanwhile");
    }
    tokio::spawn(keeper::run(state.clone(), holder));
    tokio::spawn(renewals::run(state.clone()));
    let data = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(routes::wildcard_origin())
            .wrap(routes::cors())
            .wrap(middleware::from_fn(routes::count_requests))
            .configure(routes::configure)
    })
    .client_request_timeout(std::time::Duration::from_secs(5))
    .shutdown_timeout(settings.shutdown_timeout.as_secs())
    .disable_signals()
    .bind(settings.listen)?;
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    let task = tokio::spawn(server);
    tracing::info!(%addr, "ingest listening");
    let (metrics_addr, metrics_server) = match settings.metrics_listen {
        Some(listen) => {
            let data = state.clone();
            let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(routes::configure_metrics))
                .workers(1)
                .disable_signals()
                .bind(listen)?;
            let metrics_addr = server.addrs()[0];
            let server = server.run();
            let metrics_handle = server.handle();
            tracing::info!(addr = %metrics_addr, "ingest metrics listening");
            (Some(metrics_addr), Some((metrics_handle, tokio::spawn(server))))
        }
        None => (None, None),
    };
    Ok(Running { addr, metrics_addr, state, server: handle, task, metrics_server })
}
