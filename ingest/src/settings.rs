//! Ingest's typed settings: defaults < `RINGPATH_*` environment. The loader
//! takes an env map so tests never touch the process environment.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::client_ip::TrustedProxies;
pub use ringpath_types::wire::Topics;

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub config_path: PathBuf,
    pub assets_dir: PathBuf,
    pub kafka_brokers: String,
    pub topics: Topics,
    pub trusted_proxies: TrustedProxies,
    /// Requests per second a single client IP may make (token bucket refill).
    pub rate_per_client: f64,
    /// Bucket size: how far a client may burst above its rate.
    pub rate_burst: f64,
    /// How long a produce may wait for the broker's ack before the client gets 503.
    pub produce_timeout: Duration,
    /// Producer linger (batching delay): the longest a record waits for its
    /// batch to fill, so the most it adds to an acknowledged request's latency.
    pub kafka_linger: Duration,
    /// librdkafka `batch.num.messages`: a batch leaves when it holds this many
    /// records, before `kafka_linger` runs out. Under load batches fill long
    /// before 5 ms, so requests do not wait for the linger (infra/bench/ingest.sh,
    /// 64 connections: 500 → p50 1.2 ms, 39k requests/s; librdkafka's 10 000 →
    /// p50 5.9 ms, 10k requests/s; 100 cost the broker 3× the CPU per request).
    pub kafka_batch_messages: u32,
    /// librdkafka `compression.type` of everything ingest produces.
    pub kafka_compression: String,
    /// Longest time a client may take to send its body before 408 (slow-body clients).
    pub body_timeout: Duration,
    /// Skip restoring number holds from `ringpath.assignments` at start (tests of a fresh pool).
    pub restore_holds: bool,
    pub shutdown_timeout: Duration,
    /// Most live pool-number holds one client (IP, IPv6 /64) may have in a pool.
    pub pool_holds_per_client: usize,
    /// Redis holding the number pools several collectors share (`RINGPATH_POOLS_REDIS_URL`); `None`: in this process.
    pub pools_redis_url: Option<String>,
    /// The prefix of every key ingest writes there (`RINGPATH_POOLS_REDIS_NAMESPACE`, default `rp`).
    pub pools_redis_namespace: String,
    /// Where `/metrics` is served (`RINGPATH_INGEST_METRICS_LISTEN`, default
    /// 127.0.0.1:9080; `off`): not on the public listener, because it names every
    /// account and pool with its live utilisation.
    pub metrics_listen: Option<SocketAddr>,
}

pub use ringpath_service::SettingsError;
use ringpath_service::setting as parse;

impl Settings {
    pub fn from_env(env: &HashMap<String, String>) -> Result<Settings, SettingsError> {
        let proxies = env.get("RINGPATH_TRUSTED_PROXIES").map(String::as_str).unwrap_or("");
        Ok(Settings {
            listen: parse(env, "RINGPATH_INGEST_LISTEN", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            config_path: parse(env, "RINGPATH_CONFIG", PathBuf::from("ringpath.toml"))?,
            assets_dir: parse(env, "RINGPATH_ASSETS_DIR", PathBuf::from("tracker-wasm/pkg"))?,
            kafka_brokers: env.get("RINGPATH_KAFKA_BROKERS").cloned().unwrap_or_else(|| ringpath_service::DEFAULT_KAFKA_BROKERS.into()),
            topics: Topics::from_env(env),
            trusted_proxies: TrustedProxies::parse(proxies)
                .map_err(|reason| SettingsError { key: "RINGPATH_TRUSTED_PROXIES", reason })?,
            rate_per_client: parse(env, "RINGPATH_RATE_PER_CLIENT", 100.0)?,
            rate_burst: parse(env, "RINGPATH_RATE_BURST", 200.0)?,
            produce_timeout: Duration::from_millis(parse(env, "RINGPATH_PRODUCE_TIMEOUT_MS", 5000u64)?),
            kafka_linger: Duration::from_millis(parse(env, "RINGPATH_KAFKA_LINGER_MS", 5u64)?),
            kafka_batch_messages: parse(env, "RINGPATH_KAFKA_BATCH_MESSAGES", 500u32)?,
            kafka_compression: match env.get("RINGPATH_KAFKA_COMPRESSION").map(String::as_str).unwrap_or("lz4") {
                c @ ("lz4" | "snappy" | "zstd" | "gzip" | "none") => c.to_owned(),
                _ => return Err(SettingsError { key: "RINGPATH_KAFKA_COMPRESSION", reason: "one of lz4, snappy, zstd, gzip, none".into() }),
            },
            body_timeout: Duration::from_millis(parse(env, "RINGPATH_BODY_TIMEOUT_MS", 10_000u64)?),
            restore_holds: parse(env, "RINGPATH_RESTORE_HOLDS", true)?,
            shutdown_timeout: Duration::from_secs(parse(env, "RINGPATH_SHUTDOWN_TIMEOUT_S", 10u64)?),
            pool_holds_per_client: parse(env, "RINGPATH_POOL_HOLDS_PER_CLIENT", 10usize)?,
            pools_redis_url: env.get("RINGPATH_POOLS_REDIS_URL").filter(|v| !v.is_empty()).cloned(),
            pools_redis_namespace: env.get("RINGPATH_POOLS_REDIS_NAMESPACE").filter(|v| !v.is_empty()).cloned().unwrap_or_else(|| "rp".into()),
            metrics_listen: match env.get("RINGPATH_INGEST_METRICS_LISTEN").map(String::as_str) {
                Some("off") => None,
                _ => Some(parse(env, "RINGPATH_INGEST_METRICS_LISTEN", SocketAddr::from(([127, 0, 0, 1], 9080)))?),
            },
        })
    }
}

/// The loopback address a test server binds to (port 0: the OS picks).
pub fn loopback_any_port() -> SocketAddr {
    SocketAddr::new(IpAddr::from([127, 0, 0, 1]), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_work_on_one_machine() {
        let s = Settings::from_env(&HashMap::new()).unwrap();
        assert_eq!(s.listen.port(), 8080);
        assert_eq!(s.topics.events, "ringpath.events");
    }

    #[test]
    fn env_overrides_and_bad_values_name_the_key() {
        let env = HashMap::from([("RINGPATH_INGEST_LISTEN".to_string(), "127.0.0.1:9999".to_string())]);
        assert_eq!(Settings::from_env(&env).unwrap().listen.port(), 9999);
        let env = HashMap::from([("RINGPATH_RATE_PER_CLIENT".to_string(), "lots".to_string())]);
        assert_eq!(Settings::from_env(&env).unwrap_err().key, "RINGPATH_RATE_PER_CLIENT");
    }
}
