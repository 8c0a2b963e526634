//! ringpath-service: the plumbing ingest, enrich and dashboard-api share —
//! loading the accounts file, the signal loop (SIGHUP reloads, SIGTERM and
//! SIGINT stop), Prometheus text, and the one-machine defaults every service
//! and tool agrees on. Domain code is elsewhere; this crate only runs it.

use std::future::Future;
use std::path::Path;

use anyhow::Context;
use ringpath_types::accounts::AccountsFile;
use tokio::signal::unix::{signal, SignalKind};

/// A `RINGPATH_*` setting that cannot be used: which one, and why.
#[derive(Debug, thiserror::Error)]
#[error("setting {key}: {reason}")]
pub struct SettingsError {
    pub key: &'static str,
    pub reason: String,
}

/// The setting `key` from `env` parsed as `T`, or `default` when unset.
/// (Loaders take an env map, so tests never touch the process environment.)
pub fn setting<T: std::str::FromStr>(env: &std::collections::HashMap<String, String>, key: &'static str, default: T) -> Result<T, SettingsError>
where
    T::Err: std::fmt::Display,
{
    match env.get(key) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| SettingsError { key, reason: format!("{v:?}: {e}") }),
    }
}

/// The Kafka brokers of the one-machine stack (`infra/services.sh`).
pub const DEFAULT_KAFKA_BROKERS: &str = "127.0.0.1:19092";

/// Reads and validates the accounts file.
pub fn load_accounts(path: &Path) -> anyhow::Result<AccountsFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading accounts file {}", path.display()))?;
    AccountsFile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Runs until SIGTERM or SIGINT; on every SIGHUP calls `reload`, logging
/// whether it took (a failed reload keeps what runs).
pub async fn until_stopped<F, Fut>(mut reload: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hup.recv() => match reload().await {
                Ok(()) => tracing::info!("accounts file reloaded"),
                Err(e) => tracing::error!(error = %e, "reload failed; keeping the previous accounts"),
            },
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
        }
    }
}

/// A registry's metrics in the Prometheus text format.
pub fn render_metrics(registry: &prometheus::Registry) -> String {
    use prometheus::Encoder;
    let mut buf = Vec::new();
    let _ = prometheus::TextEncoder::new().encode(&registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn a_bad_accounts_file_is_an_error_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("rp-service-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ringpath.toml");
        std::fs::write(&path, "[[account]]\nid = \"BAD!\"\n").unwrap();
        let err = load_accounts(&path).unwrap_err().to_string();
        assert!(err.contains("ringpath.toml"), "{err}");
        assert!(load_accounts(&dir.join("missing.toml")).unwrap_err().to_string().contains("missing.toml"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn metrics_render_as_prometheus_text() {
        let registry = prometheus::Registry::new();
        let c = prometheus::IntCounter::new("ringpath_x_total", "x").unwrap();
        registry.register(Box::new(c.clone())).unwrap();
        c.inc();
        assert!(render_metrics(&registry).contains("ringpath_x_total 1"));
    }
}
