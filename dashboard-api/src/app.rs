//! HTTP surface of the dashboard API (README "Dashboard API"): authentication, parameter
//! validation, JSON/CSV rendering. The SQL lives in `reports`.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use ringpath_types::accounts::AccountsFile;
use serde_json::{json, Value};

use crate::auth::{self, AuthError, Principal};
use crate::params::{self, ParamError};
use crate::reports::{PageRow, ReportError, Reports};
use ringpath_store::rows::CallRow;

/// Storage bookkeeping, not part of a call as the API shows it.
const HIDDEN_CALL_COLUMNS: &[&str] = &["version", "received_at"];

/// Storage bookkeeping no answer shows (row versions, the sessions table's rank).
const BOOKKEEPING_COLUMNS: &[&str] = &["version", "rank"];

/// The API's one convention for times: every time is an RFC 3339 string
/// (UTC, milliseconds) under its plain name, beside its epoch-ms twin
/// (`started_at` and `started_ms`). Stored rows keep DateTime columns as
/// epoch seconds; these are rewritten from their ms twin (or from the
/// seconds when there is none).
const TIME_COLUMNS: &[(&str, Option<&str>)] = &[
    ("ts", Some("ts_ms")),
    ("started_at", Some("started_ms")),
    ("ended_at", Some("ended_ms")),
    ("assigned_at", Some("assigned_ms")),
    ("expires_at", Some("expires_ms")),
    ("received_at", None),
];

/// A stored row (or report row) as the API shows it: times per [`TIME_COLUMNS`], no bookkeeping.
pub fn present(mut v: Value) -> Value {
    let Some(o) = v.as_object_mut() else { return v };
    for (name, ms_twin) in TIME_COLUMNS {
        let ms = match ms_twin {
            Some(twin) => o.get(*twin).and_then(Value::as_i64),
            None => o.get(*name).and_then(Value::as_i64).map(|s| s * 1000),
        };
        if let Some(ms) = ms {
            o.insert((*name).to_owned(), Value::String(ringpath_types::time::format_rfc3339_ms(ms)));
        }
    }
    for c in BOOKKEEPING_COLUMNS {
        o.remove(*c);
    }
    v
}

/// Longest a report may take (also sent to ClickHouse as `max_execution_time`).
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadParam(ParamError),
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("not found")]
    NotFound,
    #[error("report failed: {0}")]
    Report(String),
    #[error("report timed out")]
    Timeout,
    #[error("{0}")]
    Config(String),
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        ApiError::BadParam(e)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized => ApiError::Unauthorized,
            AuthError::NotCovered => ApiError::NotFound,
        }
    }
}

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> Self {
        // The server stopped the query at max_execution_time (by its error code).
        if e.is_timeout() {
            tracing::warn!(error = %e, "report stopped by the database's time limit");
            return ApiError::Timeout;
        }
        tracing::error!(error = %e, "report query failed");
        ApiError::Report("the database did not answer; try again".into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadParam(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Report(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized) {
            r.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"ringpath\""));
        }
        match self {
            ApiError::BadParam(p) => r.json(json!({"error": p.message, "parameter": p.param})),
            other => r.json(json!({"error": other.to_string()})),
        }
    }
}

pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub seconds: HistogramVec,
}

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(Opts::new("ringpath_dashboard_requests_total", "Requests by route template and status"), &["route", "status"]).expect("valid metric");
        let seconds = HistogramVec::new(HistogramOpts::new("ringpath_dashboard_request_seconds", "Request latency by route template"), &["route"]).expect("valid metric");
        registry.register(Box::new(requests.clone())).expect("unique metric");
        registry.register(Box::new(seconds.clone())).expect("unique metric");
        Metrics { registry, requests, seconds }
    }
}

pub struct State {
    pub accounts: RwLock<Arc<AccountsFile>>,
    pub reports: Reports,
    pub metrics: Metrics,
    pub query_timeout: Duration,
}

impl State {
    pub fn new(accounts: AccountsFile, reports: Reports, query_timeout: Duration) -> State {
        State { accounts: RwLock::new(Arc::new(accounts)), reports, metrics: Metrics::new(), query_timeout }
    }

