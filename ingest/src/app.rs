//! The collector's HTTP surface (README "Collector (ingest)"): routes, shared state and the
//! handlers. Parsing and checks live in `validate`, number holds in `numbers`,
//! Kafka behind `sink::Sink`; this module only wires them to HTTP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use futures_util::StreamExt;
use ringpath_types::accounts::{Account, AccountsFile};
use ringpath_types::wire::{
    AssignmentMessage, Batch, CallMessage, CallRecord, DlqMessage, NumberKind, NumbersRequest, NumbersResponse, Received,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::assets::Assets;
use crate::client_ip::client_ip;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::numbers::PoolState;
use crate::ratelimit::RateLimiter;
use crate::settings::Settings;
use crate::sink::{Record, Sink, SinkError};
use crate::validate::{self, MAX_BODY_BYTES};

/// 1×1 transparent GIF for the pixel fallback.
const GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// Wall-clock time in epoch milliseconds, plus an offset that only tests move
/// (to expire number holds without waiting half an hour).
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn now_ms(&self) -> i64 {
        now_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Moves this collector's clock forward (tests of hold expiry).
    pub fn advance(&self, by: Duration) {
        self.offset_ms.fetch_add(by.as_millis() as i64, Ordering::Relaxed);
    }
}

pub struct AppState {
    pub settings: Settings,
    pub clock: Clock,
    pub accounts: RwLock<Arc<AccountsFile>>,
    /// (account, pool id) → holds.
    pub pools: Mutex<HashMap<(String, String), PoolState>>,
    pub sink: Arc<dyn Sink>,
    pub metrics: Metrics,
    pub limiter: RateLimiter,
    pub assets: RwLock<Arc<Assets>>,
    pub shutting_down: AtomicBool,
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl AppState {
    pub fn new(settings: Settings, accounts: AccountsFile, sink: Arc<dyn Sink>) -> AppState {
        let assets = Assets::load(&settings.assets_dir);
        let limiter = RateLimiter::new(settings.rate_per_client, settings.rate_burst);
        let state = AppState {
            settings,
            clock: Clock::default(),
            accounts: RwLock::new(Arc::new(AccountsFile::default())),
            pools: Mutex::new(HashMap::new()),
            sink,
            metrics: Metrics::new(),
            limiter,
            assets: RwLock::new(Arc::new(assets)),
            shutting_down: AtomicBool::new(false),
        };
        state.install_accounts(accounts);
        state
    }

    pub fn accounts(&self) -> Arc<AccountsFile> {
        self.accounts.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Swaps in a new accounts file, keeping live holds on numbers that stay in their pool.
    pub fn install_accounts(&self, file: AccountsFile) {
        {
            let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
            let mut next = HashMap::new();
            for acc in &file.account {
                for pool in &acc.dni.pool {
                    let key = (acc.id.clone(), pool.id.clone());
                    let state = match pools.remove(&key) {
                        Some(mut s) => {
                            s.reconfigure(&pool.numbers);
                            s
                        }
                        None => PoolState::new(&pool.numbers),
                    };
                    next.insert(key, state);
                }
            }
            *pools = next;
        }
        *self.accounts.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(file);
    }

    pub fn reload(&self) -> Result<(), String> {
        let parsed = std::fs::read_to_string(&self.settings.config_path)
            .map_err(|e| format!("{}: {e}", self.settings.config_path.display()))
            .and_then(|text| AccountsFile::parse(&text));
        let file = match parsed {
            Ok(file) => file,
            Err(e) => {
                self.metrics.config_reloads.with_label_values(&["failed"]).inc();
                return Err(e);
            }
        };
        self.install_accounts(file);
        *self.assets.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Assets::load(&self.settings.assets_dir));
        self.metrics.config_reloads.with_label_values(&["ok"]).inc();
        Ok(())
    }

    fn received(&self, req: &HttpRequest) -> Received {
        let peer = req.peer_addr().map(|a| a.ip()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let xff = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let ip = client_ip(peer, xff, &self.settings.trusted_proxies);
        let user_agent = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
        // At most 512 characters; a header of ≤ 512 bytes has no more than that.
        let user_agent = if user_agent.len() <= 512 { user_agent.to_owned() } else { user_agent.chars().take(512).collect() };
        Received { received_at: self.clock.now_ms(), ip: ip.to_string(), user_agent }
    }

    fn rate_limit(&self, received: &Received) -> Result<(), ApiError> {
        let ip: IpAddr = received.ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        self.limiter.check(ip, received.received_at).map_err(ApiError::RateLimited)
    }

    async fn produce(&self, topic_label: &'static str, records: Vec<Record>) -> Result<(), ApiError> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.settings.produce_timeout + Duration::from_secs(1), self.sink.send(records)).await;
        self.metrics.produce_seconds.with_label_values(&[topic_label]).observe(started.elapsed().as_secs_f64());
        self.metrics.queue_depth.set(self.sink.queue_depth() as i64);
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(SinkError::Rejected(reason))) => Err(ApiError::BadRequest(format!("record rejected by the broker: {reason}"))),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "produce failed; answering 503");
                Err(ApiError::Unavailable(if matches!(e, SinkError::QueueFull) { 1 } else { 5 }))
            }
            Err(_) => Err(ApiError::Unavailable(5)),
        }
    }

    /// The one place a failed request is accounted for: counted by cause and,
    /// for bad input, dead-lettered with its reason. Returns the error to answer with.
    async fn reject(&self, route: &'static str, err: ApiError, account: Option<String>, raw: Option<&[u8]>, received: &Received) -> ApiError {
        self.metrics.events_rejected.with_label_values(&[err.cause()]).inc();
        if err.dead_letter() {
            let raw = raw.unwrap_or_default();
            let account = account.or_else(|| sniff_account(raw));
            self.dead_letter(route, &err, account, raw, received).await;
        }
        err
    }

    /// Publishes a rejected payload with its reason; never fails the request.
    async fn dead_letter(&self, route: &'static str, err: &ApiError, account: Option<String>, raw: &[u8], received: &Received) {
        let payload = String::from_utf8_lossy(&raw[..raw.len().min(MAX_BODY_BYTES)]).into_owned();
        let msg = DlqMessage { stage: route.to_owned(), reason: err.to_string(), account, payload, received: received.clone() };
        let record = Record { topic: self.settings.topics.dlq.clone(), key: route.to_owned(), payload: serde_json::to_vec(&msg).unwrap_or_default() };
        let sent = tokio::time::timeout(self.settings.produce_timeout + Duration::from_secs(1), self.sink.send(vec![record])).await;
        match sent {
            Ok(Ok(())) => self.metrics.dlq_written.with_label_values(&[route]).inc(),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, route, "could not dead-letter a rejected payload");
                self.metrics.dlq_failed.with_label_values(&[route]).inc();
            }
            Err(_) => {
                tracing::warn!(route, "dead-lettering timed out");
                self.metrics.dlq_failed.with_label_values(&[route]).inc();
            }
        }
    }

    /// Beacons may only come from the account's sites. Browsers send `Origin`
    /// on POSTs; an image request (the pixel) carries only `Referer`, so its
    /// origin stands in. Neither header (server-side senders, strict privacy
    /// settings) is let through: the check is against other sites' pages.
    fn check_origin(account: &Account, req: &HttpRequest) -> Result<(), ApiError> {
        if account.allowed_origins.is_empty() {
            return Ok(());
        }
        let header_str = |name| req.headers().get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let origin = match header_str(header::ORIGIN) {
            Some(o) => o,
            None => match header_str(header::REFERER) {
                Some(r) => origin_of(&r),
                None => return Ok(()),
            },
        };
        if account.allowed_origins.iter().any(|o| o.eq_ignore_ascii_case(&origin)) {
            Ok(())
        } else {
            Err(ApiError::ForbiddenOrigin(origin.chars().take(200).collect()))
        }
    }

    /// Refreshes the per-pool gauges from the live holds (scrape time and after assignments).
    fn update_pool_gauges(&self, now: i64) {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        for ((account, pool), st) in pools.iter_mut() {
            let (live, size) = st.utilisation(now);
            self.metrics.pool_live.with_label_values(&[account, pool]).set(live as i64);
            self.metrics.pool_size.with_label_values(&[account, pool]).set(size as i64);
            let ratio = if size == 0 { 0.0 } else { live as f64 / size as f64 };
            self.metrics.pool_utilisation.with_label_values(&[account, pool]).set(ratio);
        }
    }
}

