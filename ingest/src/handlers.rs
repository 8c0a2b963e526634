//! The collector's handlers (README "Collector (ingest)"): each reads its
//! request ([`request`]), asks the domain code (validation, [`pools`],
//! [`records`]) and answers; failures are `ApiError`s, accounted for once by
//! `AppState::reject`. Routes, CORS and 405s are in `routes`.

use std::sync::atomic::Ordering;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use ringpath_types::accounts::{Account, AccountsFile};
use ringpath_types::auth::{basic_credentials, token_matches, NO_TOKEN};
use ringpath_types::wire::{AssignmentMessage, Batch, CallMessage, CallRecord, NumberKind, NumbersRequest, NumbersResponse, Received};
use serde_json::json;

use crate::error::ApiError;
use crate::pools::{self, Assignment, Decision};
use crate::records;
use crate::renewals::Renewal;
use crate::request::{self, parse_json};
use crate::state::AppState;
use crate::validate;

/// 1×1 transparent GIF for the pixel fallback.
const GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

// ---- /v1/collect and /v1/p.gif ----------------------------------------------

/// The sender and JSON body of a request to `route`, within its rate; a
/// failure is already accounted for (`AppState::reject`).
async fn sender_and_json(state: &AppState, route: &'static str, req: &HttpRequest, payload: web::Payload) -> Result<(Received, web::Bytes), ApiError> {
    let received = request::received(state, req);
    if let Err(e) = request::rate_limit(state, &received) {
        return Err(state.reject(route, e, None, None, &received).await);
    }
    match request::json_body(state, req, payload).await {
        Ok(body) => Ok((received, body)),
        Err((e, raw)) => Err(state.reject(route, e, None, raw.as_deref(), &received).await),
    }
}

pub async fn collect(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    const ROUTE: &str = "/v1/collect";
    let (received, body) = sender_and_json(&state, ROUTE, &req, payload).await?;
    if let Err(e) = accept_batch(&state, &req, &body, &received).await {
        return Err(state.reject(ROUTE, e, None, Some(&body), &received).await);
    }
    Ok(HttpResponse::NoContent().finish())
}

pub async fn pixel(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    const ROUTE: &str = "/v1/p.gif";
    let received = request::received(&state, &req);
    if let Err(e) = request::rate_limit(&state, &received) {
        return Err(state.reject(ROUTE, e, None, None, &received).await);
    }
    let body = match validate::pixel_batch(req.query_string()) {
        Ok(b) => b,
        Err(validate::PixelError::TooLarge) => return Err(state.reject(ROUTE, ApiError::TooLarge(validate::MAX_PIXEL_D), None, None, &received).await),
        Err(validate::PixelError::Bad(invalid)) => {
            let raw = req.query_string().as_bytes();
            return Err(state.reject(ROUTE, ApiError::Invalid(invalid), None, Some(raw), &received).await);
        }
    };
    if let Err(e) = accept_batch(&state, &req, &body, &received).await {
        return Err(state.reject(ROUTE, e, None, Some(&body), &received).await);
    }
    Ok(HttpResponse::Ok().content_type("image/gif").insert_header((header::CACHE_CONTROL, "no-store")).body(GIF))
}

/// Validates a batch, publishes its events, and renews the session's number hold.
async fn accept_batch(state: &AppState, req: &HttpRequest, body: &[u8], received: &Received) -> Result<(), ApiError> {
    let batch: Batch = parse_json(body)?;
    let accounts = state.accounts();
    let account = accounts.account(&batch.account).ok_or_else(|| ApiError::UnknownAccount(batch.account.chars().take(64).collect()))?;
    request::check_origin(account, req)?;
    let skew = validate::batch(&batch, received.received_at).map_err(ApiError::Invalid)?;
    let records = records::events(&batch, received, skew, &state.settings.topics.events, body.len()).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let n = records.len() as u64;
    state.produce("events", records).await?;
    state.metrics.events_accepted.with_label_values(&["event"]).inc_by(n);
    if let Some(session) = &batch.session_id {
        if !account.dni.pool.is_empty() {
            let renewal = Renewal { account: account.id.clone(), session: session.clone(), visitor: batch.visitor_id.clone(), url: batch.events[0].url.clone(), received: received.clone() };
            crate::renewals::request(state, renewal);
        }
    }
    Ok(())
}

