//! Persistence for vaani: tenants, their API keys, trunks, phone numbers, plugin versions,
//! webhook endpoints and deliveries, audio assets, knowledge items, callers, calls and
//! everything recorded during a call (transcript, extractions, events, turn latency, cost
//! ledger, summary and sentiment), plus a per-tenant key-value store for plugins, and each
//! caller's call history for greeting a returning caller.
//!
//! The API is backend-neutral: no sqlx type appears in a signature (only as the
//! `source` of a [`StoreError`]), times are unix milliseconds (`i64`) and JSON
//! travels as [`serde_json::Value`]. Two backends serve the same API: SQLite (the
//! embedded default) and PostgreSQL, chosen by the URL given to [`Store::connect`].
//! The SQL is written once and runs unchanged on both (numbered `$N` binds,
//! `ON CONFLICT … DO UPDATE`, `RETURNING`, BIGINT/TEXT/DOUBLE PRECISION/BYTEA columns);
//! `with_pool!` expands each query once per backend. The store test suite runs on both.
//!
//! Tenant isolation: every write takes the owning `tenant_id` and every read
//! takes either a `tenant_id` or a [`Scope`]. The queries that are by nature
//! not tenant-scoped are [`Store::tenant_for_number`], the routing lookup that
//! finds the tenant for a dialled number, and [`Store::tenant_for_api_key`], the
//! authentication lookup that finds the tenant for a presented API key.

/// Runs `$body` with `$pool` bound to the store's pool, whichever backend it is: the body is
/// expanded once per backend, so one SQL text and one `#[derive(FromRow)]` row type serve
/// both. Everything the body returns must have the same type on both backends (map driver
/// results such as `rows_affected()` inside the body). `?` and `return` act on the
/// enclosing function.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}

#[macro_use]
mod conditions;
mod analytics;
mod api_keys;
mod assets;
mod callers;
mod calls;
mod connect;
mod erasure;
mod error;
mod extractions;
mod history;
mod knowledge;
mod kv;
mod node;
mod numbers;
mod page;
mod plugins;
mod recordings;
mod tenants;
mod trunks;
mod webhooks;

pub use analytics::{Analytics, AnalyticsFilter};
pub use api_keys::{API_KEY_PREFIX, ApiKey};
pub use assets::Asset;
pub use callers::{Caller, CallerFilter};
pub use calls::{
    CallDetail, CallDirection, CallEvent, CallFilter, CallOutcome, CallRecord, CallReport,
    CallStatus, CallTurn, DEFAULT_CALL_LIMIT, Extraction, MAX_CALL_LIMIT, NewCall,
    NewTranscriptLine, SERVER_RESTART_END_REASON, Speaker, TranscriptLine,
};
pub use connect::redact_url;
pub use erasure::{CallerErasure, REDACTED_CALLER};
pub use error::StoreError;
pub use extractions::{ExtractionFilter, ListedExtraction};
pub use history::{MAX_RECENT_CALLS, PastCall, PastExtraction, Sentiment};
pub use knowledge::{KnowledgeItem, KnowledgeUpdate};
pub use numbers::PhoneNumber;
pub use page::{Cursor, InvalidCursor, Page};
pub use plugins::{AddedPlugin, NewPlugin, PluginArtifact, PluginBytes, PluginVersion};
pub use recordings::Recording;
pub use tenants::{NewTenant, Tenant, TenantStatus, TenantUpdate, TenantWithSettings};
pub use trunks::{ListedTrunk, Trunk, TrunkSource};
pub use webhooks::{
    DeliveryStatus, DueDelivery, WebhookDelivery, WebhookEndpoint, WebhookEventType,
};

use sqlx::{PgPool, SqlitePool};

/// Handle to the database: a connection pool plus the repository methods.
/// Cheap to clone; all clones share the pool.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    /// The node whose calls this handle inserts and recovers (see [`Store::with_node_id`]).
    node_id: Option<std::sync::Arc<str>>,
}

/// The connection pool of whichever backend [`Store::connect`] opened.
#[derive(Clone, Debug)]
enum Pool {
    /// An embedded SQLite database (a file, or in memory).
    Sqlite(SqlitePool),
    /// A PostgreSQL server.
    Postgres(PgPool),
}

/// Who is asking, for reads that an operator may do across tenants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The server operator: sees every tenant.
    Operator,
    /// One tenant (its API key): sees only rows with this `tenant_id`.
    Tenant(String),
}

impl Scope {
    /// The tenant this scope is restricted to, or `None` for the operator.
    pub fn tenant_id(&self) -> Option<&str> {
        match self {
            Scope::Operator => None,
            Scope::Tenant(id) => Some(id),
        }
    }
}

/// A new unique row id: a UUIDv7 string, ordered by creation time within this process.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The current wall-clock time as unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Is this sqlx error a foreign-key violation (the referenced row does not exist)?
fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.kind() == sqlx::error::ErrorKind::ForeignKeyViolation)
}