/// `scheme://host[:port]` of a URL, lower-cased; the input itself when it has no path.
fn origin_of(url: &str) -> String {
    let rest_at = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[rest_at..].find(['/', '?', '#']).map(|i| i + rest_at).unwrap_or(url.len());
    url[..end].to_ascii_lowercase()
}

async fn read_raw_body(req: &HttpRequest, mut payload: web::Payload, timeout: Duration) -> Result<web::Bytes, ApiError> {
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(ApiError::TooLarge(MAX_BODY_BYTES));
    }
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("could not read body: {e}")))?;
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ApiError::TooLarge(MAX_BODY_BYTES));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| ApiError::Timeout)?
}

/// A body that could not be used, and its bytes as received (for the dead-letter topic).
type BodyError = (ApiError, Option<web::Bytes>);

/// The body as the handlers parse it: read within the limit, then decoded
/// per `Content-Encoding` with the limit on the decoded size.
async fn read_body(req: &HttpRequest, payload: web::Payload, timeout: Duration) -> Result<web::Bytes, BodyError> {
    let raw = read_raw_body(req, payload, timeout).await.map_err(|e| (e, None))?;
    let coding = req.headers().get(header::CONTENT_ENCODING).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match crate::encoding::decode(coding.as_deref(), &raw, MAX_BODY_BYTES) {
        Ok(None) => Ok(raw),
        Ok(Some(decoded)) => Ok(decoded.into()),
        Err(e @ crate::encoding::DecodeError::TooLarge(_)) => Err((e.into(), None)),
        Err(e) => Err((e.into(), Some(raw))),
    }
}

