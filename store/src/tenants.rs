//! Tenants: the businesses served by this server.
//!
//! Two ways in: [`Store::upsert_tenant`] seeds tenants from the config file (it inserts a
//! missing tenant and otherwise only refreshes its name, so a status set over the API
//! survives a restart), and [`Store::create_tenant`] / [`Store::update_tenant`] /
//! [`Store::delete_tenant`] serve the operator's tenants API. A tenant's settings are a JSON
//! object kept beside the row ([`TenantWithSettings`]); what they may contain is checked by
//! the caller, not here.

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

/// A tenant row (without its settings; see [`TenantWithSettings`]).
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

/// A tenant and its settings, as the tenants API shows one tenant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TenantWithSettings {
    /// The tenant row.
    #[serde(flatten)]
    pub tenant: Tenant,
    /// The tenant's settings (a JSON object), or `None` when none are set.
    pub settings: Option<serde_json::Value>,
}

/// A tenant to create with [`Store::create_tenant`]; it starts `active`.
#[derive(Clone, Debug, PartialEq)]
pub struct NewTenant {
    /// Stable identifier; the caller validates its shape.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Settings (a JSON object), if any.
    pub settings: Option<serde_json::Value>,
}

/// What [`Store::update_tenant`] changes; `None` fields are left as they are.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TenantUpdate {
    /// A new display name.
    pub name: Option<String>,
    /// A new status.
    pub status: Option<TenantStatus>,
    /// New settings: `Some(Some(object))` replaces them, `Some(None)` removes them.
    pub settings: Option<Option<serde_json::Value>>,
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

#[derive(sqlx::FromRow)]
struct TenantWithSettingsRow {
    id: String,
    name: String,
    status: String,
    created_at: i64,
    settings_json: Option<String>,
}

impl TryFrom<TenantWithSettingsRow> for TenantWithSettings {
    type Error = StoreError;
    fn try_from(row: TenantWithSettingsRow) -> Result<Self, StoreError> {
        let settings = row
            .settings_json
            .map(|text| {
                serde_json::from_str(&text).map_err(|_| StoreError::InvalidValue {
                    column: "tenants.settings_json",
                    value: text,
                })
            })
            .transpose()?;
        Ok(TenantWithSettings {
            tenant: Tenant {
                id: row.id,
                name: row.name,
                status: row.status.parse()?,
                created_at_ms: row.created_at,
            },
            settings,
        })
    }
}

impl Store {
    /// Seed a tenant (from the config file): insert it if it is missing, otherwise update only
    /// its name. An existing tenant keeps its status, settings and `created_at_ms`, so a
    /// tenant suspended over the API stays suspended across restarts.
    pub async fn upsert_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO tenants (id, name, status, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name",
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

    /// Create an `active` tenant; `Conflict` when the id is taken.
    pub async fn create_tenant(
        &self,
        tenant: &NewTenant,
    ) -> Result<TenantWithSettings, StoreError> {
        let settings = tenant.settings.as_ref().map(|s| s.to_string());
        let row = with_pool!(self, pool => {
            sqlx::query_as::<_, TenantWithSettingsRow>(
                "INSERT INTO tenants (id, name, status, created_at, settings_json)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO NOTHING
                 RETURNING id, name, status, created_at, settings_json",
            )
                .bind(&tenant.id)
                .bind(&tenant.name)
                .bind(TenantStatus::Active.as_str())
                .bind(crate::now_ms())
                .bind(&settings)
                .fetch_optional(pool)
                .await
        })
        .map_err(StoreError::query("create_tenant"))?;
        match row {
            Some(row) => row.try_into(),
            None => Err(StoreError::Conflict {
                what: "tenant",
                id: tenant.id.clone(),
            }),
        }
    }

    /// Change a tenant's name, status or settings; `NotFound` when there is no such tenant.
    /// Returns the tenant as it now is.
    pub async fn update_tenant(
        &self,
        id: &str,
        update: &TenantUpdate,
    ) -> Result<TenantWithSettings, StoreError> {
        let (replace_settings, settings) = match &update.settings {
            None => (false, None),
            Some(settings) => (true, settings.as_ref().map(|s| s.to_string())),
        };
        let row = with_pool!(self, pool => {
            sqlx::query_as::<_, TenantWithSettingsRow>(
                "UPDATE tenants SET name = COALESCE($2, name), status = COALESCE($3, status),
                     settings_json = CASE WHEN $4 THEN $5 ELSE settings_json END
                 WHERE id = $1
                 RETURNING id, name, status, created_at, settings_json",
            )
                .bind(id)
                .bind(&update.name)
                .bind(update.status.map(TenantStatus::as_str))
                .bind(replace_settings)
                .bind(&settings)
                .fetch_optional(pool)
                .await
        })
        .map_err(StoreError::query("update_tenant"))?;
        row.ok_or_else(|| StoreError::NotFound {
            what: "tenant",
            id: id.to_owned(),
        })?
        .try_into()
    }

    /// Delete a tenant and everything it owns (numbers, API keys, calls and their records,
    /// callers, KV); `NotFound` when there is no such tenant. Recording files on disk are the
    /// server's to remove.
    pub async fn delete_tenant(&self, id: &str) -> Result<(), StoreError> {
        let deleted = with_pool!(self, pool => {
            sqlx::query("DELETE FROM tenants WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(StoreError::query("delete_tenant"))?;
        if deleted == 0 {
            return Err(StoreError::NotFound {
                what: "tenant",
                id: id.to_owned(),
            });
        }
        Ok(())
    }

    /// The tenant with this id and its settings, if any.
    pub async fn get_tenant_with_settings(
        &self,
        id: &str,
    ) -> Result<Option<TenantWithSettings>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_as::<_, TenantWithSettingsRow>(
                "SELECT id, name, status, created_at, settings_json FROM tenants WHERE id = $1",
            )
                .bind(id)
                .fetch_optional(pool)
                .await
        })
        .map_err(StoreError::query("get_tenant_with_settings"))?
        .map(TenantWithSettings::try_from)
        .transpose()
    }

    /// Every tenant with its settings, ordered by id: what the server routes calls to. By
    /// nature not tenant-scoped: only the server itself calls it.
    pub async fn list_tenants_with_settings(&self) -> Result<Vec<TenantWithSettings>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_as::<_, TenantWithSettingsRow>(
                "SELECT id, name, status, created_at, settings_json FROM tenants ORDER BY id",
            )
            .fetch_all(pool)
            .await
        })
        .map_err(StoreError::query("list_tenants_with_settings"))?
        .into_iter()
        .map(TenantWithSettings::try_from)
        .collect()
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
