//! The quick start as a new user meets it: `infra/up` on this machine (with
//! the Kafka and ClickHouse `infra/test` started), the README's walk-through
//! step by step in real Chromium, every `curl` line of the README pasted into
//! a shell, then Ctrl-C: infra/up stops what it started and leaves the Kafka
//! and ClickHouse it found running.
//!
//! infra/up builds the services with `RINGPATH_UP_PROFILE=dev` here (the test
//! build's profile) instead of a release build; everything else is the
//! script as the README runs it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringpath_tests::browser::Browser;
use ringpath_tests::{free_port, repo_root};
use serde_json::Value;

/// infra/up in its own process group, so Ctrl-C (SIGINT) reaches all of it; killed if the test fails.
struct Up {
    child: Child,
    log: std::path::PathBuf,
}

impl Up {
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn interrupt(&self) {
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.interrupt();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = Command::new("kill").args(["-KILL", &format!("-{}", self.child.id())]).status();
            let _ = self.child.wait();
        }
    }
}

fn tcp_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&ringpath_tests::loopback(port), Duration::from_millis(500)).is_ok()
}

fn port_of(url: &str, default: u16) -> u16 {
    url.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok()).unwrap_or(default)
}

/// Every `curl` command in the README's ```sh blocks, with the lines that
/// continue it (a trailing `\\`, or a quoted body over several lines).
fn readme_curls() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let mut commands: Vec<String> = Vec::new();
    for block in readme.split("```sh\n").skip(1) {
        let body = block.split("\n```").next().unwrap_or("");
        let mut current: Option<String> = None;
        for line in body.lines() {
            let starts_command = !line.starts_with(' ') && !line.is_empty();
            if starts_command {
                commands.extend(current.take());
                if line.starts_with("curl ") {
                    current = Some(line.to_owned());
                }
            } else if let Some(c) = current.as_mut() {
                c.push('\n');
                c.push_str(line);
            }
        }
        commands.extend(current.take());
    }
    commands
}

async fn phone(browser: &Browser) -> String {
    browser.eval("return document.getElementById('phone').textContent").await.expect("phone").as_str().unwrap_or("").to_owned()
}

async fn banner_shown(browser: &Browser) -> bool {
    browser.eval("return !document.getElementById('banner').hidden").await.expect("banner") == Value::Bool(true)
}