/// Beacons are JSON, sent as `application/json` (fetch) or `text/plain`
/// (sendBeacon with a string, which avoids a CORS preflight).
fn json_or_text(req: &HttpRequest) -> Result<(), ApiError> {
    let ct = req.headers().get(header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).unwrap_or_default();
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/json" | "text/plain" => Ok(()),
        "" => Err(ApiError::UnsupportedMediaType("(none)".into())),
        _ => Err(ApiError::UnsupportedMediaType(mime.chars().take(100).collect())),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    validate::parse_json(body).map_err(ApiError::BadRequest)
}

/// Account id from a raw body, for dead-letter context, without trusting it.
fn sniff_account(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("account")?.as_str().map(|s| s.chars().take(64).collect())
}

/// Reads a JSON body that must come with a JSON or text content type.
async fn read_json_body(state: &AppState, req: &HttpRequest, payload: web::Payload) -> Result<web::Bytes, BodyError> {
    let body = read_body(req, payload, state.settings.body_timeout).await?;
    json_or_text(req).map_err(|e| (e, Some(body.clone())))?;
    Ok(body)
}

// ---- /v1/collect and /v1/p.gif ----------------------------------------------

async fn collect(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    const ROUTE: &str = "/v1/collect";
    let received = state.received(&req);
    if let Err(e) = state.rate_limit(&received) {
        return Err(state.reject(ROUTE, e, None, None, &received).await);
    }
    let body = match read_body(&req, payload, state.settings.body_timeout).await {
        Ok(b) => b,
        Err((e, raw)) => return Err(state.reject(ROUTE, e, None, raw.as_deref(), &received).await),
    };
    if let Err(e) = json_or_text(&req) {
        return Err(state.reject(ROUTE, e, None, Some(&body), &received).await);
    }
    if let Err(e) = accept_batch(&state, &req, &body, &received).await {
        return Err(state.reject(ROUTE, e, None, Some(&body), &received).await);
    }
    Ok(HttpResponse::NoContent().insert_header(("Access-Control-Allow-Origin", "*")).finish())
}

async fn pixel(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    const ROUTE: &str = "/v1/p.gif";
    let received = state.received(&req);
    if let Err(e) = state.rate_limit(&received) {
        return Err(state.reject(ROUTE, e, None, None, &received).await);
    }
    let body = match validate::pixel_batch(req.query_string()) {
        Ok(b) => b,
        Err(validate::PixelError::TooLarge) => return Err(state.reject(ROUTE, ApiError::TooLarge(validate::MAX_PIXEL_D), None, None, &received).await),
        Err(validate::PixelError::Bad(reason)) => {
            let raw = req.query_string().as_bytes();
            return Err(state.reject(ROUTE, ApiError::BadRequest(reason), None, Some(raw), &received).await);
        }
    };
    if let Err(e) = accept_batch(&state, &req, &body, &received).await {
        return Err(state.reject(ROUTE, e, None, Some(&body), &received).await);
    }
    Ok(HttpResponse::Ok()
        .content_type("image/gif")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .body(GIF))
}

async fn accept_batch(state: &AppState, req: &HttpRequest, body: &[u8], received: &Received) -> Result<(), ApiError> {
    let (records, touch) = prepare_batch(state, req, body, received)?;
    let n = records.len() as u64;
    state.produce("events", records).await?;
    state.metrics.events_accepted.with_label_values(&["event"]).inc_by(n);
    if let Some((account, session, visitor, url)) = touch {
        renew_hold(state, &account, &session, visitor, url, received).await;
    }
    Ok(())
}

type SessionTouch = Option<(String, String, Option<String>, String)>;

