//! The API's error answer: a status with the JSON body `{"error": {"code", "message"}}`.
//!
//! Every non-2xx answer under `/api/v1` has this body, including axum's own rejections, which
//! are mapped to stable codes here: `method_not_allowed` (405), `payload_too_large` (413),
//! `unsupported_media_type` (415), `invalid_json` (400, not JSON), `invalid_body` (400, JSON of
//! the wrong shape), `invalid_query` (400), `invalid_path` (400) and `not_found` (404, no such
//! endpoint), and `rate_limited` (429, with `Retry-After`: the API key, or the source address
//! of a request without a valid key, is over `[http] requests_per_second_per_key`). `code` is
//! for programs and stays stable; `message` is for people and may change.

use std::borrow::Cow;

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A JSON error body `{"error": {"code", "message"}}` with its status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: String,
    /// `Retry-After` seconds (a `429`).
    retry_after_secs: Option<u64>,
}

impl ApiError {
    /// An error answer; `code` is one of the documented codes (a few, such as a rejected
    /// plugin's, come from the component that refused).
    pub(super) fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// `429 rate_limited` with `Retry-After: secs`.
    pub(super) fn rate_limited(secs: u64) -> Self {
        Self {
            retry_after_secs: Some(secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests: try again in {secs} s"),
            )
        }
    }

    /// The stable error code, e.g. `invalid_cursor`.
    #[cfg(test)]
    pub(super) fn code(&self) -> &str {
        &self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": { "code": self.code, "message": self.message } }));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let message = rejection.body_text();
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ),
            JsonRejection::JsonSyntaxError(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", message)
            }
            JsonRejection::JsonDataError(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", message)
            }
            JsonRejection::BytesRejection(rejection) => rejection.into(),
            _ => ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", message),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return payload_too_large();
        }
        // The body could not be read (the client went away, a broken chunk).
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            rejection.body_text(),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            rejection.body_text(),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        if rejection.status().is_server_error() {
            // The route and the handler's parameters disagree: a bug, not the caller's fault.
            tracing::error!("API path parameters: {}", rejection.body_text());
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the request could not be completed",
            );
        }
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            rejection.body_text(),
        )
    }
}

/// `413 payload_too_large`: the body is over the route's `DefaultBodyLimit`.
fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is larger than this endpoint accepts",
    )
}

/// Fallback for paths no route serves: `404 not_found`.
pub(super) async fn no_such_endpoint() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// Fallback for a served path asked with another method: `405 method_not_allowed` (axum adds
/// the `Allow` header).
pub(super) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// `500 internal` for a failure the caller cannot fix; the cause goes to the log only.
pub(super) fn internal(error: impl std::fmt::Display) -> ApiError {
    tracing::error!("API store error: {error}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the request could not be completed",
    )
}
