//! `ringpath-dashboard-api`: serves until SIGTERM/SIGINT; SIGHUP reloads the accounts file.
//! `ringpath-dashboard-api generate …` loads synthetic data (see `usage`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use ringpath_dashboard_api::generate::{self, Generator, Options};
use ringpath_dashboard_api::{start_with_timeout, Settings};
use ringpath_types::accounts::AccountsFile;
use tokio::signal::unix::{signal, SignalKind};

fn load(settings: &Settings) -> anyhow::Result<AccountsFile> {
    let text = std::fs::read_to_string(&settings.config_path).with_context(|| format!("reading accounts file {}", settings.config_path.display()))?;
    AccountsFile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", settings.config_path.display()))
}

const GENERATE_USAGE: &str = "usage: ringpath-dashboard-api generate --events N --calls M [--account acc_demo] [--days 30] [--end RFC3339|epoch-ms] [--seed 1] [--site https://demo.example] [--batch 200000] [--migrate] [--ingest http://127.0.0.1:8080 --token TOKEN]

Makes synthetic visitors (channels, pool/source numbers, consent states, EU and
non-EU visitors, bots) and calls for an account of the accounts file
(RINGPATH_CONFIG). Without --ingest it inserts straight into ClickHouse
(RINGPATH_CLICKHOUSE_URL/_USER/_PASSWORD/_DATABASE; --migrate creates the
database and tables first). With --ingest it posts the visits, number requests and calls to a
running collector instead (demos; slower; times are moved to now).";

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

async fn generate_command(args: &[String], env: &HashMap<String, String>) -> anyhow::Result<()> {
    let mut flags: HashMap<String, String> = HashMap::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(name) = arg.strip_prefix("--") else { bail!("unexpected argument {arg:?}\n{GENERATE_USAGE}") };
        if name == "help" {
            println!("{GENERATE_USAGE}");
            return Ok(());
        }
        if name == "migrate" {
            flags.insert(name.to_owned(), String::new());
            continue;
        }
        let value = it.next().with_context(|| format!("--{name} needs a value\n{GENERATE_USAGE}"))?;
        if !["events", "calls", "account", "days", "end", "seed", "site", "batch", "ingest", "token"].contains(&name) {
            bail!("unknown option --{name}\n{GENERATE_USAGE}");
        }
        flags.insert(name.to_owned(), value.clone());
    }
    let num = |name: &str, default: Option<u64>| -> anyhow::Result<u64> {
        match flags.get(name) {
            Some(v) => v.replace('_', "").parse().with_context(|| format!("--{name} must be a number")),
            None => default.with_context(|| format!("--{name} is required\n{GENERATE_USAGE}")),
        }
    };
    let settings = Settings::from_env(env)?;
    let accounts = load(&settings)?;
    let account_id = flags.get("account").map(String::as_str).unwrap_or("acc_demo");
    let account = accounts.account(account_id).with_context(|| format!("account {account_id} is not in {}", settings.config_path.display()))?.clone();
    let end_ms = match flags.get("end") {
        Some(v) => ringpath_dashboard_api::params::parse_time("end", v).map_err(|e| anyhow::anyhow!(e.message))?,
        None => now_ms(),
    };
    let opts = Options {
        account,
        events: num("events", None)?,
        calls: num("calls", Some(0))?,
        days: num("days", Some(30))? as u32,
        end_ms,
        seed: num("seed", Some(1))?,
        site: flags.get("site").cloned().unwrap_or_else(|| "https://demo.example".into()),
        collector_batches: flags.contains_key("ingest"),
    };
    let started = Instant::now();
    if let Some(ingest) = flags.get("ingest") {
        let token = flags.get("token").context("--ingest needs --token (the account's API token, for the calls webhook)")?;
        let sent = generate::load_ingest(ingest, token, Generator::new(opts)).await?;
        println!("posted {} batches ({} events) and {} calls to {ingest} in {:.1}s", sent.batches, sent.events, sent.calls, started.elapsed().as_secs_f64());
        return Ok(());
    }
    if flags.contains_key("migrate") {
        ringpath_enrich::store::Store::migrate(&settings.writer).await.context("applying migrations")?;
    }
    let client = settings.writer.client();
    let batch = num("batch", Some(200_000))? as usize;
    let loaded = generate::load_clickhouse(&client, Generator::new(opts), batch, |l| {
        eprintln!("… {} events, {} assignments, {} calls ({:.0} events/s)", l.events, l.assignments, l.calls, l.events as f64 / started.elapsed().as_secs_f64().max(0.001));
    })
    .await?;
    println!(
        "loaded {} events, {} assignments, {} calls into {} in {:.1}s",
        loaded.events,
        loaded.assignments,
        loaded.calls,
        settings.writer.database,
        started.elapsed().as_secs_f64()
    );
    Ok(())
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
        Some("generate") => return generate_command(&args[1..], &env).await,
        Some("serve") | None => {}
        Some(other) => bail!("unknown command {other:?}; commands: serve (default), generate"),
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
