//! Test harness for end-to-end tests against the real services `.ci/run`
//! starts: Apache Kafka, ClickHouse, headless Chromium (via chromedriver).
//! Each test gets its own topics and database (random suffix) and runs
//! ingest, enrich and dashboard-api in-process on port 0. Nothing here skips:
//! a missing service is a failed test.

pub mod browser;
pub mod enrich;
pub mod erasure;
pub mod fixtures;
pub mod generate;
pub mod ingest_support;
pub mod services;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ringpath_enrich::settings::GeoSource;
use ringpath_store::ClickHouseSettings;
use ringpath_types::accounts::AccountsFile;
use ringpath_types::wire::Topics;

pub fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

pub fn kafka_brokers() -> String {
    env_or("RINGPATH_KAFKA_BROKERS", ringpath_service::DEFAULT_KAFKA_BROKERS)
}

/// The Redis `infra/services.sh` starts (number pools shared by collectors).
pub fn redis_url() -> String {
    env_or("RINGPATH_TEST_REDIS_URL", &format!("redis://127.0.0.1:{}/", env_or("RINGPATH_REDIS_PORT", "16379")))
}

pub fn clickhouse_url() -> String {
    env_or("RINGPATH_CLICKHOUSE_URL", "http://127.0.0.1:18123")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

pub fn assets_dir() -> PathBuf {
    std::env::var("RINGPATH_ASSETS_DIR").map(PathBuf::from).unwrap_or_else(|_| repo_root().join("tracker-wasm/pkg"))
}

pub fn unique_suffix() -> String {
    format!("{:08x}{:04x}", rand::random::<u32>(), std::process::id() & 0xffff)
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RINGPATH_LOG").unwrap_or_else(|_| "warn".into())).with_test_writer().try_init();
}

/// Creates the four topics with `partitions` each, as `ringpath-enrich migrate`
/// does; fails if the broker is not there.
pub async fn create_topics(brokers: &str, topics: &Topics, partitions: i32) -> anyhow::Result<()> {
    ringpath_enrich::topics::ensure_topics(brokers, topics, partitions, 1, ringpath_enrich::topics::DLQ_RETENTION_BYTES)
        .await
        .context("creating topics: is Kafka running (infra/services.sh start)?")?;
    Ok(())
}

pub fn clickhouse_settings(database: &str) -> ClickHouseSettings {
    clickhouse_settings_at(&clickhouse_url(), database)
}

pub fn clickhouse_settings_at(url: &str, database: &str) -> ClickHouseSettings {
    ClickHouseSettings::new(url, "default", "", database).expect("a valid test database name")
}

/// A whole pipeline for one test: topics, database, the three services.
pub struct Stack {
    pub suffix: String,
    pub brokers: String,
    pub clickhouse_url: String,
    pub topics: Topics,
    pub database: String,
    pub accounts: AccountsFile,
    pub ingest: Option<ringpath_ingest::Running>,
    pub enrich: Option<ringpath_enrich::Running>,
    pub dashboard: Option<ringpath_dashboard_api::Running>,
    pub ch: clickhouse::Client,
    pub http: reqwest::Client,
    pub geo: Arc<dyn ringpath_enrich::geo::GeoLookup>,
}

pub struct StackOptions {
    pub accounts: AccountsFile,
    pub geo: Arc<dyn ringpath_enrich::geo::GeoLookup>,
    pub partitions: i32,
    pub ingest_env: HashMap<String, String>,
    pub enrich_env: HashMap<String, String>,
    /// Another broker (a `services::PrivateKafka`) instead of the shared one.
    pub brokers: Option<String>,
    /// Another ClickHouse (a `services::PrivateClickHouse`) instead of the shared one.
    pub clickhouse_url: Option<String>,
    /// Start enrich with the stack (off: a test starts it later).
    pub with_enrich: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            brokers: None,
            clickhouse_url: None,
            with_enrich: true,
            accounts: fixtures::accounts(),
            geo: Arc::new(fixtures::fixture_geo()),
            partitions: 2,
            ingest_env: HashMap::new(),
            enrich_env: HashMap::new(),
        }
    }
}