fn prepare_batch(state: &AppState, req: &HttpRequest, body: &[u8], received: &Received) -> Result<(Vec<Record>, SessionTouch), ApiError> {
    let batch: Batch = parse_json(body)?;
    let accounts = state.accounts();
    let account = accounts.account(&batch.account).ok_or_else(|| ApiError::UnknownAccount(batch.account.chars().take(64).collect()))?;
    AppState::check_origin(account, req)?;
    let skew = validate::batch(&batch, received.received_at).map_err(ApiError::BadRequest)?;
    let touch = batch.session_id.clone().map(|s| (batch.account.clone(), s, batch.visitor_id.clone(), batch.events[0].url.clone()));
    let records = event_records(&batch, received, skew, &state.settings.topics.events, body.len()).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok((records, touch))
}

/// One record per event of `batch` for `topic`, each an `EventMessage`'s JSON.
/// The batch's fields are the same in every message: written once, each
/// message is that prefix, the event (its `ts` corrected by the browser's
/// clock `skew`), and a closing brace. `body_len` sizes the buffers.
fn event_records(batch: &Batch, received: &Received, skew: i64, topic: &str, body_len: usize) -> serde_json::Result<Vec<Record>> {
    let shared = SharedOut::new(batch, received);
    let head = serde_json::to_vec(&shared)?;
    let head = head.strip_suffix(b"}").unwrap_or(&head);
    let per_event = head.len() + body_len / batch.events.len().max(1) + 64;
    let mut records = Vec::with_capacity(batch.events.len());
    for event in &batch.events {
        let mut payload = Vec::with_capacity(per_event);
        payload.extend_from_slice(head);
        payload.extend_from_slice(b",\"event\":");
        crate::json_out::write_event(&mut payload, event, event.ts + skew)?;
        payload.push(b'}');
        // Kafka key (README "Kafka topics"): visitor, else session, else event id — as `EventMessage::key`.
        let key = shared.visitor_id.or(shared.session_id).unwrap_or(&event.id);
        records.push(Record { topic: topic.to_owned(), key: key.to_owned(), payload });
    }
    Ok(records)
}

/// `EventMessage`'s fields other than `event`, borrowed: the hot path writes
/// them once per batch (`event_records`) and each event after them
/// (`json_out::write_event`). A unit test holds the result byte-for-byte equal
/// to `EventMessage`'s own serialisation, whose field order (shared fields,
/// `received`, then `event`) makes this possible.
#[derive(serde::Serialize)]
struct SharedOut<'a> {
    account: &'a str,
    consent: ringpath_types::wire::Consent,
    visitor_id: Option<&'a str>,
    session_id: Option<&'a str>,
    page_id: Option<&'a str>,
    sent_at: i64,
    screen: Option<&'a str>,
    lang: Option<&'a str>,
    tz: Option<&'a str>,
    #[serde(flatten)]
    received: &'a Received,
}

impl<'a> SharedOut<'a> {
    fn new(b: &'a Batch, received: &'a Received) -> SharedOut<'a> {
        SharedOut {
            account: &b.account,
            consent: b.consent,
            visitor_id: b.visitor_id.as_deref(),
            session_id: b.session_id.as_deref(),
            page_id: b.page_id.as_deref(),
            sent_at: b.sent_at,
            screen: b.screen.as_deref(),
            lang: b.lang.as_deref(),
            tz: b.tz.as_deref(),
            received,
        }
    }
}

/// A session's activity keeps its pool number: extend and publish the hold.
async fn renew_hold(state: &AppState, account: &str, session: &str, visitor: Option<String>, url: String, received: &Received) {
    let accounts = state.accounts();
    let Some(acc) = accounts.account(account) else { return };
    let hold_ms = i64::from(acc.dni.hold_minutes) * 60_000;
    let found = {
        let mut pools = state.pools.lock().unwrap_or_else(|p| p.into_inner());
        pools.iter_mut().filter(|((a, _), _)| a == account).find_map(|((_, pool), st)| st.touch(session, received.received_at, hold_ms).map(|a| (pool.clone(), a)))
    };
    let Some((pool_id, assignment)) = found else { return };
    let msg = AssignmentMessage {
        account: account.to_owned(),
        number: assignment.number.clone(),
        kind: NumberKind::Session,
        pool_id: Some(pool_id),
        session_id: session.to_owned(),
        visitor_id: visitor,
        assigned_at: received.received_at,
        expires_at: assignment.expires_at,
        shared: assignment.shared,
        url,
        referrer: None,
        received: received.clone(),
    };
    let record = Record { topic: state.settings.topics.assignments.clone(), key: assignment.number, payload: serde_json::to_vec(&msg).unwrap_or_default() };
    if let Err(e) = state.produce("assignments", vec![record]).await {
        tracing::warn!(error = %e, "could not publish a hold renewal");
    }
}

