//! `ringpath-ingest` (or `ringpath-ingest run`): runs the collector until
//! SIGTERM/SIGINT; SIGHUP reloads the accounts file and the snippet assets.
//! `ringpath-ingest snippet [--account ID] [--origin URL]` prints the script
//! tag that pins the built snippet (versioned URL + integrity) and exits.

use std::collections::HashMap;

use anyhow::Context;
use ringpath_ingest::assets::Assets;
use ringpath_ingest::{start, Settings};
use ringpath_types::accounts::AccountsFile;
use tokio::signal::unix::{signal, SignalKind};

/// Per request ingest allocates for every event it parses and serialises;
/// mimalloc does that in less CPU than glibc's malloc under two busy workers.
/// (It also replaces `malloc` for the C code linked in — librdkafka — see the
/// workspace Cargo.toml.)
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn load_accounts(settings: &Settings) -> anyhow::Result<AccountsFile> {
    let text = std::fs::read_to_string(&settings.config_path).with_context(|| format!("reading accounts file {}", settings.config_path.display()))?;
    AccountsFile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", settings.config_path.display()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str).unwrap_or("run") {
        "run" => run(Settings::from_env(&env)?).await,
        "snippet" => snippet(&Settings::from_env(&env)?, &args[1..]),
        other => anyhow::bail!("unknown command {other:?}; use `run` or `snippet [--account ID] [--origin URL]`"),
    }
}

/// Prints the tag for the build in the assets dir. Defaults: the accounts
/// file's only account, and the collector's own listen address as origin.
fn snippet(settings: &Settings, args: &[String]) -> anyhow::Result<()> {
    let (mut account, mut origin) = (None, None);
    let mut options = args.iter();
    while let Some(option) = options.next() {
        let value = options.next().with_context(|| format!("{option} needs a value"))?;
        match option.as_str() {
            "--account" => account = Some(value.clone()),
            "--origin" => origin = Some(value.clone()),
            other => anyhow::bail!("unknown option {other:?}; use --account ID, --origin https://collector.example"),
        }
    }
    let account = match account {
        Some(id) => id,
        None => match load_accounts(settings)?.account.as_slice() {
            [only] => only.id.clone(),
            many => anyhow::bail!("{} has {} accounts; pass --account ID", settings.config_path.display(), many.len()),
        },
    };
    let origin = origin.unwrap_or_else(|| format!("http://{}", settings.listen));
    let assets = Assets::load(&settings.assets_dir);
    if assets.js.is_none() {
        anyhow::bail!("no rp.js in {}: build it with tracker-wasm/build.sh, or set RINGPATH_ASSETS_DIR", settings.assets_dir.display());
    }
    let tag = assets.script_tag(&origin, &account).map_err(anyhow::Error::msg)?;
    println!("{tag}");
    Ok(())
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RINGPATH_LOG").unwrap_or_else(|_| "info".into())).init();
    let accounts = load_accounts(&settings)?;
    let running = start(settings, accounts).await?;
    println!("ringpath-ingest listening on http://{}", running.addr);

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hup.recv() => match running.state.reload().await {
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
