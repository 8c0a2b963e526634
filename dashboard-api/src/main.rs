//! `ringpath-dashboard-api`: serves until SIGTERM/SIGINT; SIGHUP reloads the accounts file.
//! (Synthetic data for demos and benchmarks: `cargo run -p ringpath-tests --bin generate`.)

use std::collections::HashMap;
use std::sync::Arc;

use ringpath_dashboard_api::{start_with, Options, Settings};
use ringpath_types::accounts::AccountsFile;

fn load(settings: &Settings) -> anyhow::Result<AccountsFile> {
    ringpath_service::load_accounts(&settings.config_path)
}

/// The analysts' API. Settings come from `RINGPATH_*` variables (README "Configuration").
#[derive(clap::Parser)]
#[command(name = "ringpath-dashboard-api", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Serve until SIGTERM/SIGINT (the default); SIGHUP reloads the accounts file.
    Serve,
    /// Print a new random token (128 bits) and the sha256 the accounts file stores.
    Token,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = <Cli as clap::Parser>::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("RINGPATH_LOG").unwrap_or_else(|_| "info".into());
    // Access logs are structured either way; RINGPATH_LOG_FORMAT=json gives one JSON object a line.
    if std::env::var("RINGPATH_LOG_FORMAT").is_ok_and(|f| f == "json") {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let env: HashMap<String, String> = std::env::vars().collect();
    if let Some(Command::Token) = cli.command {
        let token = ringpath_dashboard_api::auth::new_token();
        println!("token        {token}\ntoken_sha256 {}", ringpath_types::auth::token_sha256(&token));
        return Ok(());
    }
    let settings = Settings::from_env(&env)?;
    let running = start_with(settings.clone(), load(&settings)?, Options::from_env(&env)?).await?;
    println!("ringpath-dashboard-api listening on http://{}", running.addr);
    ringpath_service::until_stopped(|| {
        let reloaded = load(&settings).map(|file| *running.state.accounts.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(file));
        std::future::ready(reloaded.map_err(|e| e.to_string()))
    })
    .await?;
    running.stop().await;
    Ok(())
}