// ---- /v1/config/{account} and /v1/numbers ------------------------------------

async fn config(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let accounts = state.accounts();
    let account = accounts.account(&path).ok_or_else(|| ApiError::UnknownAccount(path.chars().take(64).collect()))?;
    let dni = &account.dni;
    let body = json!({
        "account": account.id,
        "site_numbers": dni.site_numbers,
        "hold_minutes": dni.hold_minutes,
        "pools": dni.pool.iter().map(|p| json!({"id": p.id, "when": p.when})).collect::<Vec<_>>(),
        "sources": dni.source.iter().map(|s| json!({"when": s.when, "number": s.number})).collect::<Vec<_>>(),
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .json(body))
}

async fn numbers(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    const ROUTE: &str = "/v1/numbers";
    let received = state.received(&req);
    if let Err(e) = state.rate_limit(&received) {
        return Err(state.reject(ROUTE, e, None, None, &received).await);
    }
    let body = match read_json_body(&state, &req, payload).await {
        Ok(b) => b,
        Err((e, raw)) => return Err(state.reject(ROUTE, e, None, raw.as_deref(), &received).await),
    };
    match assign_number(&state, &req, &body, &received).await {
        Ok(response) => {
            Ok(HttpResponse::Ok().insert_header(("Access-Control-Allow-Origin", "*")).insert_header((header::CACHE_CONTROL, "no-store")).json(response))
        }
        Err(e) => Err(state.reject(ROUTE, e, None, Some(&body), &received).await),
    }
}

async fn assign_number(state: &AppState, req: &HttpRequest, body: &[u8], received: &Received) -> Result<NumbersResponse, ApiError> {
    let request: NumbersRequest = parse_json(body)?;
    let accounts = state.accounts();
    let account = accounts.account(&request.account).ok_or_else(|| ApiError::UnknownAccount(request.account.chars().take(64).collect()))?;
    AppState::check_origin(account, req)?;
    validate::numbers_request(&request).map_err(ApiError::BadRequest)?;
    let referrer = request.referrer.clone().unwrap_or_default();
    let visit = ringpath_types::classify(&request.url, &referrer).unwrap_or_else(|| ringpath_types::classify(&request.url, "").unwrap_or_default());
    let dni = &account.dni;
    let is_bot = ringpath_types::ua::parse(&received.user_agent).is_bot;
    let hold_ms = i64::from(dni.hold_minutes) * 60_000;

    // A session that already holds a pool number keeps it on every page, even
    // where this page alone would classify as direct (an internal link).
    let held_pool = {
        let pools = state.pools.lock().unwrap_or_else(|p| p.into_inner());
        dni.pool.iter().find(|p| pools.get(&(account.id.clone(), p.id.clone())).is_some_and(|st| st.holds(&request.session_id, received.received_at)))
    };
    // Crawlers never take a pool number: they would hold it without ever calling.
    let pool = if is_bot { None } else { held_pool.or_else(|| dni.pool_for(&visit)) };
    let Some(pool) = pool else {
        return if let Some(number) = dni.source_number_for(&visit) {
            Ok(NumbersResponse { number: number.to_owned(), kind: NumberKind::Source, expires_at: received.received_at + hold_ms, shared: true })
        } else if let Some(number) = dni.site_numbers.first() {
            Ok(NumbersResponse { number: number.clone(), kind: NumberKind::Site, expires_at: received.received_at + hold_ms, shared: true })
        } else {
            Err(ApiError::BadRequest("account has no numbers configured".into()))
        };
    };
    let assignment = {
        let mut pools = state.pools.lock().unwrap_or_else(|p| p.into_inner());
        let st = pools.entry((account.id.clone(), pool.id.clone())).or_insert_with(|| PoolState::new(&pool.numbers));
        let before = st.exhausted_total;
        let a = st.assign(&request.session_id, received.received_at, hold_ms);
        if st.exhausted_total > before {
            state.metrics.pool_exhausted.with_label_values(&[&account.id, &pool.id]).inc();
        }
        a
    };
    state.update_pool_gauges(received.received_at);
    let msg = AssignmentMessage {
        account: account.id.clone(),
        number: assignment.number.clone(),
        kind: NumberKind::Session,
        pool_id: Some(pool.id.clone()),
        session_id: request.session_id.clone(),
        visitor_id: request.visitor_id.clone(),
        assigned_at: received.received_at,
        expires_at: assignment.expires_at,
        shared: assignment.shared,
        url: request.url.clone(),
        referrer: request.referrer.clone(),
        received: received.clone(),
    };
    let record = Record {
        topic: state.settings.topics.assignments.clone(),
        key: assignment.number.clone(),
        payload: serde_json::to_vec(&msg).map_err(|e| ApiError::BadRequest(e.to_string()))?,
    };
    // The number is only handed out once its hold is durable: after a
    // restart, recovery must know it is taken.
    state.produce("assignments", vec![record]).await?;
    Ok(NumbersResponse { number: assignment.number, kind: NumberKind::Session, expires_at: assignment.expires_at, shared: assignment.shared })
}

// ---- /v1/calls ---------------------------------------------------------------

fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Account id from `Authorization: Basic base64(account:token)`, if the token matches.
/// An unknown account and a wrong token are the same 401, and both do the
/// same hash-and-compare work, so neither the answer nor its timing tells them apart.
fn calls_auth(req: &HttpRequest, accounts: &AccountsFile) -> Result<String, ApiError> {
    let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or(ApiError::Unauthorized)?;
    let (scheme, encoded) = header.trim().split_once(' ').ok_or(ApiError::Unauthorized)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ApiError::Unauthorized);
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| ApiError::Unauthorized)?;
    let text = String::from_utf8(decoded).map_err(|_| ApiError::Unauthorized)?;
    let (id, token) = text.split_once(':').ok_or(ApiError::Unauthorized)?;
    let account = accounts.account(id);
    const NO_ACCOUNT: &str = "0000000000000000000000000000000000000000000000000000000000000000";
    let want = account.map(|a| a.calls_token_sha256.as_deref().unwrap_or(&a.token_sha256)).unwrap_or(NO_ACCOUNT).to_ascii_lowercase();
    let got = sha256_hex(token);
    match account {
        Some(a) if bool::from(got.as_bytes().ct_eq(want.as_bytes())) => Ok(a.id.clone()),
        _ => Err(ApiError::Unauthorized),
    }
}

