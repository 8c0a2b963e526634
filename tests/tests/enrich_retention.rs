//! Retention (README "Configuration" `retention_days`) enforced by enrich's periodic job on
//! the real ClickHouse: rows of an account older than its retention disappear
//! from every table (attribution's per-session summary too), younger rows and
//! other accounts' rows stay; rows of an account no longer configured are
//! kept for the default retention and then go with their monthly partition.
//! Mutations are asynchronous on 18.16, so the test polls the counts.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::HashMap;
use std::time::Duration;

use ringpath_store::rows::EventRow;
use ringpath_store::retention::{apply_retention, RetentionPass};
use ringpath_tests::enrich::*;
use ringpath_tests::fixtures::sha256_hex;
use ringpath_tests::{clickhouse_settings_at, Stack, StackOptions};
use ringpath_types::accounts::AccountsFile;
use ringpath_types::wire::Consent;

const DAY: i64 = 24 * 3600 * 1000;

fn accounts() -> AccountsFile {
    let toml = format!(
        r#"
[[account]]
id = "acc_short"
token_sha256 = "{h}"
retention_days = 30
[account.dni]
site_numbers = ["+15550100001"]

[[account]]
id = "acc_long"
token_sha256 = "{h}"
retention_days = 500
[account.dni]
site_numbers = ["+15550100002"]
"#,
        h = sha256_hex("retention-token")
    );
    AccountsFile::parse(&toml).unwrap()
}

/// (rows older than `days`, rows younger) of one account in one table, read in one query.
async fn split(stack: &Stack, table: &str, account: &str, days: i64) -> (u64, u64) {
    let column = match table {
        "events" | "visitor_events" => "ts",
        "calls" | "sessions" => "started_at",
        _ => "assigned_at",
    };
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Split {
        old: u64,
        young: u64,
    }
    let s: Split = stack
        .ch
        .query(&format!("SELECT countIf({column} < toDateTime(?)) AS old, countIf({column} >= toDateTime(?)) AS young FROM {table} WHERE account_id = ?"))
        .bind(((now_ms() - days * DAY) / 1000) as u32)
        .bind(((now_ms() - days * DAY) / 1000) as u32)
        .bind(account)
        .fetch_one()
        .await
        .unwrap();
    (s.old, s.young)
}

