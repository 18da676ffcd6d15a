//! Phone numbers: which tenant answers a dialled number.
//!
//! A number belongs to at most one tenant. [`Store::assign_phone_number`] never moves a number
//! from one tenant to another (that would let any tenant take over another's calls): the owner
//! must release it first ([`Store::release_phone_number`]).

use serde::Serialize;

use crate::{Scope, Store, StoreError};

/// A number and the tenant that owns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PhoneNumber {
    /// The number (E.164, e.g. `+918000000001`).
    pub number: String,
    /// The tenant whose plugin answers it.
    pub tenant_id: String,
    /// The trunk its calls arrive over, if one is set.
    pub trunk_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct PhoneNumberRow {
    number: String,
    tenant_id: String,
    trunk_id: Option<String>,
}

impl From<PhoneNumberRow> for PhoneNumber {
    fn from(row: PhoneNumberRow) -> Self {
        PhoneNumber {
            number: row.number,
            tenant_id: row.tenant_id,
            trunk_id: row.trunk_id,
        }
    }
}

impl Store {
    /// Give `number` (E.164; the caller checks the shape) to `tenant_id`, arriving over
    /// `trunk_id` (if any). Assigning a number the tenant owns already is allowed and sets its
    /// trunk. `Conflict` when another tenant owns it; `NotFound` when the tenant or trunk does
    /// not exist.
    pub async fn assign_phone_number(
        &self,
        tenant_id: &str,
        number: &str,
        trunk_id: Option<&str>,
    ) -> Result<PhoneNumber, StoreError> {
        let row = with_pool!(self, pool => {
            sqlx::query_as::<_, PhoneNumberRow>(
                "INSERT INTO phone_numbers (number, tenant_id, trunk_id) VALUES ($1, $2, $3)
                 ON CONFLICT (number) DO UPDATE SET trunk_id = excluded.trunk_id
                 WHERE phone_numbers.tenant_id = excluded.tenant_id
                 RETURNING number, tenant_id, trunk_id",
            )
            .bind(number)
            .bind(tenant_id)
            .bind(trunk_id)
            .fetch_optional(pool)
            .await
        })
        .map_err(|e| {
            let id = format!("{tenant_id} / {}", trunk_id.unwrap_or("-"));
            StoreError::missing_parent("assign_phone_number", "tenant or trunk", &id)(e)
        })?;
        row.map(PhoneNumber::from)
            .ok_or_else(|| StoreError::Conflict {
                what: "phone number",
                id: number.to_owned(),
            })
    }

    /// Numbers visible to `scope`, ordered by number; `tenant` narrows an operator's list to
    /// one tenant (for a tenant scope, another tenant yields nothing).
    pub async fn list_phone_numbers(
        &self,
        scope: &Scope,
        tenant: Option<&str>,
    ) -> Result<Vec<PhoneNumber>, StoreError> {
        let tenant = match (scope.tenant_id(), tenant) {
            (Some(own), Some(asked)) if own != asked => return Ok(Vec::new()),
            (Some(own), _) => Some(own),
            (None, asked) => asked,
        };
        let rows = match tenant {
            Some(tenant_id) => with_pool!(self, pool => {
                sqlx::query_as::<_, PhoneNumberRow>(
                    "SELECT number, tenant_id, trunk_id FROM phone_numbers
                     WHERE tenant_id = $1 ORDER BY number",
                )
                .bind(tenant_id)
                .fetch_all(pool)
                .await
            }),
            None => with_pool!(self, pool => {
                sqlx::query_as::<_, PhoneNumberRow>(
                    "SELECT number, tenant_id, trunk_id FROM phone_numbers ORDER BY number",
                )
                .fetch_all(pool)
                .await
            }),
        }
        .map_err(StoreError::query("list_phone_numbers"))?;
        Ok(rows.into_iter().map(PhoneNumber::from).collect())
    }

    /// Release `number` so that no tenant answers it (and another may claim it). `NotFound`
    /// when `scope` has no such number (another tenant's number included).
    pub async fn release_phone_number(
        &self,
        scope: &Scope,
        number: &str,
    ) -> Result<(), StoreError> {
        let released = match scope.tenant_id() {
            Some(tenant_id) => with_pool!(self, pool => {
                sqlx::query("DELETE FROM phone_numbers WHERE tenant_id = $1 AND number = $2")
                    .bind(tenant_id)
                    .bind(number)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected())
            }),
            None => with_pool!(self, pool => {
                sqlx::query("DELETE FROM phone_numbers WHERE number = $1")
                    .bind(number)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected())
            }),
        }
        .map_err(StoreError::query("release_phone_number"))?;
        if released == 0 {
            return Err(StoreError::NotFound {
                what: "phone number",
                id: number.to_owned(),
            });
        }
        Ok(())
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
