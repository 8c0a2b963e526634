//! HTTP surface of the dashboard API (README "Dashboard API"): the route
//! table, the shared state, the access log and metrics, and one handler per
//! endpoint. A handler only authorizes, parses (`params`), queries
//! (`reports`) and renders (`answers`, as JSON or CSV); every failure is an
//! `ApiError` (`error`), which alone decides the status and body.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use ringpath_types::accounts::AccountsFile;

use crate::answers::{self, AgencyAccounts, Attribution, CallsPage, ErasureAccepted, ErasureStatus, Export, Journey, Table, Timeseries};
use crate::auth::{self, Principal};
use crate::error::ApiError;
use crate::params::{self, AccountPath, AgencyPath, AttributionQuery, CallsQuery, TimeseriesQuery, VisitorPath};
use crate::reports::{ReportError, Reports};
use crate::zone::Zone;

/// Longest a report may take (also sent to ClickHouse as `max_execution_time`).
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(30);

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


/// Authenticates and checks that the credentials cover `account`.
fn authorize(state: &State, req: &HttpRequest, account: &str) -> Result<Principal, ApiError> {
    let accounts = state.accounts();
    let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let who = auth::authenticate(header, &accounts)?;
    auth::covers(&who, account, &accounts)?;
    Ok(who)
}

/// A report, given up on (504) at the query timeout even if the database never answers.
async fn timed<T>(state: &State, fut: impl std::future::Future<Output = Result<T, ReportError>>) -> Result<T, ApiError> {
    tokio::time::timeout(state.query_timeout, fut).await.map_err(|_| ApiError::Timeout)?.map_err(ApiError::from)
}

/// The account's zone for day/hour buckets, UTC when unset.
fn account_zone(state: &State, account: &str) -> Result<Zone, ApiError> {
    let accounts = state.accounts();
    let name = accounts.account(account).and_then(|a| a.timezone.as_deref());
    Zone::parse(name).map_err(|zone| {
        tracing::error!(account = %account, timezone = %zone.name, "the accounts file gives the account a time zone the tz database does not know");
        ApiError::BadTimezone { account: account.to_owned(), zone }
    })
}

fn wants_csv(req: &HttpRequest) -> bool {
    req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/csv"))
}

/// The answer as JSON, or its rows alone as CSV on `Accept: text/csv`.
fn render<A: Table>(req: &HttpRequest, answer: &A) -> HttpResponse {
    if wants_csv(req) {
        return HttpResponse::Ok().content_type("text/csv; charset=utf-8").body(crate::csv::table(answer.rows()));
    }
    HttpResponse::Ok().json(answer)
}

/// Calls with their attribution, newest first, cursor-paginated
#[utoipa::path(get, path = "/v1/accounts/{account}/calls", tag = "reports", params(AccountPath, CallsQuery),
    responses((status = 200, description = "a page of calls (as CSV: one line per call)", content((CallsPage = "application/json"), (String = "text/csv")))))]
pub async fn calls(state: web::Data<State>, req: HttpRequest, path: web::Path<AccountPath>) -> Result<HttpResponse, ApiError> {
    let AccountPath { account } = path.into_inner();
    authorize(&state, &req, &account)?;
    let q = CallsQuery::parse(req.query_string(), ringpath_types::time::now_ms())?;
    let rows = timed(&state, state.reports.calls(&account, &q)).await?;
    Ok(render(&req, &CallsPage::new(rows, q.limit)))
}

/// Sessions and visitors that landed from each key, calls credited to it by the model, and conversion rate (calls per session)
#[utoipa::path(get, path = "/v1/accounts/{account}/attribution", tag = "reports", params(AccountPath, AttributionQuery),
    responses((status = 200, description = "one row per key (as CSV: the rows)", content((Attribution = "application/json"), (String = "text/csv")))))]
pub async fn attribution(state: web::Data<State>, req: HttpRequest, path: web::Path<AccountPath>) -> Result<HttpResponse, ApiError> {
    let AccountPath { account } = path.into_inner();
    authorize(&state, &req, &account)?;
    let q = AttributionQuery::parse(req.query_string(), ringpath_types::time::now_ms())?;
    let rows = timed(&state, state.reports.attribution(&account, &q)).await?;
    Ok(render(&req, &Attribution::new(&q, rows)))
}

/// A metric per hour or day in the account's time zone (UTC if none), zero-filled; sessions count where they landed
#[utoipa::path(get, path = "/v1/accounts/{account}/timeseries", tag = "reports", params(AccountPath, TimeseriesQuery),
    responses((status = 200, description = "every bucket of the range (as CSV: the points)", content((Timeseries = "application/json"), (String = "text/csv")))))]
pub async fn timeseries(state: web::Data<State>, req: HttpRequest, path: web::Path<AccountPath>) -> Result<HttpResponse, ApiError> {
    let AccountPath { account } = path.into_inner();
    authorize(&state, &req, &account)?;
    let q = TimeseriesQuery::parse(req.query_string(), ringpath_types::time::now_ms())?;
    let zone = account_zone(&state, &account)?;
    let buckets = timed(&state, state.reports.timeseries(&account, &q, zone.name())).await?;
    Ok(render(&req, &Timeseries::new(&q, &zone, buckets)))
}

/// A visitor's journey: sessions, pages, calls (as CSV: one line per page event)
#[utoipa::path(get, path = "/v1/accounts/{account}/visitors/{visitor_id}", tag = "visitors", params(VisitorPath),
    responses((status = 200, description = "the journey; 404 for a visitor with no sessions or calls", content((Journey = "application/json"), (String = "text/csv")))))]
