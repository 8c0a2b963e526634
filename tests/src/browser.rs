//! A minimal WebDriver client for headless Chromium via chromedriver: enough
//! to load pages, run scripts, and look at what the browser itself holds —
//! cookies, DOM storage, IndexedDB, console and network logs — through
//! WebDriver and the Chrome DevTools Protocol (chromedriver's `goog/cdp`
//! passthrough), not through the page's own APIs that a script could fake.
//! Also a page server for the sites under test. Real browser, no mocks; no
//! input simulation beyond what a page script can do.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, RwLock};
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

/// One console message, as chromedriver reports it.
#[derive(Debug, Clone)]
pub struct ConsoleMessage {
    /// `SEVERE`, `WARNING`, `INFO`, …
    pub level: String,
    /// `javascript`, `network`, `console-api`, … (empty when chromedriver gives none).
    pub source: String,
    pub message: String,
}

/// What the browser holds for one origin, read through DevTools.
#[derive(Debug, Default, Clone)]
pub struct StorageView {
    /// Cookies the browser would send to the origin.
    pub cookies: Vec<Value>,
    /// localStorage entries (key, value).
    pub local: Vec<(String, String)>,
    /// sessionStorage entries (key, value) of the open tab.
    pub session: Vec<(String, String)>,
    /// IndexedDB database names.
    pub indexeddb: Vec<String>,
}

