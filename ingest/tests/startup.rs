//! `ringpath-ingest` refuses an accounts file with the demo's published tokens
//! unless `infra/up` says it runs the demo (`RINGPATH_ALLOW_DEMO_TOKENS=1`).

use std::process::Command;

#[test]
fn the_demo_accounts_file_is_refused_outside_infra_up() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/demo/ringpath.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_ringpath-ingest"))
        .env_clear()
        .env("RINGPATH_CONFIG", demo)
        .env("RINGPATH_INGEST_LISTEN", "127.0.0.1:0")
        .env("RINGPATH_INGEST_METRICS_LISTEN", "off")
        .output()
        .expect("binary runs");
    assert!(!out.status.success(), "started with the demo tokens");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("acc_demo uses a published demo token"), "{stderr}");
}
