//! Phone numbers: which tenant answers a dialled number.

use crate::{Store, StoreError};

impl Store {
    /// Assign `number` (E.164) to `tenant_id`, arriving over `trunk_id` (if any).
    /// Re-assigning an existing number moves it. Fails with `NotFound` if the
    /// tenant or trunk does not exist.
    pub async fn upsert_phone_number(
        &self,
        number: &str,
        tenant_id: &str,
        trunk_id: Option<&str>,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO phone_numbers (number, tenant_id, trunk_id) VALUES ($1, $2, $3)
                 ON CONFLICT (number) DO UPDATE SET tenant_id = excluded.tenant_id,
                                                    trunk_id = excluded.trunk_id",
            )
            .bind(number)
            .bind(tenant_id)
            .bind(trunk_id)
            .execute(pool)
            .await
            .map(drop)
        })
        .map_err(|e| {
            let id = format!("{tenant_id} / {}", trunk_id.unwrap_or("-"));
            StoreError::missing_parent("upsert_phone_number", "tenant or trunk", &id)(e)
        })
    }

    /// Routing lookup: the tenant that owns the dialled `number`, if any.
    ///
    /// This is the one query that is by nature not tenant-scoped: it runs
    /// before the call has a tenant, to find it. It reveals only the tenant id.
    pub async fn tenant_for_number(&self, number: &str) -> Result<Option<String>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_scalar::<_, String>(
                "SELECT tenant_id FROM phone_numbers WHERE number = $1",
            )
            .bind(number)
            .fetch_optional(pool)
            .await
        })
        .map_err(StoreError::query("tenant_for_number"))
    }
}
