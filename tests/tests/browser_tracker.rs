//! The tracker's behaviour in real headless Chromium against the real
//! collector: site pages on one origin (a `PageServer`), rp.js, rp.wasm and
//! the collector on another (ingest in-process, on the shared Kafka with this
//! test's own topics). What the collector received is read back from its
//! Kafka topics; what the browser stores is read through WebDriver and
//! DevTools, not through the tracker's or the page's word.
//!
//! Covered: every written number form swapped in its own form (NANP and UK),
//! the places that must not be touched, numbers split over inline elements,
//! late content, `tel:` links, a session's number on its next page, every
//! consent signal and their precedence, zero storage writes without consent,
//! deletion on denial, failed DNI requests and an unknown account, the fields
//! of every beacon kind, SPA page views, the page's safety (one global, no
//! errors, no exceptions), and text cut inside an emoji. Not here: enrich and
//! ClickHouse (browser_e2e.rs, pipeline.rs).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ringpath_tests::browser::{Browser, ConsoleMessage, PageServer};
use ringpath_tests::fixtures::{self, DEMO_ACCOUNT, POOL_NUMBERS, SITE_NUMBER, SOCIAL_NUMBER};
use ringpath_tests::ingest_support::{metric_value, read_topic};
use ringpath_tests::{Stack, StackOptions};
use ringpath_types::accounts::AccountsFile;
use serde_json::{json, Value};

/// How long anything may take to show up, on a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(15);
const TITLE: &str = "Plumbing & Heating — ringpath test";

/// A UK account added for these tests: national and international forms.
const UK_ACCOUNT: &str = "acc_uk";
const UK_SITE_NUMBER: &str = "+442071838750";
const UK_SOCIAL_NUMBER: &str = "+442071830123";

/// The fixture accounts plus `acc_uk` (site number +44 20 7183 8750, a
/// source-level number for organic social, any origin).
fn accounts_with_uk() -> AccountsFile {
    let toml = format!(
        r#"{base}
[[account]]
id = "{UK_ACCOUNT}"
token_sha256 = "{token}"

[account.dni]
site_numbers = ["{UK_SITE_NUMBER}"]

[[account.dni.source]]
when = {{ channel = "organic_social" }}
number = "{UK_SOCIAL_NUMBER}"
"#,
        base = fixtures::accounts_toml(),
        token = fixtures::sha256_hex("uk-token"),
    );
    AccountsFile::parse(&toml).expect("accounts with acc_uk parse")
}

/// Installed before anything else on every page: records each write to
/// cookies, Web Storage and IndexedDB in `window.__writes`, whoever makes it,
/// so a test can tell "nothing was written" from "nothing was left".
const TRIPWIRE: &str = r#"(function () {
  var writes = window.__writes = [];
  var setItem = Storage.prototype.setItem;
  Storage.prototype.setItem = function (k) { writes.push('storage ' + k); return setItem.apply(this, arguments); };
  var open = IDBFactory.prototype.open;
  IDBFactory.prototype.open = function (name) { writes.push('indexedDB ' + name); return open.apply(this, arguments); };
  var cookie = Object.getOwnPropertyDescriptor(Document.prototype, 'cookie');
  Object.defineProperty(Document.prototype, 'cookie', {
    configurable: true, enumerable: cookie.enumerable,
    get: function () { return cookie.get.call(this); },
    set: function (v) { writes.push('cookie ' + v); cookie.set.call(this, v); }
  });
})();"#;

const GPC: &str = "<script>Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {configurable: true, get: function () { return true; }});</script>";

/// A consent management platform's `__tcfapi` that answers at once, as a loaded CMP does.
fn tcf(purpose1: bool) -> String {
    format!(
        "<script>window.__tcfapi = function (cmd, version, cb) {{ if (cmd == 'addEventListener') \
         cb({{gdprApplies: true, eventStatus: 'tcloaded', purpose: {{consents: {{1: {purpose1}}}}}}}, true); }};</script>"
    )
}

/// Google's Consent Mode default, the way gtag.js pages set it.
fn consent_mode(analytics_storage: &str) -> String {
    format!(
        "<script>window.dataLayer = window.dataLayer || []; function gtag() {{ dataLayer.push(arguments); }} \
         gtag('consent', 'default', {{analytics_storage: '{analytics_storage}'}});</script>"
    )
}

/// A site page: the tripwire, the page's own `head`, a snapshot of the
/// window's properties, then the snippet with `attrs` (`data-account` …).
fn page(ingest: &str, attrs: &str, head: &str, body: &str) -> String {
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>{TITLE}</title><link rel="icon" href="data:,">
<script>{TRIPWIRE}</script>
{head}
<script>window.__before = Object.getOwnPropertyNames(window);</script>
<script async src="{ingest}/rp.js" {attrs}></script>
</head><body>{body}</body></html>"#
    )
}

const DEMO: &str = r#"data-account="acc_demo""#;
const DEMO_NOT_REQUIRED: &str = r#"data-account="acc_demo" data-consent="not-required""#;

/// The NANP forms tracker-wasm/README.md lists, for a 10-digit national number.
fn nanp_forms(nsn: &str) -> Vec<String> {
    let (area, exchange, line) = (&nsn[..3], &nsn[3..6], &nsn[6..]);
    vec![
        format!("({area}) {exchange}-{line}"),
        format!("{area}-{exchange}-{line}"),
        format!("{area}.{exchange}.{line}"),
        format!("{area} {exchange} {line}"),
        format!("{area}{exchange}{line}"),
        format!("+1 {area} {exchange} {line}"),
        format!("+1-{area}-{exchange}-{line}"),
        format!("1-{area}-{exchange}-{line}"),
        format!("+1{area}{exchange}{line}"),
    ]
}

// ---- reading what the collector published -----------------------------------

fn kind(m: &Value) -> &str {
    m["event"]["type"].as_str().unwrap_or_default()
}

/// The path of a URL (`http://host:port/path?query` → `/path`).
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    path.split(['?', '#']).next().unwrap_or_default()
}

/// The events of one kind on one page path.
fn on<'a>(events: &'a [Value], wanted: &str, path: &str) -> Vec<&'a Value> {
    events.iter().filter(|m| kind(m) == wanted && path_of(m["event"]["url"].as_str().unwrap_or_default()) == path).collect()
}

