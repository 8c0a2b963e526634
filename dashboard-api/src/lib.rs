//! ringpath dashboard-api: what analysts query (SPEC §6). Reads ClickHouse
//! with a read-only user; writes only for erasure. Tenant isolation is
//! enforced before any query runs.

pub mod app;
pub mod auth;
pub mod csv;
pub mod generate;
pub mod openapi;
pub mod params;
pub mod reports;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use actix_web::{middleware, web, App, HttpServer};
use ringpath_enrich::settings::ClickHouseSettings;
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
        let writer = ClickHouseSettings::from_env(env, "RINGPATH_CLICKHOUSE_USER", "RINGPATH_CLICKHOUSE_PASSWORD", "default")?;
        let mut reader = ClickHouseSettings::from_env(env, "RINGPATH_DASHBOARD_CLICKHOUSE_USER", "RINGPATH_DASHBOARD_CLICKHOUSE_PASSWORD", &writer.user)?;
        if !env.contains_key("RINGPATH_DASHBOARD_CLICKHOUSE_USER") {
            reader.password = writer.password.clone();
        }
        Ok(Settings { listen, config_path: env.get("RINGPATH_CONFIG").map(PathBuf::from).unwrap_or_else(|| "ringpath.toml".into()), reader, writer })
    }
}

pub struct Running {
    pub addr: SocketAddr,
    pub state: web::Data<app::State>,
    pub server: actix_web::dev::ServerHandle,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub async fn stop(self) {
        self.server.stop(true).await;
        let _ = self.task.await;
    }
}

pub async fn start(settings: Settings, accounts: AccountsFile) -> anyhow::Result<Running> {
    let reports = reports::Reports { reader: settings.reader.client(), writer: settings.writer.client() };
    let state = web::Data::new(app::State::new(accounts, reports));
    let data = state.clone();
    let server = HttpServer::new(move || App::new().app_data(data.clone()).wrap(middleware::from_fn(app::observe)).configure(app::configure))
        .disable_signals()
        .bind(settings.listen)?;
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    let task = tokio::spawn(server);
    tracing::info!(%addr, "dashboard-api listening");
    Ok(Running { addr, state, server: handle, task })
}
