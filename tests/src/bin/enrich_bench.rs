//! enrich benchmark driver (infra/bench/enrich.sh runs it: `cargo run
//! --release -p ringpath-tests --bin enrich_bench -- …`; prints figures,
//! asserts nothing).
//!
//!   enrich_bench throughput EVENTS
//!       Pre-loads EVENTS realistic collector messages into fresh topics,
//!       then starts enrich in this process against the real ClickHouse and
//!       times the drain: wall clock, and enrich's CPU seconds (this process
//!       only), i.e. events/s per core.
//!   enrich_bench latency COLLECTOR_URL RATE SECONDS
//!       Posts page-view batches to a running collector at RATE events/s and
//!       polls ClickHouse for one event in ten: time from the collector's 204
//!       to the row being visible, p50/p90/p99/max.
//!   enrich_bench attribution VISITORS CALLS
//!       Stores VISITORS visitors' history straight into ClickHouse (1 to 4
//!       sessions each over the last ~75 days, a landing page, engagement and
//!       internal pages per session: about 13 events a visitor), plus a pool
//!       number assignment for the last session of CALLS of them; pre-loads
//!       CALLS calls to those numbers into the calls topic, then starts enrich
//!       and times the drain: attributed calls/s. Checks every call's last
//!       touch, first touch and linear sessions against the planned answer.
//!       Batch size: RINGPATH_ENRICH_BATCH_ROWS (infra/bench/enrich.sh: 500).
//!   enrich_bench cleanup
//!       Deletes the topics and drops the database named by the environment.
//!
//! Environment: RINGPATH_KAFKA_BROKERS, RINGPATH_CLICKHOUSE_URL,
//! RINGPATH_CLICKHOUSE_DATABASE, RINGPATH_TOPIC_*, and the geo settings
//! (RINGPATH_GEOIP_DBIP_V4/_V6, RINGPATH_GEOIP_CITY or RINGPATH_GEOIP=off).

#![allow(clippy::manual_is_multiple_of)] // is_multiple_of is newer than the workspace's rust-version

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use ringpath_store::ClickHouseSettings;
use ringpath_enrich::store::Store;
use ringpath_enrich::{geo, Settings};
use ringpath_types::accounts::AccountsFile;
use ringpath_types::wire::{CallMessage, CallRecord, CallStatus, Consent, Event, EventMessage, Received};
use serde_json::{json, Map};

const ACCOUNT: &str = "acc_bench";

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
];

const VISITS: &[(&str, &str)] = &[
    ("https://bench.example/landing?utm_source=google&utm_medium=cpc&utm_campaign=Winter%20Sale&gclid=Cj0KCQiA", "https://www.google.com/"),
    ("https://bench.example/", "https://www.google.co.uk/"),
    ("https://bench.example/blog/boots", "https://l.facebook.com/l.php?u=x"),
    ("https://bench.example/pricing", "https://bench.example/"),
    ("https://bench.example/contact", "https://bench.example/pricing"),
    ("https://bench.example/?utm_source=newsletter&utm_medium=email&utm_campaign=nov", ""),
    ("https://bench.example/", ""),
    ("https://bench.example/offer?msclkid=abc123&utm_source=bing&utm_medium=cpc", "https://www.bing.com/"),
];

const IPS: &[&str] = &["81.2.69.142", "5.9.10.11", "8.8.8.8", "203.0.113.9", "2a01:4f8:1:2::5", "2001:4860:1:2::8", "178.197.1.20", "89.160.20.7"];

fn env_map() -> HashMap<String, String> {
    std::env::vars().collect()
}

use ringpath_types::time::now_ms;

