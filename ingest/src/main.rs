//! `ringpath-ingest`: runs the collector until SIGTERM/SIGINT; SIGHUP reloads
//! the accounts file and the snippet assets.

use std::collections::HashMap;

use anyhow::Context;
use ringpath_ingest::{start, Settings};
use ringpath_types::accounts::AccountsFile;
use tokio::signal::unix::{signal, SignalKind};

/// Per request ingest allocates for every event it parses and serialises;
/// mimalloc does that in less CPU than glibc's malloc under two busy workers.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RINGPATH_LOG").unwrap_or_else(|_| "info".into())).init();
    let env: HashMap<String, String> = std::env::vars().collect();
    let settings = Settings::from_env(&env)?;
    let text = std::fs::read_to_string(&settings.config_path).with_context(|| format!("reading accounts file {}", settings.config_path.display()))?;
    let accounts = AccountsFile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", settings.config_path.display()))?;
    let running = start(settings, accounts).await?;
    println!("ringpath-ingest listening on http://{}", running.addr);

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hup.recv() => match running.state.reload() {
                Ok(()) => tracing::info!("accounts file and assets reloaded"),
                Err(e) => tracing::error!(error = %e, "reload failed; keeping the previous accounts"),
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}
