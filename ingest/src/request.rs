//! Reading a request the same way on every route: who sent it (the client IP
//! per the trusted proxies, the user agent), whether it is over its rate,
//! whether its origin may send for the account, and its body — read within
//! the limit, decoded per `Content-Encoding`, with a JSON or text content type.

use std::net::IpAddr;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use ringpath_types::accounts::Account;
use ringpath_types::wire::Received;

use crate::client_ip::client_ip;
use crate::error::ApiError;
use crate::state::AppState;
use crate::validate::{self, MAX_BODY_BYTES};

/// The sender of a request, stamped with the collector's clock.
pub fn received(state: &AppState, req: &HttpRequest) -> Received {
    let peer = req.peer_addr().map(|a| a.ip()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
    // Every header line, in order: a proxy may add its own line (HAProxy's
    // `option forwardfor`) after one the client sent. A line that is not text
    // stops the walk like any other garbage hop.
    let lines: Vec<&str> = req.headers().get_all("x-forwarded-for").map(|v| v.to_str().unwrap_or("?")).collect();
    let xff = (!lines.is_empty()).then(|| lines.join(","));
    let ip = client_ip(peer, xff.as_deref(), &state.settings.trusted_proxies);
    let user_agent = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    // At most 512 characters; a header of ≤ 512 bytes has no more than that.
    let user_agent = if user_agent.len() <= 512 { user_agent.to_owned() } else { user_agent.chars().take(512).collect() };
    Received { received_at: state.clock.now_ms(), ip: ip.to_string(), user_agent }
}

pub fn rate_limit(state: &AppState, received: &Received) -> Result<(), ApiError> {
    let ip: IpAddr = received.ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    state.limiter.check(ip, received.received_at).map_err(ApiError::RateLimited)
}

/// Beacons may only come from the account's sites. Browsers send `Origin`
/// on POSTs; an image request (the pixel) carries only `Referer`, so its
/// origin stands in. A request with neither (a script, or a pixel with
/// `referrerpolicy="no-referrer"`) is refused for an account that lists its
/// origins: it could come from anywhere.
pub fn check_origin(account: &Account, req: &HttpRequest) -> Result<(), ApiError> {
    if account.allowed_origins.is_empty() {
        return Ok(());
    }
    let header_str = |name| req.headers().get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let origin = match header_str(header::ORIGIN) {
        Some(o) => o,
        None => match header_str(header::REFERER) {
            Some(r) => origin_of(&r),
            None => return Err(ApiError::NoOrigin),
        },
    };
    if account.allowed_origins.iter().any(|o| o.eq_ignore_ascii_case(&origin)) {
        Ok(())
    } else {
        Err(ApiError::ForbiddenOrigin(origin.chars().take(200).collect()))
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
pub type BodyError = (ApiError, Option<web::Bytes>);

/// The body as the handlers parse it: read within the limit, then decoded
/// per `Content-Encoding` with the limit on the decoded size.
pub async fn body(req: &HttpRequest, payload: web::Payload, timeout: Duration) -> Result<web::Bytes, BodyError> {
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
pub fn json_or_text(req: &HttpRequest) -> Result<(), ApiError> {
    let ct = req.headers().get(header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).unwrap_or_default();
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/json" | "text/plain" => Ok(()),
        "" => Err(ApiError::UnsupportedMediaType("(none)".into())),
        _ => Err(ApiError::UnsupportedMediaType(mime.chars().take(100).collect())),
    }
}

/// A body that must come with a JSON or text content type.
pub async fn json_body(state: &AppState, req: &HttpRequest, payload: web::Payload) -> Result<web::Bytes, BodyError> {
    let body = body(req, payload, state.settings.body_timeout).await?;
    json_or_text(req).map_err(|e| (e, Some(body.clone())))?;
    Ok(body)
}

pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    validate::parse_json(body).map_err(ApiError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_the_scheme_host_and_port() {
        assert_eq!(origin_of("https://Shop.Example:8443/cart?x=1"), "https://shop.example:8443");
        assert_eq!(origin_of("https://shop.example"), "https://shop.example");
    }
}
