//! The telephony webhook end to end: Basic auth against the account's calls
//! token (hashed at rest; never its API token), 202 for a good call, and the same call_id delivered
//! twice (providers retry) stored once in ClickHouse after enrich.

use std::time::Duration;

use base64::Engine;
use ringpath_tests::fixtures::*;
use ringpath_tests::ingest_support::*;
use ringpath_tests::{Stack, StackOptions};
use serde_json::Value;

async fn post_call(stack: &Stack, user: &str, token: &str, body: &Value) -> reqwest::Response {
    stack.http.post(format!("{}/v1/calls", stack.ingest_url())).basic_auth(user, Some(token)).json(body).send().await.expect("calls answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_sent_twice_is_stored_once_and_bad_credentials_get_401() {
    let stack = Stack::start(StackOptions::default()).await.expect("stack");
    let call = call_record("CA-dup-0001", POOL_NUMBERS[0]);

    // Wrong token, unknown account, another account's token, the account's API token (it reads
    // and erases data: not the provider's to hold), an account without a calls token, no auth:
    // 401, nothing published.
    let refused = [
        (DEMO_ACCOUNT, "not-the-token"),
        ("acc_nobody", DEMO_CALLS_TOKEN),
        (DEMO_ACCOUNT, OTHER_CALLS_TOKEN),
        (OTHER_ACCOUNT, DEMO_CALLS_TOKEN),
        (DEMO_ACCOUNT, DEMO_TOKEN),
        (ALWAYS_ACCOUNT, ALWAYS_TOKEN),
    ];
    for (user, token) in refused {
        let resp = post_call(&stack, user, token, &call).await;
        assert_eq!(resp.status(), 401, "{user}:{token}");
        assert!(resp.headers().contains_key("www-authenticate"));
        let body: Value = resp.json().await.expect("json");
        assert!(body["error"].as_str().is_some_and(|e| e.contains("credentials")));
    }
    let resp = stack.http.post(format!("{}/v1/calls", stack.ingest_url())).json(&call).send().await.expect("answer");
    assert_eq!(resp.status(), 401);

    // The provider delivers the same call twice, then the call after it.
    for _ in 0..2 {
        let resp = post_call(&stack, DEMO_ACCOUNT, DEMO_CALLS_TOKEN, &call).await;
        assert_eq!(resp.status(), 202);
        let body: Value = resp.json().await.expect("json");
        assert_eq!((body["status"].as_str(), body["call_id"].as_str()), (Some("accepted"), Some("CA-dup-0001")));
    }
    let next = call_record("CA-next-0002", POOL_NUMBERS[0]);
    assert_eq!(post_call(&stack, DEMO_ACCOUNT, DEMO_CALLS_TOKEN, &next).await.status(), 202);
    // A lower-case Basic scheme from a provider is fine too.
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{DEMO_ACCOUNT}:{DEMO_CALLS_TOKEN}"));
    let resp = stack.http.post(format!("{}/v1/calls", stack.ingest_url())).header("authorization", format!("basic {auth}")).json(&call_record("CA-case-0003", POOL_NUMBERS[1])).send().await.expect("answer");
    assert_eq!(resp.status(), 202);

    // Both copies are on the calls topic, keyed by the tracking number: dedupe is downstream, by design.
    let msgs = wait_topic(&stack.brokers, &stack.topics.calls, Duration::from_secs(30), |m| m.len() >= 4).await.expect("calls topic");
    assert_eq!(msgs.len(), 4, "only the authenticated calls were published");
    let dups: Vec<_> = msgs.iter().filter(|m| m.json()["call"]["call_id"] == "CA-dup-0001").collect();
    assert_eq!(dups.len(), 2);
    assert!(dups.iter().all(|m| m.key.as_deref() == Some(POOL_NUMBERS[0]) && m.json()["account"] == DEMO_ACCOUNT));

    // Same key → same partition → in order: once the next call is stored, both copies have been processed.
    stack.wait_count("SELECT count() FROM calls WHERE call_id = 'CA-next-0002'", 1, Duration::from_secs(60)).await.expect("next call stored");
    stack.wait_count("SELECT count() FROM calls WHERE call_id = 'CA-case-0003'", 1, Duration::from_secs(60)).await.expect("third call stored");
    let stored: u64 = stack.ch.query("SELECT count() FROM calls FINAL WHERE call_id = 'CA-dup-0001'").fetch_one().await.expect("count");
    assert_eq!(stored, 1, "the same call_id is stored once");
    let accounts: Vec<String> = stack.ch.query("SELECT DISTINCT account_id FROM calls FINAL").fetch_all().await.expect("accounts");
    assert_eq!(accounts, vec![DEMO_ACCOUNT.to_string()]);
    stack.stop().await.expect("stop");
}
