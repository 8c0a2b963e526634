//! The `ringpath-enrich` binary refuses to start without geo data, saying
//! what to set, instead of running and silently storing no countries (which
//! would also keep EU visitors' IPs whole).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::process::Command;

fn enrich() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringpath-enrich"));
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("RINGPATH_ENRICH_METRICS_LISTEN", "off").arg("run");
    cmd
}

#[test]
fn run_without_a_geo_database_exits_with_a_clear_error() {
    let out = enrich().output().expect("binary runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no geo database") && stderr.contains("RINGPATH_GEOIP=off"), "{stderr}");
}

#[test]
fn run_with_a_missing_geo_file_names_the_file() {
    let dir = std::env::temp_dir().join(format!("rp-enrich-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("ringpath.toml");
    std::fs::write(&config, "[[account]]\nid = \"acc_demo\"\ntoken_sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n").unwrap();
    let missing = dir.join("GeoLite2-City.mmdb");
    let out = enrich().env("RINGPATH_CONFIG", &config).env("RINGPATH_GEOIP_CITY", &missing).output().expect("binary runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_demo_accounts_file_is_refused_outside_infra_up() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/demo/ringpath.toml");
    let out = enrich().env("RINGPATH_CONFIG", demo).env("RINGPATH_GEOIP", "off").output().expect("binary runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("acc_demo uses a published demo token"), "{stderr}");
}
