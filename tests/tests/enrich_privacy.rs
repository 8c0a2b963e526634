//! The IP rule (README "ClickHouse tables"), end to end: visitors from the EU, UK, Switzerland, the
//! US and over IPv6, with and without consent, and an `ip_policy = "always"`
//! account, go through the real collector, Kafka and enrich into ClickHouse
//! with real mmdb files of both layouts. Afterwards a scan of every column of
//! every table finds no whole IP that had to be truncated, a consenting US
//! visitor's IP is kept whole, and country/city come from the full address.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ringpath_enrich::geo::{self, GeoLookup};
use ringpath_enrich::settings::GeoSource;
use ringpath_tests::enrich::*;
use ringpath_tests::fixtures::*;
use ringpath_tests::{Stack, StackOptions};
use ringpath_types::wire::{Consent, DlqMessage};
use serde_json::json;

struct Visitor {
    name: &'static str,
    account: &'static str,
    consent: &'static str,
    ip: &'static str,
    stored_ip: &'static str,
    country: &'static str,
    city: &'static str,
    /// Asks for a pool number (cpc landing) and then calls it.
    calls: bool,
}

const VISITORS: &[Visitor] = &[
    Visitor { name: "de", account: DEMO_ACCOUNT, consent: "granted", ip: "5.9.10.11", stored_ip: "5.9.10.0", country: "DE", city: "Falkenstein", calls: true },
    Visitor { name: "uk", account: DEMO_ACCOUNT, consent: "granted", ip: "81.2.69.142", stored_ip: "81.2.69.0", country: "GB", city: "London", calls: true },
    Visitor { name: "ch", account: DEMO_ACCOUNT, consent: "granted", ip: "178.197.1.20", stored_ip: "178.197.1.0", country: "CH", city: "Zurich", calls: false },
    Visitor { name: "se", account: DEMO_ACCOUNT, consent: "granted", ip: "89.160.20.7", stored_ip: "89.160.20.0", country: "SE", city: "Linköping", calls: false },
    Visitor { name: "us", account: DEMO_ACCOUNT, consent: "granted", ip: "8.8.8.8", stored_ip: "8.8.8.8", country: "US", city: "Mountain View", calls: true },
    Visitor { name: "us-denied", account: DEMO_ACCOUNT, consent: "denied", ip: "203.0.113.9", stored_ip: "203.0.113.0", country: "US", city: "Austin", calls: false },
    Visitor { name: "us-pending", account: DEMO_ACCOUNT, consent: "pending", ip: "203.0.113.77", stored_ip: "203.0.113.0", country: "US", city: "Austin", calls: false },
    Visitor { name: "de-v6", account: DEMO_ACCOUNT, consent: "granted", ip: "2a01:4f8:1:2::5", stored_ip: "2a01:4f8:1::", country: "DE", city: "Nuremberg", calls: false },
    Visitor { name: "us-v6", account: DEMO_ACCOUNT, consent: "granted", ip: "2001:4860:1:2::8", stored_ip: "2001:4860:1:2::8", country: "US", city: "Mountain View", calls: false },
    Visitor { name: "always", account: ALWAYS_ACCOUNT, consent: "granted", ip: "8.8.8.9", stored_ip: "8.8.8.0", country: "US", city: "Mountain View", calls: false },
    Visitor { name: "fr-32", account: DEMO_ACCOUNT, consent: "granted", ip: "198.51.100.77", stored_ip: "198.51.100.0", country: "FR", city: "Paris", calls: true },
    Visitor { name: "nl-64", account: DEMO_ACCOUNT, consent: "granted", ip: "2a02:8070:aaaa:bbbb::9", stored_ip: "2a02:8070:aaaa::", country: "NL", city: "Amsterdam", calls: false },
    // Addresses the database does not know: no country, so truncated (fail closed), with calls too.
    Visitor { name: "unknown-v4", account: DEMO_ACCOUNT, consent: "granted", ip: "192.0.2.55", stored_ip: "192.0.2.0", country: "", city: "", calls: true },
    Visitor { name: "unknown-v6", account: DEMO_ACCOUNT, consent: "granted", ip: "2001:db8:7:8::9", stored_ip: "2001:db8:7::", country: "", city: "", calls: false },
];

