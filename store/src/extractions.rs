//! Extractions across calls: what plugins extracted, listed by schema and time for a tenant
//! (the per-call list is part of the call detail).

use serde::Serialize;

use crate::calls::{ExtractionRow, scoped_tenant};
use crate::conditions::{Bind, Conditions};
use crate::page::{Cursor, Page, page_of};
use crate::{Extraction, MAX_CALL_LIMIT, Scope, Store, StoreError};

/// Which extractions [`Store::list_extractions`] returns. Every set field narrows the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtractionFilter {
    /// Only this tenant's (an operator narrowing the list; for a tenant scope, a different
    /// tenant here yields nothing).
    pub tenant: Option<String>,
    /// Only data validated against this schema id.
    pub schema_id: Option<String>,
    /// Only extractions stored at or after this time (unix ms, inclusive).
    pub from_ms: Option<i64>,
    /// Only extractions stored before this time (unix ms, exclusive).
    pub to_ms: Option<i64>,
    /// Maximum number of extractions; clamped to `1..=500`.
    pub limit: u32,
    /// Continue after this extraction (the `next_cursor` of the previous page).
    pub cursor: Option<Cursor>,
}

/// An extraction with the tenant that owns its call, as [`Store::list_extractions`] lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ListedExtraction {
    /// The tenant that owns the call.
    pub tenant_id: String,
    /// The extraction.
    #[serde(flatten)]
    pub extraction: Extraction,
}

#[derive(sqlx::FromRow)]
struct ListedExtractionRow {
    tenant_id: String,
    #[sqlx(flatten)]
    extraction: ExtractionRow,
}

impl Store {
    /// One page of the extractions visible to `scope`, narrowed by `filter`, newest first (by
    /// `created_at`, then id), and the cursor of the next page.
    pub async fn list_extractions(
        &self,
        scope: &Scope,
        filter: &ExtractionFilter,
    ) -> Result<Page<ListedExtraction>, StoreError> {
        let Some(tenant) = scoped_tenant(scope, filter.tenant.as_deref()) else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        };
        let mut conditions = Conditions::default();
        if let Some(tenant_id) = tenant {
            conditions.text_equals("tenant_id", tenant_id);
        }
        if let Some(schema_id) = &filter.schema_id {
            conditions.text_equals("schema_id", schema_id);
        }
        if let Some(from_ms) = filter.from_ms {
            conditions.at_least("created_at", from_ms);
        }
        if let Some(to_ms) = filter.to_ms {
            conditions.below("created_at", to_ms);
        }
        if let Some(cursor) = &filter.cursor {
            conditions.after_cursor("created_at", "id", cursor);
        }
        let limit = filter.limit.clamp(1, MAX_CALL_LIMIT) as usize;
        let limit_at = conditions.extra(Bind::Int(limit as i64 + 1));
        let sql = format!(
            "SELECT tenant_id, id, call_id, schema_id, data, created_at
             FROM extractions{}
             ORDER BY created_at DESC, id DESC LIMIT {limit_at}",
            conditions.where_sql()
        );
        let rows = with_pool!(self, pool => {
            bind_all!(
                sqlx::query_as::<_, ListedExtractionRow>(sqlx::AssertSqlSafe(sql)),
                conditions
            )
            .fetch_all(pool)
            .await
        })
        .map_err(StoreError::query("list_extractions"))?;
        let listed = rows
            .into_iter()
            .map(|row| {
                Ok(ListedExtraction {
                    tenant_id: row.tenant_id,
                    extraction: Extraction::try_from(row.extraction)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(page_of(listed, limit, |listed| Cursor {
            at_ms: listed.extraction.created_at_ms,
            id: listed.extraction.id.clone(),
        }))
    }
}
