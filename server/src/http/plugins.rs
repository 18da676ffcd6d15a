//! The plugins API: upload a tenant's plugin component, list and read its versions, activate
//! one, roll back.
//!
//! An upload (`POST /api/v1/plugins`, `Content-Type: application/wasm`, at most
//! [`MAX_COMPONENT_BYTES`]) is compiled by a `vaani compile-plugin` child under resource
//! limits ([`PluginCompiler`]), one upload at a time; the artifact it makes is loaded once
//! here to prove the server can run it, then the component, what `describe()` reported and
//! the artifact are stored as the tenant's next version. The same bytes uploaded again answer
//! the version already stored (`200`, nothing compiled). A refused upload answers `422` with
//! the refusal's own code (`unsupported_world`, `missing_export`, `describe_failed`,
//! `resource_limit`, …) and exact message.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use vaani_sandbox::PluginHost;
use vaani_store::{NewPlugin, PluginArtifact, PluginVersion, Scope};

use super::auth::Caller;
use super::error::{ApiError, internal};
use super::extract::{ApiBytes, ApiPath, ApiQuery};
use super::{HttpState, apply_routing};
use crate::plugin_compile::{CompileError, PluginCompiler};

pub use vaani_sandbox::MAX_COMPONENT_BYTES;

/// Plugin versions one tenant may keep (each holds its component and compiled artifact).
const MAX_VERSIONS_PER_TENANT: usize = 50;

/// What plugin uploads need.
pub struct PluginUploads {
    /// Runs the compile children.
    pub compiler: PluginCompiler,
    /// The server's plugin host: an upload's artifact must load on it before it is stored.
    pub host: PluginHost,
    /// One compilation at a time (each may take a core for seconds and up to a GiB); an upload
    /// arriving meanwhile is answered `503 compiler_busy` with `Retry-After`.
    pub compile_slots: Semaphore,
}

impl PluginUploads {
    /// Uploads compiled by `compiler` and checked on `host`.
    pub fn new(compiler: PluginCompiler, host: PluginHost) -> PluginUploads {
        PluginUploads {
            compiler,
            host,
            compile_slots: Semaphore::new(1),
        }
    }
}

/// `?tenant=`: the tenant an operator acts for (a tenant key acts for its own tenant).
#[derive(Debug, Deserialize)]
pub(super) struct TenantQuery {
    tenant: Option<String>,
}

fn plugin_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "plugin_not_found",
        format!("no plugin version {id}"),
    )
}

/// Uploads a plugin component as the tenant's next version: `201` with the version, `200`
/// with the stored version when these exact bytes were uploaded before, `422` with the
/// refusal's code when the component is not a plugin this server can run.
pub(super) async fn upload_plugin(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<TenantQuery>,
    headers: HeaderMap,
    ApiBytes(wasm): ApiBytes,
) -> Result<Response, ApiError> {
    let tenant = caller
        .existing_tenant_to_act_for(&state, query.tenant)
        .await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.eq_ignore_ascii_case("application/wasm") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the component's bytes with `Content-Type: application/wasm`",
        ));
    }
    let Some(uploads) = &state.plugin_uploads else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this server does not take plugin uploads",
        ));
    };
    let content_hash = format!("{:x}", Sha256::digest(&wasm));
    if let Some(stored) = state
        .store
        .plugin_by_content_hash(&tenant, &content_hash)
        .await
        .map_err(internal)?
    {
        return Ok((StatusCode::OK, Json(stored)).into_response());
    }

    let existing = state
        .store
        .list_plugins(Some(&tenant))
        .await
        .map_err(internal)?;
    if existing.len() >= MAX_VERSIONS_PER_TENANT {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_plugins",
            format!("a tenant may keep at most {MAX_VERSIONS_PER_TENANT} plugin versions"),
        ));
    }
    let compiled = {
        // Compilations do not queue: each holds its upload in memory, and one tenant must not
        // keep the others' uploads waiting.
        let Ok(_slot) = uploads.compile_slots.try_acquire() else {
            let mut busy = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "compiler_busy",
                "another upload is being compiled; try again shortly",
            )
            .into_response();
            busy.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
            return Ok(busy);
        };
        uploads.compiler.compile(&wasm).await.map_err(refusal)?
    };
    let precompiled = compiled.precompiled;
    // SAFETY: the artifact was produced just now by our own compile child from these bytes
    // (`PluginCompiler::compile` checked the content and artifact hashes) and has not left
    // this process.
    unsafe { uploads.host.load_precompiled(&precompiled) }.map_err(|error| {
        tracing::error!(%tenant, code = error.code(), "a compiled upload does not load: {error}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the compiled plugin could not be loaded",
        )
    })?;
    let manifest = precompiled.manifest;
    let plugin = NewPlugin {
        tenant_id: tenant.clone(),
        name: manifest.info.name.clone(),
        plugin_version: manifest.info.version.clone(),
        world_version: manifest.world_version,
        content_hash: manifest.content_hash,
        info: serde_json::to_value(&manifest.info).map_err(internal)?,
        wasm: wasm.to_vec(),
        artifact: Some(PluginArtifact {
            bytes: precompiled.artifact,
            artifact_hash: manifest.artifact_hash,
            compatibility_hash: manifest.compatibility_hash,
        }),
    };
    let added = state
        .store
        .add_plugin(&plugin, vaani_store::now_ms())
        .await
        .map_err(internal)?;
    tracing::info!(
        %tenant,
        plugin = %added.version.name,
        version_number = added.version.version_number,
        content_hash = %added.version.content_hash,
        compile_ms = compiled.elapsed.as_millis() as u64,
        "plugin uploaded"
    );
    let status = if added.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(added.version)).into_response())
}

