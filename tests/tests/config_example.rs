//! The README's configuration example, exactly as written there (only each
//! `<hex>` placeholder replaced by a real token hash, as a user must), runs:
//! it parses, ingest and dashboard-api start with it, and its rules do what
//! its comments say — `channel = "social"` covers organic and paid social.

use ringpath_tests::{Stack, StackOptions};
use ringpath_types::accounts::AccountsFile;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const TOKEN: &str = "readme-example-token";

/// The first ```toml block of the README's "Configuration" section.
fn readme_example() -> String {
    let readme = std::fs::read_to_string(ringpath_tests::repo_root().join("README.md")).expect("README.md");
    let section = readme.split("\n## Configuration").nth(1).expect("a Configuration section");
    let block = section.split("```toml\n").nth(1).expect("a toml block in it");
    block.split("\n```").next().expect("closed block").to_owned()
}

fn with_hashes(example: &str) -> String {
    assert!(example.contains("token_sha256 = \"<hex>\""), "the example shows the placeholder a user replaces");
    example.replace("<hex>", &hex::encode(Sha256::digest(TOKEN.as_bytes())))
}

/// The number a new session landing on `url` from `referrer` gets.
async fn number_for(stack: &Stack, session: &str, url: &str, referrer: &str) -> Value {
    let body = json!({"account": "acc_demo", "session_id": session, "visitor_id": format!("visitor-{session}"), "url": url, "referrer": referrer});
    let resp = stack
        .http
        .post(format!("{}/v1/numbers", stack.ingest_url()))
        .header("origin", "https://demo.example")
        .header("user-agent", ringpath_tests::enrich::CHROME_UA)
        .json(&body)
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), 200, "{url} from {referrer}");
    resp.json().await.expect("json")
}

#[test]
fn the_readme_example_parses_as_written() {
    let file = AccountsFile::parse(&with_hashes(&readme_example())).expect("the README's example is a valid accounts file");
    let account = file.account("acc_demo").expect("acc_demo");
    assert_eq!((account.retention_days, account.dni.hold_minutes), (395, 30));
    assert_eq!(account.dni.pool[0].numbers, ["+15550109001", "+15550109002"]);
    assert_eq!(file.accounts_of_agency("agc_demo").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_and_dashboard_start_with_the_readme_example_and_its_rules_hold() {
    let accounts = AccountsFile::parse(&with_hashes(&readme_example())).expect("parses");
    let stack = Stack::start(StackOptions { accounts, with_enrich: false, ..StackOptions::default() }).await.expect("ingest and dashboard-api start with it");

    let config: Value = stack.http.get(format!("{}/v1/config/acc_demo", stack.ingest_url())).send().await.expect("config").json().await.expect("json");
    assert_eq!(config["site_numbers"], json!(["+15550100000"]));

    // `channel = "social"`: organic social (a t.co referrer) and paid social alike.
    let organic = number_for(&stack, "session-organic", "https://demo.example/", "https://t.co/abc").await;
    assert_eq!((organic["kind"].as_str(), organic["number"].as_str()), (Some("source"), Some("+15550108001")), "{organic}");
    let paid = number_for(&stack, "session-paid-social", "https://demo.example/?utm_source=facebook&utm_medium=paid_social", "https://www.facebook.com/").await;
    assert_eq!((paid["kind"].as_str(), paid["number"].as_str()), (Some("source"), Some("+15550108001")), "{paid}");
    // `medium = "cpc"`: the paid-search pool.
    let cpc = number_for(&stack, "session-cpc", "https://demo.example/?utm_source=google&utm_medium=cpc&gclid=abc", "https://www.google.com/").await;
    assert_eq!(cpc["kind"], "session", "{cpc}");
    assert!(["+15550109001", "+15550109002"].contains(&cpc["number"].as_str().unwrap_or("")), "{cpc}");
    // Anything else: the site's own number.
    let direct = number_for(&stack, "session-direct", "https://demo.example/", "").await;
    assert_eq!((direct["kind"].as_str(), direct["number"].as_str()), (Some("site"), Some("+15550100000")), "{direct}");

    // The agency's token reads its account through the dashboard API.
    let resp = stack.dashboard_get("/v1/agencies/agc_demo/accounts", "agc_demo", TOKEN).send().await.expect("agency");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["accounts"][0]["id"], "acc_demo");
    stack.stop().await.expect("stop");
}
