//! Tenants: the businesses served by this server.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Store, StoreError};

/// Whether a tenant takes calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    /// Calls are routed to the tenant's plugin.
    Active,
    /// Calls are refused (`480 Temporarily Unavailable`).
    Suspended,
}

impl TenantStatus {
    /// The value stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }
}

impl fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TenantStatus {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "active" => Ok(TenantStatus::Active),
            "suspended" => Ok(TenantStatus::Suspended),
            other => Err(StoreError::InvalidValue {
                column: "tenants.status",
                value: other.to_owned(),
            }),
        }
    }
}

/// A tenant row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tenant {
    /// Stable identifier, e.g. `clinic`.
    pub id: String,
    /// Display name, e.g. `Sunny Clinic`.
    pub name: String,
    /// Whether calls are accepted.
    pub status: TenantStatus,
    /// When the tenant was first stored (unix ms). Kept on later upserts.
    pub created_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: String,
    name: String,
    status: String,
    created_at: i64,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = StoreError;
    fn try_from(row: TenantRow) -> Result<Self, StoreError> {
        Ok(Tenant {
            id: row.id,
            name: row.name,
            status: row.status.parse()?,
            created_at_ms: row.created_at,
        })
    }
}

impl Store {
    /// Insert a tenant, or update its name and status if it exists
    /// (`created_at_ms` of an existing tenant is kept).
    pub async fn upsert_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO tenants (id, name, status, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, status = excluded.status",
            )
            .bind(&tenant.id)
            .bind(&tenant.name)
            .bind(tenant.status.as_str())
            .bind(tenant.created_at_ms)
            .execute(pool)
            .await
            .map(drop)
        })
        .map_err(StoreError::query("upsert_tenant"))
    }

    /// The tenant with this id, if any.
    pub async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_as::<_, TenantRow>(
                "SELECT id, name, status, created_at FROM tenants WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        })
        .map_err(StoreError::query("get_tenant"))?
        .map(Tenant::try_from)
        .transpose()
    }

    /// Every tenant, ordered by id.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_as::<_, TenantRow>(
                "SELECT id, name, status, created_at FROM tenants ORDER BY id",
            )
            .fetch_all(pool)
            .await
        })
        .map_err(StoreError::query("list_tenants"))?
        .into_iter()
        .map(Tenant::try_from)
        .collect()
    }
}
