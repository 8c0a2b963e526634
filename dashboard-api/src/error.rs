//! Every way a request can fail, mapped to its HTTP status and body here and
//! nowhere else (handlers only return `Err`), and documented from the same
//! list ([`ApiError::DOCUMENTED`]) so `/openapi.json` names each answer.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthError;
use crate::params::ParamError;
use crate::reports::ReportError;
use crate::zone::UnknownZone;

/// What every failed request answers, with its status.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: String,
    /// the rejected parameter (400 only)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadParam(ParamError),
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("not found")]
    NotFound,
    /// The database failed (logged where it is turned into this).
    #[error("report failed: the database did not answer; try again")]
    Unavailable,
    #[error("report timed out")]
    Timeout,
    /// The accounts file holds something the API cannot serve.
    #[error("account {account} has an invalid timezone {:?} in the accounts file", .zone.name)]
    BadTimezone { account: String, zone: UnknownZone },
}

impl ApiError {
    /// Each status an operation may answer with instead of success, and why.
    pub const DOCUMENTED: &'static [(StatusCode, &'static str)] = &[
        (StatusCode::BAD_REQUEST, "a parameter is invalid (`parameter` names it)"),
        (StatusCode::UNAUTHORIZED, "missing or invalid credentials (checked before anything else)"),
        (StatusCode::NOT_FOUND, "not covered by these credentials, or does not exist (the same answer)"),
        (StatusCode::INTERNAL_SERVER_ERROR, "the accounts file gives the account a time zone the tz database does not know"),
        (StatusCode::SERVICE_UNAVAILABLE, "the database did not answer; try again"),
        (StatusCode::GATEWAY_TIMEOUT, "the report ran past the query timeout"),
    ];
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
        ApiError::Unavailable
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadParam(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ApiError::BadTimezone { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized) {
            r.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"ringpath\""));
        }
        let parameter = match self {
            ApiError::BadParam(p) => Some(p.param.clone()),
            _ => None,
        };
        r.json(ErrorBody { error: self.to_string(), parameter })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    async fn body(e: &ApiError) -> serde_json::Value {
        let bytes = actix_web::body::to_bytes(e.error_response().into_body()).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[actix_web::test]
    async fn each_error_has_one_status_and_a_json_body() {
        let bad = ApiError::from(ParamError::new("limit", "limit must be 1..1000"));
        assert_eq!(bad.status_code(), StatusCode::BAD_REQUEST);
        assert_eq!(body(&bad).await, serde_json::json!({"error": "limit must be 1..1000", "parameter": "limit"}));
        assert_eq!(body(&ApiError::Timeout).await, serde_json::json!({"error": "report timed out"}));
        assert_eq!(body(&ApiError::NotFound).await, serde_json::json!({"error": "not found"}));
        let unauthorized = ApiError::from(AuthError::Unauthorized).error_response();
        assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(unauthorized.headers().get(header::WWW_AUTHENTICATE).unwrap(), "Basic realm=\"ringpath\"");
        assert_eq!(ApiError::from(AuthError::NotCovered).status_code(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn every_status_an_error_maps_to_is_documented() {
        let zone = UnknownZone { name: "Mars/Olympus".into() };
        let all = [
            ApiError::BadParam(ParamError::new("from", "x")),
            ApiError::Unauthorized,
            ApiError::NotFound,
            ApiError::Unavailable,
            ApiError::Timeout,
            ApiError::BadTimezone { account: "acc_a".into(), zone },
        ];
        for e in &all {
            assert!(ApiError::DOCUMENTED.iter().any(|(status, _)| *status == e.status_code()), "{e:?}");
        }
        assert_eq!(ApiError::DOCUMENTED.len(), all.len());
    }
}
