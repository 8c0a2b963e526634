//! `ringpath-enrich run` consumes until SIGTERM/SIGINT (SIGHUP reloads the
//! accounts file); `ringpath-enrich migrate` creates or upgrades the schema.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use ringpath_enrich::{geo, Settings};
use ringpath_types::accounts::AccountsFile;

fn load_accounts(settings: &Settings) -> anyhow::Result<AccountsFile> {
    ringpath_service::load_accounts(&settings.config_path)
}

/// The consumer between Kafka and ClickHouse. Settings come from `RINGPATH_*`
/// variables (README "Configuration").
#[derive(clap::Parser)]
#[command(name = "ringpath-enrich", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Consume until SIGTERM/SIGINT (the default); SIGHUP reloads the accounts file.
    Run,
    /// Create or upgrade the ClickHouse schema and create missing Kafka topics.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = <Cli as clap::Parser>::parse();
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RINGPATH_LOG").unwrap_or_else(|_| "info".into())).init();
    let env: HashMap<String, String> = std::env::vars().collect();
    match cli.command.unwrap_or(Command::Run) {
        Command::Migrate => {
            let ch = ringpath_enrich::settings::clickhouse_from_env(&env, "RINGPATH_CLICKHOUSE_USER", "RINGPATH_CLICKHOUSE_PASSWORD", "default")?;
            let applied = ringpath_store::migrate(&ch).await.context("applying migrations")?;
            let (brokers, topics) = (kafka_brokers(&env), ringpath_types::wire::Topics::from_env(&env));
            let created = ringpath_enrich::topics::ensure_topics(&brokers, &topics, topic_partitions(&env)?, topic_replication(&env)?, dlq_retention_bytes(&env)?)
                .await
                .with_context(|| format!("creating topics on {brokers}"))?;
            println!("kafka {brokers}: {} topic(s) created", created.len());
            println!("database {}: {} migration(s) applied{}", ch.database, applied.len(), if applied.is_empty() { String::new() } else { format!(" ({})", applied.join(", ")) });
            Ok(())
        }
        Command::Run => run(Settings::from_env(&env)?).await,
    }
}

fn kafka_brokers(env: &HashMap<String, String>) -> String {
    env.get("RINGPATH_KAFKA_BROKERS").cloned().unwrap_or_else(|| ringpath_service::DEFAULT_KAFKA_BROKERS.into())
}

fn topic_partitions(env: &HashMap<String, String>) -> anyhow::Result<i32> {
    Ok(env.get("RINGPATH_TOPIC_PARTITIONS").map(|v| v.parse()).transpose().context("RINGPATH_TOPIC_PARTITIONS")?.unwrap_or(6))
}

fn dlq_retention_bytes(env: &HashMap<String, String>) -> anyhow::Result<i64> {
    let bytes = env.get("RINGPATH_TOPIC_DLQ_RETENTION_BYTES").map(|v| v.parse::<i64>()).transpose().context("RINGPATH_TOPIC_DLQ_RETENTION_BYTES")?;
    Ok(bytes.unwrap_or(ringpath_enrich::topics::DLQ_RETENTION_BYTES))
}

fn topic_replication(env: &HashMap<String, String>) -> anyhow::Result<i32> {
    Ok(env.get("RINGPATH_TOPIC_REPLICATION").map(|v| v.parse()).transpose().context("RINGPATH_TOPIC_REPLICATION")?.unwrap_or(1))
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let accounts = load_accounts(&settings)?;
    let geo: Arc<dyn geo::GeoLookup> = Arc::from(geo::from_settings(&settings.geo)?);
    let running = ringpath_enrich::start(settings.clone(), accounts, geo)?;
    println!("ringpath-enrich consuming {:?} into {}", settings.topics, settings.clickhouse.database);

    let server = match settings.metrics_listen {
        Some(addr) => {
            let metrics = running.metrics.clone();
            let srv = HttpServer::new(move || {
                let m = metrics.clone();
                App::new()
                    .route("/healthz", web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ok"})) }))
                    .route("/metrics", web::get().to(move || {
                        let m = m.clone();
                        async move { HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(m.render()) }
                    }))
            })
            .workers(1)
            .disable_signals()
            .bind(addr)?
            .run();
            let handle = srv.handle();
            tokio::spawn(srv);
            Some(handle)
        }
        None => None,
    };

    ringpath_service::until_stopped(|| {
        let reloaded = load_accounts(&settings).map(|file| *running.accounts.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(file));
        std::future::ready(reloaded.map_err(|e| e.to_string()))
    })
    .await?;
    tracing::info!("shutting down: flushing the current batch");
    if let Some(h) = server {
        h.stop(true).await;
    }
    running.stop().await
}