fn write_geo_files(dir: &Path, layout: &str) -> GeoSource {
    std::fs::create_dir_all(dir).unwrap();
    match layout {
        "maxmind" => {
            let path = dir.join("GeoLite2-City.mmdb");
            std::fs::write(&path, maxmind_city_mmdb()).unwrap();
            GeoSource::MaxMind(path)
        }
        _ => {
            let (v4, v6) = dbip_city_mmdb();
            let (p4, p6) = (dir.join("dbip-city-ipv4.mmdb"), dir.join("dbip-city-ipv6.mmdb"));
            std::fs::write(&p4, v4).unwrap();
            std::fs::write(&p6, v6).unwrap();
            GeoSource::DbIp { v4: p4, v6: p6 }
        }
    }
}

#[derive(clickhouse::Row, serde::Deserialize, Debug)]
struct StoredEvent {
    ip: String,
    ip_truncated: u8,
    country: String,
    city: String,
}

async fn no_whole_ip_of_a_protected_visitor_is_stored_anywhere(layout: &str) {
    let dir = std::env::temp_dir().join(format!("rp-geo-{layout}-{}", ringpath_tests::unique_suffix()));
    let source = write_geo_files(&dir, layout);
    // The files are opened exactly as `ringpath-enrich run` opens them.
    let geo: Arc<dyn GeoLookup> = Arc::from(geo::from_settings(&source).expect("fixture geo files open"));
    let stack = Stack::start(StackOptions {
        geo,
        ingest_env: HashMap::from([("RINGPATH_TRUSTED_PROXIES".to_string(), "127.0.0.1".to_string())]),
        ..StackOptions::default()
    })
    .await
    .unwrap();

    let mut calls = 0;
    for (i, v) in VISITORS.iter().enumerate() {
        let granted = v.consent == "granted";
        let (visitor_id, session_id) = (format!("visitor-{}-{i:02}", v.name), format!("session-{}-{i:02}", v.name));
        let landing = "https://demo.example/landing?utm_source=google&utm_medium=cpc&gclid=privacy";
        let mut batch = json!({"v": 1, "account": v.account, "sent_at": now_ms(), "consent": v.consent, "page_id": format!("page-{}-0000", v.name),
            "events": [{"id": format!("ev-{}", v.name), "type": "pageview", "ts": now_ms() - 10, "url": landing, "referrer": "https://www.google.com/", "props": {}}]});
        if granted {
            batch["visitor_id"] = json!(visitor_id);
            batch["session_id"] = json!(session_id);
        }
        let resp = stack
            .http
            .post(format!("{}/v1/collect", stack.ingest_url()))
            .header("X-Forwarded-For", v.ip)
            .header("User-Agent", CHROME_UA)
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204, "{}: {}", v.name, resp.text().await.unwrap_or_default());
        if !v.calls {
            continue;
        }
        let resp = stack
            .http
            .post(format!("{}/v1/numbers", stack.ingest_url()))
            .header("X-Forwarded-For", v.ip)
            .header("User-Agent", CHROME_UA)
            .json(&json!({"account": v.account, "session_id": session_id, "visitor_id": visitor_id, "url": landing, "referrer": "https://www.google.com/"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", v.name);
        let number: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(number["kind"], "session", "{}: {number}", v.name);
        let resp = stack
            .http
            .post(format!("{}/v1/calls", stack.ingest_url()))
            .basic_auth(DEMO_ACCOUNT, Some(DEMO_CALLS_TOKEN))
            .json(&json!({"call_id": format!("CA-{}", v.name), "to": number["number"], "from": "+15557654321",
                          "started_at": ringpath_types::time::format_rfc3339_ms(now_ms()), "duration_s": 60, "status": "completed"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{}", v.name);
        calls += 1;
    }
    // A message enrich cannot place (unknown account) carries an EU visitor's IP into the dead-letter topic.
    let writer = TopicWriter::new(&stack.brokers).unwrap();
    let stray = event_message(
        "ev-stray",
        &Visit { account: "acc_nobody", consent: Consent::Granted, visitor: None, session: None, ip: "5.9.77.66", url: "https://x.example/", referrer: "", ts: now_ms() },
    );
    writer.send(&stack.topics.events, "stray", &stray).await.unwrap();

    let limit = Duration::from_secs(60);
    stack.wait_count("SELECT count() FROM events", VISITORS.len() as u64, limit).await.unwrap();
    stack.wait_count("SELECT count() FROM calls FINAL WHERE attribution = 'session'", calls, limit).await.unwrap();

    for v in VISITORS {
        let row: StoredEvent =
            stack.ch.query("SELECT ip, ip_truncated, country, city FROM events WHERE event_id = ?").bind(format!("ev-{}", v.name)).fetch_one().await.unwrap();
        assert_eq!(row.ip, v.stored_ip, "{layout} {}: stored ip", v.name);
        assert_eq!(row.ip_truncated, u8::from(v.ip != v.stored_ip), "{layout} {}", v.name);
        assert_eq!((row.country.as_str(), row.city.as_str()), (v.country, v.city), "{layout} {}: geo of the full address", v.name);
        if v.calls {
            let (assignment_ip, call_ip): (String, String) = (
                stack.ch.query("SELECT any(ip) FROM assignments WHERE session_id LIKE ?").bind(format!("session-{}-%", v.name)).fetch_one().await.unwrap(),
                stack.ch.query("SELECT ip FROM calls FINAL WHERE call_id = ?").bind(format!("CA-{}", v.name)).fetch_one().await.unwrap(),
            );
            assert_eq!((assignment_ip.as_str(), call_ip.as_str()), (v.stored_ip, v.stored_ip), "{layout} {}: assignment and call ip", v.name);
        }
    }

    // Full scan: no column of any table holds a protected visitor's whole address.
    let mut protected: Vec<&str> = VISITORS.iter().filter(|v| v.ip != v.stored_ip).map(|v| v.ip).collect();
    protected.push("5.9.77.66");
    let hits = find_everywhere(&stack.ch, &stack.database, &protected).await.unwrap();
    assert!(hits.is_empty(), "{layout}: whole IPs stored: {hits:?}");
    // … while the consenting US visitors' addresses are there, whole, where they belong.
    let kept = find_everywhere(&stack.ch, &stack.database, &["8.8.8.8", "2001:4860:1:2::8"]).await.unwrap();
    let places: Vec<(&str, &str, &str)> = kept.iter().map(|h| (h.table.as_str(), h.column.as_str(), h.needle.as_str())).collect();
    for want in [("events", "ip", "8.8.8.8"), ("assignments", "ip", "8.8.8.8"), ("calls", "ip", "8.8.8.8"), ("events", "ip", "2001:4860:1:2::8")] {
        assert!(places.contains(&want), "{layout}: {want:?} missing from {places:?}");
    }

    // The dead-letter topic written by enrich keeps the reason but no whole IP.
    let dead = loop {
        let all: Vec<DlqMessage> = read_topic(&stack.brokers, &stack.topics.dlq).unwrap().iter().filter_map(|m| serde_json::from_slice(m).ok()).collect();
        let from_enrich: Vec<DlqMessage> = all.into_iter().filter(|d| d.stage.starts_with("enrich:")).collect();
        if !from_enrich.is_empty() {
            break from_enrich;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].reason.contains("unknown account acc_nobody"), "{}", dead[0].reason);
    assert!(dead[0].payload.contains("\"ip\":\"5.9.77.0\""), "{}", dead[0].payload);
    for whole in &protected {
        assert!(!dead[0].payload.contains(whole), "{whole} in {}", dead[0].payload);
    }
    stack.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_maxmind_city_database_no_protected_visitor_keeps_a_whole_ip() {
    no_whole_ip_of_a_protected_visitor_is_stored_anywhere("maxmind").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_dbip_city_lite_files_no_protected_visitor_keeps_a_whole_ip() {
    no_whole_ip_of_a_protected_visitor_is_stored_anywhere("dbip").await;
}