impl Stack {
    pub async fn start(opts: StackOptions) -> anyhow::Result<Stack> {
        init_tracing();
        let suffix = unique_suffix();
        let topics = Topics::with_suffix(&suffix);
        let brokers = opts.brokers.clone().unwrap_or_else(kafka_brokers);
        let ch_url = opts.clickhouse_url.clone().unwrap_or_else(clickhouse_url);
        create_topics(&brokers, &topics, opts.partitions).await?;
        let database = format!("rp_test_{suffix}");
        let ch_settings = clickhouse_settings_at(&ch_url, &database);
        ringpath_store::migrate(&ch_settings).await.context("migrating ClickHouse: is it running (infra/services.sh start)?")?;
        let mut stack = Stack {
            suffix,
            brokers,
            clickhouse_url: ch_url,
            topics,
            database: database.clone(),
            accounts: opts.accounts.clone(),
            ingest: None,
            enrich: None,
            dashboard: None,
            ch: ch_settings.client(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?,
            geo: opts.geo.clone(),
        };
        stack.start_ingest(opts.ingest_env.clone()).await?;
        if opts.with_enrich {
            stack.start_enrich(opts.enrich_env.clone())?;
        }
        stack.dashboard = Some(stack.start_dashboard(ringpath_dashboard_api::Options::default()).await?);
        Ok(stack)
    }

    /// A dashboard-api on the test database, on port 0 (the stack's own, or
    /// another replica beside it).
    pub async fn start_dashboard(&self, options: ringpath_dashboard_api::Options) -> anyhow::Result<ringpath_dashboard_api::Running> {
        let ch_settings = clickhouse_settings_at(&self.clickhouse_url, &self.database);
        let dash = ringpath_dashboard_api::Settings {
            listen: "127.0.0.1:0".parse()?,
            config_path: PathBuf::from("unused.toml"),
            reader: ch_settings.clone(),
            writer: ch_settings,
        };
        ringpath_dashboard_api::start_with(dash, self.accounts.clone(), options).await
    }

    /// Kills the stack's dashboard-api where it is (erasures cut off
    /// mid-step, as a crash leaves them) and starts a new one with `options`.
    pub async fn restart_dashboard_after_a_crash(&mut self, options: ringpath_dashboard_api::Options) -> anyhow::Result<()> {
        if let Some(old) = self.dashboard.take() {
            old.kill().await;
        }
        self.dashboard = Some(self.start_dashboard(options).await?);
        Ok(())
    }

    pub fn topic_env(&self) -> HashMap<String, String> {
        HashMap::from([
            ("RINGPATH_TOPIC_EVENTS".to_string(), self.topics.events.clone()),
            ("RINGPATH_TOPIC_CALLS".to_string(), self.topics.calls.clone()),
            ("RINGPATH_TOPIC_ASSIGNMENTS".to_string(), self.topics.assignments.clone()),
            ("RINGPATH_TOPIC_DLQ".to_string(), self.topics.dlq.clone()),
            ("RINGPATH_KAFKA_BROKERS".to_string(), self.brokers.clone()),
        ])
    }

    pub async fn start_ingest(&mut self, extra: HashMap<String, String>) -> anyhow::Result<()> {
        let mut env = self.topic_env();
        env.insert("RINGPATH_INGEST_LISTEN".into(), "127.0.0.1:0".into());
        env.insert("RINGPATH_INGEST_METRICS_LISTEN".into(), "127.0.0.1:0".into());
        env.insert("RINGPATH_ASSETS_DIR".into(), assets_dir().display().to_string());
        env.insert("RINGPATH_PRODUCE_TIMEOUT_MS".into(), "5000".into());
        // Every test visitor comes from 127.0.0.1: one client. The per-client
        // cap is tested on its own (tests/tests/pools_abuse.rs).
        env.insert("RINGPATH_POOL_HOLDS_PER_CLIENT".into(), "1000000".into());
        env.extend(extra);
        let settings = ringpath_ingest::Settings::from_env(&env)?;
        self.ingest = Some(ringpath_ingest::start(settings, self.accounts.clone()).await?);
        Ok(())
    }

    pub fn start_enrich(&mut self, extra: HashMap<String, String>) -> anyhow::Result<()> {
        self.start_enrich_with_hook(extra, None)
    }

    /// Starts enrich with a hook at every point of its batch cycle (see `enrich::CrashPoint`).
    pub fn start_enrich_with_hook(&mut self, extra: HashMap<String, String>, hook: Option<ringpath_enrich::pipeline::StageHook>) -> anyhow::Result<()> {
        let mut env = self.topic_env();
        env.insert("RINGPATH_GEOIP".into(), "off".into());
        env.insert("RINGPATH_CLICKHOUSE_URL".into(), self.clickhouse_url.clone());
        env.insert("RINGPATH_CLICKHOUSE_DATABASE".into(), self.database.clone());
        env.insert("RINGPATH_ENRICH_GROUP".into(), format!("enrich-{}", self.suffix));
        env.insert("RINGPATH_ENRICH_METRICS_LISTEN".into(), "off".into());
        env.insert("RINGPATH_ENRICH_BATCH_MS".into(), "200".into());
        env.extend(extra);
        let mut settings = ringpath_enrich::Settings::from_env(&env)?;
        settings.geo = GeoSource::Off; // the fixture geo is passed in directly
        self.enrich = Some(ringpath_enrich::start_with_hook(settings, self.accounts.clone(), self.geo.clone(), hook)?);
        Ok(())
    }

    pub fn ingest_url(&self) -> String {
        format!("http://{}", self.ingest.as_ref().expect("ingest running").addr)
    }

    /// The collector's metrics listener (not the public one).
    pub fn ingest_metrics_url(&self) -> String {
        format!("http://{}/metrics", self.ingest.as_ref().expect("ingest running").metrics_addr.expect("metrics listener on"))
    }

    pub fn dashboard_url(&self) -> String {
        format!("http://{}", self.dashboard.as_ref().expect("dashboard running").addr)
    }

    /// Polls a ClickHouse count until it reaches `want` (or fails after `limit`).
    pub async fn wait_count(&self, sql: &str, want: u64, limit: Duration) -> anyhow::Result<u64> {
        let started = Instant::now();
        loop {
            let n = self.ch.query(sql).fetch_one::<u64>().await?;
            if n >= want {
                return Ok(n);
            }
            if started.elapsed() > limit {
                bail!("{sql}: {n} rows after {limit:?}, wanted {want}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls a dashboard GET until `done(body)` holds: reports may trail the
    /// events table by the moment ClickHouse takes to fill its aggregate views.
    pub async fn wait_report(&self, path: &str, id: &str, token: &str, limit: Duration, done: impl Fn(&serde_json::Value) -> bool) -> anyhow::Result<serde_json::Value> {
        let started = Instant::now();
        loop {
            let resp = self.dashboard_get(path, id, token).send().await?;
            let status = resp.status();
            let body: serde_json::Value = resp.json().await?;
            if status.is_success() && done(&body) {
                return Ok(body);
            }
            if started.elapsed() > limit {
                bail!("{path}: {status} {body} after {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn dashboard_get(&self, path: &str, id: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.dashboard_url())).basic_auth(id, Some(token))
    }

    /// Stops the services; drops the test database.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(i) = self.ingest.take() {
            i.stop().await;
        }
        if let Some(e) = self.enrich.take() {
            e.stop().await?;
        }
        if let Some(d) = self.dashboard.take() {
            d.stop().await;
        }
        let _ = clickhouse_settings_at(&self.clickhouse_url, "default").client().query(&format!("DROP DATABASE IF EXISTS {}", self.database)).execute().await;
        Ok(())
    }
}

/// A free loopback port (for chromedriver and fixture servers).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
