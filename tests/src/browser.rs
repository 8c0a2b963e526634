//! A minimal WebDriver client for headless Chromium via chromedriver: enough
//! to load pages, run scripts, read cookies and storage. Real browser, no mocks.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn chromedriver_path() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

fn chromium_path() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium profile.
    pub async fn start() -> anyhow::Result<Browser> {
        let port = crate::free_port();
        let driver = Command::new(chromedriver_path())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} (install: infra/install.sh)", chromedriver_path()))?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("chromedriver did not answer on {base}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = std::env::temp_dir().join(format!("rp-chrome-{}", crate::unique_suffix()));
        std::fs::create_dir_all(&profile)?;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium_path(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let resp: Value = http.post(format!("{base}/session")).json(&caps).send().await?.json().await?;
        let session = resp["value"]["sessionId"].as_str().with_context(|| format!("no WebDriver session: {resp}"))?.to_owned();
        Ok(Browser { driver, base, session, http, _profile: TempDir(profile) })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp: Value = req.send().await?.json().await?;
        if let Some(err) = resp["value"].get("error") {
            bail!("webdriver {path}: {err} {}", resp["value"]["message"]);
        }
        Ok(resp["value"].clone())
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await.map(|_| ())
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub async fn eval(&self, script: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": []}))).await
    }

    /// Polls `script` until it returns something truthy.
    pub async fn wait_for(&self, script: &str, limit: Duration) -> anyhow::Result<Value> {
        let started = Instant::now();
        loop {
            let v = self.eval(script).await?;
            let truthy = !matches!(v, Value::Null | Value::Bool(false)) && v != json!("") && v != json!(0);
            if truthy {
                return Ok(v);
            }
            if started.elapsed() > limit {
                bail!("timed out waiting for: {script}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Cookies as the browser holds them (not what the page script claims).
    pub async fn cookies(&self) -> anyhow::Result<Vec<Value>> {
        Ok(self.call(reqwest::Method::GET, "/cookie", None).await?.as_array().cloned().unwrap_or_default())
    }

    /// The page's console messages so far (level, message).
    pub async fn console(&self) -> anyhow::Result<Vec<Value>> {
        let url = format!("{}/session/{}/se/log", self.base, self.session);
        let resp: Value = self.http.post(url).json(&json!({"type": "browser"})).send().await?.json().await?;
        Ok(resp["value"].as_array().cloned().unwrap_or_default())
    }

    pub async fn quit(mut self) {
        let _ = self.http.delete(format!("{}/session/{}", self.base, self.session)).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// Serves fixed HTML pages on loopback for the browser tests.
pub struct PageServer {
    pub addr: std::net::SocketAddr,
    handle: actix_web::dev::ServerHandle,
}

impl PageServer {
    /// `pages`: (path, html). Every other path is 404.
    pub async fn start(pages: Vec<(String, String)>) -> anyhow::Result<PageServer> {
        use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
        let pages = std::sync::Arc::new(pages);
        let server = HttpServer::new(move || {
            let pages = pages.clone();
            App::new().default_service(web::to(move |req: HttpRequest| {
                let pages = pages.clone();
                async move {
                    match pages.iter().find(|(p, _)| p == req.path()) {
                        Some((_, html)) => HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html.clone()),
                        None => HttpResponse::NotFound().body("not found"),
                    }
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")?;
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(PageServer { addr, handle })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}