async fn calls(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    const ROUTE: &str = "/v1/calls";
    let received = state.received(&req);
    if let Err(e) = state.rate_limit(&received) {
        return Err(state.reject(ROUTE, e, None, None, &received).await);
    }
    let accounts = state.accounts();
    let account = match calls_auth(&req, &accounts) {
        Ok(a) => a,
        Err(e) => return Err(state.reject(ROUTE, e, None, None, &received).await),
    };
    let body = match read_body(&req, payload, state.settings.body_timeout).await {
        Ok(b) => b,
        Err((e, raw)) => return Err(state.reject(ROUTE, e, Some(account), raw.as_deref(), &received).await),
    };
    let parsed = parse_json::<CallRecord>(&body).and_then(|c| validate::call(&c, received.received_at).map(|_| c).map_err(ApiError::BadRequest));
    let call = match parsed {
        Ok(c) => c,
        Err(e) => return Err(state.reject(ROUTE, e, Some(account), Some(&body), &received).await),
    };
    let msg = CallMessage { account, call, received: received.clone() };
    let record = Record {
        topic: state.settings.topics.calls.clone(),
        key: msg.call.to.clone(),
        payload: serde_json::to_vec(&msg).map_err(|e| ApiError::BadRequest(e.to_string()))?,
    };
    if let Err(e) = state.produce("calls", vec![record]).await {
        return Err(state.reject(ROUTE, e, Some(msg.account), Some(&body), &received).await);
    }
    state.metrics.events_accepted.with_label_values(&["call"]).inc();
    Ok(HttpResponse::Accepted().json(json!({"status": "accepted", "call_id": msg.call.call_id})))
}

// ---- snippet, health, metrics ------------------------------------------------

/// `/rp.js`, `/rp.wasm` (latest) and `/v/{version}/rp.js`, `/v/{version}/rp.wasm` (pinned, immutable).
async fn asset(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let assets = state.assets.read().unwrap_or_else(|p| p.into_inner()).clone();
    let file = crate::assets::File::of_path(req.path());
    let (asset, cache_control) = match req.match_info().get("version") {
        None => (assets.latest(file).ok_or(ApiError::NotFound)?, crate::assets::LATEST_CACHE_CONTROL),
        Some(version) => match assets.pinned(version, file) {
            Ok(asset) => (asset, crate::assets::PINNED_CACHE_CONTROL),
            Err(crate::assets::PinnedError::NotBuilt) => return Err(ApiError::NotFound),
            Err(crate::assets::PinnedError::UnknownVersion { asked, current }) => return Err(ApiError::UnknownSnippetVersion { asked, current }),
        },
    };
    let not_modified = req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag));
    let mut resp = if not_modified { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    resp.insert_header((header::ETAG, asset.etag.clone()))
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .insert_header(("Cross-Origin-Resource-Policy", "cross-origin"))
        .insert_header(("X-Content-Type-Options", "nosniff"));
    if not_modified {
        return Ok(resp.finish());
    }
    Ok(resp.content_type(asset.content_type).body(asset.body.clone()))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.shutting_down.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().json(json!({"status": "shutting down"}));
    }
    let sink = state.sink.clone();
    let ready = tokio::task::spawn_blocking(move || sink.ready()).await.unwrap_or(false);
    if ready {
        HttpResponse::Ok().json(json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({"status": "broker unreachable"}))
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state.metrics.queue_depth.set(state.sink.queue_depth() as i64);
    state.update_pool_gauges(state.clock.now_ms());
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
}

