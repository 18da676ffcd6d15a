//! Per-tenant key-value store backing the plugin `kv` import.

use crate::{Store, StoreError};

impl Store {
    /// The value stored under `key` for the tenant, if any.
    pub async fn kv_get(&self, tenant_id: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_scalar::<_, Vec<u8>>(
                "SELECT value FROM kv WHERE tenant_id = $1 AND key = $2",
            )
            .bind(tenant_id)
            .bind(key)
            .fetch_optional(pool)
            .await
        })
        .map_err(StoreError::query("kv_get"))
    }

    /// Store `value` under `key` for the tenant, replacing any previous value.
    /// Fails with `NotFound` if the tenant does not exist.
    pub async fn kv_set(&self, tenant_id: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO kv (tenant_id, key, value) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(tenant_id)
            .bind(key)
            .bind(value)
            .execute(pool)
            .await
            .map(drop)
        })
        .map_err(StoreError::missing_parent("kv_set", "tenant", tenant_id))
    }

    /// Every key and value of the tenant, in key order (loaded once when the server starts).
    pub async fn kv_list(&self, tenant_id: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_as::<_, (String, Vec<u8>)>(
                "SELECT key, value FROM kv WHERE tenant_id = $1 ORDER BY key",
            )
            .bind(tenant_id)
            .fetch_all(pool)
            .await
        })
        .map_err(StoreError::query("kv_list"))
    }

    /// Remove `key` for the tenant; returns whether it existed.
    pub async fn kv_delete(&self, tenant_id: &str, key: &str) -> Result<bool, StoreError> {
        let deleted = with_pool!(self, pool => {
            sqlx::query("DELETE FROM kv WHERE tenant_id = $1 AND key = $2")
                .bind(tenant_id)
                .bind(key)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(StoreError::query("kv_delete"))?;
        Ok(deleted > 0)
    }
}
