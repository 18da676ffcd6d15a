//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of every endpoint, hand-written in
//! `openapi.json` beside this file. A test checks it against the router's endpoint list both
//! ways, and checks responses against its schemas, so an endpoint added without documenting it
//! fails the build's tests.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as served.
pub(super) const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Serves the document; no key needed.
pub(super) async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
