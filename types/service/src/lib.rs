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

/// sha256 of the tokens the demo accounts file publishes in the README and
/// `infra/demo/ringpath.toml` ("demo-token", "demo-calls-token"): anyone can
/// read or write with them.
pub const DEMO_TOKEN_SHA256: [&str; 2] =
    ["7c43ef5ae21d43ce2743f770c68e24def1a43ee2f416d2438410c8af7af2ff2c", "5af1c1d55779c560f636183e3474d3f5f773850fc4b2ea9a8cb115825405533a"];

/// Reads and validates the accounts file. A file with a published demo token
/// is refused unless `RINGPATH_ALLOW_DEMO_TOKENS=1` (set by `infra/up` only).
pub fn load_accounts(path: &Path) -> anyhow::Result<AccountsFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading accounts file {}", path.display()))?;
    let file = AccountsFile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if std::env::var("RINGPATH_ALLOW_DEMO_TOKENS").as_deref() != Ok("1") {
        refuse_demo_tokens(&file).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    Ok(file)
}

/// An error naming the first account or agency whose token is a published demo token.
pub fn refuse_demo_tokens(file: &AccountsFile) -> Result<(), String> {
    let is_demo = |hash: &str| DEMO_TOKEN_SHA256.iter().any(|d| d.eq_ignore_ascii_case(hash));
    for account in &file.account {
        if is_demo(&account.token_sha256) || account.calls_token_sha256.as_deref().is_some_and(is_demo) {
            return Err(format!("account {} uses a published demo token; give it a token of its own (ringpath-dashboard-api token), or run the demo with infra/up", account.id));
        }
    }
    for agency in &file.agency {
        if is_demo(&agency.token_sha256) {
            return Err(format!("agency {} uses a published demo token; give it a token of its own", agency.id));
        }
    }
    Ok(())
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
    fn published_demo_tokens_are_refused() {
        let file = |token: &str, calls: &str| {
            AccountsFile::parse(&format!("[[account]]\nid = \"acc_x\"\ntoken_sha256 = \"{token}\"\ncalls_token_sha256 = \"{calls}\"\n")).unwrap()
        };
        let (own, own_calls) = ("1".repeat(64), "2".repeat(64));
        assert!(refuse_demo_tokens(&file(&own, &own_calls)).is_ok());
        let err = refuse_demo_tokens(&file(DEMO_TOKEN_SHA256[0], &own_calls)).unwrap_err();
        assert!(err.contains("acc_x") && err.contains("demo token"), "{err}");
        assert!(refuse_demo_tokens(&file(&own, &DEMO_TOKEN_SHA256[1].to_ascii_uppercase())).is_err(), "the calls token too, in any case");
        // The demo's own file is the case in point.
        let demo = AccountsFile::parse(include_str!("../../../infra/demo/ringpath.toml")).unwrap();
        assert!(refuse_demo_tokens(&demo).is_err());
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
