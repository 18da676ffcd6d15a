//! The knowledge API: a tenant's reference texts (opening hours, price lists, FAQs).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use vaani_store::{KnowledgeUpdate, StoreError};

use super::HttpState;
use super::auth::Caller;
use super::error::{ApiError, internal};
use super::extract::{ApiJson, ApiPath, ApiQuery};

/// Longest title, characters.
const MAX_TITLE_CHARS: usize = 200;
/// Longest text, bytes (the JSON body limit is 64 KiB).
const MAX_CONTENT_BYTES: usize = 48 << 10;
/// Most tags per item, and the longest tag.
const MAX_TAGS: usize = 20;
const MAX_TAG_CHARS: usize = 50;
/// Most items per tenant.
const MAX_ITEMS_PER_TENANT: u64 = 1_000;

fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn check_title(title: &str) -> Result<(), ApiError> {
    let chars = title.trim().chars().count();
    if chars == 0 || chars > MAX_TITLE_CHARS {
        return Err(invalid(
            "invalid_title",
            format!("title must be 1-{MAX_TITLE_CHARS} characters"),
        ));
    }
    Ok(())
}

fn check_content(content: &str) -> Result<(), ApiError> {
    if content.trim().is_empty() || content.len() > MAX_CONTENT_BYTES {
        return Err(invalid(
            "invalid_content",
            format!("content must be 1-{MAX_CONTENT_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn check_tags(tags: &[String]) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS
        || tags
            .iter()
            .any(|tag| tag.trim().is_empty() || tag.chars().count() > MAX_TAG_CHARS)
    {
        return Err(invalid(
            "invalid_tags",
            format!("at most {MAX_TAGS} tags of 1-{MAX_TAG_CHARS} characters"),
        ));
    }
    Ok(())
}

fn item_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "knowledge_not_found",
        format!("no knowledge item {id}"),
    )
}

/// Body of `POST /api/v1/knowledge`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateKnowledgeBody {
    title: String,
    content: String,
    #[serde(default)]
    tags: Vec<String>,
    /// The tenant (operator key only).
    tenant: Option<String>,
}

/// Adds an item: `201` with it.
pub(super) async fn create_item(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateKnowledgeBody>,
) -> Result<Response, ApiError> {
    let tenant = caller
        .existing_tenant_to_act_for(&state, body.tenant)
        .await?;
    check_title(&body.title)?;
    check_content(&body.content)?;
    check_tags(&body.tags)?;
    let existing = state
        .store
        .count_knowledge_items(&tenant)
        .await
        .map_err(internal)?;
    if existing >= MAX_ITEMS_PER_TENANT {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_items",
            format!("a tenant may have at most {MAX_ITEMS_PER_TENANT} knowledge items"),
        ));
    }
    let item = state
        .store
        .add_knowledge_item(
            &tenant,
            body.title.trim(),
            &body.content,
            &body.tags,
            vaani_store::now_ms(),
        )
        .await
        .map_err(internal)?;
    Ok((StatusCode::CREATED, Json(item)).into_response())
}

/// The query of the list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    tenant: Option<String>,
    tag: Option<String>,
}

/// The tenant's items, most recently changed first (`?tag=` narrows; the operator without
/// `?tenant=` sees every tenant's).
pub(super) async fn list_items(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let listed = caller.tenant_to_list(&state, query.tenant).await?;
    let items = match listed.tenant_filter() {
        Some(tenant) => state
            .store
            .list_knowledge_items(tenant, query.tag.as_deref())
            .await
            .map_err(internal)?,
        None => Vec::new(),
    };
    Ok(Json(json!({ "items": items })).into_response())
}

/// One item; `404 knowledge_not_found`.
pub(super) async fn get_item(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    match state
        .store
        .get_knowledge_item(caller.scope.tenant_id(), &id)
        .await
        .map_err(internal)?
    {
        Some(item) => Ok(Json(item).into_response()),
        None => Err(item_not_found(&id)),
    }
}

/// Body of `PATCH /api/v1/knowledge/{id}`: the fields to change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateKnowledgeBody {
    title: Option<String>,
    content: Option<String>,
    tags: Option<Vec<String>>,
}

/// Changes an item: `200` with it; `404 knowledge_not_found`.
pub(super) async fn update_item(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateKnowledgeBody>,
) -> Result<Response, ApiError> {
    if let Some(title) = &body.title {
        check_title(title)?;
    }
    if let Some(content) = &body.content {
        check_content(content)?;
    }
    if let Some(tags) = &body.tags {
        check_tags(tags)?;
    }
    let update = KnowledgeUpdate {
        title: body.title.map(|t| t.trim().to_owned()),
        content: body.content,
        tags: body.tags,
    };
    match state
        .store
        .update_knowledge_item(
            caller.scope.tenant_id(),
            &id,
            &update,
            vaani_store::now_ms(),
        )
        .await
    {
        Ok(item) => Ok(Json(item).into_response()),
        Err(StoreError::NotFound { .. }) => Err(item_not_found(&id)),
        Err(error) => Err(internal(error)),
    }
}

/// Deletes an item: `204`; `404 knowledge_not_found`.
pub(super) async fn delete_item(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    match state
        .store
        .delete_knowledge_item(caller.scope.tenant_id(), &id)
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(StoreError::NotFound { .. }) => Err(item_not_found(&id)),
        Err(error) => Err(internal(error)),
    }
}