fn summary(events: &[Value]) -> Vec<String> {
    events.iter().map(|m| format!("{} {} {}", kind(m), m["event"]["url"].as_str().unwrap_or("-"), m["consent"])).collect()
}

fn is_hex32(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// One test's world: ingest on Kafka, the site's page server, one browser.
struct Rig {
    stack: Stack,
    pages: PageServer,
    browser: Browser,
}

impl Rig {
    async fn start(accounts: AccountsFile) -> Rig {
        assert!(ringpath_tests::assets_dir().join("rp.wasm").exists(), "build the tracker first: tracker-wasm/build.sh");
        let stack = Stack::start(StackOptions { with_enrich: false, accounts, ..Default::default() }).await.expect("stack starts");
        let pages = PageServer::start(vec![]).await.expect("page server starts");
        let browser = Browser::start().await.expect("browser starts");
        Rig { stack, pages, browser }
    }

    fn ingest(&self) -> String {
        self.stack.ingest_url()
    }

    /// Serves `html` at `path` and loads `path` + `query` with an empty cookie jar.
    async fn open(&self, path: &str, query: &str, html: String) {
        self.pages.set(path, html);
        self.browser.goto("about:blank").await.expect("about:blank");
        self.browser.clear_cookies().await.expect("cookies cleared");
        self.browser.goto(&self.pages.url(&format!("{path}{query}"))).await.expect("page loads");
    }

    async fn js(&self, script: &str) -> Value {
        self.browser.eval(script).await.unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    async fn wait_js(&self, what: &str, script: &str) -> Value {
        self.browser.wait_for(script, WAIT).await.unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// Polls `script` until it returns `want`.
    async fn wait_value(&self, what: &str, script: &str, want: &Value) {
        let started = Instant::now();
        loop {
            let got = self.js(script).await;
            if got == *want {
                return;
            }
            assert!(started.elapsed() < WAIT, "{what}: the page shows {got}, want {want}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `{id: {text, value, href, title, data}}` for every element with an id.
    async fn dom(&self) -> Value {
        self.js(
            "var out = {}; document.querySelectorAll('[id]').forEach(function (e) { out[e.id] = {text: e.textContent, \
             value: /^(INPUT|TEXTAREA)$/.test(e.tagName) ? e.value : null, href: e.getAttribute('href'), title: e.getAttribute('title'), \
             data: e.getAttribute('data-phone')}; }); return out;",
        )
        .await
    }

    /// Every message now on `topic`, parsed, in (partition, offset) order.
    async fn topic(&self, topic: &str) -> Vec<Value> {
        let mut msgs = read_topic(&self.stack.brokers, topic).await.expect("topic reads");
        msgs.sort_by_key(|m| (m.partition, m.offset));
        msgs.iter().map(|m| m.json()).collect()
    }

    async fn events(&self) -> Vec<Value> {
        self.topic(&self.stack.topics.events).await
    }

    /// Polls the events topic until `done` holds for what is there.
    async fn wait_events(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let events = self.events().await;
            if done(&events) {
                return events;
            }
            if started.elapsed() > WAIT {
                panic!("Kafka never got {what}; the events topic holds: {:#?}", summary(&events));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The first event of `wanted` kind on `path`, once it is on Kafka.
    async fn wait_event(&self, wanted: &str, path: &str) -> Value {
        let events = self.wait_events(&format!("a {wanted} event on {path}"), |e| !on(e, wanted, path).is_empty()).await;
        on(&events, wanted, path)[0].clone()
    }

    /// Number assignments ingest published (`/v1/numbers`, and hold renewals from `/v1/collect`).
    async fn assignments(&self) -> Vec<Value> {
        self.topic(&self.stack.topics.assignments).await
    }

    /// Requests ingest answered on `route` with `status`, from its own /metrics.
    async fn ingest_requests(&self, route: &str, status: &str) -> f64 {
        let text = self.stack.http.get(self.stack.ingest_metrics_url()).send().await.expect("metrics").text().await.expect("metrics text");
        metric_value(&text, "ringpath_ingest_requests_total", &[("route", route), ("status", status)]).unwrap_or(0.0)
    }

    /// The `_rp_*` cookies in the whole jar (every site), by name.
    async fn rp_cookies(&self) -> HashMap<String, String> {
        let all = self.browser.all_cookies().await.expect("cookie jar");
        all.iter()
            .filter_map(|c| Some((c["name"].as_str()?.to_owned(), c["value"].as_str()?.to_owned())))
            .filter(|(name, _)| name.starts_with("_rp_"))
            .collect()
    }

    /// Polls the cookie jar until `done` holds (cookie writes reach the jar asynchronously).
    async fn wait_cookies(&self, what: &str, done: impl Fn(&HashMap<String, String>) -> bool) -> HashMap<String, String> {
        let started = Instant::now();
        loop {
            let jar = self.rp_cookies().await;
            if done(&jar) {
                return jar;
            }
            if started.elapsed() > WAIT {
                panic!("{what}: the cookie jar holds {jar:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What the tripwire saw written since the page loaded.
    async fn writes(&self) -> Vec<String> {
        let v = self.js("return window.__writes || null").await;
        v.as_array().expect("the tripwire is installed").iter().filter_map(|w| w.as_str().map(str::to_owned)).collect()
    }

    /// Window properties added since the snippet's tag (not counting
    /// `ret_nodes`, which chromedriver's script runner leaves behind).
    async fn added_globals(&self) -> Value {
        self.js("var before = new Set(window.__before.concat(['__before', 'ret_nodes'])); \
                 return Object.getOwnPropertyNames(window).filter(function (k) { return !before.has(k); });")
            .await
    }

    /// Fails on any SEVERE console message (exception, failed request,
    /// `console.error`) except those `allowed` accepts, and the browser's
    /// own `/favicon.ico` request on pages without an icon link.
    async fn assert_no_errors(&self, context: &str, allowed: impl Fn(&ConsoleMessage) -> bool) {
        let errors: Vec<ConsoleMessage> = self
            .browser
            .console_errors()
            .await
            .expect("console")
            .into_iter()
            .filter(|m| !allowed(m) && !m.message.contains("/favicon.ico "))
            .collect();
        assert!(errors.is_empty(), "{context}: the page logged errors: {errors:#?}");
    }

    async fn stop(self) {
        self.browser.quit().await;
        self.pages.stop().await;
        self.stack.stop().await.expect("stack stops");
    }
}

fn nothing_allowed(_: &ConsoleMessage) -> bool {
    false
}

// ---- 1–4: swapping ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_written_form_of_the_site_number_is_swapped_in_that_form_and_protected_text_is_not() {
    let rig = Rig::start(accounts_with_uk()).await;
    let site_forms = nanp_forms(&SITE_NUMBER[2..]);
    let mut body: String = site_forms.iter().enumerate().map(|(i, f)| format!("<p id=\"form-{i}\">{f}</p>\n")).collect();
    body.push_str(
        r#"<p id="sentence">Call us at (555) 010-0000 today, or 555-010-0000 after hours.</p>
<p id="split">Call <b id="split-b">(555)</b> <span id="split-span">010</span>-0000 now</p>
<a id="tel-e164" href="tel:+15550100000">(555) 010-0000</a>
<a id="tel-dashed" href="tel:555-010-0000">call</a>
<a id="tel-ext" href="tel:+1-555-010-0000;ext=12">call ext. 12</a>
<a id="tel-other" href="tel:+15550100001">other line</a>
<a id="web-link" href="https://example.com/?n=5550100000">not a tel: link</a>
<script id="trap-script">(function () { var sitePhone = "555-010-0000"; })();</script>
<style id="trap-style">.phone::after { content: "555-010-0000"; }</style>
<textarea id="trap-textarea">555-010-0000</textarea>
<input id="trap-input" value="555-010-0000">
<select><option id="trap-option">555-010-0000</option></select>
<div id="trap-editable" contenteditable>555-010-0000 <b id="trap-editable-child">555-010-0000</b></div>
<p id="trap-attributes" title="555-010-0000" data-phone="555-010-0000">attributes only</p>
<p id="trap-other">555-010-0001</p>
<p id="trap-longer">15550100000123</p>
<p id="trap-continued">555-010-00001</p>
<p id="trap-foreign">+44 555 010 0000</p>
<div id="late"></div>
<p id="late-text">nothing yet</p>"#,
    );
    rig.open("/forms", "?utm_source=google&utm_medium=cpc", page(&rig.ingest(), DEMO_NOT_REQUIRED, "", &body)).await;

    // The tel: link changes when the session number from /v1/numbers is in.
    let href = rig.wait_js("the session number", "var h = document.getElementById('tel-e164').getAttribute('href'); return h != 'tel:+15550100000' && h").await;
    let number = href.as_str().unwrap_or_default().trim_start_matches("tel:").to_owned();
    assert!(POOL_NUMBERS.contains(&number.as_str()), "the page shows {number}, not a paid_search pool number");
    let new_forms = nanp_forms(&number[2..]);
    let dom = rig.dom().await;
    for (i, (site, want)) in site_forms.iter().zip(&new_forms).enumerate() {
        assert_eq!(dom[format!("form-{i}")]["text"], *want, "the site number written as {site}");
    }
    let (paren, dashed) = (&new_forms[0], &new_forms[1]);
    assert_eq!(dom["sentence"]["text"], format!("Call us at {paren} today, or {dashed} after hours."));
    // Split over inline elements: found as one number, and each element keeps its share.
    assert_eq!(dom["split"]["text"], format!("Call {paren} now"));
    assert_eq!((&dom["split-b"]["text"], &dom["split-span"]["text"]), (&json!("(555)"), &json!("010")), "{}", dom["split"]);
    assert_eq!(dom["tel-e164"]["href"], format!("tel:{number}"));
    assert_eq!(dom["tel-e164"]["text"], *paren);
    assert_eq!(dom["tel-dashed"]["href"], format!("tel:{number}"));
    assert_eq!(dom["tel-ext"]["href"], format!("tel:{number};ext=12"), "parameters after ';' are kept");

    let untouched = [
        ("tel-other", "href", "tel:+15550100001"),
        ("web-link", "href", "https://example.com/?n=5550100000"),
        ("trap-script", "text", r#"(function () { var sitePhone = "555-010-0000"; })();"#),
        ("trap-style", "text", r#".phone::after { content: "555-010-0000"; }"#),
        ("trap-textarea", "value", "555-010-0000"),
        ("trap-textarea", "text", "555-010-0000"),
        ("trap-input", "value", "555-010-0000"),
        ("trap-option", "text", "555-010-0000"),
        ("trap-editable", "text", "555-010-0000 555-010-0000"),
        ("trap-attributes", "title", "555-010-0000"),
        ("trap-attributes", "data", "555-010-0000"),
        ("trap-other", "text", "555-010-0001"),
        ("trap-longer", "text", "15550100000123"),
        ("trap-continued", "text", "555-010-00001"),
        ("trap-foreign", "text", "+44 555 010 0000"),
    ];
    for (id, field, want) in untouched {
        assert_eq!(dom[id][field], want, "{id}.{field} must not be touched");
    }

    // Content that arrives later: new markup, an appended element, a text node changed in place.
    rig.js(
        "document.getElementById('late').innerHTML = 'Later: <i>555</i>.010.0000'; \
         var p = document.createElement('p'); p.id = 'late-appended'; p.textContent = '+1 555 010 0000'; document.body.appendChild(p); \
         document.getElementById('late-text').firstChild.data = 'Now 555-010-0000';",
    )
    .await;
    let want_late = json!([format!("Later: {}", new_forms[2]), new_forms[5], format!("Now {dashed}")]);
    rig.wait_value("late content swapped", "return ['late', 'late-appended', 'late-text'].map(function (id) { return document.getElementById(id).textContent; })", &want_late)
        .await;

    let view = rig.wait_event("pageview", "/forms").await;
    assert_eq!(view["event"]["number"], number, "the page view carries the number shown: {view}");
    assert_eq!(rig.added_globals().await, json!(["ringpath"]), "the snippet adds only window.ringpath");
    rig.assert_no_errors("/forms", nothing_allowed).await;

    // An international account: UK national and international forms, a source-level number.
    let uk_forms = [
        ("+44 20 7183 8750", "+44 20 7183 0123"),
        ("020 7183 8750", "020 7183 0123"),
        ("+44 (0)20 7183 8750", "+44 (0)20 7183 0123"),
        ("0044 20 7183 8750", "0044 20 7183 0123"),
        ("+442071838750", "+442071830123"),
        ("(020) 7183-8750", "(020) 7183-0123"),
        ("020-7183-8750", "020-7183-0123"),
        ("+44 020 7183 8750", "+44 020 7183 0123"),
    ];
    let mut uk_body: String = uk_forms.iter().enumerate().map(|(i, (f, _))| format!("<p id=\"uk-{i}\">{f}</p>\n")).collect();
    uk_body.push_str(r#"<a id="uk-tel" href="tel:+442071838750">call</a><a id="uk-tel-national" href="tel:02071838750">call</a><p id="uk-other">020 7183 8751</p>"#);
    let uk_attrs = format!(r#"data-account="{UK_ACCOUNT}""#);
    rig.open("/uk", "?utm_source=facebook&utm_medium=social", page(&rig.ingest(), &uk_attrs, "", &uk_body)).await;
    rig.wait_js("the UK source-level number", "return document.getElementById('uk-tel').getAttribute('href') != 'tel:+442071838750'").await;
    let dom = rig.dom().await;
    for (i, (site, want)) in uk_forms.iter().enumerate() {
        assert_eq!(dom[format!("uk-{i}")]["text"], *want, "the UK site number written as {site}");
    }
    assert_eq!(dom["uk-tel"]["href"], format!("tel:{UK_SOCIAL_NUMBER}"));
    assert_eq!(dom["uk-tel-national"]["href"], format!("tel:{UK_SOCIAL_NUMBER}"));
    assert_eq!(dom["uk-other"]["text"], "020 7183 8751");
    let uk_view = rig.wait_event("pageview", "/uk").await;
    assert_eq!((uk_view["account"].as_str(), uk_view["consent"].as_str()), (Some(UK_ACCOUNT), Some("pending")), "{uk_view}");
    assert_eq!(uk_view["event"]["number"], UK_SOCIAL_NUMBER, "{uk_view}");
    rig.assert_no_errors("/uk", nothing_allowed).await;
    rig.stop().await;
}

// ---- 12: a session keeps its number --------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_keeps_its_number_on_the_next_page_without_asking_again() {
    let rig = Rig::start(fixtures::accounts()).await;
    let body = |next: &str| format!(r#"<p id="phone">Call 555-010-0000</p><a id="next" href="{next}">next</a>"#);
    rig.pages.set("/land", page(&rig.ingest(), DEMO_NOT_REQUIRED, "", &body("/next")));
    rig.pages.set("/next", page(&rig.ingest(), DEMO_NOT_REQUIRED, "", &body("/land")));
    // The visit comes from an ad on another site, so the landing page has a referrer.
    let landing = rig.pages.url("/land?utm_source=google&utm_medium=cpc&utm_campaign=spring");
    rig.pages.set("/ad", format!(r#"<!doctype html><a id="ad" href="{landing}">ad</a>"#));
    rig.browser.goto(&rig.pages.url_on("localhost", "/ad")).await.expect("ad page loads");
    rig.js("document.getElementById('ad').click()").await;
    let shown = rig.wait_js("the session number", "var t = document.getElementById('phone'); return t && t.textContent != 'Call 555-010-0000' && t.textContent").await;
    let number = POOL_NUMBERS.iter().find(|n| shown == format!("Call {}", nanp_forms(&n[2..])[1])).unwrap_or_else(|| panic!("not a pool number: {shown}"));

    rig.js("document.getElementById('next').click()").await;
    rig.wait_js("the next page", "return location.pathname == '/next' && document.readyState == 'complete'").await;
    let next = rig.wait_event("pageview", "/next").await;
    assert_eq!(next["event"]["number"], *number, "the next page shows the session's number: {next}");
    assert_eq!(next["event"]["referrer"], landing, "{next}");
    assert_eq!(rig.js("return document.getElementById('phone').textContent").await, shown);
    let land = rig.wait_event("pageview", "/land").await;
    assert_eq!(next["session_id"], land["session_id"], "one session over both pages");

    // /v1/numbers was asked once: its assignment carries the request's
    // referrer; the hold renewals ingest publishes for /v1/collect do not.
    let asked: Vec<Value> = rig.assignments().await.into_iter().filter(|a| !a["referrer"].is_null()).collect();
    assert_eq!(asked.len(), 1, "number requests on Kafka: {asked:#?}");
    assert_eq!((&asked[0]["number"], &asked[0]["session_id"]), (&json!(number), &land["session_id"]));
    assert_eq!((&asked[0]["url"], &asked[0]["referrer"]), (&json!(landing), &json!(rig.pages.url_on("localhost", "/"))));
    assert_eq!(rig.ingest_requests("/v1/numbers", "200").await, 1.0, "ingest's own count of /v1/numbers answers");
    rig.assert_no_errors("/land → /next", nothing_allowed).await;
    rig.stop().await;
}

// ---- 6–8: consent, storage, deletion -----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_consent_nothing_is_stored_and_granting_then_denying_upgrades_and_erases_in_place() {
    let rig = Rig::start(fixtures::accounts()).await;
    let site = rig.pages.origin();
    let body = r#"<p id="phone">555-010-0000</p><a id="tel" href="tel:+15550100000">call</a>"#;

    // Pending (the default): the source-level number, no identifiers, nothing stored.
    rig.open("/quiet", "?utm_source=facebook&utm_medium=social", page(&rig.ingest(), DEMO, "", body)).await;
    let view = rig.wait_event("pageview", "/quiet").await;
    assert_eq!(view["consent"], "pending", "{view}");
    assert!(view["visitor_id"].is_null() && view["session_id"].is_null(), "no ids without consent: {view}");
    assert!(is_hex32(&view["page_id"]), "a per-page id instead: {view}");
    assert_eq!(view["event"]["number"], SOCIAL_NUMBER, "{view}");
    assert_eq!(rig.js("return document.getElementById('phone').textContent").await, "555-010-8001");
    assert!(rig.writes().await.is_empty(), "writes while pending: {:?}", rig.writes().await);
    assert!(rig.browser.all_cookies().await.expect("jar").is_empty(), "cookies while pending");
    assert!(rig.browser.cookies().await.expect("WebDriver cookies").is_empty());
    let stored = rig.browser.storage(&site).await.expect("site storage");
    assert!(stored.is_empty(), "the site's storage while pending: {stored:?}");
    // The collector's origin too (a document of it must be open for DevTools to look).
    rig.browser.goto(&format!("{}/healthz", rig.ingest())).await.expect("ingest page");
    let collector = rig.browser.storage(&rig.ingest()).await.expect("collector storage");
    assert!(collector.is_empty(), "the collector's storage: {collector:?}");
    assert!(rig.browser.all_cookies().await.expect("jar").is_empty(), "cookies after leaving a pending page");

    // Pending on a paid-search visit: no pool number without consent, so no /v1/numbers call.
    rig.open("/consent", "?utm_source=google&utm_medium=cpc", page(&rig.ingest(), DEMO, "", body)).await;
    let view = rig.wait_event("pageview", "/consent").await;
    assert_eq!((view["consent"].as_str(), view["event"].get("number")), (Some("pending"), None), "{view}");
    // The page view waits for the DNI decision, and a number is handed out only once its assignment is on Kafka.
    assert!(rig.assignments().await.is_empty(), "no number assignment while pending");
    assert_eq!(rig.ingest_requests("/v1/numbers", "200").await, 0.0);
    assert!(rig.writes().await.is_empty(), "writes while pending: {:?}", rig.writes().await);
    assert!(rig.browser.storage(&site).await.expect("site storage").is_empty());

    // Grant: upgraded in place to a pool number, ids in cookies, and the tripwire sees it.
    rig.js("ringpath('consent', 'granted')").await;
    let shown = rig.wait_js("the upgrade to a session number", "var t = document.getElementById('phone').textContent; return t != '555-010-0000' && t").await;
    let number = POOL_NUMBERS.iter().find(|n| shown == nanp_forms(&n[2..])[1]).unwrap_or_else(|| panic!("not a pool number: {shown}"));
    assert_eq!(rig.js("return document.getElementById('tel').getAttribute('href')").await, format!("tel:{number}"));
    let jar = rig.wait_cookies("ids after the grant", |j| j.contains_key("_rp_vid") && j.contains_key("_rp_sid") && j.contains_key("_rp_num")).await;
    assert_eq!(jar["_rp_num"], *number);
    let writes = rig.writes().await;
    assert!(writes.iter().any(|w| w.starts_with("cookie _rp_vid=")), "the tripwire saw the grant's writes: {writes:?}");
    let stored = rig.browser.storage(&site).await.expect("site storage");
    assert_eq!(stored.cookies.len(), 3, "cookies only: {stored:?}");
    assert!(stored.local.is_empty() && stored.session.is_empty() && stored.indexeddb.is_empty(), "{stored:?}");
    rig.js("ringpath('event', 'after_grant')").await;
    let after = rig.wait_event("after_grant", "/consent").await;
    assert_eq!(after["consent"], "granted");
    assert_eq!((after["visitor_id"].as_str(), after["session_id"].as_str()), (Some(jar["_rp_vid"].as_str()), Some(jar["_rp_sid"].as_str())));
    let assigned = rig.assignments().await;
    assert!(assigned.iter().any(|a| a["number"] == *number && a["session_id"] == jar["_rp_sid"].as_str()), "{assigned:#?}");

    // Deny: every _rp_ cookie leaves the jar at once, the site number comes back.
    let before_denial = rig.writes().await.len();
    rig.js("ringpath('consent', 'denied')").await;
    assert_eq!(rig.js("return document.getElementById('phone').textContent").await, "555-010-0000", "the number is withdrawn at once");
    assert_eq!(rig.js("return document.getElementById('tel').getAttribute('href')").await, format!("tel:{SITE_NUMBER}"));
    rig.wait_cookies("deletion on denial", |j| j.is_empty()).await;
    rig.js("ringpath('event', 'after_denial')").await;
    let after = rig.wait_event("after_denial", "/consent").await;
    assert_eq!(after["consent"], "denied");
    assert!(after["visitor_id"].is_null() && after["session_id"].is_null(), "{after}");
    let since_denial: Vec<String> = rig.writes().await.split_off(before_denial);
    assert!(!since_denial.is_empty(), "the denial deleted through document.cookie");
    assert!(since_denial.iter().all(|w| w.starts_with("cookie _rp_") && w.contains("=; ") && w.contains("Max-Age=0")), "only deletions after denial: {since_denial:?}");
    assert!(rig.rp_cookies().await.is_empty());
    rig.assert_no_errors("/quiet, /consent", nothing_allowed).await;
    rig.stop().await;
}

/// One consent precedence case: signals on the page, the state at load, then
/// an optional later signal (`then`, page JS) and the state after it.
struct Precedence {
    name: &'static str,
    attrs: &'static str,
    head: String,
    at_load: &'static str,
    then: Option<(&'static str, &'static str)>,
    /// A `_rp_vid` from an earlier visit is in the jar at load.
    old_cookie: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_signals_rank_gpc_then_explicit_then_tcf_then_consent_mode_then_the_attribute() {
    let rig = Rig::start(fixtures::accounts()).await;
    let cases = [
        Precedence {
            name: "gpc-over-everything",
            attrs: DEMO_NOT_REQUIRED,
            head: format!("{GPC}{}{}", tcf(true), consent_mode("granted")),
            at_load: "denied",
            then: Some(("ringpath('consent', 'granted')", "denied")),
            old_cookie: true,
        },
        Precedence {
            name: "tcf-over-attribute",
            attrs: DEMO_NOT_REQUIRED,
            head: tcf(false),
            at_load: "denied",
            then: Some(("ringpath('consent', 'granted')", "granted")),
            old_cookie: false,
        },
        Precedence {
            name: "tcf-grant-explicit-denial",
            attrs: DEMO,
            head: tcf(true),
            at_load: "granted",
            then: Some(("ringpath('consent', 'denied')", "denied")),
            old_cookie: false,
        },
        Precedence {
            name: "tcf-over-consent-mode",
            attrs: DEMO,
            head: format!("{}{}", tcf(false), consent_mode("granted")),
            at_load: "denied",
            then: Some(("gtag('consent', 'update', {analytics_storage: 'granted'})", "denied")),
            old_cookie: false,
        },
        Precedence {
            name: "consent-mode-over-attribute",
            attrs: DEMO_NOT_REQUIRED,
            head: consent_mode("denied"),
            at_load: "denied",
            then: Some(("gtag('consent', 'update', {analytics_storage: 'granted'})", "granted")),
            old_cookie: false,
        },
        Precedence { name: "consent-mode-grant", attrs: DEMO, head: consent_mode("granted"), at_load: "granted", then: None, old_cookie: false },
        Precedence { name: "attribute-not-required", attrs: DEMO_NOT_REQUIRED, head: String::new(), at_load: "granted", then: None, old_cookie: false },
    ];
    let body = r#"<p id="phone">555-010-0000</p>"#;
    for case in &cases {
        let path = format!("/{}", case.name);
        rig.pages.set(&path, page(&rig.ingest(), case.attrs, &case.head, body));
        rig.browser.goto("about:blank").await.expect("about:blank");
        rig.browser.clear_cookies().await.expect("cookies cleared");
        if case.old_cookie {
            rig.browser.set_cookie(&rig.pages.origin(), "_rp_vid", "0123456789abcdef0123456789abcdef").await.expect("old cookie");
        }
        rig.browser.goto(&rig.pages.url(&format!("{path}?utm_source=google&utm_medium=cpc"))).await.expect("page loads");
        let view = rig.wait_event("pageview", &path).await;
        assert_eq!(view["consent"], case.at_load, "{}: consent at load: {view}", case.name);
        expect_storage(&rig, case.name, case.at_load, 0).await;
        if let Some((signal, want)) = case.then {
            let written = rig.writes().await.len();
            rig.js(&format!("{signal}; ringpath('event', 'after_signal')")).await;
            let after = rig.wait_event("after_signal", &path).await;
            assert_eq!(after["consent"], want, "{}: consent after {signal}: {after}", case.name);
            expect_storage(&rig, case.name, want, written).await;
            let phone = "return document.getElementById('phone').textContent";
            if want == "granted" {
                rig.wait_js(&format!("{}: a pool number once granted", case.name), &format!("{phone} != '555-010-0000'")).await;
            } else {
                assert_eq!(rig.js(phone).await, "555-010-0000", "{}: the site number when {want}", case.name);
            }
        }
        rig.assert_no_errors(case.name, nothing_allowed).await;
    }
    rig.stop().await;
}

/// Granted: the ids are in the jar. Otherwise: no `_rp_` cookie, and the
/// page wrote nothing but deletions since its `since`-th recorded write.
async fn expect_storage(rig: &Rig, case: &str, consent: &str, since: usize) {
    if consent == "granted" {
        rig.wait_cookies(&format!("{case}: ids when granted"), |j| j.contains_key("_rp_vid") && j.contains_key("_rp_sid")).await;
        return;
    }
    rig.wait_cookies(&format!("{case}: no _rp_ cookie when {consent}"), |j| j.is_empty()).await;
    let writes = rig.writes().await.split_off(since);
    assert!(writes.iter().all(|w| w.contains("=; ") && w.contains("Max-Age=0")), "{case}: writes when {consent}: {writes:?}");
}

// ---- 9: failures -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_config_or_number_requests_and_unknown_accounts_leave_the_page_as_it_was() {
    let rig = Rig::start(fixtures::accounts()).await;
    let body = r#"<p id="phone">Call (555) 010-0000</p><a id="tel" href="tel:+15550100000">call</a>"#;
    let untouched = "return [document.getElementById('phone').textContent, document.getElementById('tel').getAttribute('href')]";
    let as_written = json!(["Call (555) 010-0000", "tel:+15550100000"]);
    let blocked = |path: &'static str| move |m: &ConsoleMessage| m.source == "network" && m.message.contains(path);

    for (path, block) in [("/no-config", "*/v1/config/*"), ("/no-number", "*/v1/numbers")] {
        rig.browser.block_urls(&[block]).await.expect("blocking");
        rig.open(path, "?utm_source=google&utm_medium=cpc", page(&rig.ingest(), DEMO_NOT_REQUIRED, "", body)).await;
        let view = rig.wait_event("pageview", path).await;
        assert!(view["event"].get("number").is_none(), "{path}: no number without {block}: {view}");
        assert_eq!(view["consent"], "granted");
        assert_eq!(rig.js(untouched).await, as_written, "{path}: the page keeps its own number");
        let tried = rig.browser.network_log().await.expect("network log").iter().any(|e| {
            e["method"] == "Network.requestWillBeSent" && e["params"]["request"]["url"].as_str().is_some_and(|u| u.contains(block.trim_matches('*')))
        });
        assert!(tried, "{path}: the tracker asked for {block} (and the browser failed it)");
        rig.assert_no_errors(path, blocked(if path == "/no-config" { "/v1/config/" } else { "/v1/numbers" })).await;
    }
    assert!(rig.assignments().await.is_empty(), "no number was assigned");
    rig.browser.block_urls(&[]).await.expect("unblocking");

    // An account ingest does not know: config answers 400, the beacon is dead-lettered, the page is fine.
    rig.open("/nope", "?utm_source=google&utm_medium=cpc", page(&rig.ingest(), r#"data-account="acc_nope" data-consent="not-required""#, "", body)).await;
    let dlq = &rig.stack.topics.dlq;
    let started = Instant::now();
    let rejected = loop {
        let msgs = rig.topic(dlq).await;
        if let Some(m) = msgs.into_iter().find(|m| m["account"] == "acc_nope") {
            break m;
        }
        assert!(started.elapsed() < WAIT, "the unknown account's beacon never reached the dead-letter topic");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(rejected["stage"], "/v1/collect", "{rejected}");
    assert!(rejected["payload"].as_str().is_some_and(|p| p.contains("\"pageview\"")), "{rejected}");
    assert_eq!(rig.js(untouched).await, as_written);
    assert!(on(&rig.events().await, "pageview", "/nope").is_empty(), "nothing accepted for acc_nope");
    assert_eq!(rig.ingest_requests("/v1/config/{account}", "400").await, 1.0);
    // The failed requests are the browser's to report; nothing else may be.
    rig.assert_no_errors("/nope", |m| blocked("/v1/config/acc_nope")(m) || blocked("/v1/collect")(m)).await;
    rig.stop().await;
}

// ---- 5, 10, 11: beacons, SPA views, the page's safety -------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_beacon_reaches_kafka_with_the_fields_the_pipeline_needs() {
    let rig = Rig::start(fixtures::accounts()).await;
    let head = "<script>window.ringpath = window.ringpath || function () { (ringpath.q = ringpath.q || []).push(arguments); };\n\
                ringpath('event', 'queued_first', {n: 1}); ringpath('consent', 'granted'); ringpath('event', 'queued_second', {n: 2});</script>";
    let body = r#"<p id="phone">(555) 010-0000</p><a id="tel" href="tel:+15550100000">call us</a>
<form id="quote" onsubmit="return false"><input name="contact" value="secret@example.com"><button id="send">send</button></form>"#;
    let query = "?utm_source=google&utm_medium=cpc&utm_campaign=nov&email=ann%40example.org&phone=5550100000&tab=2";
    // Consent comes from the queue (data-consent is the default, required): it applies before anything is stored or sent.
    rig.open("/shop", query, page(&rig.ingest(), DEMO, head, body)).await;
    let landing = rig.pages.url("/shop?utm_source=google&utm_medium=cpc&utm_campaign=nov&tab=2");

    // The first batch: the load's page view, then the queued calls in order.
    let events = rig.wait_events("the first batch", |e| on(e, "queued_second", "/shop").len() == 1).await;
    let first: Vec<&Value> = events.iter().filter(|m| path_of(m["event"]["url"].as_str().unwrap_or_default()) == "/shop").collect();
    assert_eq!(first.iter().map(|m| kind(m)).collect::<Vec<_>>(), ["pageview", "queued_first", "queued_second"], "same visitor key, same partition: Kafka order is send order");
    assert_eq!((&first[1]["event"]["props"], &first[2]["event"]["props"]), (&json!({"n": 1}), &json!({"n": 2})));
    let view = first[0];
    let jar = rig.wait_cookies("ids", |j| j.contains_key("_rp_vid") && j.contains_key("_rp_sid")).await;
    let number = jar.get("_rp_num").cloned().unwrap_or_default();
    assert!(POOL_NUMBERS.contains(&number.as_str()), "a pool number: {jar:?}");
    assert_eq!(view["account"], DEMO_ACCOUNT);
    assert_eq!(view["consent"], "granted");
    assert_eq!((view["visitor_id"].as_str(), view["session_id"].as_str()), (Some(jar["_rp_vid"].as_str()), Some(jar["_rp_sid"].as_str())), "ids = the browser's cookies");
    assert!(is_hex32(&view["visitor_id"]) && is_hex32(&view["page_id"]) && is_hex32(&view["event"]["id"]), "{view}");
    assert_eq!(view["event"]["url"], landing, "personal data stripped, campaign and other parameters kept");
    assert!(view["event"]["referrer"].is_null(), "a direct visit: {view}");
    assert_eq!(view["event"]["title"], TITLE);
    assert_eq!(view["event"]["number"], number, "the number shown");
    assert_eq!(view["event"]["props"], json!({}));
    assert!(view["screen"].as_str().is_some_and(|s| s.split_once('x').is_some_and(|(w, h)| w.parse::<u32>().is_ok() && h.parse::<u32>().is_ok())), "{view}");
    assert!(view["lang"].as_str().is_some_and(|s| !s.is_empty()) && view["tz"].as_str().is_some_and(|s| !s.is_empty()), "{view}");
    assert_eq!(view["ip"], "127.0.0.1");
    assert!(view["user_agent"].as_str().is_some_and(|ua| ua.contains("Chrome/")), "{view}");
    let now = ringpath_tests::ingest_support::now_ms();
    assert!(view["event"]["ts"].as_i64().is_some_and(|ts| (now - 60_000..=now).contains(&ts)), "{view}");
    // The cookies' attributes, as WebDriver reports them: first-party, Lax, the documented lifetimes.
    let cookies = rig.browser.cookies().await.expect("cookies");
    for (name, lifetime_s) in [("_rp_vid", 395 * 86_400), ("_rp_sid", 1_800), ("_rp_num", 1_800)] {
        let cookie = cookies.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{name} in {cookies:?}"));
        assert_eq!((&cookie["sameSite"], &cookie["path"], &cookie["httpOnly"]), (&json!("Lax"), &json!("/"), &json!(false)), "{cookie}");
        let left_s = cookie["expiry"].as_i64().unwrap_or_default() - now / 1000;
        assert!((lifetime_s - 120..=lifetime_s + 5).contains(&left_s), "{name} expires in {left_s} s, want {lifetime_s}");
    }

    // One global; nothing the page passes makes it throw.
    assert_eq!(rig.added_globals().await, json!([]), "the queue stub was window.ringpath; the snippet replaced it and added nothing");
    let hostile = "try { ringpath('event', {toString: null}); ringpath(); ringpath('consent', 42); \
                   ringpath('event', 'hostile_props', {toJSON: function () { throw new Error('boom'); }}); return 'ok'; } catch (e) { return 'threw ' + e; }";
    assert_eq!(rig.js(hostile).await, "ok");

    // Clicks, a form, custom events, SPA navigation.
    rig.js("document.getElementById('tel').click(); document.getElementById('send').click(); \
            ringpath('event', 'Booked Call!', {plan: 'pro', seats: 3}); ringpath('event', 'too_deep', {a: {b: {c: {d: {e: 1}}}}});")
        .await;
    rig.js("history.pushState({}, '', '/shop/next?phone=5550100000&step=1'); history.replaceState({}, '', '/shop/next?step=2'); \
            history.replaceState({}, '', '/shop/final');")
        .await;
    rig.wait_event("pageview", "/shop/final").await;
    rig.js("history.back()").await;
    let events = rig.wait_events("the popstate page view", |e| on(e, "pageview", "/shop").len() == 2).await;

    let one = |k: &str, path: &str| {
        let found = on(&events, k, path);
        assert_eq!(found.len(), 1, "one {k} on {path}: {:#?}", summary(&events));
        found[0].clone()
    };
    assert_eq!(one("call_click", "/shop")["event"]["props"], json!({"tel": format!("tel:{number}")}));
    assert_eq!(one("form_submit", "/shop")["event"]["props"], json!({"form": "quote"}), "the form's id, never its fields");
    assert_eq!(one("booked_call_", "/shop")["event"]["props"], json!({"plan": "pro", "seats": 3}));
    assert_eq!(one("too_deep", "/shop")["event"]["props"], json!({}), "props deeper than 4 levels are dropped, the event kept");
    assert_eq!(one("hostile_props", "/shop")["event"]["props"], json!({}));
    let next = one("pageview", "/shop/next");
    assert_eq!(next["event"]["url"], rig.pages.url("/shop/next?step=1"), "pushState: phone= stripped");
    assert_eq!(next["event"]["referrer"], landing, "an SPA view's referrer is the previous view");
    let last = one("pageview", "/shop/final");
    assert_eq!(last["event"]["referrer"], rig.pages.url("/shop/next?step=1"), "replaceState with a new path is a view");
    let back = on(&events, "pageview", "/shop")[1].clone();
    assert_eq!((&back["event"]["url"], &back["event"]["referrer"]), (&json!(landing), &json!(rig.pages.url("/shop/final"))), "popstate");
    assert!(events.iter().filter(|m| m["event"]["url"].as_str().is_some_and(|u| u.contains("step=2"))).count() == 0, "replaceState changing only the query is not a view");
    for e in &events {
        assert_eq!((e["consent"].as_str(), e["visitor_id"].as_str()), (Some("granted"), Some(jar["_rp_vid"].as_str())), "{e}");
    }

    // Leaving the page sends how long it was visible.
    let engaged = on(&events, "engagement", "/shop").len();
    rig.browser.goto("about:blank").await.expect("about:blank");
    let events = rig.wait_events("engagement on pagehide", |e| on(e, "engagement", "/shop").len() > engaged).await;
    let parting = on(&events, "engagement", "/shop").last().map(|v| (*v).clone()).unwrap_or_default();
    assert!(parting["event"]["props"]["visible_ms"].as_i64().is_some_and(|ms| ms > 0), "{parting}");
    assert_eq!(on(&events, "pageview", "/shop").len() + on(&events, "pageview", "/shop/next").len() + on(&events, "pageview", "/shop/final").len(), 4);

    // Nothing typed into the form, and no personal data from the URL, anywhere on Kafka.
    for topic in [&rig.stack.topics.events, &rig.stack.topics.assignments, &rig.stack.topics.dlq] {
        for m in rig.topic(topic).await {
            let text = m.to_string();
            for secret in ["secret@example.com", "ann%40example.org", "ann@example.org"] {
                assert!(!text.contains(secret), "{secret} reached {topic}: {text}");
            }
        }
    }

    // Every batch went by sendBeacon (a "Ping"), as text/plain, and ingest took each with a 204.
    let log = rig.browser.network_log().await.expect("network log");
    let beacons: Vec<&Value> = log
        .iter()
        .filter(|e| e["method"] == "Network.requestWillBeSent" && e["params"]["request"]["url"].as_str().is_some_and(|u| u.ends_with("/v1/collect")))
        .collect();
    assert!(beacons.len() >= 8, "batches sent: {}", beacons.len());
    for b in &beacons {
        let headers = b["params"]["request"]["headers"].as_object().cloned().unwrap_or_default();
        let ctype = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-type")).and_then(|(_, v)| v.as_str()).unwrap_or_default();
        assert_eq!(b["params"]["type"], "Ping", "sent by navigator.sendBeacon: {b}");
        assert!(ctype.starts_with("text/plain"), "content type {ctype:?}");
    }
    let statuses: Vec<i64> = log
        .iter()
        .filter(|e| e["method"] == "Network.responseReceived" && e["params"]["response"]["url"].as_str().is_some_and(|u| u.ends_with("/v1/collect")))
        .filter_map(|e| e["params"]["response"]["status"].as_i64())
        .collect();
    assert!(!statuses.is_empty() && statuses.iter().all(|s| *s == 204), "ingest's answers to the beacons: {statuses:?}");
    rig.assert_no_errors("/shop", nothing_allowed).await;
    rig.stop().await;
}

/// Text cut by UTF-16 units can end between the two halves of an emoji: a
/// page's title (cut at 300), a form's id (100), a tel: link (64), or an
/// event's props (a page's own `str.slice`). Such a lone half made the batch
/// JSON invalid for ingest's parser, and every event in it (the page view
/// too) went to the dead-letter topic instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_cut_inside_an_emoji_does_not_lose_the_pages_events() {
    let rig = Rig::start(fixtures::accounts()).await;
    let (a299, x99) = ("a".repeat(299), "x".repeat(99));
    let tel = format!("tel:+15550100000;n={}", "9".repeat(63 - "tel:+15550100000;n=".len()));
    let head = "<script>window.ringpath = window.ringpath || function () { (ringpath.q = ringpath.q || []).push(arguments); };\n\
                ringpath('event', 'cut_name', {name: 'Ann 😀'.slice(0, 5)});</script>";
    let body = format!(
        r#"<form id="{x99}😀" onsubmit="return false"><button id="send">send</button></form><a id="tel" href="{tel}😀" onclick="return false">call</a>"#
    );
    let html = page(&rig.ingest(), DEMO_NOT_REQUIRED, head, &body).replace(TITLE, &format!("{a299}😀 and more"));
    rig.open("/cut", "", html).await;
    // The first batch (page view, queued event) tells the tracker is running; then the clicks.
    wait_accepted(&rig, "/cut", &["pageview", "cut_name"]).await;
    rig.js("document.getElementById('send').click(); document.getElementById('tel').click();").await;
    let events = wait_accepted(&rig, "/cut", &["form_submit", "call_click"]).await;
    let first = |k: &str| on(&events, k, "/cut")[0].clone();
    assert_eq!(first("pageview")["event"]["title"], a299, "cut before the emoji, not inside it");
    assert_eq!(first("form_submit")["event"]["props"], json!({"form": x99}));
    assert_eq!(first("call_click")["event"]["props"], json!({"tel": tel}));
    assert_eq!(first("cut_name")["event"]["props"], json!({}), "unusable props are dropped, the event kept");
    rig.assert_no_errors("/cut", nothing_allowed).await;
    rig.stop().await;
}

/// Waits for events of each of `kinds` on `path`; fails at once when ingest dead-letters anything.
async fn wait_accepted(rig: &Rig, path: &str, kinds: &[&str]) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let events = rig.events().await;
        if kinds.iter().all(|k| !on(&events, k, path).is_empty()) {
            return events;
        }
        let rejected: Vec<Value> = rig.topic(&rig.stack.topics.dlq).await.iter().map(|m| m["reason"].clone()).collect();
        assert!(rejected.is_empty(), "the page's events were rejected: {rejected:?}");
        assert!(started.elapsed() < WAIT, "not every one of {kinds:?} reached Kafka: {:#?}", summary(&events));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
