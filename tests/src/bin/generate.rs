//! Loads synthetic data: visitors with a realistic mix of channels, pool and
//! source-level numbers, consent states, EU and other visitors, bots, and
//! calls (see `ringpath_tests::generate`), for one account of the accounts
//! file (`RINGPATH_CONFIG`). Without `--ingest` it inserts straight into
//! ClickHouse (`RINGPATH_CLICKHOUSE_URL`/`_USER`/`_PASSWORD`/`_DATABASE`);
//! with `--ingest` it posts the visits, number requests and calls to a
//! running collector (demos; slower; times are moved to now).
//!
//! `cargo run --release -p ringpath-tests --bin generate -- --events 1000000 --calls 10000 --migrate`

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use ringpath_store::ClickHouseSettings;
use ringpath_tests::generate::{self, Generator, Options};
use ringpath_types::accounts::AccountsFile;

#[derive(Parser, Debug)]
#[command(name = "generate", about = "Loads synthetic visitors, number assignments and calls for one account")]
struct Args {
    /// About this many events (the last visitor is finished).
    #[arg(long, value_parser = number)]
    events: u64,
    /// Exactly this many calls.
    #[arg(long, default_value = "0", value_parser = number)]
    calls: u64,
    /// The account (of the accounts file) the data belongs to.
    #[arg(long, default_value = "acc_demo")]
    account: String,
    /// Sessions start in the days before --end.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// The end of the range: RFC 3339 or epoch ms (default: now).
    #[arg(long, value_parser = instant)]
    end: Option<i64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The site the page URLs are on.
    #[arg(long, default_value = "https://demo.example")]
    site: String,
    /// Rows per ClickHouse insert.
    #[arg(long, default_value = "200000", value_parser = number)]
    batch: u64,
    /// Create the database and tables first.
    #[arg(long)]
    migrate: bool,
    /// Post to this collector instead of inserting into ClickHouse.
    #[arg(long)]
    ingest: Option<String>,
    /// The account's calls token (for the call webhook; with --ingest).
    #[arg(long)]
    token: Option<String>,
}

/// A count, with `_` allowed as a separator (`10_000_000`).
fn number(v: &str) -> Result<u64, String> {
    v.replace('_', "").parse().map_err(|_| format!("{v:?} is not a number"))
}

fn instant(v: &str) -> Result<i64, String> {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse().map_err(|_| format!("{v:?} is not epoch ms"));
    }
    ringpath_types::time::parse_rfc3339_ms(v).ok_or_else(|| format!("{v:?} is neither RFC 3339 nor epoch ms"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let config = env.get("RINGPATH_CONFIG").cloned().unwrap_or_else(|| "ringpath.toml".into());
    let text = std::fs::read_to_string(&config).with_context(|| format!("reading accounts file {config}"))?;
    let accounts = AccountsFile::parse(&text).map_err(|e| anyhow::anyhow!("{config}: {e}"))?;
    let account = accounts.account(&args.account).with_context(|| format!("account {} is not in {config}", args.account))?.clone();
    let opts = Options {
        account,
        events: args.events,
        calls: args.calls,
        days: args.days,
        end_ms: args.end.unwrap_or_else(ringpath_types::time::now_ms),
        seed: args.seed,
        site: args.site.clone(),
        collector_batches: args.ingest.is_some(),
    };
    let started = Instant::now();
    if let Some(ingest) = &args.ingest {
        let token = args.token.as_deref().context("--ingest needs --token (the account's calls token)")?;
        let sent = generate::load_ingest(ingest, token, Generator::new(opts)).await?;
        println!("posted {} batches ({} events) and {} calls to {ingest} in {:.1}s", sent.batches, sent.events, sent.calls, started.elapsed().as_secs_f64());
        return Ok(());
    }
    let writer = ClickHouseSettings::from_env(&env, "RINGPATH_CLICKHOUSE_USER", "RINGPATH_CLICKHOUSE_PASSWORD", "default").map_err(anyhow::Error::msg)?;
    if args.migrate {
        ringpath_store::migrate(&writer).await.context("applying migrations")?;
    }
    let loaded = generate::load_clickhouse(&writer.client(), Generator::new(opts), args.batch as usize, |l| {
        eprintln!("… {} events, {} assignments, {} calls ({:.0} events/s)", l.events, l.assignments, l.calls, l.events as f64 / started.elapsed().as_secs_f64().max(0.001));
    })
    .await?;
    println!("loaded {} events, {} assignments, {} calls into {} in {:.1}s", loaded.events, loaded.assignments, loaded.calls, writer.database, started.elapsed().as_secs_f64());
    Ok(())
}
