//! ringpath dashboard-api: what analysts query (README "Dashboard API"). Reads ClickHouse
//! with a read-only user; writes only for erasure. Tenant isolation is
//! enforced before any query runs.
//!
//! In the order a request meets them: [`app`] (routes, handlers, access
//! log), [`auth`] (who is asking), [`params`] (the query, typed), [`zone`]
//! (the account's time zone), [`reports`] (the SQL), [`answers`] (what is
//! sent back), [`csv`] (its CSV form), [`error`] (every failure's status and
//! body); [`openapi`] documents all of it from those types. Beside the
//! requests, [`erasure_worker`] runs the erasures `DELETE …/visitors/{id}`
//! recorded.

pub mod answers;
pub mod app;
pub mod auth;
pub mod csv;
pub mod erasure_worker;
pub mod error;
pub mod openapi;
pub mod params;
pub mod reports;
pub mod zone;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use actix_web::{middleware, web, App, HttpServer};
use ringpath_store::ClickHouseSettings;
use ringpath_types::accounts::AccountsFile;

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub config_path: PathBuf,
    /// Read-only user for reports.
    pub reader: ClickHouseSettings,
    /// User allowed to run erasure mutations.
    pub writer: ClickHouseSettings,
}

impl Settings {
    pub fn from_env(env: &HashMap<String, String>) -> anyhow::Result<Settings> {
        let listen = env.get("RINGPATH_DASHBOARD_LISTEN").map(|v| v.parse()).transpose()?.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8081)));
        let writer = ClickHouseSettings::from_env(env, "RINGPATH_CLICKHOUSE_USER", "RINGPATH_CLICKHOUSE_PASSWORD", "default").map_err(anyhow::Error::msg)?;
        let mut reader = ClickHouseSettings::from_env(env, "RINGPATH_DASHBOARD_CLICKHOUSE_USER", "RINGPATH_DASHBOARD_CLICKHOUSE_PASSWORD", &writer.user).map_err(anyhow::Error::msg)?;
        if !env.contains_key("RINGPATH_DASHBOARD_CLICKHOUSE_USER") {
            reader.password = writer.password.clone();
        }
        Ok(Settings { listen, config_path: env.get("RINGPATH_CONFIG").map(PathBuf::from).unwrap_or_else(|| "ringpath.toml".into()), reader, writer })
    }

    /// `RINGPATH_DASHBOARD_QUERY_TIMEOUT_S` (default 30): longest a report may
    /// run, client side and as `max_execution_time` on the reader.
    pub fn query_timeout_from_env(env: &HashMap<String, String>) -> anyhow::Result<Duration> {
        match env.get("RINGPATH_DASHBOARD_QUERY_TIMEOUT_S") {
            Some(v) => Ok(Duration::from_secs(
                v.trim().parse::<u64>().ok().filter(|s| *s > 0).ok_or_else(|| anyhow::anyhow!("RINGPATH_DASHBOARD_QUERY_TIMEOUT_S must be a positive number of seconds"))?,
            )),
            None => Ok(app::DEFAULT_QUERY_TIMEOUT),
        }
    }
}

pub struct Running {
    pub addr: SocketAddr,
    pub state: web::Data<app::State>,
    pub server: actix_web::dev::ServerHandle,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Runs the erasures after their 202.
    pub erasures: erasure_worker::Worker,
}

impl Running {
    /// Stops accepting requests, lets each erasure finish the step it is in.
    pub async fn stop(self) {
        self.server.stop(true).await;
        self.erasures.stop().await;
        let _ = self.task.await;
    }

    /// Stops at once, erasures cut off wherever they are, as a crash would
    /// leave them (tests; the next start resumes them).
    pub async fn kill(self) {
        self.erasures.kill();
        self.task.abort();
        self.server.stop(false).await;
    }
}

/// What [`start_with`] can change from the defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// Longest a report may take.
    pub query_timeout: Duration,
    pub erasure: erasure_worker::WorkerOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options { query_timeout: app::DEFAULT_QUERY_TIMEOUT, erasure: erasure_worker::WorkerOptions::default() }
    }
}

impl Options {
    pub fn from_env(env: &HashMap<String, String>) -> anyhow::Result<Options> {
        Ok(Options { query_timeout: Settings::query_timeout_from_env(env)?, erasure: erasure_worker::WorkerOptions::from_env(env)? })
    }
}

pub async fn start(settings: Settings, accounts: AccountsFile) -> anyhow::Result<Running> {
    start_with(settings, accounts, Options::default()).await
}

/// Like `start`, with another report timeout.
pub async fn start_with_timeout(settings: Settings, accounts: AccountsFile, query_timeout: Duration) -> anyhow::Result<Running> {
    start_with(settings, accounts, Options { query_timeout, ..Options::default() }).await
}

/// ClickHouse's `READONLY` error code: a readonly=1 user may not change a setting.
const READONLY: u32 = 164;

/// Serves the API and starts the erasure worker (which resumes the
/// erasures a previous run left unfinished).
pub async fn start_with(settings: Settings, accounts: AccountsFile, options: Options) -> anyhow::Result<Running> {
    let query_timeout = options.query_timeout;
    // The server should stop a runaway report itself rather than run on after we
    // gave up, so the reader sends max_execution_time — which needs readonly=2
    // (infra/clickhouse/users.xml). A readonly=1 user refuses every setting:
    // then rely on its profile's limit, and say so.
    let limited = settings.reader.client().with_setting("max_execution_time", query_timeout.as_secs().to_string());
    let probe = tokio::time::timeout(query_timeout, async { limited.query("SELECT 1").fetch_one::<u8>().await.map_err(ringpath_store::StoreError) }).await;
    let reader = match probe {
        Ok(Err(e)) if e.code() == Some(READONLY) => {
            tracing::warn!(user = %settings.reader.user, "the ClickHouse reader is readonly=1 and cannot set max_execution_time; its profile's limit applies");
            settings.reader.client()
        }
        _ => limited,
    };
    let reports = reports::Reports { reader, writer: settings.writer.client() };
    let (jobs, erasures) = erasure_worker::spawn(settings.writer.client(), options.erasure);
    let state = web::Data::new(app::State::new(accounts, reports, query_timeout));
    let data = state.clone();
    let jobs = web::Data::new(jobs);
    let bound = HttpServer::new(move || App::new().app_data(data.clone()).app_data(jobs.clone()).wrap(middleware::from_fn(app::observe)).configure(app::configure))
        .disable_signals()
        .bind(settings.listen);
    let server = match bound {
        Ok(server) => server,
        Err(e) => {
            erasures.kill();
            return Err(e.into());
        }
    };
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    let task = tokio::spawn(server);
    tracing::info!(%addr, "dashboard-api listening");
    Ok(Running { addr, state, server: handle, task, erasures })
}