pub async fn visitor(state: web::Data<State>, req: HttpRequest, path: web::Path<VisitorPath>) -> Result<HttpResponse, ApiError> {
    let VisitorPath { account, visitor_id } = path.into_inner();
    authorize(&state, &req, &account)?;
    params::no_query(req.query_string())?;
    params::visitor_id(&visitor_id)?;
    let reports = &state.reports;
    let all = async { tokio::try_join!(reports.journey_sessions(&account, &visitor_id), reports.journey_pages(&account, &visitor_id), reports.visitor_calls(&account, &visitor_id)) };
    let (sessions, pages, calls) = timed(&state, all).await?;
    if sessions.is_empty() && calls.is_empty() {
        return Err(ApiError::NotFound);
    }
    #[rustfmt::skip]
    let journey = Journey {
        visitor_id, sessions: sessions.into_iter().map(Into::into).collect(), pages: pages.into_iter().map(Into::into).collect(),
        calls: calls.into_iter().map(Into::into).collect(),
    };
    Ok(render(&req, &journey))
}

/// Every stored row about the visitor (data subject access request)
#[utoipa::path(get, path = "/v1/accounts/{account}/visitors/{visitor_id}/export", tag = "visitors", params(VisitorPath),
    responses((status = 200, description = "every row, as an attachment", body = Export, headers(("Content-Disposition" = String, description = "attachment; filename=\"ringpath-{account}-{visitor_id}.json\"")))))]
pub async fn export(state: web::Data<State>, req: HttpRequest, path: web::Path<VisitorPath>) -> Result<HttpResponse, ApiError> {
    let VisitorPath { account, visitor_id } = path.into_inner();
    authorize(&state, &req, &account)?;
    params::no_query(req.query_string())?;
    params::visitor_id(&visitor_id)?;
    let rows = timed(&state, state.reports.export(&account, &visitor_id)).await?;
    let disposition = format!("attachment; filename=\"ringpath-{account}-{visitor_id}.json\"");
    #[rustfmt::skip]
    let export = Export {
        account, visitor_id, exported_at: ringpath_types::time::format_rfc3339_ms(ringpath_types::time::now_ms()), events: rows.events.into_iter().map(Into::into).collect(),
        calls: rows.calls.into_iter().map(Into::into).collect(), assignments: rows.assignments.into_iter().map(Into::into).collect(),
        sessions: rows.sessions.into_iter().map(Into::into).collect(),
    };
    Ok(HttpResponse::Ok().insert_header((header::CONTENT_DISPOSITION, disposition)).json(export))
}

/// Erase a visitor: afterwards no row holds their id, IPs or URLs; aggregate counts stay
#[utoipa::path(delete, path = "/v1/accounts/{account}/visitors/{visitor_id}", tag = "visitors", params(VisitorPath),
    responses((status = 202, description = "erasure recorded (its job and the visitor's tombstone); it runs after this answer, resumed after a restart", body = ErasureAccepted, headers(("Location" = String, description = "the status URL")))))]
pub async fn erase(state: web::Data<State>, jobs: web::Data<crate::erasure_worker::Jobs>, req: HttpRequest, path: web::Path<VisitorPath>) -> Result<HttpResponse, ApiError> {
    let VisitorPath { account, visitor_id } = path.into_inner();
    authorize(&state, &req, &account)?;
    params::no_query(req.query_string())?;
    params::visitor_id(&visitor_id)?;
    let job = timed(&state, state.reports.request_erasure(&account, &visitor_id, &jobs.owner)).await?;
    jobs.submit(job);
    let accepted = ErasureAccepted::new(&account, &visitor_id);
    Ok(HttpResponse::Accepted().insert_header((header::LOCATION, accepted.status_url.clone())).json(accepted))
}

/// Erasure status: done when every step of the erasure ran, no row names the visitor and no mutation for them is pending
#[utoipa::path(get, path = "/v1/accounts/{account}/visitors/{visitor_id}/erasure", tag = "visitors", params(VisitorPath),
    responses((status = 200, description = "how far the erasure is", body = ErasureStatus)))]
pub async fn erasure_status(state: web::Data<State>, req: HttpRequest, path: web::Path<VisitorPath>) -> Result<HttpResponse, ApiError> {
    let VisitorPath { account, visitor_id } = path.into_inner();
    authorize(&state, &req, &account)?;
    params::no_query(req.query_string())?;
    params::visitor_id(&visitor_id)?;
    let status = timed(&state, state.reports.erasure_status(&account, &visitor_id)).await?;
    Ok(HttpResponse::Ok().json(ErasureStatus::from(status)))
}

/// Accounts an agency's credentials cover
#[utoipa::path(get, path = "/v1/agencies/{agency}/accounts", tag = "agencies", params(AgencyPath),
    responses((status = 200, description = "the agency's accounts, by id", body = AgencyAccounts)))]
pub async fn agency_accounts(state: web::Data<State>, req: HttpRequest, path: web::Path<AgencyPath>) -> Result<HttpResponse, ApiError> {
    let AgencyPath { agency } = path.into_inner();
    let accounts = state.accounts();
    let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match auth::authenticate(header, &accounts)? {
        Principal::Agency(id) if id == agency => {}
        _ => return Err(ApiError::NotFound),
    }
    params::no_query(req.query_string())?;
    Ok(HttpResponse::Ok().json(AgencyAccounts::new(&agency, &accounts.accounts_of_agency(&agency))))
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(crate::openapi::document())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(answers::Health { status: "ok" })
}

async fn metrics(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(ringpath_service::render_metrics(&state.metrics.registry))
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
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