/// Clicks a link of the demo page and waits for the page it leads to.
async fn follow(browser: &Browser, id: &str, want_query: &str) {
    browser.eval(&format!("document.getElementById('{id}').click()")).await.expect("click");
    let arrived = format!("return location.search === '{want_query}' && document.readyState === 'complete'");
    browser.wait_for(&arrived, Duration::from_secs(20)).await.unwrap_or_else(|e| panic!("after clicking {id}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infra_up_runs_the_readmes_walk_through_and_stops_only_what_it_started() {
    let kafka_port = port_of(&ringpath_tests::kafka_brokers(), 19092);
    let clickhouse_port = port_of(&ringpath_tests::clickhouse_url(), 18123);
    assert!(tcp_open(kafka_port) && tcp_open(clickhouse_port), "Kafka and ClickHouse run before infra/up (infra/test starts them)");
    let (ingest, dashboard, enrich, demo, ingest_metrics) = (free_port(), free_port(), free_port(), free_port(), free_port());
    let log = std::env::temp_dir().join(format!("rp-up-{}.log", ringpath_tests::unique_suffix()));
    let out = std::fs::File::create(&log).expect("log file");
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("infra/up"))
        .current_dir(repo_root())
        .env("RINGPATH_UP_PROFILE", "dev")
        .env("RINGPATH_INGEST_LISTEN", format!("127.0.0.1:{ingest}"))
        .env("RINGPATH_DASHBOARD_LISTEN", format!("127.0.0.1:{dashboard}"))
        .env("RINGPATH_ENRICH_METRICS_LISTEN", format!("127.0.0.1:{enrich}"))
        .env("RINGPATH_INGEST_METRICS_LISTEN", format!("127.0.0.1:{ingest_metrics}"))
        .env("RINGPATH_DEMO_PORT", demo.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().expect("log")))
        .stderr(Stdio::from(out));
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut up = Up { child: cmd.spawn().expect("infra/up starts"), log };

    // The first run may install geo data and build the services.
    let started = Instant::now();
    while !up.output().contains("ringpath is running") {
        if let Ok(Some(status)) = up.child.try_wait() {
            panic!("infra/up exited ({status}) before it was running:\n{}", up.output());
        }
        assert!(started.elapsed() < Duration::from_secs(1200), "infra/up not running after 20 minutes:\n{}", up.output());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let printed = up.output();
    for url in [format!("http://127.0.0.1:{demo}/"), format!("http://127.0.0.1:{ingest}"), format!("http://127.0.0.1:{dashboard}")] {
        assert!(printed.contains(&url), "infra/up prints {url}:\n{printed}");
    }
    assert!(printed.contains("integrity=\"sha384-"), "infra/up prints the pinned snippet tag:\n{printed}");
    let since_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64 - 60_000;

    // The walk-through, step by step (README "Quick start").
    let browser = Browser::start().await.expect("browser");
    browser.goto(&format!("http://127.0.0.1:{demo}/")).await.expect("1. open the demo page");
    browser.wait_for("return document.readyState === 'complete'", Duration::from_secs(20)).await.expect("loaded");
    assert!(banner_shown(&browser).await, "1. the banner asks for consent");
    assert_eq!(phone(&browser).await, "(555) 010-0000", "1. the site's own number");

    browser.eval("document.getElementById('accept').click()").await.expect("2. accept");
    assert!(!banner_shown(&browser).await, "2. the banner goes away");

    follow(&browser, "ad", "?utm_source=google&utm_medium=cpc&utm_campaign=burst_pipes&gclid=demo123").await;
    let pool_number = "return ['(555) 010-9001', '(555) 010-9002', '(555) 010-9003'].indexOf(document.getElementById('phone').textContent) >= 0 \
                       && document.getElementById('phone').textContent";
    let held = browser.wait_for(pool_number, Duration::from_secs(20)).await.expect("3. a paid-search pool number after the ad link");
    assert!(!banner_shown(&browser).await, "3. the banner stays away: the choice is remembered");

    follow(&browser, "direct", "").await;
    browser.wait_for("return document.getElementById('choice').textContent === 'granted'", Duration::from_secs(10)).await.expect("4. the choice is still granted");
    // The tracker answers from the session's cookie on this page: wait for the page's tracker to have decided.
    browser.wait_for(&format!("return document.getElementById('phone').textContent === {held}"), Duration::from_secs(20)).await.expect("4. the pool number stays on a direct visit in the session");
    assert!(!banner_shown(&browser).await);

    follow(&browser, "newsletter", "?utm_source=newsletter&utm_medium=email").await;
    browser.wait_for("return document.getElementById('phone').textContent === '(555) 010-8002'", Duration::from_secs(20)).await.expect("5. the e-mail source number");
    let severe: Vec<Value> = browser.console().await.expect("console").into_iter().filter(|m| m["level"] == "SEVERE").collect();
    assert!(severe.is_empty(), "the demo page logged errors: {severe:?}");
    browser.quit().await;

    // Every curl of the README, pasted (with this run's ports), succeeds.
    let curls = readme_curls();
    assert!(curls.len() >= 5, "the README's curl examples: {curls:?}");
    for curl in &curls {
        let line = curl.replace("127.0.0.1:8080", &format!("127.0.0.1:{ingest}")).replace("127.0.0.1:8081", &format!("127.0.0.1:{dashboard}"));
        let out = Command::new("bash").args(["-c", &format!("{line} --fail-with-body --silent --show-error --max-time 30")]).output().expect("bash");
        assert!(out.status.success(), "README command failed: {curl}\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if curl.contains("/v1/numbers") {
            // What the README says it answers: a pool number held for the session.
            let answer: Value = serde_json::from_slice(&out.stdout).expect("the numbers answer is JSON");
            // (The walk-through's browser session holds one of the demo pool's numbers already.)
            assert_eq!((answer["kind"].as_str(), answer["shared"].as_bool()), (Some("session"), Some(false)), "{answer}");
            assert!(["+15550109001", "+15550109002", "+15550109003"].contains(&answer["number"].as_str().unwrap_or("")), "{answer}");
        }
    }

    // The page views of the walk-through reach the dashboard API (the README's last step).
    let url = format!("http://127.0.0.1:{dashboard}/v1/accounts/acc_demo/timeseries?metric=pageviews&interval=hour&from={since_ms}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let body: Value = http.get(&url).basic_auth("acc_demo", Some("demo-token")).send().await.expect("timeseries").json().await.expect("json");
        // Four page views in Chromium (the README's own beacon comes from curl, a bot, and is not counted).
        if body["total"].as_u64().unwrap_or(0) >= 4 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the walk-through's page views never reached the dashboard: {body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Ctrl-C: everything infra/up started stops; the Kafka and ClickHouse it found stay.
    up.interrupt();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = up.child.try_wait().expect("status") {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "infra/up did not stop within a minute of Ctrl-C:\n{}", up.output());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let output = up.output();
    assert!(output.contains("stopped everything this script started"), "{output}");
    assert!(!output.contains("stopping kafka") && !output.contains("stopping clickhouse"), "infra/up stopped a service it did not start:\n{output}");
    assert!(tcp_open(kafka_port), "Kafka still runs after infra/up stopped (status {status})");
    assert!(tcp_open(clickhouse_port), "ClickHouse still runs after infra/up stopped");
    for port in [ingest, dashboard, demo] {
        assert!(!tcp_open(port), "port {port} closed after infra/up stopped");
    }
    let _ = std::fs::remove_file(&up.log);
}
