//! The browser adapter: reads the script tag, keeps the page's tracking state
//! and sends event batches. Everything that touches `window` lives under
//! `web`; the decisions it applies come from the pure modules.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::batch::{self, Envelope, Event};
use crate::consent::{self, Consent, Signals};

#[wasm_bindgen]
extern "C" {
    // Helpers defined by name in rp.js's outer function (js/tail.js); the
    // glue resolves them lexically, so they never become globals.
    fn rp_send(url: &str, body: &str);
}

struct Tracker {
    endpoint: String,
    envelope: Envelope,
    signals: Signals,
    queue: Vec<Event>,
}

thread_local! {
    static TRACKER: RefCell<Option<Tracker>> = const { RefCell::new(None) };
}

/// Runs `f` on the tracker unless it is missing or already borrowed (a
/// re-entrant browser callback): such calls are dropped rather than trapping.
fn with_tracker<R>(f: impl FnOnce(&mut Tracker) -> R) -> Option<R> {
    TRACKER.with(|cell| cell.try_borrow_mut().ok()?.as_mut().map(f))
}

fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// 128 random bits as 32 lower-case hex digits.
fn random_id() -> String {
    let mut bytes = [0u8; 16];
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .is_some_and(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok());
    if !filled {
        for b in bytes.iter_mut() {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    let mut out = String::with_capacity(32);
    for b in bytes {
        out.push(crate::json::hex_digit(b >> 4));
        out.push(crate::json::hex_digit(b & 0xf));
    }
    out
}

/// `scheme://host[:port]` of an absolute URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..].find(['/', '?', '#']).map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

/// Called once by rp.js with its own `<script>` element and the calls queued
/// on the `ringpath` stub before the module loaded.
#[wasm_bindgen]
pub fn start(script: web_sys::Element, queue: js_sys::Array) {
    let Some(window) = web_sys::window() else { return };
    let Some(account) = script.get_attribute("data-account").filter(|a| !a.is_empty()) else { return };
    let src = js_sys::Reflect::get(&script, &"src".into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
    let endpoint = script
        .get_attribute("data-endpoint")
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| origin_of(&src).to_owned());
    let signals = Signals {
        not_required: consent::attribute_waives_consent(script.get_attribute("data-consent").as_deref()),
        ..Signals::default()
    };
    let navigator = window.navigator();
    let screen = window.screen().ok().and_then(|s| {
        let (w, h) = (s.width().ok()?, s.height().ok()?);
        let mut out = String::new();
        crate::json::push_int(&mut out, w.into());
        out.push('x');
        crate::json::push_int(&mut out, h.into());
        Some(out)
    });
    let tz = js_sys::Reflect::get(
        &js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new()).resolved_options(),
        &"timeZone".into(),
    )
    .ok()
    .and_then(|v| v.as_string());
    let envelope = Envelope {
        account,
        visitor_id: None,
        session_id: None,
        page_id: random_id(),
        screen,
        lang: navigator.language(),
        tz,
    };
    let tracker = Tracker { endpoint: endpoint.trim_end_matches('/').to_owned(), envelope, signals, queue: Vec::new() };
    TRACKER.with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            *slot = Some(tracker);
        }
    });
    // The load's page view comes first; calls queued before the module
    // loaded follow in order and leave in the same batch.
    track("pageview", None);
    for call in queue.iter() {
        let args = js_sys::Array::from(&call);
        command(args.get(0), args.get(1), args.get(2));
    }
    flush();
}

const VISITOR_COOKIE: &str = "_rp_vid";
const SESSION_COOKIE: &str = "_rp_sid";
const VISITOR_MAX_AGE_S: i64 = 395 * 24 * 3600;
const SESSION_MAX_AGE_S: i64 = 30 * 60;

fn html_document() -> Option<web_sys::HtmlDocument> {
    web_sys::window()?.document()?.dyn_into().ok()
}

fn read_cookie(name: &str) -> Option<String> {
    let all = html_document()?.cookie().ok()?;
    all.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name && !v.is_empty()).then(|| v.to_owned())
    })
}

/// Writes (or with `max_age_s == 0` deletes) a first-party cookie.
fn write_cookie(name: &str, value: &str, max_age_s: i64) {
    let Some(doc) = html_document() else { return };
    let secure = web_sys::window().and_then(|w| w.location().protocol().ok()).is_some_and(|p| p == "https:");
    let mut cookie = [name, "=", value, "; Path=/; SameSite=Lax; Max-Age="].concat();
    crate::json::push_int(&mut cookie, max_age_s);
    if secure {
        cookie.push_str("; Secure");
    }
    let _ = doc.set_cookie(&cookie);
}

/// With consent: reuse or create the visitor and session ids and roll the
/// session cookie's 30 minutes forward. Without: forget them (no storage).
fn sync_identity(t: &mut Tracker, consent: Consent) {
    if consent != Consent::Granted {
        t.envelope.visitor_id = None;
        t.envelope.session_id = None;
        return;
    }
    let visitor = t.envelope.visitor_id.clone().or_else(|| read_cookie(VISITOR_COOKIE)).unwrap_or_else(random_id);
    let session = t.envelope.session_id.clone().or_else(|| read_cookie(SESSION_COOKIE)).unwrap_or_else(random_id);
    write_cookie(VISITOR_COOKIE, &visitor, VISITOR_MAX_AGE_S);
    write_cookie(SESSION_COOKIE, &session, SESSION_MAX_AGE_S);
    t.envelope.visitor_id = Some(visitor);
    t.envelope.session_id = Some(session);
}

/// `ringpath(name, arg1, arg2)`: the public command API (SPEC §2).
#[wasm_bindgen]
pub fn command(name: JsValue, arg1: JsValue, arg2: JsValue) {
    let name = name.as_string().unwrap_or_default();
    match name.as_str() {
        "page" => {
            track("pageview", None);
            flush();
        }
        "event" => {
            let Some(kind) = arg1.as_string().filter(|k| !k.is_empty()) else { return };
            let props = if arg2.is_object() { js_sys::JSON::stringify(&arg2).ok().and_then(|s| s.as_string()) } else { None };
            track(&kind, props);
            flush();
        }
        "consent" => {
            let granted = match arg1.as_string().as_deref() {
                Some("granted") => true,
                Some("denied") => false,
                _ => return,
            };
            with_tracker(|t| t.signals.explicit = Some(granted));
        }
        _ => {}
    }
}

fn track(kind: &str, props: Option<String>) {
    let Some(window) = web_sys::window() else { return };
    let document = window.document();
    let url = window.location().href().unwrap_or_default();
    let referrer = document.as_ref().map(|d| d.referrer()).unwrap_or_default();
    let title = document.as_ref().map(|d| d.title());
    with_tracker(|t| {
        t.queue.push(Event {
            id: random_id(),
            kind: kind.to_owned(),
            ts: now_ms(),
            url: crate::pii::strip_url(&url),
            referrer: Some(crate::pii::strip_url(&referrer)),
            title,
            number: None,
            props: props.unwrap_or_else(|| "{}".to_owned()),
        });
    });
}

fn flush() {
    let Some((url, body)) = with_tracker(|t| {
        if t.queue.is_empty() {
            return None;
        }
        let consent: Consent = t.signals.resolve();
        sync_identity(t, consent);
        let body = batch::to_json(&t.envelope, consent, now_ms(), &t.queue);
        t.queue.clear();
        Some(([t.endpoint.as_str(), "/v1/collect"].concat(), body))
    })
    .flatten() else {
        return;
    };
    rp_send(&url, &body);
}

