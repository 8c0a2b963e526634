//! `ringpath-ingest` (or `ringpath-ingest run`): runs the collector until
//! SIGTERM/SIGINT; SIGHUP reloads the accounts file and the snippet assets.
//! `ringpath-ingest snippet [--account ID] [--origin URL]` prints the script
//! tag that pins the built snippet (versioned URL + integrity) and exits.

use std::collections::HashMap;

use ringpath_ingest::assets::Assets;
use ringpath_ingest::{start, Settings};
use ringpath_types::accounts::AccountsFile;

/// Per request ingest allocates for every event it parses and serialises;
/// mimalloc does that in less CPU than glibc's malloc under two busy workers.
/// (It also replaces `malloc` for the C code linked in — librdkafka — see the
/// workspace Cargo.toml.)
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn load_accounts(settings: &Settings) -> anyhow::Result<AccountsFile> {
    ringpath_service::load_accounts(&settings.config_path)
}

/// The collector. Settings come from `RINGPATH_*` variables (README "Configuration").
#[derive(clap::Parser)]
#[command(name = "ringpath-ingest", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Run the collector until SIGTERM/SIGINT (the default); SIGHUP reloads the accounts file and the snippet.
    Run,
    /// Print the script tag that pins the built snippet (versioned URL + integrity).
    Snippet {
        /// The account (default: the accounts file's only account).
        #[arg(long)]
        account: Option<String>,
        /// The collector's public origin (default: http:// + RINGPATH_INGEST_LISTEN).
        #[arg(long)]
        origin: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = <Cli as clap::Parser>::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let settings = Settings::from_env(&env)?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(settings).await,
        Command::Snippet { account, origin } => snippet(&settings, account, origin),
    }
}

/// Prints the tag for the build in the assets dir.
fn snippet(settings: &Settings, account: Option<String>, origin: Option<String>) -> anyhow::Result<()> {
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
    if let Some(metrics) = running.metrics_addr {
        println!("ringpath-ingest metrics on http://{metrics}/metrics");
    }

    let state = running.state.clone();
    ringpath_service::until_stopped(|| {
        let state = state.clone();
        async move { state.reload().await }
    })
    .await?;
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}
