//! `ringpath-dashboard-api`: serves until SIGTERM/SIGINT; SIGHUP reloads the accounts file.
//! (Synthetic data for demos and benchmarks: `cargo run -p ringpath-tests --bin generate`.)

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{bail, Context};
use ringpath_dashboard_api::{start_with_timeout, Settings};
use ringpath_types::accounts::AccountsFile;
use tokio::signal::unix::{signal, SignalKind};

fn load(settings: &Settings) -> anyhow::Result<AccountsFile> {
    let text = std::fs::read_to_string(&settings.config_path).with_context(|| format!("reading accounts file {}", settings.config_path.display()))?;
    AccountsFile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", settings.config_path.display()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RINGPATH_LOG").unwrap_or_else(|_| "info".into());
    // Access logs are structured either way; RINGPATH_LOG_FORMAT=json gives one JSON object a line.
    if std::env::var("RINGPATH_LOG_FORMAT").is_ok_and(|f| f == "json") {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let env: HashMap<String, String> = std::env::vars().collect();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") | None => {}
        Some(other) => bail!("unknown command {other:?}; commands: serve (default)"),
    }
    let settings = Settings::from_env(&env)?;
    let running = start_with_timeout(settings.clone(), load(&settings)?, Settings::query_timeout_from_env(&env)?).await?;
    println!("ringpath-dashboard-api listening on http://{}", running.addr);
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hup.recv() => match load(&settings) {
                Ok(file) => {
                    *running.state.accounts.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(file);
                    tracing::info!("accounts file reloaded");
                }
                Err(e) => tracing::error!(error = %e, "reload failed; keeping the previous accounts"),
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    running.stop().await;
    Ok(())
}
