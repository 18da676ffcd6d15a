//! The HTTP surface: health, readiness, Prometheus metrics, the calls API and the tenancy
//! API (tenants, API keys, numbers).
//!
//! `GET /api/v1/calls/{id}` returns the call with `transcript`, `extractions`, `events`,
//! `turns` (per-turn latency), `cost` (the priced ledger), `latency` (a summary over the
//! turns), `summary` and `sentiment` (`positive`, `neutral` or `negative`; both `null` until
//! the call is summarised) and `recording` (`duration_ms`, `created_at_ms`; `null` when the
//! call was not recorded); `GET /api/v1/calls` lists calls with their `cost_inr`.
//! `GET /api/v1/calls/{id}/recording` downloads the call's recording (`audio/wav`, two
//! channels: caller, agent), `404` when it has none; `GET /api/v1/recordings` lists the
//! recordings (`call_id`, `tenant_id`, `duration_ms`, `created_at_ms`), newest first.
//!
//! `GET /api/v1/calls` filters (`from`, `to`, `status`, `dialled`, `caller`) and pages with an
//! opaque `cursor` (`next_cursor` in the answer). `GET /api/v1/callers`, `/callers/{phone}` and
//! `DELETE /callers/{phone}` (erasure on request), `GET /api/v1/extractions` and
//! `GET /api/v1/analytics` are the rest of the read side.
//! `/api/v1/tenants` (operator only: create, list, read, change, delete), `/api/v1/keys`
//! (tenant API keys: create, shown once; list; revoke) and `/api/v1/numbers` (the numbers a
//! tenant owns: list, claim, release) manage tenants. A request is authorised by the
//! operator key (every tenant) or a tenant's API key (that tenant only; another tenant's
//! resources answer `404`, and so do operator-only endpoints).
//!
//! `GET /api/v1/openapi.json` serves the OpenAPI 3.1 document of all of this.
//!
//! `/api/v1/webhooks` registers a tenant's webhook endpoints (the signing secret is shown once)
//! and `/api/v1/webhooks/deliveries` is its delivery log ([`webhooks`]; delivery itself is
//! `crate::webhooks`).
//!
//! `/api/v1/assets` keeps a tenant's audio prompts (WAV uploads, converted once to 8 kHz,
//! played by `play-asset`; [`assets`]) and `/api/v1/knowledge` its reference texts
//! ([`knowledge`]).
//!
//! `/api/v1/plugins` takes a tenant's plugin uploads (compiled in a resource-limited child),
//! lists its versions, activates one and rolls back ([`plugins`]).
//!
//! One module per thing served: [`health`] (health, readiness, metrics), [`openapi`] (the
//! OpenAPI document), [`calls`], [`recordings`], [`callers`], [`extractions`], [`analytics`],
//! [`plugins`], [`tenants`], [`keys`], [`numbers`], [`trunks`], [`webhooks`], [`assets`],
//! [`knowledge`]. [`params`] parses the query parameters
//! they share (times, cursors, statuses, numbers), [`auth`] checks the bearer key and maps it
//! to a scope, [`extract`] wraps axum's extractors and [`error`] shapes every error answer as
//! JSON.
//!
//! To add an endpoint: write the handler in the module of what it serves (taking
//! [`auth::Caller`] and the `Api*` extractors, returning `Result<_, ApiError>`), list it in
//! [`endpoints`] and describe it in `openapi.json`; the tests fail until both agree.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};
use serde::Deserialize;
use vaani_store::{CallFilter, Store};

use crate::metrics::Metrics;

mod analytics;
mod assets;
mod auth;
mod callers;
mod calls;
mod error;
mod extract;
mod extractions;
mod health;
mod keys;
mod knowledge;
mod numbers;
mod openapi;
mod params;
mod plugins;
mod recordings;
mod tenants;
#[cfg(test)]
mod tests;
mod trunks;
mod webhooks;

use error::ApiError;
pub use plugins::PluginUploads;

/// What the HTTP handlers share.
pub struct HttpState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub operator_key: String,
    /// Set once SIP, media and plugins are up.
    pub ready: AtomicBool,
    /// Where `POST /api/v1/calls` sends the calls to place (`None`: not served).
    pub dialer: Option<tokio::sync::mpsc::Sender<crate::outbound::DialRequest>>,
    /// Compiles and checks plugin uploads (`None`: `POST /api/v1/plugins` is not served).
    pub plugin_uploads: Option<PluginUploads>,
    /// Which webhook endpoints tenants may register (https only, public addresses, unless
    /// the operator allows more).
    pub webhooks: vaani_config::WebhooksConfig,
    /// Call routing, rebuilt after every write that changes it (`None`: nothing routes calls,
    /// and tenant settings are only checked to be a JSON object).
    pub routing: Option<Arc<dyn RoutingReload>>,
    /// `/api/v1` requests per second per API key (per source address without a valid key).
    pub api_limits: crate::limits::ApiRateLimiter,
}