/// (table, account, rows older than 45 days, rows younger) for every table and account.
async fn census(stack: &Stack) -> Vec<(String, String, u64, u64)> {
    let mut out = Vec::new();
    for table in ["events", "visitor_events", "calls", "assignments", "sessions"] {
        for account in ["acc_short", "acc_long", "acc_gone"] {
            let (old, young) = split(stack, table, account, 45).await;
            out.push((table.to_owned(), account.to_owned(), old, young));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_past_an_accounts_retention_are_deleted_and_nothing_else() {
    let mut stack = Stack::start(StackOptions { accounts: accounts(), with_enrich: false, ..StackOptions::default() }).await.unwrap();
    // The first enrich runs its retention pass at start only, before the data exists.
    stack.start_enrich(HashMap::from([("RINGPATH_RETENTION_INTERVAL_S".to_string(), "86400".to_string())])).unwrap();
    let writer = TopicWriter::new(&stack.brokers).unwrap();
    let now = now_ms();
    let mut sent = 0u64;
    for (account, age_days) in [("acc_short", 60), ("acc_short", 10), ("acc_long", 60), ("acc_long", 800)] {
        for i in 0..2 {
            let id = format!("ev-{account}-{age_days}-{i}");
            let visitor = format!("visitor-{account}-{i}");
            let visit = Visit { account, consent: Consent::Granted, visitor: Some(&visitor), session: Some(&visitor), ip: "8.8.8.8", url: "https://r.example/", referrer: "", ts: now - age_days * DAY };
            writer.send(&stack.topics.events, &visitor, &event_message(&id, &visit)).await.unwrap();
            sent += 1;
        }
    }
    for (account, site, age_days) in [("acc_short", "+15550100001", 60), ("acc_short", "+15550100001", 10), ("acc_long", "+15550100002", 60)] {
        let at = now - age_days * DAY;
        writer.send(&stack.topics.calls, site, &call_message(account, &format!("CA-{account}-{age_days}"), site, at, at + 1000)).await.unwrap();
        let hold = assignment_message(account, site, "pool", &format!("session-{account}-{age_days}"), None, at, at + 1_800_000, "https://r.example/", "", "8.8.8.8");
        writer.send(&stack.topics.assignments, site, &hold).await.unwrap();
    }
    stack.wait_count("SELECT count() FROM events", sent, Duration::from_secs(30)).await.unwrap();
    stack.wait_count("SELECT count() FROM calls", 3, Duration::from_secs(30)).await.unwrap();
    stack.wait_count("SELECT count() FROM assignments", 3, Duration::from_secs(30)).await.unwrap();
    // An account that has left the accounts file (enrich would dead-letter its new messages).
    let client = clickhouse_settings_at(&stack.clickhouse_url, &stack.database).client();
    let gone = |age_days: i64, i: u32| {
        let ts = now - age_days * DAY;
        EventRow { account_id: "acc_gone".into(), event_id: format!("ev-gone-{age_days}-{i}"), event_type: "pageview".into(), ts: (ts / 1000) as u32, ts_ms: ts as u64, ..EventRow::default() }
    };
    ringpath_enrich::store::Store::new(&clickhouse_settings_at(&stack.clickhouse_url, &stack.database)).insert_events(&[gone(800, 0), gone(800, 1), gone(100, 0)]).await.unwrap();

    let before = census(&stack).await;
    let row = |t: &str, a: &str, old: u64, young: u64| (t.to_owned(), a.to_owned(), old, young);
    assert_eq!(
        before,
        [
            row("events", "acc_short", 2, 2),
            row("events", "acc_long", 4, 0),
            row("events", "acc_gone", 3, 0),
            // The events sorted by visitor: each of these names one.
            row("visitor_events", "acc_short", 2, 2),
            row("visitor_events", "acc_long", 4, 0),
            row("visitor_events", "acc_gone", 0, 0),
            row("calls", "acc_short", 1, 1),
            row("calls", "acc_long", 1, 0),
            row("calls", "acc_gone", 0, 0),
            row("assignments", "acc_short", 1, 1),
            row("assignments", "acc_long", 1, 0),
            row("assignments", "acc_gone", 0, 0),
            // Attribution's per-session summary (visitor and session ids): one
            // row per landing until merged, and 50 days apart is never one month.
            row("sessions", "acc_short", 2, 2),
            row("sessions", "acc_long", 4, 0),
            row("sessions", "acc_gone", 0, 0),
        ]
    );

    // A new enrich with a short period runs the job now, and again every second.
    stack.enrich.take().unwrap().stop().await.unwrap();
    stack.start_enrich(HashMap::from([("RINGPATH_RETENTION_INTERVAL_S".to_string(), "1".to_string())])).unwrap();
    let want = [
        row("events", "acc_short", 0, 2),
        row("events", "acc_long", 2, 0),
        row("events", "acc_gone", 1, 0),
        row("visitor_events", "acc_short", 0, 2),
        row("visitor_events", "acc_long", 2, 0),
        row("visitor_events", "acc_gone", 0, 0),
        row("calls", "acc_short", 0, 1),
        row("calls", "acc_long", 1, 0),
        row("calls", "acc_gone", 0, 0),
        row("assignments", "acc_short", 0, 1),
        row("assignments", "acc_long", 1, 0),
        row("assignments", "acc_gone", 0, 0),
        row("sessions", "acc_short", 0, 2),
        row("sessions", "acc_long", 2, 0),
        row("sessions", "acc_gone", 0, 0),
    ];
    let started = std::time::Instant::now();
    loop {
        let now_census = census(&stack).await;
        if now_census == want {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "retention did not converge: {now_census:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Which rows survived, exactly.
    let kept: Vec<String> = stack.ch.query("SELECT event_id FROM events ORDER BY event_id").fetch_all().await.unwrap();
    assert_eq!(kept, ["ev-acc_long-60-0", "ev-acc_long-60-1", "ev-acc_short-10-0", "ev-acc_short-10-1", "ev-gone-100-0"]);
    let metrics = stack.enrich.as_ref().unwrap().metrics.clone();
    assert!(metrics.retention_actions.with_label_values(&["drop_partition"]).get() >= 1, "the 800-day-old month went as a whole partition");
    assert!(metrics.retention_actions.with_label_values(&["delete"]).get() >= 1);

    // Once done, a pass finds nothing to do: no new mutation for data that is already gone.
    let policy = vec![("acc_short".to_string(), 30), ("acc_long".to_string(), 500)];
    let mut waited = 0;
    let pass = loop {
        let pending: u64 = stack.ch.query("SELECT count() FROM system.mutations WHERE database = currentDatabase() AND is_done = 0").fetch_one().await.unwrap();
        if pending == 0 {
            break apply_retention(&client, &policy, now_ms() / 1000).await.unwrap();
        }
        waited += 1;
        assert!(waited < 200, "mutations never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(pass, RetentionPass::default());
    stack.stop().await.unwrap();
}
