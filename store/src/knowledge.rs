//! Knowledge items: a tenant's reference texts (opening hours, price lists, FAQs) kept with
//! its other data, managed over the API.

use serde::Serialize;

use crate::{Store, StoreError, new_id};

/// One knowledge item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KnowledgeItem {
    /// Row id (UUIDv7).
    pub id: String,
    /// The owning tenant.
    pub tenant_id: String,
    /// A short title.
    pub title: String,
    /// The text.
    pub content: String,
    /// Tags to find it by.
    pub tags: Vec<String>,
    /// When it was created (unix ms).
    pub created_at_ms: i64,
    /// When it was last changed (unix ms).
    pub updated_at_ms: i64,
}

/// A change to a knowledge item: `None` fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnowledgeUpdate {
    /// A new title.
    pub title: Option<String>,
    /// A new text.
    pub content: Option<String>,
    /// New tags (replacing the old ones).
    pub tags: Option<Vec<String>>,
}

#[derive(sqlx::FromRow)]
struct KnowledgeRow {
    id: String,
    tenant_id: String,
    title: String,
    content: String,
    tags: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<KnowledgeRow> for KnowledgeItem {
    type Error = StoreError;
    fn try_from(row: KnowledgeRow) -> Result<Self, StoreError> {
        let tags = serde_json::from_str(&row.tags).map_err(|_| StoreError::InvalidValue {
            column: "knowledge_items.tags",
            value: row.tags.clone(),
        })?;
        Ok(KnowledgeItem {
            id: row.id,
            tenant_id: row.tenant_id,
            title: row.title,
            content: row.content,
            tags,
            created_at_ms: row.created_at,
            updated_at_ms: row.updated_at,
        })
    }
}

fn tags_json(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".to_owned())
}

impl Store {
    /// Add a knowledge item for the tenant. `NotFound` if the tenant does not exist.
    pub async fn add_knowledge_item(
        &self,
        tenant_id: &str,
        title: &str,
        content: &str,
        tags: &[String],
        now_ms: i64,
    ) -> Result<KnowledgeItem, StoreError> {
        let item = KnowledgeItem {
            id: new_id(),
            tenant_id: tenant_id.to_owned(),
            title: title.to_owned(),
            content: content.to_owned(),
            tags: tags.to_vec(),
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        };
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO knowledge_items (id, tenant_id, title, content, tags, created_at,
                                              updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(&item.id)
            .bind(tenant_id)
            .bind(title)
            .bind(content)
            .bind(tags_json(tags))
            .bind(now_ms)
            .execute(pool)
            .await
            .map(drop)
        })
        .map_err(StoreError::missing_parent(
            "add_knowledge_item",
            "tenant",
            tenant_id,
        ))?;
        Ok(item)
    }

    /// The tenant's knowledge item `id`, if it has one (`None` tenant: any tenant's).
    pub async fn get_knowledge_item(
        &self,
        tenant_id: Option<&str>,
        id: &str,
    ) -> Result<Option<KnowledgeItem>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_as::<_, KnowledgeRow>(
                "SELECT id, tenant_id, title, content, tags, created_at, updated_at
                 FROM knowledge_items WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)",
            )
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(pool)
            .await
        })
        .map_err(StoreError::query("get_knowledge_item"))?
        .map(KnowledgeItem::try_from)
        .transpose()
    }

    /// The tenant's knowledge items (`None`: every tenant's), most recently changed first,
    /// optionally only those tagged `tag`.
    pub async fn list_knowledge_items(
        &self,
        tenant_id: Option<&str>,
        tag: Option<&str>,
    ) -> Result<Vec<KnowledgeItem>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, KnowledgeRow>(
                "SELECT id, tenant_id, title, content, tags, created_at, updated_at
                 FROM knowledge_items WHERE ($1 IS NULL OR tenant_id = $1)
                 ORDER BY updated_at DESC, id DESC",
            )
            .bind(tenant_id)
            .fetch_all(pool)
            .await
        })
        .map_err(StoreError::query("list_knowledge_items"))?;
        let items = rows
            .into_iter()
            .map(KnowledgeItem::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(match tag {
            Some(tag) => items
                .into_iter()
                .filter(|item| item.tags.iter().any(|t| t == tag))
                .collect(),
            None => items,
        })
    }

    /// Change a knowledge item `tenant_id` may see (`None`: any tenant's). `NotFound` if there
    /// is no such item.
    pub async fn update_knowledge_item(
        &self,
        tenant_id: Option<&str>,
        id: &str,
        update: &KnowledgeUpdate,
        now_ms: i64,
    ) -> Result<KnowledgeItem, StoreError> {
        let changed = with_pool!(self, pool => {
            sqlx::query(
                "UPDATE knowledge_items SET title = COALESCE($3, title),
                     content = COALESCE($4, content), tags = COALESCE($5, tags), updated_at = $6
                 WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)",
            )
            .bind(id)
            .bind(tenant_id)
            .bind(update.title.as_deref())
            .bind(update.content.as_deref())
            .bind(update.tags.as_deref().map(tags_json))
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(StoreError::query("update_knowledge_item"))?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                what: "knowledge item",
                id: id.to_owned(),
            });
        }
        self.get_knowledge_item(tenant_id, id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "knowledge item",
                id: id.to_owned(),
            })
    }

    /// Delete a knowledge item `tenant_id` may see (`None`: any tenant's). `NotFound` if there
    /// is no such item.
    pub async fn delete_knowledge_item(
        &self,
        tenant_id: Option<&str>,
        id: &str,
    ) -> Result<(), StoreError> {
        let deleted = with_pool!(self, pool => {
            sqlx::query(
                "DELETE FROM knowledge_items WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)",
            )
            .bind(id)
            .bind(tenant_id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(StoreError::query("delete_knowledge_item"))?;
        if deleted == 0 {
            return Err(StoreError::NotFound {
                what: "knowledge item",
                id: id.to_owned(),
            });
        }
        Ok(())
    }

    /// How many knowledge items the tenant has.
    pub async fn count_knowledge_items(&self, tenant_id: &str) -> Result<u64, StoreError> {
        let count = with_pool!(self, pool => {
            sqlx::query_scalar::<_, i64>(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM knowledge_items WHERE tenant_id = $1",
            )
            .bind(tenant_id)
            .fetch_one(pool)
            .await
        })
        .map_err(StoreError::query("count_knowledge_items"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