/// The methods each route answers, for 405 and `Allow`.
fn allowed_methods(path: &str) -> Option<&'static str> {
    match path {
        "/v1/collect" | "/v1/numbers" | "/v1/calls" => Some("POST, OPTIONS"),
        "/v1/p.gif" | "/rp.js" | "/rp.wasm" | "/healthz" | "/readyz" | "/metrics" => Some("GET"),
        p if p.strip_prefix("/v/").and_then(|rest| rest.split_once('/')).is_some_and(|(v, file)| !v.is_empty() && (file == "rp.js" || file == "rp.wasm")) => Some("GET"),
        p if p.starts_with("/v1/config/") && p.len() > "/v1/config/".len() && !p["/v1/config/".len()..].contains('/') => Some("GET"),
        _ => None,
    }
}

async fn fallback(req: HttpRequest) -> HttpResponse {
    if req.method() == Method::OPTIONS {
        // CORS preflight for fetch(keepalive) with a JSON content type.
        return HttpResponse::NoContent()
            .insert_header(("Access-Control-Allow-Origin", "*"))
            .insert_header(("Access-Control-Allow-Methods", "GET, POST, OPTIONS"))
            .insert_header(("Access-Control-Allow-Headers", "Content-Type, Content-Encoding, Authorization"))
            .insert_header(("Access-Control-Max-Age", "86400"))
            .finish();
    }
    match allowed_methods(req.path()) {
        Some(allow) => HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, allow))
            .json(json!({"error": format!("method {} not allowed; use {allow}", req.method().as_str().chars().take(16).collect::<String>())})),
        None => HttpResponse::NotFound().json(json!({"error": "not found"})),
    }
}

/// Routes, for the server and for in-process tests.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/collect", web::post().to(collect))
        .route("/v1/p.gif", web::get().to(pixel))
        .route("/v1/config/{account}", web::get().to(config))
        .route("/v1/numbers", web::post().to(numbers))
        .route("/v1/calls", web::post().to(calls))
        .route("/rp.js", web::get().to(asset))
        .route("/rp.wasm", web::get().to(asset))
        .route("/v/{version}/rp.js", web::get().to(asset))
        .route("/v/{version}/rp.wasm", web::get().to(asset))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .default_service(web::to(fallback));
}