    pub fn accounts(&self) -> Arc<AccountsFile> {
        self.accounts.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Authenticates and checks that the credentials cover `account`.
fn authorize(state: &State, req: &HttpRequest, account: &str) -> Result<Principal, ApiError> {
    let accounts = state.accounts();
    let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let who = auth::authenticate(header, &accounts)?;
    auth::covers(&who, account, &accounts)?;
    Ok(who)
}

async fn timed<T>(state: &State, fut: impl std::future::Future<Output = Result<T, ReportError>>) -> Result<T, ApiError> {
    tokio::time::timeout(state.query_timeout, fut).await.map_err(|_| ApiError::Timeout)?.map_err(ApiError::from)
}

/// The account's IANA zone for day/hour buckets, UTC when unset. Bound as a
/// value like everything else; the shape check only keeps typos out of SQL errors.
fn account_timezone(state: &State, account: &str) -> Result<String, ApiError> {
    let tz = state.accounts().account(account).and_then(|a| a.timezone.clone()).unwrap_or_else(|| "UTC".into());
    let plausible = !tz.is_empty() && tz.len() <= 64 && tz.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
    if plausible { Ok(tz) } else { Err(ApiError::Config(format!("account {account} has an invalid timezone {tz:?} in the accounts file"))) }
}

fn wants_csv(req: &HttpRequest) -> bool {
    req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/csv"))
}

/// JSON `{key: rows, …extra}`, or the rows alone as CSV with these columns.
fn render(req: &HttpRequest, key: &str, columns: &[&str], rows: Vec<Value>, extra: Value) -> HttpResponse {
    if wants_csv(req) {
        return HttpResponse::Ok().content_type("text/csv; charset=utf-8").body(crate::csv::to_csv(columns, &rows));
    }
    let mut body = extra;
    body[key] = Value::Array(rows);
    HttpResponse::Ok().json(body)
}

fn to_values<T: serde::Serialize>(rows: &[T]) -> Vec<Value> {
    rows.iter().map(|r| present(serde_json::to_value(r).unwrap_or(Value::Null))).collect()
}

fn rfc3339(ms: i64) -> String {
    ringpath_types::time::format_rfc3339_ms(ms)
}

async fn calls(state: web::Data<State>, req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let account = path.into_inner();
    authorize(&state, &req, &account)?;
    let q = params::parse_query(req.query_string(), &["from", "to", "limit", "cursor"])?;
    let (from, to) = params::range(&q, now_ms())?;
    let limit = params::limit(&q)?;
    let cursor = params::decode_cursor(&q)?;
    let mut rows = timed(&state, state.reports.calls(&account, from, to, limit + 1, cursor)).await?;
    let next = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|r| params::encode_cursor(r.started_ms, &r.call_id))
    } else {
        None
    };
    let values: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut v = present(serde_json::to_value(r).unwrap_or(Value::Null));
            if let Some(o) = v.as_object_mut() {
                for c in HIDDEN_CALL_COLUMNS {
                    o.remove(*c);
                }
            }
            v
        })
        .collect();
    let columns: Vec<&str> = <CallRow as clickhouse::Row>::COLUMN_NAMES.iter().copied().filter(|c| !HIDDEN_CALL_COLUMNS.contains(c)).collect();
    Ok(render(&req, "calls", &columns, values, json!({"next_cursor": next})))
}

async fn attribution(state: web::Data<State>, req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let account = path.into_inner();
    authorize(&state, &req, &account)?;
    let q = params::parse_query(req.query_string(), &["from", "to", "dimension", "model", "include_bots"])?;
    let (from, to) = params::range(&q, now_ms())?;
    let dimension = params::one_of(&q, "dimension", params::DIMENSIONS, "channel")?;
    let model = params::one_of(&q, "model", params::MODELS, "last_touch")?;
    let bots = params::flag(&q, "include_bots")?;
    let rows = timed(&state, state.reports.attribution(&account, from, to, dimension, model, bots)).await?;
    Ok(render(&req, "rows", &["key", "sessions", "visitors", "calls", "conversion_rate"], to_values(&rows), json!({"dimension": dimension, "model": model, "from": rfc3339(from), "to": rfc3339(to), "from_ms": from, "to_ms": to})))
}

async fn timeseries(state: web::Data<State>, req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let account = path.into_inner();
    authorize(&state, &req, &account)?;
    let q = params::parse_query(req.query_string(), &["from", "to", "interval", "metric", "include_bots"])?;
    let interval = params::one_of(&q, "interval", params::INTERVALS, "day")?;
    let default_span = if interval == "hour" { 24 * 3_600_000 } else { params::DEFAULT_RANGE_MS };
    let (from, to) = params::range_with_default(&q, now_ms(), default_span)?;
    let metric = params::one_of(&q, "metric", params::METRICS, "pageviews")?;
    let bots = params::flag(&q, "include_bots")?;
    if interval == "hour" && to - from > 31 * 24 * 3_600_000 {
        return Err(ApiError::BadParam(ParamError::new("interval", "interval=hour spans at most 31 days")));
    }
    let tz = account_timezone(&state, &account)?;
    let points = timed(&state, state.reports.timeseries(&account, from, to, interval, metric, bots, &tz)).await?;
    let total: u64 = points.iter().map(|p| p.value).sum();
    Ok(render(&req, "points", &["t", "t_ms", "value"], to_values(&points), json!({"metric": metric, "interval": interval, "timezone": tz, "total": total, "from": rfc3339(from), "to": rfc3339(to), "from_ms": from, "to_ms": to})))
}

