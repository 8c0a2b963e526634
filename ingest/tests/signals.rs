//! The `ringpath-ingest` binary itself, on the real broker: SIGHUP re-reads the
//! accounts file while it keeps serving, a broken file is refused without
//! harm, and SIGTERM drains and exits cleanly within its deadline.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_ringpath-ingest");

fn account(id: &str) -> String {
    format!("[[account]]\nid = \"{id}\"\ntoken_sha256 = \"{}\"\n\n", hex::encode(Sha256::digest(id.as_bytes())))
}

use ringpath_types::time::now_ms;

/// POSTs a one-event batch for `account`; returns the status code.
fn beacon(addr: SocketAddr, account: &str) -> u16 {
    let now = now_ms();
    let body = serde_json::json!({"v": 1, "account": account, "sent_at": now, "consent": "denied",
        "events": [{"id": format!("e{now}"), "type": "pageview", "ts": now, "url": "https://site.example/"}]})
    .to_string();
    let req = format!("POST /v1/collect HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("ingest listening");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    s.write_all(req.as_bytes()).expect("write");
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The ingest process; killed if a failed check leaves it running.
struct Ingest(Child);

impl Drop for Ingest {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `ringpath_ingest_config_reloads_total{outcome="failed"}` from /metrics (`None` before the first failure).
fn failed_reloads(addr: SocketAddr) -> Option<f64> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: ingest\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines().find(|l| l.starts_with("ringpath_ingest_config_reloads_total{outcome=\"failed\"}")).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill").args([sig, &child.id().to_string()]).status().expect("kill runs").success();
    assert!(ok, "kill {sig}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_accounts_and_sigterm_exits_cleanly() {
    let brokers = std::env::var("RINGPATH_KAFKA_BROKERS").unwrap_or_else(|_| ringpath_service::DEFAULT_KAFKA_BROKERS.into());
    let suffix = format!("{:08x}", rand::random::<u32>());
    let topics: Vec<String> = ["events", "calls", "assignments", "dlq"].iter().map(|t| format!("ringpath.{t}.sig{suffix}")).collect();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", &brokers).create().expect("admin");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))).request_timeout(Some(Duration::from_secs(20)));
    let new: Vec<NewTopic> = topics.iter().map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(1))).collect();
    admin.create_topics(&new, &opts).await.expect("creating topics: is Kafka running (infra/services.sh start)?");

    let dir = std::env::temp_dir().join(format!("rp-signals-{suffix}"));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("ringpath.toml");
    std::fs::write(&config, account("acc_first")).expect("config");
    let free_port = || std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let metrics: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let child = Command::new(BIN)
        .env("RINGPATH_INGEST_METRICS_LISTEN", metrics.to_string())
        .env("RINGPATH_CONFIG", &config)
        .env("RINGPATH_INGEST_LISTEN", addr.to_string())
        .env("RINGPATH_KAFKA_BROKERS", &brokers)
        .env("RINGPATH_TOPIC_EVENTS", &topics[0])
        .env("RINGPATH_TOPIC_CALLS", &topics[1])
        .env("RINGPATH_TOPIC_ASSIGNMENTS", &topics[2])
        .env("RINGPATH_TOPIC_DLQ", &topics[3])
        .env("RINGPATH_ASSETS_DIR", &dir)
        .env("RINGPATH_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("ingest starts");
    let mut ingest = Ingest(child);

    let served = tokio::task::spawn_blocking(move || {
        let child = &mut ingest.0;
        assert!(wait_until(Duration::from_secs(60), || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()), "ingest did not listen");
        assert!(wait_until(Duration::from_secs(30), || beacon(addr, "acc_first") == 204), "first account not served");
        assert_eq!(beacon(addr, "acc_second"), 400, "not configured yet");

        std::fs::write(&config, [account("acc_first"), account("acc_second")].concat()).expect("rewrite");
        signal(child, "-HUP");
        assert!(wait_until(Duration::from_secs(10), || beacon(addr, "acc_second") == 204), "SIGHUP did not load the new account");
        assert_eq!(beacon(addr, "acc_first"), 204);

        std::fs::write(&config, "this is not toml [[[").expect("break");
        signal(child, "-HUP");
        // The collector's own count of refused reloads says the signal was handled.
        assert!(wait_until(Duration::from_secs(10), || failed_reloads(metrics) == Some(1.0)), "the broken file's reload was never attempted");
        assert!(child.try_wait().expect("status").is_none(), "a broken file does not stop the service");
        assert_eq!(beacon(addr, "acc_second"), 204, "the previous accounts stay after a refused reload");

        signal(child, "-TERM");
        let started = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("status") {
                break s;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "did not exit within 30 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "exit status {status}");
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err(), "port closed after exit");
        let _ = std::fs::remove_dir_all(dir);
    })
    .await;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let _ = admin.delete_topics(&names, &opts).await;
    served.expect("checks pass");
}
