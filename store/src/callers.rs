//! Callers: per-tenant memory of the people who phone in.

use serde::Serialize;

use crate::conditions::{Bind, Conditions};
use crate::page::{Cursor, Page, page_of};
use crate::{MAX_CALL_LIMIT, Store, StoreError};

/// What a tenant remembers about one calling phone number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Caller {
    /// The tenant that owns this memory.
    pub tenant_id: String,
    /// The caller's number as received (`From` user part).
    pub phone: String,
    /// The caller's name, if a plugin learned it.
    pub name: Option<String>,
    /// Opaque JSON document the tenant's plugin keeps between calls.
    pub memory_json: Option<String>,
    /// Time of the first recorded call (unix ms).
    #[sqlx(rename = "first_call_at")]
    pub first_call_at_ms: i64,
    /// Time of the latest recorded call (unix ms).
    #[sqlx(rename = "last_call_at")]
    pub last_call_at_ms: i64,
    /// Number of recorded calls.
    pub call_count: i64,
}

impl Store {
    /// The tenant's memory of `phone`, if it has called before.
    pub async fn get_caller(
        &self,
        tenant_id: &str,
        phone: &str,
    ) -> Result<Option<Caller>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_as::<_, Caller>(
                "SELECT tenant_id, phone, name, memory_json, first_call_at, last_call_at,
                        call_count
                 FROM callers WHERE tenant_id = $1 AND phone = $2",
            )
            .bind(tenant_id)
            .bind(phone)
            .fetch_optional(pool)
            .await
        })
        .map_err(StoreError::query("get_caller"))
    }

    /// Record one call from `phone` at `at_ms`: creates the caller on the first
    /// call, otherwise increments `call_count` and sets `last_call_at_ms`.
    /// `name` and `memory_json` replace the stored values when `Some` and keep
    /// them when `None`. Returns the caller as stored afterwards.
    pub async fn record_caller_call(
        &self,
        tenant_id: &str,
        phone: &str,
        at_ms: i64,
        name: Option<&str>,
        memory_json: Option<&str>,
    ) -> Result<Caller, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_as::<_, Caller>(
                "INSERT INTO callers
                     (tenant_id, phone, name, memory_json, first_call_at, last_call_at,
                      call_count)
                 VALUES ($1, $2, $3, $4, $5, $5, 1)
                 ON CONFLICT (tenant_id, phone) DO UPDATE SET
                     call_count = callers.call_count + 1,
                     last_call_at = excluded.last_call_at,
                     name = COALESCE(excluded.name, callers.name),
                     memory_json = COALESCE(excluded.memory_json, callers.memory_json)
                 RETURNING tenant_id, phone, name, memory_json, first_call_at, last_call_at,
                           call_count",
            )
            .bind(tenant_id)
            .bind(phone)
            .bind(name)
            .bind(memory_json)
            .bind(at_ms)
            .fetch_one(pool)
            .await
        })
        .map_err(StoreError::missing_parent(
            "record_caller_call",
            "tenant",
            tenant_id,
        ))
    }
}

/// Which callers [`Store::list_callers`] returns: one tenant's, most recent call first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerFilter {
    /// Maximum number of callers; clamped to `1..=500`.
    pub limit: u32,
    /// Continue after this caller (the `next_cursor` of the previous page).
    pub cursor: Option<Cursor>,
}

impl Store {
    /// One page of the tenant's callers, most recent call first (by `last_call_at`, then
    /// phone), and the cursor of the next page. A caller who calls again while a client pages
    /// moves to the front, so a walk may miss or repeat that one caller.
    pub async fn list_callers(
        &self,
        tenant_id: &str,
        filter: &CallerFilter,
    ) -> Result<Page<Caller>, StoreError> {
        let mut conditions = Conditions::default();
        conditions.text_equals("tenant_id", tenant_id);
        if let Some(cursor) = &filter.cursor {
            conditions.after_cursor("last_call_at", "phone", cursor);
        }
        let limit = filter.limit.clamp(1, MAX_CALL_LIMIT) as usize;
        let limit_at = conditions.extra(Bind::Int(limit as i64 + 1));
        let sql = format!(
            "SELECT tenant_id, phone, name, memory_json, first_call_at, last_call_at, call_count
             FROM callers{}
             ORDER BY last_call_at DESC, phone DESC LIMIT {limit_at}",
            conditions.where_sql()
        );
        let rows = with_pool!(self, pool => {
            bind_all!(sqlx::query_as::<_, Caller>(sqlx::AssertSqlSafe(sql)), conditions)
                .fetch_all(pool)
                .await
        })
        .map_err(StoreError::query("list_callers"))?;
        Ok(page_of(rows, limit, |caller| Cursor {
            at_ms: caller.last_call_at_ms,
            id: caller.phone.clone(),
        }))
    }
}