impl StorageView {
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty() && self.local.is_empty() && self.session.is_empty() && self.indexeddb.is_empty()
    }
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
        // The performance log carries DevTools Network events: what was requested and answered.
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
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

    /// Loads `url` and returns once the page has loaded.
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

    /// Sends a Chrome DevTools Protocol command to the page's target and returns its result.
    pub async fn cdp(&self, cmd: &str, params: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, "/goog/cdp/execute", Some(json!({"cmd": cmd, "params": params})))
            .await
            .with_context(|| format!("CDP {cmd}"))
    }

    /// Cookies as the browser holds them for the current page (WebDriver), not what the page script claims.
    pub async fn cookies(&self) -> anyhow::Result<Vec<Value>> {
        Ok(self.call(reqwest::Method::GET, "/cookie", None).await?.as_array().cloned().unwrap_or_default())
    }

    /// Every cookie in the profile's cookie jar, of every site (CDP `Network.getAllCookies`).
    pub async fn all_cookies(&self) -> anyhow::Result<Vec<Value>> {
        Ok(self.cdp("Network.getAllCookies", json!({})).await?["cookies"].as_array().cloned().unwrap_or_default())
    }

    /// Empties the whole cookie jar. A page that was just left may still be
    /// writing (its `pagehide` handlers run as it goes), so the jar is cleared
    /// until it reads back empty.
    pub async fn clear_cookies(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            self.cdp("Network.clearBrowserCookies", json!({})).await?;
            let left = self.all_cookies().await?;
            if left.is_empty() {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(5) {
                bail!("cookies keep coming back after clearing: {left:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Puts a cookie for `url` straight into the jar, as an earlier visit would have left it.
    pub async fn set_cookie(&self, url: &str, name: &str, value: &str) -> anyhow::Result<()> {
        let set = self.cdp("Network.setCookie", json!({"url": url, "name": name, "value": value, "path": "/"})).await?;
        if set.get("success") == Some(&Value::Bool(false)) {
            bail!("the browser refused cookie {name} for {url}");
        }
        Ok(())
    }

    /// Empties the HTTP cache (a first visit's cold load).
    pub async fn clear_cache(&self) -> anyhow::Result<()> {
        self.cdp("Network.clearBrowserCache", json!({})).await.map(|_| ())
    }

    /// Makes the browser fail every request whose URL matches one of
    /// `patterns` (`*` wildcards), as an ad blocker or an outage would; `&[]` lifts the block.
    pub async fn block_urls(&self, patterns: &[&str]) -> anyhow::Result<()> {
        self.cdp("Network.enable", json!({})).await?;
        self.cdp("Network.setBlockedURLs", json!({"urls": patterns})).await.map(|_| ())
    }

    /// What the browser stores for `origin` (`scheme://host:port`): cookies,
    /// localStorage, sessionStorage and IndexedDB, read through DevTools.
    /// The tab must show a document of that origin (DevTools finds storage through its frame).
    pub async fn storage(&self, origin: &str) -> anyhow::Result<StorageView> {
        let cookies = self.cdp("Network.getCookies", json!({"urls": [origin]})).await?["cookies"].as_array().cloned().unwrap_or_default();
        let dom = |local: bool| json!({"storageId": {"securityOrigin": origin, "isLocalStorage": local}});
        let local = entries(&self.cdp("DOMStorage.getDOMStorageItems", dom(true)).await?);
        let session = entries(&self.cdp("DOMStorage.getDOMStorageItems", dom(false)).await?);
        let names = self.cdp("IndexedDB.requestDatabaseNames", json!({"securityOrigin": origin})).await?;
        let indexeddb = names["databaseNames"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default();
        Ok(StorageView { cookies, local, session, indexeddb })
    }

    /// The page's console messages since the last call (chromedriver hands each out once).
    pub async fn console(&self) -> anyhow::Result<Vec<Value>> {
        self.log("browser").await
    }

    /// Console messages of level SEVERE (uncaught exceptions, failed
    /// requests, `console.error`) since the last read of the console.
    pub async fn console_errors(&self) -> anyhow::Result<Vec<ConsoleMessage>> {
        let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
        Ok(self
            .console()
            .await?
            .iter()
            .map(|m| ConsoleMessage { level: text(m, "level"), source: text(m, "source"), message: text(m, "message") })
            .filter(|m| m.level == "SEVERE")
            .collect())
    }

    /// DevTools events (`{"method", "params"}`, e.g. `Network.requestWillBeSent`)
    /// since the last call: what the browser requested and what came back.
    pub async fn network_log(&self) -> anyhow::Result<Vec<Value>> {
        let entries = self.log("performance").await?;
        Ok(entries
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e["message"].as_str()?).ok())
            .map(|m| m["message"].clone())
            .filter(|m| m["method"].as_str().is_some_and(|name| name.starts_with("Network.")))
            .collect())
    }

    async fn log(&self, kind: &str) -> anyhow::Result<Vec<Value>> {
        let url = format!("{}/session/{}/se/log", self.base, self.session);
        let resp: Value = self.http.post(url).json(&json!({"type": kind})).send().await?.json().await?;
        Ok(resp["value"].as_array().cloned().unwrap_or_default())
    }

    pub async fn quit(mut self) {
        let _ = self.http.delete(format!("{}/session/{}", self.base, self.session)).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `DOMStorage.getDOMStorageItems`' `[[key, value], …]` as pairs.
fn entries(result: &Value) -> Vec<(String, String)> {
    let pair = |e: &Value| Some((e.get(0)?.as_str()?.to_owned(), e.get(1)?.as_str()?.to_owned()));
    result["entries"].as_array().map(|a| a.iter().filter_map(pair).collect()).unwrap_or_default()
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// Serves HTML pages on loopback for the browser tests; pages can be added
/// or replaced while it runs. Reachable as `127.0.0.1` and as `localhost`,
/// which browsers treat as two different sites.
pub struct PageServer {
    pub addr: std::net::SocketAddr,
    pages: Arc<RwLock<HashMap<String, String>>>,
    handle: actix_web::dev::ServerHandle,
}

impl PageServer {
    /// `pages`: (path, html). Every other path is 404.
    pub async fn start(pages: Vec<(String, String)>) -> anyhow::Result<PageServer> {
        use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
        let pages = Arc::new(RwLock::new(pages.into_iter().collect::<HashMap<_, _>>()));
        let served = pages.clone();
        let server = HttpServer::new(move || {
            let pages = served.clone();
            App::new().default_service(web::to(move |req: HttpRequest| {
                let html = pages.read().unwrap_or_else(|p| p.into_inner()).get(req.path()).cloned();
                async move {
                    match html {
                        Some(html) => HttpResponse::Ok().content_type("text/html; charset=utf-8").insert_header(("Cache-Control", "no-store")).body(html),
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
        Ok(PageServer { addr, pages, handle })
    }

    /// Serves `html` at `path` (the query string is ignored when matching).
    pub fn set(&self, path: &str, html: String) {
        self.pages.write().unwrap_or_else(|p| p.into_inner()).insert(path.to_owned(), html);
    }

    /// `http://127.0.0.1:port` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The same page under another host name for loopback, e.g. `localhost`: another site.
    pub fn url_on(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.addr.port())
    }

    /// `http://127.0.0.1:port`, the pages' origin.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}