/// The i-th page view of the synthetic traffic: a mix of consent states,
/// campaigns, organic and internal referrers, countries and devices.
fn message(i: u64, ts: i64) -> EventMessage {
    let (url, referrer) = VISITS[(i % VISITS.len() as u64) as usize];
    let granted = i % 5 < 2;
    let visitor = format!("bench-visitor-{:06}", i % 50_000);
    EventMessage {
        account: ACCOUNT.into(),
        consent: if granted { Consent::Granted } else { Consent::Pending },
        visitor_id: granted.then(|| visitor.clone()),
        session_id: granted.then(|| format!("bench-session-{:06}", i % 80_000)),
        page_id: Some(format!("bench-page-{i:08}")),
        sent_at: ts,
        screen: Some("1920x1080".into()),
        lang: Some("en-US".into()),
        tz: Some("Europe/Berlin".into()),
        event: Event {
            id: format!("bench-{i:09}"),
            kind: "pageview".into(),
            ts,
            url: url.into(),
            referrer: Some(referrer.to_owned()).filter(|r| !r.is_empty()),
            title: Some("Winter boots – Bench Example".into()),
            number: Some("+15550100000".into()),
            props: Map::new(),
        },
        received: Received { received_at: ts + 15, ip: IPS[(i % IPS.len() as u64) as usize].into(), user_agent: USER_AGENTS[(i % USER_AGENTS.len() as u64) as usize].into() },
    }
}

fn accounts() -> anyhow::Result<AccountsFile> {
    AccountsFile::parse(&format!(
        "[[account]]\nid = \"{ACCOUNT}\"\ntoken_sha256 = \"{}\"\n[account.dni]\nsite_numbers = [\"+15550100000\"]\n",
        "0".repeat(64)
    ))
    .map_err(|e| anyhow::anyhow!(e))
}

/// CPU seconds (user + system) this process has used so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12].iter().filter_map(|i| fields.get(*i).and_then(|f| f.parse::<f64>().ok())).sum();
    ticks / 100.0
}

