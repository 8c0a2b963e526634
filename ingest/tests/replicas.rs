//! Several collectors behind a load balancer share one truth for number
//! pools: three real `ringpath-ingest` processes on one Redis and the real
//! Kafka. Number requests and beacons of 500 concurrent sessions go round
//! robin over them; one replica is killed mid-run; in another run Redis is
//! killed and comes back empty.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringpath_tests::ingest_support::*;
use ringpath_tests::services::PrivateRedis;
use ringpath_types::wire::Topics;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

const BIN: &str = env!("CARGO_BIN_EXE_ringpath-ingest");
const LANDING: &str = "https://pool.example/?utm_source=google&utm_medium=cpc";

/// One collector process; killed when dropped.
struct Replica {
    child: std::sync::Mutex<Option<Child>>,
    url: String,
    /// Its `/metrics` (a listener of its own).
    metrics: String,
    killed: std::sync::atomic::AtomicBool,
}

impl Replica {
    /// SIGKILL, as a crashed host would.
    fn kill(&self) {
        self.killed.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(mut c) = self.child.lock().expect("lock").take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn alive(&self) -> bool {
        !self.killed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Everything the replicas share: topics, the accounts file, Redis.
struct Cluster {
    dir: std::path::PathBuf,
    topics: Topics,
    redis: PrivateRedis,
    namespace: String,
    replicas: Vec<Replica>,
    http: reqwest::Client,
}

impl Cluster {
    async fn start(replicas: usize, pool: usize) -> Cluster {
        let suffix = ringpath_tests::unique_suffix();
        let topics = Topics::with_suffix(&suffix);
        ringpath_tests::create_topics(&ringpath_tests::kafka_brokers(), &topics, 2).await.expect("topics: is Kafka running?");
        let dir = std::env::temp_dir().join(format!("rp-replicas-{suffix}"));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("ringpath.toml"), accounts_with_pool_toml(pool, 30)).expect("config");
        let redis = PrivateRedis::start().expect("redis-server");
        let mut cluster = Cluster { dir, topics, redis, namespace: format!("rep{suffix}"), replicas: Vec::new(), http: reqwest::Client::new() };
        for _ in 0..replicas {
            let replica = cluster.spawn();
            cluster.replicas.push(replica);
        }
        for r in &cluster.replicas {
            wait(&format!("{} ready", r.url), Duration::from_secs(60), || async { cluster.http.get(format!("{}/readyz", r.url)).send().await.is_ok_and(|r| r.status() == 200) }).await;
        }
        cluster
    }

    fn spawn(&self) -> Replica {
        let addr: SocketAddr = ringpath_tests::loopback(ringpath_tests::free_port());
        let metrics: SocketAddr = ringpath_tests::loopback(ringpath_tests::free_port());
        let child = Command::new(BIN)
            .env("RINGPATH_INGEST_METRICS_LISTEN", metrics.to_string())
            .env("RINGPATH_CONFIG", self.dir.join("ringpath.toml"))
            .env("RINGPATH_INGEST_LISTEN", addr.to_string())
            .env("RINGPATH_KAFKA_BROKERS", ringpath_tests::kafka_brokers())
            .env("RINGPATH_TOPIC_EVENTS", &self.topics.events)
            .env("RINGPATH_TOPIC_CALLS", &self.topics.calls)
            .env("RINGPATH_TOPIC_ASSIGNMENTS", &self.topics.assignments)
            .env("RINGPATH_TOPIC_DLQ", &self.topics.dlq)
            .env("RINGPATH_ASSETS_DIR", &self.dir)
            .env("RINGPATH_POOLS_REDIS_URL", self.redis.url())
            .env("RINGPATH_POOLS_REDIS_NAMESPACE", &self.namespace)
            .env("RINGPATH_POOL_HOLDS_PER_CLIENT", "1000000")
            .env("RINGPATH_RATE_PER_CLIENT", "1000000")
            .env("RINGPATH_RATE_BURST", "1000000")
            .env("RINGPATH_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("ringpath-ingest starts");
        Replica { child: std::sync::Mutex::new(Some(child)), url: format!("http://{addr}"), metrics: format!("http://{metrics}/metrics"), killed: Default::default() }
    }

    /// The replica a load balancer sends request `n` to: round robin over the live ones.
    fn route(&self, n: usize) -> &Replica {
        let live: Vec<&Replica> = self.replicas.iter().filter(|r| r.alive()).collect();
        live[n % live.len()]
    }

    /// Asks for `session`'s number at replica `n` (round robin); a replica
    /// that dies under the request is retried on the next, as a balancer would.
    async fn ask(&self, n: usize, session: &str) -> Value {
        let body = json!({"account": POOL_ACCOUNT, "session_id": session, "visitor_id": format!("v-{session}"), "url": LANDING, "referrer": "https://www.google.com/"});
        for attempt in 0..3 {
            let replica = self.route(n + attempt);
            match self.http.post(format!("{}/v1/numbers", replica.url)).header("user-agent", BROWSER_UA).json(&body).send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let answer: Value = resp.json().await.expect("json");
                    assert_eq!(status, 200, "{session} at {}: {answer}", replica.url);
                    return answer;
                }
                Err(e) if !replica.alive() => eprintln!("{session}: {} is gone ({e}); next replica", replica.url),
                Err(e) => panic!("{session} at {}: {e}", replica.url),
            }
        }
        panic!("{session}: no replica answered")
    }

    async fn beacon(&self, n: usize, session: &str) -> u16 {
        let mut batch = good_batch(POOL_ACCOUNT, &format!("b-{session}-{}", rand::random::<u32>()), 1);
        batch["session_id"] = json!(session);
        for attempt in 0..3 {
            let replica = self.route(n + attempt);
            let sent = self.http.post(format!("{}/v1/collect", replica.url)).header("content-type", "text/plain").header("user-agent", BROWSER_UA).body(batch.to_string()).send().await;
            match sent {
                Ok(resp) => return resp.status().as_u16(),
                Err(_) if !replica.alive() => continue,
                Err(e) => panic!("beacon of {session} at {}: {e}", replica.url),
            }
        }
        panic!("{session}: no replica took the beacon")
    }

    /// The end of `session`'s hold as Redis has it.
    async fn lease(&self, session: &str) -> Option<i64> {
        let client = redis::Client::open(self.redis.url()).expect("redis");
        let mut c = client.get_multiplexed_async_connection().await.expect("redis connection");
        redis::cmd("ZSCORE").arg(format!("{}:{{{POOL_ACCOUNT}:everyone}}:lease", self.namespace)).arg(session).query_async(&mut c).await.expect("zscore")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.replicas.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn wait<F, Fut>(what: &str, limit: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn number(v: &Value) -> String {
    v["number"].as_str().expect("number").to_owned()
}

/// What one session saw: its first answer and every later one.
struct Seen {
    session: String,
    first: Value,
    later: Vec<Value>,
}

/// `session` asks at one replica, beacons at the next, asks again at the one after.
async fn session_round(cluster: &Cluster, i: usize, permits: &Semaphore) -> Seen {
    let _permit = permits.acquire().await.expect("permit");
    let session = format!("session-{i:04}-{:08x}", rand::random::<u32>());
    let first = cluster.ask(i, &session).await;
    assert_eq!(cluster.beacon(i + 1, &session).await, 204, "beacons land while replicas come and go");
    let again = cluster.ask(i + 2, &session).await;
    Seen { session, first, later: vec![again] }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_on_one_redis_never_give_a_live_number_twice_and_survive_losing_one() {
    const SESSIONS: usize = 500;
    const POOL: usize = 400;
    let mut cluster = Cluster::start(3, POOL).await;

    // A beacon through another replica renews the hold in the shared store.
    let first = cluster.ask(0, "renewal-session").await;
    let before = cluster.lease("renewal-session").await.expect("a lease");
    assert_eq!(first["expires_at"].as_i64(), Some(before));
    assert_eq!(cluster.beacon(1, "renewal-session").await, 204);
    let brokers = ringpath_tests::kafka_brokers();
    let renewal = |m: &TopicMessage| m.json()["session_id"] == "renewal-session" && m.json()["referrer"].is_null();
    let messages = wait_topic(&brokers, &cluster.topics.assignments, Duration::from_secs(30), |m| m.iter().any(renewal)).await.expect("the renewal is published");
    let renewal = messages.iter().find(|m| renewal(m)).expect("renewal").json();
    assert_eq!(cluster.lease("renewal-session").await, renewal["expires_at"].as_i64(), "the shared hold ends where the other replica renewed it");
    assert!(renewal["expires_at"].as_i64().expect("expires") >= before);

    // 500 sessions at once, round robin; replica 2 is killed (SIGKILL) halfway.
    let permits = Semaphore::new(48);
    let half: Vec<Seen> = futures_util::future::join_all((0..SESSIONS / 2).map(|i| session_round(&cluster, i, &permits))).await;
    let killer = async {
        cluster.replicas[2].kill();
    };
    let (rest, ()) = tokio::join!(futures_util::future::join_all((SESSIONS / 2..SESSIONS).map(|i| session_round(&cluster, i, &permits))), killer);
    let seen: Vec<Seen> = half.into_iter().chain(rest).collect();
    assert!(!cluster.replicas[2].alive());

    // Exactly as many exclusive numbers as the pool has, none of them twice;
    // every later session shares, marked so.
    let exclusive: Vec<&Seen> = seen.iter().filter(|s| s.first["shared"] == false).collect();
    let numbers: HashSet<String> = exclusive.iter().map(|s| number(&s.first)).collect();
    assert_eq!(exclusive.len(), POOL - 1, "the pool of {POOL} (one held by the renewal session) gave each number to one session first");
    assert_eq!(numbers.len(), exclusive.len(), "no number handed to two live sessions before exhaustion");
    assert_eq!(seen.iter().filter(|s| s.first["shared"] == true).count(), SESSIONS - (POOL - 1));
    assert!(seen.iter().all(|s| s.first["kind"] == "session"));
    // Each session sees one number from every replica it reached.
    for s in &seen {
        for later in &s.later {
            assert_eq!(number(later), number(&s.first), "{} got another number from another replica", s.session);
        }
    }
    // No hold is lost with replica 2: every session asks again at the survivors and keeps its number.
    let after: Vec<Value> = futures_util::future::join_all(seen.iter().enumerate().map(|(i, s)| {
        let permits = &permits;
        let cluster = &cluster;
        async move {
            let _permit = permits.acquire().await.expect("permit");
            cluster.ask(i, &s.session).await
        }
    }))
    .await;
    for (s, a) in seen.iter().zip(&after) {
        assert_eq!(number(a), number(&s.first), "{} lost its hold with replica 2", s.session);
    }
    let m = cluster.http.get(&cluster.replicas[0].metrics).send().await.expect("metrics").text().await.expect("text");
    assert_eq!(metric_value(&m, "ringpath_ingest_pool_live_numbers", &[("account", POOL_ACCOUNT)]), Some(POOL as f64), "every number live, as Redis counts it");
    cluster.replicas.clear();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_redis_no_pool_number_is_handed_out_and_an_empty_redis_is_refilled_from_kafka_first() {
    let mut cluster = Cluster::start(2, 5).await;
    let mut held = HashMap::new();
    for i in 0..3 {
        let session = format!("before-{i}");
        let a = cluster.ask(i, &session).await;
        assert_eq!((a["kind"].as_str(), a["shared"].as_bool()), (Some("session"), Some(false)));
        held.insert(session, number(&a));
    }

    // Redis dies: number requests get the site number (never a pool number
    // another collector may hold), beacons keep landing, the cause is counted.
    cluster.redis.kill();
    for i in 0..6 {
        let a = cluster.ask(i, &format!("during-{i}")).await;
        assert_eq!((a["kind"].as_str(), a["number"].as_str()), (Some("site"), Some(POOL_SITE_NUMBER)), "{a}");
        let known = cluster.ask(i, "before-0").await;
        assert_eq!(known["kind"], "site", "not even a session's own pool number: the store cannot confirm it");
        assert_eq!(cluster.beacon(i, "before-1").await, 204);
    }
    let m = cluster.http.get(&cluster.replicas[0].metrics).send().await.expect("metrics").text().await.expect("text");
    assert!(metric_value(&m, "ringpath_ingest_numbers_without_pool_total", &[("cause", "store_unavailable")]).unwrap_or(0.0) >= 3.0, "counted");

    // It comes back empty: before any pool number is handed out again, a
    // replica refills it from the assignments topic.
    cluster.redis.wipe().expect("wipe");
    cluster.redis.resume().expect("redis restarts");
    wait("pool numbers again after the refill", Duration::from_secs(60), || async { cluster.ask(0, "after-probe").await["kind"] == "session" }).await;
    for (session, number_before) in &held {
        for replica in 0..2 {
            assert_eq!(&number(&cluster.ask(replica, session).await), number_before, "{session} keeps its number after the refill");
        }
    }
    let fresh = cluster.ask(1, "after-new-0").await;
    assert!(!held.values().any(|n| *n == number(&fresh)), "a new session never gets a number held before the loss");
    let m = cluster.http.get(&cluster.replicas[0].metrics).send().await.expect("metrics").text().await.expect("text");
    let m1 = cluster.http.get(&cluster.replicas[1].metrics).send().await.expect("metrics").text().await.expect("text");
    let refills = metric_value(&m, "ringpath_ingest_pool_refills_total", &[]).unwrap_or(0.0) + metric_value(&m1, "ringpath_ingest_pool_refills_total", &[]).unwrap_or(0.0);
    assert!(refills >= 2.0, "the start and the loss each refilled the store once: {refills}");
    cluster.replicas.clear();
}