/// A compilation that failed, as the uploader sees it.
fn refusal(error: CompileError) -> ApiError {
    match &error {
        CompileError::Rejected { code, message } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code.clone(),
            message.clone(),
        ),
        CompileError::KilledByLimit { .. } | CompileError::TimedOut { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            error.code().to_owned(),
            error.to_string(),
        ),
        CompileError::Crashed { .. } | CompileError::Protocol(_) | CompileError::Io { .. } => {
            internal(error)
        }
    }
}

/// The tenant's plugin versions, newest first, each saying whether it is the active one (the
/// operator without `?tenant=`: every tenant's).
pub(super) async fn list_plugins(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<TenantQuery>,
) -> Result<Response, ApiError> {
    let listed = caller.tenant_to_list(&state, query.tenant).await?;
    let plugins = match listed.tenant_filter() {
        Some(tenant) => state.store.list_plugins(tenant).await.map_err(internal)?,
        None => Vec::new(),
    };
    Ok(Json(serde_json::json!({ "plugins": plugins })).into_response())
}

/// One plugin version; `404 plugin_not_found` when the caller's scope has no such version.
pub(super) async fn get_plugin(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let version = visible_plugin(&state, &caller.scope, &id).await?;
    Ok(Json(version).into_response())
}

async fn visible_plugin(
    state: &HttpState,
    scope: &Scope,
    id: &str,
) -> Result<PluginVersion, ApiError> {
    state
        .store
        .get_plugin(scope, id)
        .await
        .map_err(internal)?
        .ok_or_else(|| plugin_not_found(id))
}

/// Makes a plugin version the one its tenant's new calls run (from the next call on: routing
/// is rebuilt before the answer); calls in progress keep the version they started with.
pub(super) async fn activate_plugin(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let version = visible_plugin(&state, &caller.scope, &id).await?;
    let active = state
        .store
        .activate_plugin(&version.tenant_id, &id, vaani_store::now_ms())
        .await
        .map_err(|error| match error {
            vaani_store::StoreError::NotFound { .. } => plugin_not_found(&id),
            other => internal(other),
        })?;
    apply_routing(&state).await?;
    tracing::info!(tenant = %active.tenant_id, version_number = active.version_number, "plugin activated");
    Ok(Json(active).into_response())
}

/// Returns the tenant to the version active before its latest activation: `200` with that
/// version, `409 no_earlier_version` when there is none.
pub(super) async fn roll_back_plugin(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<TenantQuery>,
) -> Result<Response, ApiError> {
    let tenant = caller
        .existing_tenant_to_act_for(&state, query.tenant)
        .await?;
    let rolled_back = match state
        .store
        .roll_back_plugin(&tenant, vaani_store::now_ms())
        .await
    {
        Ok(rolled_back) => rolled_back,
        Err(vaani_store::StoreError::Busy { .. }) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "another activation or roll-back changed the plugin at the same time; try again",
            ));
        }
        Err(error) => return Err(internal(error)),
    };
    match rolled_back {
        Some(active) => {
            apply_routing(&state).await?;
            tracing::info!(%tenant, version_number = active.version_number, "plugin rolled back");
            Ok(Json(active).into_response())
        }
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_earlier_version",
            format!("tenant {tenant} has no earlier activated plugin version to return to"),
        )),
    }
}
