//! Every way a request can fail, each mapped to exactly one HTTP status, one
//! metric cause and one answer `{"error": "…"}`, in one place.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field breaks its rule (or the body is not JSON of the right shape).
    #[error("{0}")]
    Invalid(crate::validate::Invalid),
    /// A body that cannot be read or published as sent.
    #[error("{0}")]
    BadRequest(String),
    #[error("unknown account {0:?}")]
    UnknownAccount(String),
    #[error("origin {0:?} is not allowed for this account")]
    ForbiddenOrigin(String),
    #[error("neither Origin nor Referer: this account takes beacons only from its own sites (allowed_origins)")]
    NoOrigin,
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    #[error("unsupported content type {0:?}; send application/json or text/plain")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    UnsupportedEncoding(String),
    #[error("body not received in time")]
    Timeout,
    #[error("too many requests; retry after {0} s")]
    RateLimited(u64),
    #[error("not found")]
    NotFound,
    /// `/v/{version}/…` of another build than the one served (an old or mistyped tag).
    #[error("snippet version {asked:?} is not served here; the current one is {current:?} (`ringpath-ingest snippet` prints its tag)")]
    UnknownSnippetVersion { asked: String, current: String },
    #[error("events could not be made durable; retry after {0} s")]
    Unavailable(u64),
}

impl ApiError {
    /// Bounded label for the dropped-events metric.
    pub fn cause(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) | ApiError::BadRequest(_) => "invalid",
            ApiError::UnknownAccount(_) => "unknown_account",
            ApiError::ForbiddenOrigin(_) | ApiError::NoOrigin => "forbidden_origin",
            ApiError::Unauthorized => "unauthorized",
            ApiError::TooLarge(_) => "too_large",
            ApiError::UnsupportedMediaType(_) => "media_type",
            ApiError::UnsupportedEncoding(_) => "encoding",
            ApiError::Timeout => "timeout",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::NotFound | ApiError::UnknownSnippetVersion { .. } => "not_found",
            ApiError::Unavailable(_) => "unavailable",
        }
    }

    /// Whether the raw payload belongs on the dead-letter topic.
    pub fn dead_letter(&self) -> bool {
        matches!(self, ApiError::Invalid(_) | ApiError::BadRequest(_) | ApiError::UnknownAccount(_) | ApiError::ForbiddenOrigin(_) | ApiError::NoOrigin | ApiError::UnsupportedMediaType(_) | ApiError::UnsupportedEncoding(_))
    }
}

impl From<crate::encoding::DecodeError> for ApiError {
    fn from(e: crate::encoding::DecodeError) -> Self {
        match e {
            crate::encoding::DecodeError::TooLarge(limit) => ApiError::TooLarge(limit),
            crate::encoding::DecodeError::Corrupt { .. } => ApiError::BadRequest(e.to_string()),
            crate::encoding::DecodeError::Unsupported(_) => ApiError::UnsupportedEncoding(e.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::BadRequest(_) | ApiError::UnknownAccount(_) => StatusCode::BAD_REQUEST,
            ApiError::ForbiddenOrigin(_) | ApiError::NoOrigin => StatusCode::FORBIDDEN,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) | ApiError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound | ApiError::UnknownSnippetVersion { .. } => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        match self {
            ApiError::RateLimited(s) | ApiError::Unavailable(s) => {
                resp.insert_header(("Retry-After", s.to_string()));
            }
            ApiError::Unauthorized => {
                resp.insert_header(("WWW-Authenticate", "Basic realm=\"ringpath\""));
            }
            _ => {}
        }
        resp.json(serde_json::json!({ "error": self.to_string() }))
    }
}