async fn visitor(state: web::Data<State>, req: HttpRequest, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (account, visitor) = path.into_inner();
    authorize(&state, &req, &account)?;
    params::parse_query(req.query_string(), &[])?;
    params::visitor_id(&visitor)?;
    let reports = &state.reports;
    let all = async { tokio::try_join!(reports.journey_sessions(&account, &visitor), reports.journey_pages(&account, &visitor), reports.visitor_calls(&account, &visitor)) };
    let (sessions, pages, calls) = timed(&state, all).await?;
    if sessions.is_empty() && calls.is_empty() {
        return Err(ApiError::NotFound);
    }
    if wants_csv(&req) {
        let columns: Vec<&str> = <PageRow as clickhouse::Row>::COLUMN_NAMES.iter().flat_map(|c| if *c == "ts_ms" { vec!["ts", "ts_ms"] } else { vec![*c] }).collect();
        return Ok(render(&req, "pages", &columns, to_values(&pages), json!({})));
    }
    Ok(HttpResponse::Ok().json(json!({"visitor_id": visitor, "sessions": sessions, "pages": pages, "calls": to_values(&calls)})))
}

async fn export(state: web::Data<State>, req: HttpRequest, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (account, visitor) = path.into_inner();
    authorize(&state, &req, &account)?;
    params::parse_query(req.query_string(), &[])?;
    params::visitor_id(&visitor)?;
    let export = timed(&state, state.reports.export(&account, &visitor)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"ringpath-{account}-{visitor}.json\"")))
        .json(json!({"account": account, "visitor_id": visitor, "exported_at": ringpath_types::time::format_rfc3339_ms(now_ms()),
                     "events": to_values(&export.events), "calls": to_values(&export.calls), "assignments": to_values(&export.assignments),
                     "sessions": to_values(&export.sessions)})))
}

async fn erase(state: web::Data<State>, req: HttpRequest, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (account, visitor) = path.into_inner();
    authorize(&state, &req, &account)?;
    params::parse_query(req.query_string(), &[])?;
    params::visitor_id(&visitor)?;
    timed(&state, state.reports.erase(&account, &visitor)).await?;
    let status_url = format!("/v1/accounts/{account}/visitors/{visitor}/erasure");
    Ok(HttpResponse::Accepted().insert_header((header::LOCATION, status_url.clone())).json(json!({"status": "pending", "status_url": status_url})))
}

async fn erasure_status(state: web::Data<State>, req: HttpRequest, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (account, visitor) = path.into_inner();
    authorize(&state, &req, &account)?;
    params::parse_query(req.query_string(), &[])?;
    params::visitor_id(&visitor)?;
    let status = timed(&state, state.reports.erasure_status(&account, &visitor)).await?;
    Ok(HttpResponse::Ok().json(json!({"status": if status.done() { "done" } else { "pending" }, "remaining_rows": status.remaining_rows, "pending_mutations": status.pending_mutations})))
}

async fn agency_accounts(state: web::Data<State>, req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let agency = path.into_inner();
    let accounts = state.accounts();
    let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match auth::authenticate(header, &accounts)? {
        Principal::Agency(id) if id == agency => {}
        _ => return Err(ApiError::NotFound),
    }
    params::parse_query(req.query_string(), &[])?;
    let list: Vec<Value> = accounts.accounts_of_agency(&agency).iter().map(|a| json!({"id": a.id, "timezone": a.timezone, "retention_days": a.retention_days})).collect();
    Ok(HttpResponse::Ok().json(json!({"agency": agency, "accounts": list})))
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(crate::openapi::document())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn metrics(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(ringpath_service::render_metrics(&state.metrics.registry))
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({"error": "not found"}))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/accounts/{account}/calls", web::get().to(calls))
        .route("/v1/accounts/{account}/attribution", web::get().to(attribution))
        .route("/v1/accounts/{account}/timeseries", web::get().to(timeseries))
        .route("/v1/accounts/{account}/visitors/{visitor_id}", web::get().to(visitor))
        .route("/v1/accounts/{account}/visitors/{visitor_id}", web::delete().to(erase))
        .route("/v1/accounts/{account}/visitors/{visitor_id}/export", web::get().to(export))
        .route("/v1/accounts/{account}/visitors/{visitor_id}/erasure", web::get().to(erasure_status))
        .route("/v1/agencies/{agency}/accounts", web::get().to(agency_accounts))
        .route("/openapi.json", web::get().to(openapi))
        .route("/healthz", web::get().to(healthz))
        .route("/metrics", web::get().to(metrics))
        .default_service(web::to(not_found));
}

/// Access log (no credentials, no query values) and request metrics, both
/// keyed by the route template so a hostile path cannot mint new series.
pub async fn observe(req: ServiceRequest, next: actix_web::middleware::Next<impl MessageBody>) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<State>>().cloned();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = std::time::Instant::now();
    let res = next.call(req).await?;
    // The account as asked for (authorised or not): shortened, it is client input.
    let info = res.request().match_info();
    let account: String = info.get("account").or_else(|| info.get("agency")).unwrap_or("").chars().take(64).collect();
    let status = res.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    tracing::info!(target: "access", %method, %route, account = %account.escape_debug(), status, ms = (elapsed * 1000.0) as u64, "request");
    if let Some(state) = state {
        state.metrics.requests.with_label_values(&[&route, &status.to_string()]).inc();
        state.metrics.seconds.with_label_values(&[&route]).observe(elapsed);
    }
    Ok(res)
}
