//! `ringpath-ingest snippet`: prints the pinned tag of the build in the
//! assets dir and exits, without a broker; refuses what would give a broken tag.

use std::path::PathBuf;
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_ringpath-ingest");

fn account(id: &str) -> String {
    format!("[[account]]\nid = \"{id}\"\ntoken_sha256 = \"{}\"\n\n", hex::encode(Sha256::digest(id.as_bytes())))
}

/// A temp dir with a "build" (rp.js, rp.wasm) and an accounts file of `accounts`.
fn setup(accounts: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rp-snippet-{}-{}", std::process::id(), accounts.len()));
    std::fs::create_dir_all(&dir).expect("snippet test");
    std::fs::write(dir.join("rp.js"), "abc").expect("snippet test");
    std::fs::write(dir.join("rp.wasm"), b"\0asm\x01\0\0\0").expect("snippet test");
    std::fs::write(dir.join("ringpath.toml"), accounts.iter().map(|a| account(a)).collect::<String>()).expect("snippet test");
    dir
}

fn snippet(dir: &PathBuf, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("snippet")
        .args(args)
        .env("RINGPATH_ASSETS_DIR", dir)
        .env("RINGPATH_CONFIG", dir.join("ringpath.toml"))
        .env("RINGPATH_INGEST_LISTEN", "127.0.0.1:8080")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("snippet test")
}

// sha256("abc") starts ba7816bf8f; sha384("abc") in base64 is ywB1…CWn.
const INTEGRITY: &str = "sha384-ywB1P0WjXou1oD1pmsZQBycsMqsO3tFjGotgWkP/W+2AhgcroefMI1i67KE0yCWn";

#[test]
fn snippet_prints_exactly_the_pinned_tag() {
    let dir = setup(&["acc_one", "acc_two"]);
    let out = snippet(&dir, &["--account", "acc_two", "--origin", "https://collect.example.com"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = format!(r#"<script async src="https://collect.example.com/v/ba7816bf8f/rp.js" integrity="{INTEGRITY}" crossorigin="anonymous" data-account="acc_two"></script>"#);
    assert_eq!(String::from_utf8(out.stdout).expect("snippet test"), expected + "\n", "stdout is the tag alone, ready to paste");
}

#[test]
fn snippet_defaults_to_the_only_account_and_the_listen_address() {
    let dir = setup(&["acc_only"]);
    let out = snippet(&dir, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tag = String::from_utf8(out.stdout).expect("snippet test");
    assert!(tag.contains(r#"src="http://127.0.0.1:8080/v/ba7816bf8f/rp.js""#) && tag.contains(r#"data-account="acc_only""#), "{tag}");
}

#[test]
fn snippet_refuses_to_guess_or_to_print_a_broken_tag() {
    let dir = setup(&["acc_a", "acc_b", "acc_c"]);
    let fails = |args: &[&str], reason: &str| {
        let out = snippet(&dir, args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success() && out.stdout.is_empty() && stderr.contains(reason), "{args:?}: {stderr}");
    };
    fails(&[], "pass --account");
    fails(&["--account", "acc_a", "--origin", "collect.example.com"], "https://host");
    fails(&["--account", "Bad Account"], "[a-z0-9_]");
    fails(&["--account"], "a value is required");
    fails(&["--acount", "acc_a"], "unexpected argument '--acount'");
    std::fs::remove_file(dir.join("rp.js")).expect("snippet test");
    fails(&["--account", "acc_a"], "tracker-wasm/build.sh");
}