async fn throughput(events: u64) -> anyhow::Result<()> {
    let env = env_map();
    let settings = Settings::from_env(&env)?;
    let geo: Arc<dyn geo::GeoLookup> = Arc::from(geo::from_settings(&settings.geo)?);
    let created = ringpath_enrich::topics::ensure_topics(&settings.kafka_brokers, &settings.topics, partitions(&env)?, 1, ringpath_enrich::topics::DLQ_RETENTION_BYTES).await?;
    if created.is_empty() {
        bail!("topics {:?} already exist: use a fresh RINGPATH_TOPIC_* suffix", settings.topics);
    }
    ringpath_store::migrate(&settings.clickhouse).await?;

    eprintln!("producing {events} events to {} …", settings.topics.events);
    let produced = Instant::now();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &settings.kafka_brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "500000")
        .create()?;
    let ts = now_ms() - 60_000;
    let mut pending = Vec::with_capacity(50_000);
    for i in 0..events {
        let msg = message(i, ts + (i % 60_000) as i64);
        let payload = serde_json::to_vec(&msg)?;
        loop {
            match producer.send_result(FutureRecord::to(&settings.topics.events).key(msg.key()).payload(&payload)) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err((rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => bail!("produce: {e}"),
            }
        }
        if pending.len() == 50_000 {
            for d in pending.drain(..) {
                d.await?.map_err(|(e, _)| anyhow::anyhow!("delivery: {e}"))?;
            }
        }
    }
    for d in pending.drain(..) {
        d.await?.map_err(|(e, _)| anyhow::anyhow!("delivery: {e}"))?;
    }
    let payload_bytes = serde_json::to_vec(&message(0, ts))?.len();
    eprintln!("produced in {:.1} s (≈{payload_bytes} bytes per message)", produced.elapsed().as_secs_f64());

    let cpu_start = cpu_seconds();
    let started = Instant::now();
    let running = ringpath_enrich::start(settings.clone(), accounts()?, geo)?;
    let metrics = running.metrics.clone();
    let rows = || metrics.rows.with_label_values(&["events"]).get();
    let mut first_batch: Option<(Instant, u64, f64)> = None;
    while rows() < events {
        if first_batch.is_none() && rows() > 0 {
            first_batch = Some((Instant::now(), rows(), cpu_seconds()));
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("drain stuck at {} of {events}", rows());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drained = Instant::now();
    let wall = (drained - started).as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;
    running.stop().await?;
    let stored: u64 = settings.clickhouse.client().query("SELECT count() FROM events FINAL").fetch_one().await?;
    let (first_at, first_rows, first_cpu) = first_batch.unwrap_or((started, 0, cpu_start));
    let steady_wall = (drained - first_at).as_secs_f64();
    let steady_rows = events - first_rows;
    let steady_cpu = cpu - (first_cpu - cpu_start);
    let flushes = running_flush_summary(&settings).await.unwrap_or_default();
    println!("enrich throughput: {events} events, stored {stored} (FINAL), geo {:?}", settings.geo);
    println!("  wall clock, incl. consumer-group join: {wall:.2} s → {:.0} events/s", events as f64 / wall);
    println!("  steady state (first insert → drained): {steady_rows} events in {steady_wall:.2} s → {:.0} events/s", steady_rows as f64 / steady_wall.max(1e-9));
    println!("  enrich CPU: {cpu:.2} s → {:.0} events/s per core (steady: {:.0})", events as f64 / cpu.max(1e-9), steady_rows as f64 / steady_cpu.max(1e-9));
    if !flushes.is_empty() {
        println!("  {flushes}");
    }
    Ok(())
}

/// Parts and bytes ClickHouse holds for the run (context for the figures).
async fn running_flush_summary(settings: &Settings) -> anyhow::Result<String> {
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Parts {
        parts: u64,
        bytes: u64,
    }
    let p: Parts = settings
        .clickhouse
        .client()
        .query("SELECT count() AS parts, sum(bytes) AS bytes FROM system.parts WHERE database = currentDatabase() AND table = 'events' AND active")
        .fetch_one()
        .await?;
    Ok(format!("events table: {} active parts, {:.1} MB on disk", p.parts, p.bytes as f64 / 1e6))
}

fn partitions(env: &HashMap<String, String>) -> anyhow::Result<i32> {
    Ok(env.get("RINGPATH_TOPIC_PARTITIONS").map(|v| v.parse()).transpose().context("RINGPATH_TOPIC_PARTITIONS")?.unwrap_or(4))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn latency(collector: &str, rate: u64, seconds: u64) -> anyhow::Result<()> {
    const BATCH: u64 = 10;
    const WORKERS: u64 = 16;
    const PROBE_EVERY: u64 = 10;
    let env = env_map();
    let ch = ClickHouseSettings::from_env(&env, "RINGPATH_CLICKHOUSE_USER", "RINGPATH_CLICKHOUSE_PASSWORD", "default").map_err(anyhow::Error::msg)?.client();
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    // probe event id → (its ts_ms, when the collector answered 204)
    let probes: Arc<Mutex<BTreeMap<String, (i64, Instant)>>> = Arc::default();
    let rejected = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let requests_per_worker_per_s = rate as f64 / BATCH as f64 / WORKERS as f64;
    let period = Duration::from_secs_f64(1.0 / requests_per_worker_per_s);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let run_id = now_ms();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (http, probes, rejected, sent) = (http.clone(), probes.clone(), rejected.clone(), sent.clone());
        let url = format!("{collector}/v1/collect");
        workers.push(tokio::spawn(async move {
            let mut next = Instant::now() + period.mul_f64(w as f64 / WORKERS as f64);
            let mut n = 0u64;
            while Instant::now() < deadline {
                tokio::time::sleep_until(next.into()).await;
                next += period;
                let ts = now_ms();
                let base = (w * 1_000_000 + n) * BATCH;
                n += 1;
                let events: Vec<serde_json::Value> = (0..BATCH)
                    .map(|j| {
                        let seq = base + j;
                        let kind = if seq % PROBE_EVERY == 0 { "probe" } else { "pageview" };
                        let (url, referrer) = VISITS[(seq % VISITS.len() as u64) as usize];
                        json!({"id": format!("lat-{run_id}-{seq}"), "type": kind, "ts": ts, "url": url, "referrer": referrer, "props": {}})
                    })
                    .collect();
                let body = json!({"v": 1, "account": ACCOUNT, "sent_at": ts, "consent": "granted", "visitor_id": format!("lat-visitor-{w:04}-{:04}", n % 1000),
                                  "session_id": format!("lat-session-{w:04}-{:04}", n % 1000), "events": events});
                match http.post(&url).header("User-Agent", USER_AGENTS[0]).json(&body).send().await {
                    Ok(r) if r.status().as_u16() == 204 => {
                        let answered = Instant::now();
                        sent.fetch_add(BATCH, std::sync::atomic::Ordering::Relaxed);
                        let mut p = probes.lock().unwrap_or_else(|e| e.into_inner());
                        for j in (0..BATCH).filter(|j| (base + j) % PROBE_EVERY == 0) {
                            p.insert(format!("lat-{run_id}-{}", base + j), (ts, answered));
                        }
                    }
                    _ => {
                        rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    // Poll for probes: every 20 ms, the probes stored since the oldest one still outstanding.
    let mut latencies = Vec::new();
    let mut seen = HashSet::new();
    let poll_started = Instant::now();
    loop {
        let outstanding_min_ts = {
            let p = probes.lock().unwrap_or_else(|e| e.into_inner());
            p.iter().filter(|(id, _)| !seen.contains(*id)).map(|(_, (ts, _))| *ts).min()
        };
        let sending = Instant::now() < deadline;
        match outstanding_min_ts {
            None if !sending => break,
            None => {}
            Some(min_ts) => {
                let ids: Vec<String> = ch
                    .query("SELECT event_id FROM events WHERE account_id = ? AND event_type = 'probe' AND ts_ms >= ?")
                    .bind(ACCOUNT)
                    .bind(min_ts.max(0) as u64)
                    .fetch_all()
                    .await?;
                let visible = Instant::now();
                let p = probes.lock().unwrap_or_else(|e| e.into_inner());
                for id in ids {
                    if let Some((_, answered)) = p.get(&id) {
                        if seen.insert(id) {
                            latencies.push(visible.saturating_duration_since(*answered).as_secs_f64() * 1000.0);
                        }
                    }
                }
            }
        }
        if !sending && poll_started.elapsed() > Duration::from_secs(seconds + 60) {
            eprintln!("giving up on {} probes never seen", probes.lock().map(|p| p.len()).unwrap_or(0) - seen.len());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for w in workers {
        w.await?;
    }
    latencies.sort_by(f64::total_cmp);
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "end-to-end latency (collector 204 → row visible in ClickHouse), {} probes of {sent} events at {:.0} events/s offered {rate}/s for {seconds} s, {} requests not answered 204:",
        latencies.len(),
        sent as f64 / seconds as f64,
        rejected.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "  p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms (poll interval 20 ms)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}

/// Pool numbers of the attribution bench's account.
const POOL_SIZE: usize = 1000;

fn pool_number(i: usize) -> String {
    format!("+1555030{:04}", i % POOL_SIZE)
}

fn attribution_accounts() -> anyhow::Result<AccountsFile> {
    let numbers: Vec<String> = (0..POOL_SIZE).map(|i| format!("\"{}\"", pool_number(i))).collect();
    AccountsFile::parse(&format!(
        "[[account]]\nid = \"{ACCOUNT}\"\ntoken_sha256 = \"{}\"\n[account.dni]\nsite_numbers = [\"+15550100000\"]\n\
         [[account.dni.pool]]\nid = \"bench_pool\"\nnumbers = [{}]\n",
        "0".repeat(64),
        numbers.join(", ")
    ))
    .map_err(|e| anyhow::anyhow!(e))
}

/// Landing (url, referrer) pairs: each gives its session a channel.
const LANDINGS: &[(&str, &str)] = &[
    ("https://bench.example/landing?utm_source=google&utm_medium=cpc&utm_campaign=Winter%20Sale&gclid=Cj0KCQiA", "https://www.google.com/"),
    ("https://bench.example/", "https://www.google.co.uk/"),
    ("https://bench.example/blog/boots", "https://l.facebook.com/l.php?u=x"),
    ("https://bench.example/?utm_source=newsletter&utm_medium=email&utm_campaign=nov", ""),
    ("https://bench.example/offer?msclkid=abc123&utm_source=bing&utm_medium=cpc", "https://www.bing.com/"),
    ("https://bench.example/reviews", "https://www.yelp.com/biz/bench"),
];
const INNER_PAGES: &[&str] = &["/pricing", "/contact", "/about", "/services", "/faq"];

/// One visitor of the attribution bench: session ids and starts, oldest first.
struct PlannedVisitor {
    id: String,
    sessions: Vec<(String, i64)>,
}

/// Visitor `i` of `n`: 1-4 sessions, the last one in the 3 days before
/// `now` (spread evenly over visitors, so holds of a reused number never
/// overlap), the earlier ones 5-24 days apart (some beyond the 30-day lookback).
fn plan_visitor(i: usize, n: usize, now: i64) -> PlannedVisitor {
    let span = 3 * 86_400_000i64;
    let last = now - span - 3_600_000 + (i as i64) * (span / n.max(1) as i64);
    let count = 1 + i % 4;
    let mut starts = vec![last];
    for k in 1..count {
        let gap_days = 5 + ((i * 7 + k * 13) % 20) as i64;
        starts.push(starts[k - 1] - gap_days * 86_400_000 - ((i * 31) % 3_600_000) as i64);
    }
    starts.reverse();
    let id = format!("bench-v-{i:07}");
    PlannedVisitor { sessions: starts.iter().enumerate().map(|(k, t)| (format!("{id}-s{k}"), *t)).collect(), id }
}

/// The events of one planned session: landing page view + engagement (both
/// carry the landing's channel), then 1-4 internal page views.
fn session_events(v: &PlannedVisitor, k: usize, account: &ringpath_types::accounts::Account, geo: &dyn geo::GeoLookup, serial: usize) -> Vec<ringpath_store::rows::EventRow> {
    let (session, start) = &v.sessions[k];
    let (landing, referrer) = LANDINGS[(serial + k) % LANDINGS.len()];
    let mut pages: Vec<(String, String, &str, i64)> = vec![(landing.to_owned(), referrer.to_owned(), "pageview", *start), (landing.to_owned(), referrer.to_owned(), "engagement", start + 4_000)];
    let mut previous = landing.to_owned();
    for p in 0..1 + (serial + k) % 4 {
        let url = format!("https://bench.example{}", INNER_PAGES[(serial + p) % INNER_PAGES.len()]);
        pages.push((url.clone(), previous.clone(), "pageview", start + 30_000 * (p as i64 + 1)));
        previous = url;
    }
    pages
        .into_iter()
        .enumerate()
        .map(|(j, (url, referrer, kind, ts))| {
            let msg = EventMessage {
                account: ACCOUNT.into(),
                consent: Consent::Granted,
                visitor_id: Some(v.id.clone()),
                session_id: Some(session.clone()),
                page_id: Some(format!("{session}-p{j}")),
                sent_at: ts,
                screen: Some("1920x1080".into()),
                lang: Some("en-US".into()),
                tz: Some("America/Chicago".into()),
                event: Event {
                    id: format!("{session}-e{j}"),
                    kind: kind.into(),
                    ts,
                    url,
                    referrer: Some(referrer).filter(|r| !r.is_empty()),
                    title: Some("Bench".into()),
                    number: None,
                    props: Map::new(),
                },
                received: Received { received_at: ts + 20, ip: IPS[serial % IPS.len()].into(), user_agent: USER_AGENTS[serial % 4].into() },
            };
            ringpath_enrich::transform::event_row(&msg, account, geo)
        })
        .collect()
}

async fn attribution(visitors: usize, calls: usize) -> anyhow::Result<()> {
    let env = env_map();
    let settings = Settings::from_env(&env)?;
    let geo: Arc<dyn geo::GeoLookup> = Arc::from(geo::from_settings(&settings.geo)?);
    let created = ringpath_enrich::topics::ensure_topics(&settings.kafka_brokers, &settings.topics, partitions(&env)?, 1, ringpath_enrich::topics::DLQ_RETENTION_BYTES).await?;
    if created.is_empty() {
        bail!("topics {:?} already exist: use a fresh RINGPATH_TOPIC_* suffix", settings.topics);
    }
    ringpath_store::migrate(&settings.clickhouse).await?;
    let accounts = attribution_accounts()?;
    let account = accounts.account(ACCOUNT).context("bench account")?.clone();
    let store = Store::new(&settings.clickhouse);
    let now = now_ms();
    let stride = (visitors / calls.max(1)).max(1);

    // History: every visitor's events, in visitor order but sessions newest
    // first (insertion order is not time order); assignments for the callers.
    let loading = Instant::now();
    let mut events = Vec::new();
    let mut assignments = Vec::new();
    let mut expected: HashMap<String, (String, String, Vec<String>)> = HashMap::new();
    let mut call_messages = Vec::new();
    let mut stored_events = 0usize;
    for i in 0..visitors {
        let v = plan_visitor(i, visitors, now);
        for k in (0..v.sessions.len()).rev() {
            events.extend(session_events(&v, k, &account, geo.as_ref(), i));
        }
        let j = i / stride;
        if i % stride == 0 && j < calls {
            let (session, start) = v.sessions.last().cloned().context("a visitor has a session")?;
            let (landing, referrer) = LANDINGS[(i + v.sessions.len() - 1) % LANDINGS.len()];
            let number = pool_number(j);
            let hold = ringpath_types::wire::AssignmentMessage {
                account: ACCOUNT.into(),
                number: number.clone(),
                kind: ringpath_types::wire::NumberKind::Session,
                pool_id: Some("bench_pool".into()),
                session_id: session.clone(),
                visitor_id: Some(v.id.clone()),
                assigned_at: start + 300,
                expires_at: start + 300 + 30 * 60_000,
                shared: false,
                url: landing.into(),
                referrer: Some(referrer.to_owned()).filter(|r| !r.is_empty()),
                received: Received { received_at: start + 320, ip: IPS[i % IPS.len()].into(), user_agent: USER_AGENTS[0].into() },
            };
            assignments.push(ringpath_enrich::transform::assignment_row(&hold, &account, geo.as_ref()));
            let at = start + 5 * 60_000;
            let call_id = format!("bench-call-{j:07}");
            let linear: Vec<String> = v.sessions.iter().filter(|(_, t)| *t >= at - 30 * 86_400_000).map(|(s, _)| s.clone()).collect();
            expected.insert(call_id.clone(), (session, v.sessions[0].0.clone(), linear));
            call_messages.push(CallMessage {
                account: ACCOUNT.into(),
                call: CallRecord {
                    call_id,
                    to: number,
                    from: "+15125550000".into(),
                    started_at: ringpath_types::time::format_rfc3339_ms(at),
                    duration_s: 120,
                    status: CallStatus::Completed,
                    caller_name: None,
                    caller_city: None,
                },
                received: Received { received_at: at + 122_000, ip: "54.172.60.1".into(), user_agent: "TwilioProxy/1.1".into() },
            });
        }
        if events.len() >= 100_000 {
            stored_events += events.len();
            store.insert_events(&events).await?;
            events.clear();
        }
    }
    stored_events += events.len();
    store.insert_events(&events).await?;
    store.insert_assignments(&assignments).await?;
    eprintln!("stored {stored_events} events of {visitors} visitors and {} assignments in {:.1} s", assignments.len(), loading.elapsed().as_secs_f64());

    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &settings.kafka_brokers).set("acks", "all").set("enable.idempotence", "true").set("linger.ms", "20").create()?;
    let mut pending = Vec::with_capacity(call_messages.len());
    for msg in &call_messages {
        let payload = serde_json::to_vec(msg)?;
        let delivery = producer.send_result(FutureRecord::to(&settings.topics.calls).key(msg.call.to.as_str()).payload(&payload)).map_err(|(e, _)| anyhow::anyhow!("produce: {e}"))?;
        pending.push(delivery);
    }
    for d in pending {
        d.await?.map_err(|(e, _)| anyhow::anyhow!("delivery: {e}"))?;
    }
    let total = call_messages.len() as u64;

    let cpu_start = cpu_seconds();
    let started = Instant::now();
    let running = ringpath_enrich::start(settings.clone(), accounts, geo)?;
    let metrics = running.metrics.clone();
    let rows = || metrics.rows.with_label_values(&["calls"]).get();
    let mut first_batch: Option<(Instant, u64)> = None;
    while rows() < total {
        if first_batch.is_none() && rows() > 0 {
            first_batch = Some((Instant::now(), rows()));
        }
        if started.elapsed() > Duration::from_secs(3600) {
            bail!("drain stuck at {} of {total} calls", rows());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drained = Instant::now();
    let wall = (drained - started).as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;
    running.stop().await?;

    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Answer {
        call_id: String,
        session_id: String,
        first_touch_session: String,
        linear_session: Vec<String>,
    }
    let answers: Vec<Answer> = settings.clickhouse.client().query("SELECT call_id, session_id, first_touch_session, linear_session FROM calls FINAL").fetch_all().await?;
    let right = answers
        .iter()
        .filter(|a| expected.get(&a.call_id).is_some_and(|(last, first, linear)| &a.session_id == last && &a.first_touch_session == first && &a.linear_session == linear))
        .count();
    let (first_at, first_rows) = first_batch.unwrap_or((started, 0));
    let steady_wall = (drained - first_at).as_secs_f64();
    println!("enrich attribution: {total} calls over {visitors} visitors' history ({stored_events} events), batch {} rows, geo {:?}", settings.batch_rows, settings.geo);
    println!("  wall clock, incl. consumer-group join: {wall:.2} s → {:.0} calls/s", total as f64 / wall);
    println!("  steady state (first insert → drained): {} calls in {steady_wall:.2} s → {:.0} calls/s", total - first_rows, (total - first_rows) as f64 / steady_wall.max(1e-9));
    println!("  enrich CPU: {cpu:.2} s → {:.0} calls/s per core", total as f64 / cpu.max(1e-9));
    println!("  answers: {right} of {total} calls with the planned last touch, first touch and linear sessions");
    if right as u64 != total {
        bail!("{} calls attributed differently than planned", total - right as u64);
    }
    Ok(())
}

async fn cleanup() -> anyhow::Result<()> {
    let env = env_map();
    let topics = ringpath_types::wire::Topics::from_env(&env);
    if topics.events == ringpath_types::wire::TOPIC_EVENTS {
        bail!("refusing to delete the default topics: set RINGPATH_TOPIC_* to the bench's");
    }
    let brokers = env.get("RINGPATH_KAFKA_BROKERS").cloned().unwrap_or_else(|| ringpath_service::DEFAULT_KAFKA_BROKERS.into());
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", &brokers).create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let names = [topics.events.as_str(), topics.calls.as_str(), topics.assignments.as_str(), topics.dlq.as_str()];
    admin.delete_topics(&names, &opts).await?;
    let ch = ClickHouseSettings::from_env(&env, "RINGPATH_CLICKHOUSE_USER", "RINGPATH_CLICKHOUSE_PASSWORD", "default").map_err(anyhow::Error::msg)?;
    if ch.database == "ringpath" {
        bail!("refusing to drop the default database: set RINGPATH_CLICKHOUSE_DATABASE to the bench's");
    }
    ClickHouseSettings { database: "default".into(), ..ch.clone() }.client().query(&format!("DROP DATABASE IF EXISTS {}", ch.database)).execute().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    match arg(0) {
        Some("throughput") => throughput(arg(1).unwrap_or("200000").parse()?).await,
        Some("latency") => latency(arg(1).context("COLLECTOR_URL")?, arg(2).unwrap_or("5000").parse()?, arg(3).unwrap_or("30").parse()?).await,
        Some("attribution") => attribution(arg(1).unwrap_or("50000").parse()?, arg(2).unwrap_or("5000").parse()?).await,
        Some("cleanup") => cleanup().await,
        _ => bail!("usage: enrich_bench throughput EVENTS | latency COLLECTOR_URL RATE SECONDS | attribution VISITORS CALLS | cleanup"),
    }
}