/// Counts every answer by route template and status.
pub async fn count_requests(
    req: ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let res = next.call(req).await?;
    if let Some(state) = state {
        state.metrics.requests.with_label_values(&[&route, res.status().as_str()]).inc();
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::SendFuture;
    use actix_web::test as atest;
    use ringpath_types::wire::EventMessage;

    /// A sink that answers every send with a fixed outcome and keeps what it was given.
    struct FakeSink {
        outcome: fn() -> Option<Result<(), SinkError>>,
        sent: Mutex<Vec<Record>>,
    }

    impl Sink for FakeSink {
        fn send(&self, records: Vec<Record>) -> SendFuture<'_> {
            self.sent.lock().unwrap().extend(records);
            let outcome = (self.outcome)();
            Box::pin(async move {
                match outcome {
                    Some(r) => r,
                    None => std::future::pending().await,
                }
            })
        }
        fn ready(&self) -> bool {
            false
        }
        fn flush(&self, _: Duration) {}
        fn queue_depth(&self) -> u64 {
            0
        }
    }

    const TOKEN_SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    async fn answer(outcome: fn() -> Option<Result<(), SinkError>>) -> (u16, Option<String>, String, Arc<FakeSink>) {
        let mut env = HashMap::new();
        env.insert("RINGPATH_PRODUCE_TIMEOUT_MS".to_string(), "50".to_string());
        env.insert("RINGPATH_ASSETS_DIR".to_string(), "/nonexistent".to_string());
        let settings = Settings::from_env(&env).unwrap();
        let accounts = AccountsFile::parse(&format!("[[account]]\nid = \"acc_demo\"\ntoken_sha256 = \"{TOKEN_SHA}\"\n")).unwrap();
        let sink = Arc::new(FakeSink { outcome, sent: Mutex::new(Vec::new()) });
        let state = web::Data::new(AppState::new(settings, accounts, sink.clone()));
        let app = atest::init_service(actix_web::App::new().app_data(state).configure(configure)).await;
        let now = now_ms();
        let body = json!({"v":1,"account":"acc_demo","sent_at":now,"consent":"denied","events":[{"id":"e1","type":"pageview","ts":now,"url":"https://demo.example/"}]});
        let req = atest::TestRequest::post().uri("/v1/collect").insert_header(("content-type", "text/plain")).set_payload(body.to_string()).to_request();
        let resp = atest::call_service(&app, req).await;
        let status = resp.status().as_u16();
        let retry = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = String::from_utf8(atest::read_body(resp).await.to_vec()).unwrap();
        (status, retry, body, sink)
    }

    #[actix_web::test]
    async fn broker_outcomes_map_to_one_status_each() {
        let (status, retry, _, sink) = answer(|| Some(Ok(()))).await;
        assert_eq!((status, retry), (204, None));
        assert_eq!(sink.sent.lock().unwrap().len(), 1);

        // Backpressure: retry soon.
        let (status, retry, body, _) = answer(|| Some(Err(SinkError::QueueFull))).await;
        assert_eq!((status, retry.as_deref()), (503, Some("1")));
        assert!(body.contains("could not be made durable"), "{body}");

        // Broker gone: retry later.
        let (status, retry, _, _) = answer(|| Some(Err(SinkError::Unavailable("down".into())))).await;
        assert_eq!((status, retry.as_deref()), (503, Some("5")));

        // No delivery report in time: 503, never a 2xx.
        let (status, retry, _, _) = answer(|| None).await;
        assert_eq!((status, retry.as_deref()), (503, Some("5")));

        // A record the broker can never take is the client's problem, and dead-lettered.
        let (status, _, body, sink) = answer(|| Some(Err(SinkError::Rejected("MessageSizeTooLarge".into())))).await;
        assert_eq!(status, 400);
        assert!(body.contains("rejected by the broker"), "{body}");
        let sent = sink.sent.lock().unwrap();
        assert_eq!(sent.len(), 2, "the event, then its dead letter");
        assert_eq!(sent[1].topic, "ringpath.dlq");
    }

    #[test]
    fn borrowed_event_json_is_the_event_message() {
        let body = r#"{"v":1,"account":"acc_demo","sent_at":1764374400000,"consent":"granted","visitor_id":"visitor-1","session_id":"session-1",
            "page_id":"page-0001","screen":"1920x1080","lang":"en-US","tz":"Europe/Berlin","events":[
            {"id":"e1","type":"pageview","ts":1764374399000,"url":"https://demo.example/?q=1","referrer":"https://www.google.com/","title":"Home \"quoted\" é","number":"+15550109001","props":{"a":[1,{"b":null}]}},
            {"id":"e2","type":"call_click","ts":1764374399500,"url":"https://demo.example/"}]}"#;
        let batch: Batch = serde_json::from_str(body).unwrap();
        let received = Received { received_at: 1764374400100, ip: "203.0.113.9".into(), user_agent: "Mozilla/5.0 \"x\"".into() };
        let records = event_records(&batch, &received, 100, "ringpath.events", body.len()).unwrap();
        assert_eq!(records.len(), 2);
        for (event, record) in batch.events.iter().zip(&records) {
            let mut owned_event = event.clone();
            owned_event.ts += 100;
            let owned = EventMessage {
                account: batch.account.clone(),
                consent: batch.consent,
                visitor_id: batch.visitor_id.clone(),
                session_id: batch.session_id.clone(),
                page_id: batch.page_id.clone(),
                sent_at: batch.sent_at,
                screen: batch.screen.clone(),
                lang: batch.lang.clone(),
                tz: batch.tz.clone(),
                received: received.clone(),
                event: owned_event,
            };
            assert_eq!(String::from_utf8(record.payload.clone()).unwrap(), serde_json::to_string(&owned).unwrap());
            assert_eq!(record.key, owned.key());
            assert_eq!(record.topic, "ringpath.events");
            let back: EventMessage = serde_json::from_slice(&record.payload).unwrap();
            assert_eq!(back, owned);
        }
        let mut anonymous = batch.clone();
        anonymous.visitor_id = None;
        anonymous.session_id = None;
        let keys: Vec<String> = event_records(&anonymous, &received, 0, "t", 0).unwrap().into_iter().map(|r| r.key).collect();
        assert_eq!(keys, ["e1", "e2"]);
    }
}