/// Call routing as the API changes it: checks tenant settings the way routing reads them, and
/// rebuilds routing from the database after a write.
pub trait RoutingReload: Send + Sync {
    /// Checks a tenant's settings as routing will read them; on error, every problem found.
    fn check_settings(&self, settings: &serde_json::Value) -> Result<(), Vec<String>>;

    /// Rebuilds call routing from the database, so that the next call follows what was
    /// written; calls in progress are not changed. Rebuilds run one at a time.
    fn reload(
        self: Arc<Self>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;
}

/// Makes call routing follow a write to tenants, numbers or plugins before the write is
/// answered. The write is kept when this fails: `500 internal`, saying so.
async fn apply_routing(state: &HttpState) -> Result<(), ApiError> {
    let Some(routing) = &state.routing else {
        return Ok(());
    };
    routing.clone().reload().await.map_err(|error| {
        tracing::error!("call routing not rebuilt after a change: {error}");
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the change is stored, but calls do not follow it yet (the server log says why)",
        )
    })
}

/// The largest request body the JSON endpoints read: 64 KiB. A larger body is answered
/// `413 payload_too_large`. An endpoint that takes more (an upload) sets its own limit with
/// [`Endpoint::body_limit`], which overrides this one.
const JSON_BODY_LIMIT: usize = 64 * 1024;

/// Every endpoint the server answers. The router is built from this list and nothing else,
/// and a test checks it against `openapi.json` both ways: add a new endpoint here and document
/// it there.
fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(Method::GET, "/healthz", health::healthz),
        Endpoint::new(Method::GET, "/readyz", health::readyz),
        Endpoint::new(Method::GET, "/metrics", health::metrics),
        Endpoint::new(Method::GET, "/api/v1/openapi.json", openapi::document),
        Endpoint::new(Method::GET, "/api/v1/calls", calls::list_calls),
        Endpoint::new(Method::POST, "/api/v1/calls", calls::place_call),
        Endpoint::new(Method::GET, "/api/v1/calls/{id}", calls::get_call),
        Endpoint::new(
            Method::GET,
            "/api/v1/calls/{id}/recording",
            recordings::get_recording,
        ),
        Endpoint::new(
            Method::GET,
            "/api/v1/recordings",
            recordings::list_recordings,
        ),
        Endpoint::new(Method::GET, "/api/v1/plugins", plugins::list_plugins),
        Endpoint::new(Method::POST, "/api/v1/plugins", plugins::upload_plugin)
            .body_limit(plugins::MAX_COMPONENT_BYTES),
        Endpoint::new(
            Method::POST,
            "/api/v1/plugins/rollback",
            plugins::roll_back_plugin,
        ),
        Endpoint::new(Method::GET, "/api/v1/plugins/{id}", plugins::get_plugin),
        Endpoint::new(
            Method::POST,
            "/api/v1/plugins/{id}/activate",
            plugins::activate_plugin,
        ),
        Endpoint::new(Method::GET, "/api/v1/callers", callers::list_callers),
        Endpoint::new(Method::GET, "/api/v1/callers/{phone}", callers::get_caller),
        Endpoint::new(
            Method::DELETE,
            "/api/v1/callers/{phone}",
            callers::delete_caller,
        ),
        Endpoint::new(
            Method::GET,
            "/api/v1/extractions",
            extractions::list_extractions,
        ),
        Endpoint::new(Method::GET, "/api/v1/analytics", analytics::analytics),
        Endpoint::new(Method::GET, "/api/v1/assets", assets::list_assets),
        Endpoint::new(Method::GET, "/api/v1/assets/{id}", assets::get_asset),
        Endpoint::new(Method::PUT, "/api/v1/assets/{id}", assets::put_asset)
            .body_limit(assets::MAX_ASSET_UPLOAD_BYTES),
        Endpoint::new(Method::DELETE, "/api/v1/assets/{id}", assets::delete_asset),
        Endpoint::new(
            Method::GET,
            "/api/v1/assets/{id}/audio",
            assets::get_asset_audio,
        ),
        Endpoint::new(Method::GET, "/api/v1/knowledge", knowledge::list_items),
        Endpoint::new(Method::POST, "/api/v1/knowledge", knowledge::create_item),
        Endpoint::new(Method::GET, "/api/v1/knowledge/{id}", knowledge::get_item),
        Endpoint::new(
            Method::PATCH,
            "/api/v1/knowledge/{id}",
            knowledge::update_item,
        ),
        Endpoint::new(
            Method::DELETE,
            "/api/v1/knowledge/{id}",
            knowledge::delete_item,
        ),
        Endpoint::new(Method::GET, "/api/v1/trunks", trunks::list_trunks),
        Endpoint::new(Method::PUT, "/api/v1/trunks/{id}", trunks::put_trunk),
        Endpoint::new(Method::DELETE, "/api/v1/trunks/{id}", trunks::delete_trunk),
        Endpoint::new(Method::GET, "/api/v1/webhooks", webhooks::list_webhooks),
        Endpoint::new(Method::POST, "/api/v1/webhooks", webhooks::create_webhook),
        Endpoint::new(
            Method::GET,
            "/api/v1/webhooks/deliveries",
            webhooks::list_deliveries,
        ),
        Endpoint::new(
            Method::DELETE,
            "/api/v1/webhooks/{id}",
            webhooks::delete_webhook,
        ),
        Endpoint::new(Method::GET, "/api/v1/tenants", tenants::list_tenants),
        Endpoint::new(Method::POST, "/api/v1/tenants", tenants::create_tenant),
        Endpoint::new(Method::GET, "/api/v1/tenants/{id}", tenants::get_tenant),
        Endpoint::new(
            Method::PATCH,
            "/api/v1/tenants/{id}",
            tenants::update_tenant,
        ),
        Endpoint::new(
            Method::DELETE,
            "/api/v1/tenants/{id}",
            tenants::delete_tenant,
        ),
        Endpoint::new(Method::GET, "/api/v1/keys", keys::list_keys),
        Endpoint::new(Method::POST, "/api/v1/keys", keys::create_key),
        Endpoint::new(Method::DELETE, "/api/v1/keys/{id}", keys::revoke_key),
        Endpoint::new(Method::GET, "/api/v1/numbers", numbers::list_numbers),
        Endpoint::new(Method::POST, "/api/v1/numbers", numbers::assign_number),
        Endpoint::new(
            Method::DELETE,
            "/api/v1/numbers/{number}",
            numbers::release_number,
        ),
    ]
}

