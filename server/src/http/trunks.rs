//! The trunks API: the SIP providers calls may arrive over. The operator lists them (with
//! their source networks and where each is defined) and manages plain API trunks; a tenant key
//! lists their ids and names, to claim numbers on.
//!
//! Trunks of the config file (`[[trunks]]`, with profiles, digest auth, outbound settings)
//! are changed in the file; `PUT`/`DELETE` on one answers `409 config_trunk`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use vaani_store::{Scope, StoreError, Trunk};

use super::HttpState;
use super::auth::Caller;
use super::error::{ApiError, internal};
use super::extract::{ApiJson, ApiPath};

/// Most source networks one trunk may list.
const MAX_NETWORKS: usize = 64;

/// The trunks: for the operator every field; for a tenant key `id` and `name`.
pub(super) async fn list_trunks(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let trunks = state.store.list_trunks().await.map_err(internal)?;
    let trunks: Vec<serde_json::Value> = match caller.scope {
        Scope::Operator => trunks
            .iter()
            .map(|t| serde_json::to_value(t).unwrap_or_default())
            .collect(),
        Scope::Tenant(_) => trunks
            .iter()
            .map(|t| json!({ "id": t.trunk.id, "name": t.trunk.name }))
            .collect(),
    };
    Ok(Json(json!({ "trunks": trunks })).into_response())
}

/// Body of `PUT /api/v1/trunks/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PutTrunkBody {
    name: String,
    /// Source networks (CIDR, or a bare address for one host) calls may come from.
    allowed_cidrs: Vec<String>,
}

/// Creates (`201`) or replaces (`200`) a plain API trunk; operator only. Calls from its
/// networks to numbers on it are admitted from the next call on.
pub(super) async fn put_trunk(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    body: Result<ApiJson<PutTrunkBody>, ApiError>,
) -> Result<Response, ApiError> {
    // Operator only, before anything about the request is judged: a tenant key learns nothing.
    caller.operator_only()?;
    let ApiJson(body) = body?;
    let invalid =
        |code: &'static str, message: String| ApiError::new(StatusCode::BAD_REQUEST, code, message);
    let id_ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'));
    if !id_ok {
        return Err(invalid(
            "invalid_trunk_id",
            "trunk ids are 1-64 characters of [a-z0-9_-]".to_owned(),
        ));
    }
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid(
            "invalid_name",
            "name must be 1-100 characters".to_owned(),
        ));
    }
    if body.allowed_cidrs.is_empty() || body.allowed_cidrs.len() > MAX_NETWORKS {
        return Err(invalid(
            "invalid_networks",
            format!("allowed_cidrs must list 1-{MAX_NETWORKS} networks"),
        ));
    }
    let mut networks = Vec::new();
    for text in &body.allowed_cidrs {
        let parsed = text
            .parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            Ok(net) => networks.push(net.trunc().to_string()),
            Err(_) => {
                return Err(invalid(
                    "invalid_networks",
                    format!("{text:?} is not a network (CIDR such as 203.0.113.0/24) or address"),
                ));
            }
        }
    }
    let trunk = Trunk {
        id: id.clone(),
        name: name.to_owned(),
        allowed_cidrs: networks,
    };
    let created = match state.store.put_api_trunk(&trunk).await {
        Ok(created) => created,
        Err(StoreError::Conflict { .. }) => return Err(config_trunk(&id)),
        Err(error) => return Err(internal(error)),
    };
    super::apply_routing(&state).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({ "id": trunk.id, "name": trunk.name,
        "allowed_cidrs": trunk.allowed_cidrs, "source": "api" })),
    )
        .into_response())
}

/// Deletes a plain API trunk (`204`); operator only. Numbers on it route over their tenant's
/// trunk afterwards.
pub(super) async fn delete_trunk(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    caller.operator_only()?;
    match state.store.delete_api_trunk(&id).await {
        Ok(()) => {}
        Err(StoreError::NotFound { .. }) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "trunk_not_found",
                format!("no trunk {id:?}"),
            ));
        }
        Err(StoreError::Conflict { .. }) => return Err(config_trunk(&id)),
        Err(error) => return Err(internal(error)),
    }
    super::apply_routing(&state).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn config_trunk(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "config_trunk",
        format!("trunk {id:?} is defined in the config file: change it there"),
    )
}