/// A session's activity keeps its pool number: extend and publish the hold
/// (run by the renewal worker, `renewals`).
pub(crate) async fn renew_hold(state: &AppState, r: &Renewal) {
    let accounts = state.accounts();
    let Some(account) = accounts.account(&r.account) else { return };
    let (session, received) = (r.session.as_str(), &r.received);
    let hold_ms = i64::from(account.dni.hold_minutes) * 60_000;
    let renewed = match state.pools.renew(&account.id, &account.dni.pool, session, received.received_at, hold_ms).await {
        Ok(Some(renewed)) => renewed,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "could not renew a number hold");
            return;
        }
    };
    let (pool, assignment) = renewed;
    let msg = assignment_message(account, &pool, session, r.visitor.clone(), &r.url, None, &assignment, received);
    let published = match records::assignment(&msg, &state.settings.topics.assignments) {
        Ok(record) => state.produce("assignments", vec![record]).await,
        Err(e) => Err(ApiError::BadRequest(e.to_string())),
    };
    if let Err(e) = published {
        tracing::warn!(error = %e, "could not publish a hold renewal");
    }
}

#[allow(clippy::too_many_arguments)] // one per field of the message
fn assignment_message(account: &Account, pool: &str, session: &str, visitor: Option<String>, url: &str, referrer: Option<String>, a: &Assignment, received: &Received) -> AssignmentMessage {
    AssignmentMessage {
        account: account.id.clone(),
        number: a.number.clone(),
        kind: NumberKind::Session,
        pool_id: Some(pool.to_owned()),
        session_id: session.to_owned(),
        visitor_id: visitor,
        assigned_at: received.received_at,
        expires_at: a.expires_at,
        shared: a.shared,
        url: url.to_owned(),
        referrer,
        received: received.clone(),
    }
}

// ---- /v1/config/{account} and /v1/numbers ------------------------------------

pub async fn config(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
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
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "public, max-age=300")).json(body))
}

pub async fn numbers(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    const ROUTE: &str = "/v1/numbers";
    let (received, body) = sender_and_json(&state, ROUTE, &req, payload).await?;
    match assign_number(&state, &req, &body, &received).await {
        Ok(response) => Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(response)),
        Err(e) => Err(state.reject(ROUTE, e, None, Some(&body), &received).await),
    }
}

async fn assign_number(state: &AppState, req: &HttpRequest, body: &[u8], received: &Received) -> Result<NumbersResponse, ApiError> {
    let request: NumbersRequest = parse_json(body)?;
    let accounts = state.accounts();
    let account = accounts.account(&request.account).ok_or_else(|| ApiError::UnknownAccount(request.account.chars().take(64).collect()))?;
    request::check_origin(account, req)?;
    validate::numbers_request(&request).map_err(ApiError::Invalid)?;
    let visit = ringpath_types::source::classify_landing(&request.url, request.referrer.as_deref().unwrap_or("")).unwrap_or_default();
    let now = received.received_at;
    let client = received.ip.parse().map(|ip| ringpath_types::ip::client(ip).to_string()).unwrap_or_else(|_| received.ip.clone());
    let asker = pools::Asker {
        session: &request.session_id,
        client: &client,
        is_bot: ringpath_types::ua::parse(&received.user_agent).is_bot,
        now,
        client_cap: state.settings.pool_holds_per_client,
    };
    let decision = match pools::decide(state.pools.as_ref(), account, &visit, asker).await {
        Ok((decision, None)) => decision,
        Ok((decision, Some(refusal))) => {
            state.metrics.numbers_without_pool.with_label_values(&[refusal.cause()]).inc();
            decision
        }
        Err(e) => {
            // No pool number while the store is away: another collector may hold it.
            tracing::warn!(error = %e, "pool store unavailable; answering the source-level or site number");
            state.metrics.numbers_without_pool.with_label_values(&["store_unavailable"]).inc();
            pools::fallback(account, &visit)
        }
    };
    let hold_ms = i64::from(account.dni.hold_minutes) * 60_000;
    let (pool, assignment) = match decision {
        Decision::Session { pool, assignment } => (pool, assignment),
        Decision::Source(number) => return Ok(NumbersResponse { number, kind: NumberKind::Source, expires_at: now + hold_ms, shared: true }),
        Decision::Site(number) => return Ok(NumbersResponse { number, kind: NumberKind::Site, expires_at: now + hold_ms, shared: true }),
        Decision::NoNumbers => return Err(ApiError::BadRequest("account has no numbers configured".into())),
    };
    state.recent_renewals.assigned(&account.id, &request.session_id, now);
    if assignment.shared && !assignment.renewed {
        state.metrics.pool_exhausted.with_label_values(&[&account.id, &pool]).inc();
    }
    state.update_pool_gauges(now).await;
    let msg = assignment_message(account, &pool, &request.session_id, request.visitor_id.clone(), &request.url, request.referrer.clone(), &assignment, received);
    let record = records::assignment(&msg, &state.settings.topics.assignments).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    // The number is only handed out once its hold is durable: after a
    // restart, recovery must know it is taken.
    state.produce("assignments", vec![record]).await?;
    Ok(NumbersResponse { number: assignment.number, kind: NumberKind::Session, expires_at: assignment.expires_at, shared: assignment.shared })
}

