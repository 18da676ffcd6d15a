//! Extractors for the `/api/v1` handlers: axum's `Json`, `Bytes`, `Query` and `Path` whose rejections
//! answer with the API's JSON error body ([`ApiError`]) instead of axum's plain text.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON request body (`Content-Type: application/json`), limited by the route's
/// `DefaultBodyLimit`; see `ApiError`'s `From<JsonRejection>` for the error codes.
pub(super) struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<T>::from_request(request, state)
            .await
            .map_err(ApiError::from)?;
        Ok(Self(value))
    }
}

/// A raw request body (an upload), limited by the endpoint's body limit
/// (`Endpoint::body_limit`); `413 payload_too_large` when over it.
pub(super) struct ApiBytes(pub Bytes);

impl<S> FromRequest<S> for ApiBytes
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(ApiError::from)?;
        Ok(Self(bytes))
    }
}

/// The query string, deserialised; `400 invalid_query` when it does not fit `T`.
pub(super) struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(value) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(ApiError::from)?;
        Ok(Self(value))
    }
}

/// The path parameters, deserialised; `400 invalid_path` when they do not fit `T`.
pub(super) struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(value) = Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(ApiError::from)?;
        Ok(Self(value))
    }
}