/// One endpoint: a method on a path, and the handler that answers it.
struct Endpoint {
    method: Method,
    /// The path with `{name}` parameters (the same syntax in axum and OpenAPI).
    path: &'static str,
    handler: MethodRouter<Arc<HttpState>>,
}

impl Endpoint {
    /// `method` on `path`, answered by `handler`.
    ///
    /// # Panics
    /// If `method` is one axum cannot route (an extension method): a bug in [`endpoints`],
    /// seen when the server starts and in every router test.
    fn new<H, T>(method: Method, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, Arc<HttpState>>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        Self {
            method,
            path,
            handler: on(filter, handler),
        }
    }

    /// Lets this endpoint read bodies of up to `bytes` instead of [`JSON_BODY_LIMIT`]
    /// (for uploads).
    fn body_limit(mut self, bytes: usize) -> Self {
        self.handler = self.handler.layer(DefaultBodyLimit::max(bytes));
        self
    }
}

/// The router for every HTTP endpoint.
pub fn router(state: Arc<HttpState>) -> Router {
    router_for(endpoints(), state)
}

/// The router serving `endpoints`, with the JSON fallbacks and the default body limit.
fn router_for(endpoints: Vec<Endpoint>, state: Arc<HttpState>) -> Router {
    let mut router = Router::new();
    for endpoint in endpoints {
        tracing::debug!(method = %endpoint.method, path = endpoint.path, "HTTP endpoint");
        router = router.route(endpoint.path, endpoint.handler);
    }
    router
        .fallback(error::no_such_endpoint)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(axum::middleware::from_fn(in_request_span))
        .with_state(state)
}

/// Runs each request inside an `http_request` span (`method`, `path` with phone numbers
/// masked, and `tenant_id` once
/// [`auth::Caller`] has checked a tenant's key), so its log lines say what they belong to.
async fn in_request_span(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "http_request",
        method = %request.method(),
        path = %masked_path(request.uri().path()),
        tenant_id = tracing::field::Empty
    );
    next.run(request).instrument(span).await
}

/// `path` for the logs: a segment that is a phone number (`/callers/{phone}`,
/// `/numbers/{number}`: digits, maybe after `+` or `%2B`) keeps only its last four digits.
fn masked_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            let (prefix, digits) = ["+", "%2B", "%2b"]
                .iter()
                .find_map(|p| segment.strip_prefix(p).map(|rest| (*p, rest)))
                .unwrap_or(("", segment));
            if digits.len() > 4 && digits.bytes().all(|b| b.is_ascii_digit()) {
                format!("{prefix}{}", crate::call::mask_number(digits))
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The query of the list endpoints: `?limit=` (1..=500, default 50) and `?tenant=`.
#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<u32>,
    tenant: Option<String>,
}

impl ListQuery {
    /// The store filter; `400 invalid_limit` when `limit` is out of range.
    fn into_filter(self) -> Result<CallFilter, ApiError> {
        Ok(CallFilter {
            tenant: self.tenant,
            limit: params::limit(self.limit)?,
            ..CallFilter::default()
        })
    }
}