// ---- /v1/calls ---------------------------------------------------------------

/// Account id from `Authorization: Basic base64(account:token)`, if the token
/// is the account's calls token (never its API token; an account without a
/// calls token takes no calls). An unknown account, a missing calls token and
/// a wrong token are the same 401, after the same work.
fn calls_auth(req: &HttpRequest, accounts: &AccountsFile) -> Result<String, ApiError> {
    let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or(ApiError::Unauthorized)?;
    let (id, token) = basic_credentials(header).ok_or(ApiError::Unauthorized)?;
    let account = accounts.account(&id);
    let want = account.and_then(|a| a.calls_token_sha256.as_deref()).unwrap_or(NO_TOKEN);
    match account {
        Some(a) if a.calls_token_sha256.is_some() && token_matches(&token, want) => Ok(a.id.clone()),
        _ => Err(ApiError::Unauthorized),
    }
}

pub async fn calls(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    const ROUTE: &str = "/v1/calls";
    let received = request::received(&state, &req);
    if let Err(e) = request::rate_limit(&state, &received) {
        return Err(state.reject(ROUTE, e, None, None, &received).await);
    }
    let account = match calls_auth(&req, &state.accounts()) {
        Ok(a) => a,
        Err(e) => return Err(state.reject(ROUTE, e, None, None, &received).await),
    };
    let body = match request::body(&req, payload, state.settings.body_timeout).await {
        Ok(b) => b,
        Err((e, raw)) => return Err(state.reject(ROUTE, e, Some(account), raw.as_deref(), &received).await),
    };
    let parsed = parse_json::<CallRecord>(&body).and_then(|c| validate::call(&c, received.received_at).map(|_| c).map_err(ApiError::Invalid));
    let call = match parsed {
        Ok(c) => c,
        Err(e) => return Err(state.reject(ROUTE, e, Some(account), Some(&body), &received).await),
    };
    let msg = CallMessage { account, call, received: received.clone() };
    let record = records::call(&msg, &state.settings.topics.calls).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if let Err(e) = state.produce("calls", vec![record]).await {
        return Err(state.reject(ROUTE, e, Some(msg.account), Some(&body), &received).await);
    }
    state.metrics.events_accepted.with_label_values(&["call"]).inc();
    Ok(HttpResponse::Accepted().json(json!({"status": "accepted", "call_id": msg.call.call_id})))
}

// ---- snippet, health, metrics ------------------------------------------------

/// `/rp.js`, `/rp.wasm` (latest) and `/v/{version}/rp.js`, `/v/{version}/rp.wasm` (pinned, immutable).
pub async fn asset(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
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
        .insert_header(("Cross-Origin-Resource-Policy", "cross-origin"))
        .insert_header(("X-Content-Type-Options", "nosniff"));
    if not_modified {
        return Ok(resp.finish());
    }
    Ok(resp.content_type(asset.content_type).body(asset.body.clone()))
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
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

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state.metrics.queue_depth.set(state.sink.queue_depth() as i64);
    state.update_pool_gauges(state.clock.now_ms()).await;
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use actix_web::test as atest;
    use ringpath_types::accounts::AccountsFile;

    use crate::settings::Settings;
    use crate::sink::{Record, SendFuture, Sink, SinkError};
    use crate::state::AppState;

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
        let state = actix_web::web::Data::new(AppState::new(settings, accounts.clone(), sink.clone()));
        state.install_accounts(accounts).await.unwrap();
        let app = atest::init_service(actix_web::App::new().app_data(state).configure(crate::routes::configure)).await;
        let now = ringpath_types::time::now_ms();
        let body = serde_json::json!({"v":1,"account":"acc_demo","sent_at":now,"consent":"denied","events":[{"id":"e1","type":"pageview","ts":now,"url":"https://demo.example/"}]});
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
}
