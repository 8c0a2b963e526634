//! The collector's route table, written once: each path with the methods it
//! answers (anything else is 405 with `Allow`), unknown paths 404, CORS for
//! the browsers that fetch beacons, config and the snippet cross-origin, and
//! a request counter keyed by route template.

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::{middleware, web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::handlers;
use crate::state::AppState;

const POST: &str = "POST, OPTIONS";
const GET: &str = "GET";

/// A path answering `allow`; any other method gets 405 naming them.
fn resource(path: &str, allow: &'static str, route: actix_web::Route) -> actix_web::Resource {
    web::resource(path).route(route).default_service(web::to(move |req: HttpRequest| async move { method_not_allowed(&req, allow) }))
}

fn method_not_allowed(req: &HttpRequest, allow: &str) -> HttpResponse {
    let method: String = req.method().as_str().chars().take(16).collect();
    HttpResponse::MethodNotAllowed().insert_header((header::ALLOW, allow)).json(json!({"error": format!("method {method} not allowed; use {allow}")}))
}

/// Routes, for the server and for in-process tests.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/v1/collect", POST, web::post().to(handlers::collect)))
        .service(resource("/v1/p.gif", GET, web::get().to(handlers::pixel)))
        .service(resource("/v1/config/{account}", GET, web::get().to(handlers::config)))
        .service(resource("/v1/numbers", POST, web::post().to(handlers::numbers)))
        .service(resource("/v1/calls", POST, web::post().to(handlers::calls)))
        .service(resource("/rp.js", GET, web::get().to(handlers::asset)))
        .service(resource("/rp.wasm", GET, web::get().to(handlers::asset)))
        .service(resource("/v/{version}/rp.js", GET, web::get().to(handlers::asset)))
        .service(resource("/v/{version}/rp.wasm", GET, web::get().to(handlers::asset)))
        .service(resource("/healthz", GET, web::get().to(handlers::healthz)))
        .service(resource("/readyz", GET, web::get().to(handlers::readyz)))
        .default_service(web::to(|req: HttpRequest| async move {
            if req.method() == Method::OPTIONS {
                // An OPTIONS that is not a CORS preflight (those the CORS layer answers).
                return HttpResponse::NoContent().insert_header((header::ALLOW, "GET, POST, OPTIONS")).finish();
            }
            HttpResponse::NotFound().json(json!({"error": "not found"}))
        }));
}

/// The metrics listener's routes: Prometheus text, and its own liveness.
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/metrics", GET, web::get().to(handlers::metrics)))
        .service(resource("/healthz", GET, web::get().to(handlers::healthz)))
        .default_service(web::to(|| async { HttpResponse::NotFound().json(json!({"error": "not found; this listener serves /metrics"})) }));
}

/// CORS: any site may send beacons and fetch the snippet and config (the
/// Origin check per account is the handlers'), so every answer carries
/// `Access-Control-Allow-Origin: *` — also to requests without `Origin`, as
/// the snippet's documented headers promise — and preflights are answered
/// for the methods and headers the snippet and server-side senders use.
pub fn cors() -> Cors {
    Cors::default()
        .allow_any_origin()
        .send_wildcard()
        .allowed_methods([Method::GET, Method::POST])
        .allow_any_header()
        .max_age(86_400)
}

/// `Access-Control-Allow-Origin: *` on answers to requests without `Origin` (the CORS layer answers the others).
pub fn wildcard_origin() -> middleware::DefaultHeaders {
    middleware::DefaultHeaders::new().add((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
}

/// Counts every answer by route template and status.
pub async fn count_requests(req: ServiceRequest, next: middleware::Next<impl MessageBody>) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let res = next.call(req).await?;
    if let Some(state) = state {
        state.metrics.requests.with_label_values(&[&route, res.status().as_str()]).inc();
    }
    Ok(res)
}
