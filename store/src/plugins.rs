//! Uploaded plugins: each tenant's plugin versions (component bytes, what `describe()`
//! reported, the compiled artifact) and which version the tenant runs.
//!
//! Versions are numbered 1, 2, 3 … per tenant in upload order and stored once per content
//! hash: uploading the same bytes again answers the version already stored. The active version
//! is the tenant's latest activation not rolled back ([`Store::activate_plugin`],
//! [`Store::roll_back_plugin`]).

use serde::Serialize;

use crate::{Scope, Store, StoreError, new_id};

/// How often [`Store::add_plugin`] retries when a concurrent upload of the same tenant took
/// the version number it chose.
const VERSION_NUMBER_ATTEMPTS: usize = 5;

/// A plugin version to store: the component and what compiling it found.
#[derive(Clone, Debug, PartialEq)]
pub struct NewPlugin {
    /// The tenant that uploaded it.
    pub tenant_id: String,
    /// Plugin name reported by `describe()`.
    pub name: String,
    /// Plugin version reported by `describe()` (the author's string, e.g. `1.2.0`).
    pub plugin_version: String,
    /// The `vaani:agent` world version the component targets.
    pub world_version: String,
    /// Lowercase hex SHA-256 of `wasm`.
    pub content_hash: String,
    /// What `describe()` reported, as JSON (name, version, schemas).
    pub info: serde_json::Value,
    /// The component bytes as uploaded.
    pub wasm: Vec<u8>,
    /// The compiled artifact, if compiled.
    pub artifact: Option<PluginArtifact>,
}

/// A plugin's compiled native artifact and which engine made it.
#[derive(Clone, PartialEq, Eq)]
pub struct PluginArtifact {
    /// The serialized compilation.
    pub bytes: Vec<u8>,
    /// Lowercase hex SHA-256 of `bytes`, checked again before loading.
    pub artifact_hash: String,
    /// The engine compatibility hash the artifact was made for: a different engine must
    /// recompile from the component.
    pub compatibility_hash: String,
}

impl std::fmt::Debug for PluginArtifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginArtifact")
            .field("bytes", &self.bytes.len())
            .field("artifact_hash", &self.artifact_hash)
            .field("compatibility_hash", &self.compatibility_hash)
            .finish()
    }
}

/// A stored plugin version, without its bytes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PluginVersion {
    /// Row id (UUIDv7).
    pub id: String,
    /// The owning tenant.
    pub tenant_id: String,
    /// 1, 2, 3 … per tenant, in upload order.
    pub version_number: i64,
    /// Plugin name reported by `describe()`.
    pub name: String,
    /// Plugin version reported by `describe()`.
    pub plugin_version: String,
    /// The `vaani:agent` world version the component targets.
    pub world_version: String,
    /// Lowercase hex SHA-256 of the component bytes.
    pub content_hash: String,
    /// Size of the component.
    pub size_bytes: i64,
    /// What `describe()` reported.
    pub info: serde_json::Value,
    /// When it was uploaded (unix ms).
    pub created_at_ms: i64,
    /// Whether this is the tenant's active version.
    pub active: bool,
}

/// A plugin version's bytes, for loading it.
#[derive(Clone, Debug, PartialEq)]
pub struct PluginBytes {
    /// The component bytes as uploaded.
    pub wasm: Vec<u8>,
    /// The compiled artifact, if one is stored.
    pub artifact: Option<PluginArtifact>,
}

/// The result of [`Store::add_plugin`].
#[derive(Clone, Debug, PartialEq)]
pub struct AddedPlugin {
    /// The stored version (a new one, or the one already holding these bytes).
    pub version: PluginVersion,
    /// `false` when the tenant had already uploaded the same bytes.
    pub created: bool,
}

#[derive(sqlx::FromRow)]
struct PluginRow {
    id: String,
    tenant_id: String,
    version_number: i64,
    name: String,
    plugin_version: String,
    world_version: String,
    content_hash: String,
    size_bytes: i64,
    info_json: String,
    created_at: i64,
    active: i64,
}

impl TryFrom<PluginRow> for PluginVersion {
    type Error = StoreError;
    fn try_from(row: PluginRow) -> Result<Self, StoreError> {
        let info = serde_json::from_str(&row.info_json).map_err(|_| StoreError::InvalidValue {
            column: "plugins.info_json",
            value: row.info_json.clone(),
        })?;
        Ok(PluginVersion {
            id: row.id,
            tenant_id: row.tenant_id,
            version_number: row.version_number,
            name: row.name,
            plugin_version: row.plugin_version,
            world_version: row.world_version,
            content_hash: row.content_hash,
            size_bytes: row.size_bytes,
            info,
            created_at_ms: row.created_at,
            active: row.active != 0,
        })
    }
}

#[derive(sqlx::FromRow)]
struct BytesRow {
    wasm: Vec<u8>,
    artifact: Option<Vec<u8>>,
    artifact_hash: Option<String>,
    compatibility_hash: Option<String>,
}

/// `SELECT` of a [`PluginRow`] from `plugins p`, followed by the rest of the query: the plugin
/// columns plus `active` (1 when the version is its tenant's active one).
macro_rules! select_versions {
    ($($rest:expr),*) => {
        concat!(
            "SELECT p.id, p.tenant_id, p.version_number, p.name, p.plugin_version,
                    p.world_version, p.content_hash, p.size_bytes, p.info_json, p.created_at,
                    CAST(CASE WHEN p.id = (", active_plugin_id!("p.tenant_id"), ")
                         THEN 1 ELSE 0 END AS BIGINT) AS active
             FROM plugins p ",
            $($rest),*
        )
    };
}

/// The query of the active plugin id of the tenant `$tenant` (an SQL expression): its latest
/// activation not rolled back.
macro_rules! active_plugin_id {
    ($tenant:literal) => {
        concat!(
            "SELECT a.plugin_id FROM plugin_activations a
             WHERE a.tenant_id = ",
            $tenant,
            " AND a.rolled_back_at IS NULL
             ORDER BY a.activated_at DESC, a.id DESC LIMIT 1"
        )
    };
}

impl Store {
    /// Store a plugin version for its tenant, numbered after the tenant's latest. If the
    /// tenant already stored these bytes (same content hash), nothing is written and that
    /// version is answered with `created: false`. `NotFound` if the tenant does not exist.
    pub async fn add_plugin(
        &self,
        plugin: &NewPlugin,
        now_ms: i64,
    ) -> Result<AddedPlugin, StoreError> {
        let info = plugin.info.to_string();
        let size = i64::try_from(plugin.wasm.len()).unwrap_or(i64::MAX);
        for _ in 0..VERSION_NUMBER_ATTEMPTS {
            if let Some(version) = self
                .plugin_by_content_hash(&plugin.tenant_id, &plugin.content_hash)
                .await?
            {
                return Ok(AddedPlugin {
                    version,
                    created: false,
                });
            }
            let id = new_id();
            let artifact = plugin.artifact.as_ref();
            // One statement picks the next number and inserts: a concurrent upload that took
            // the same number (or stored the same bytes) makes it insert nothing, and the loop
            // looks again.
            let inserted = with_pool!(self, pool => {
                sqlx::query(
                    "INSERT INTO plugins
                         (id, tenant_id, version_number, name, plugin_version, world_version,
                          content_hash, size_bytes, info_json, wasm, artifact, artifact_hash,
                          compatibility_hash, created_at)
                     SELECT $1, $2, COALESCE(MAX(version_number), 0) + 1, $3, $4, $5, $6, $7,
                            $8, $9, $10, $11, $12, $13
                     FROM plugins WHERE tenant_id = $2
                     ON CONFLICT DO NOTHING",
                )
                .bind(&id)
                .bind(&plugin.tenant_id)
                .bind(&plugin.name)
                .bind(&plugin.plugin_version)
                .bind(&plugin.world_version)
                .bind(&plugin.content_hash)
                .bind(size)
                .bind(&info)
                .bind(&plugin.wasm)
                .bind(artifact.map(|a| &a.bytes))
                .bind(artifact.map(|a| &a.artifact_hash))
                .bind(artifact.map(|a| &a.compatibility_hash))
                .bind(now_ms)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
            })
            .map_err(StoreError::missing_parent(
                "add_plugin",
                "tenant",
                &plugin.tenant_id,
            ))?;
            if inserted == 1 {
                let version = self
                    .get_plugin(&Scope::Tenant(plugin.tenant_id.clone()), &id)
                    .await?
                    .ok_or(StoreError::NotFound { what: "plugin", id })?;
                return Ok(AddedPlugin {
                    version,
                    created: true,
                });
            }
        }
        Err(StoreError::Busy {
            operation: "add_plugin",
        })
    }

    /// The tenant's version holding the component with this content hash, if any.
    pub async fn plugin_by_content_hash(
        &self,
        tenant_id: &str,
        content_hash: &str,
    ) -> Result<Option<PluginVersion>, StoreError> {
        const SQL: &str = select_versions!("WHERE p.tenant_id = $1 AND p.content_hash = $2");
        with_pool!(self, pool => {
            sqlx::query_as::<_, PluginRow>(SQL)
                .bind(tenant_id)
                .bind(content_hash)
                .fetch_optional(pool)
                .await
        })
        .map_err(StoreError::query("plugin_by_content_hash"))?
        .map(PluginVersion::try_from)
        .transpose()
    }

    /// The plugin version `id` (without bytes), if `scope` may see it.
    pub async fn get_plugin(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<PluginVersion>, StoreError> {
        const SQL: &str = select_versions!("WHERE p.id = $1 AND ($2 IS NULL OR p.tenant_id = $2)");
        with_pool!(self, pool => {
            sqlx::query_as::<_, PluginRow>(SQL)
                .bind(id)
                .bind(scope.tenant_id())
                .fetch_optional(pool)
                .await
        })
        .map_err(StoreError::query("get_plugin"))?
        .map(PluginVersion::try_from)
        .transpose()
    }

    /// The tenant's plugin versions, newest first (`None`: every tenant's, by tenant).
    pub async fn list_plugins(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<PluginVersion>, StoreError> {
        const SQL: &str = select_versions!(
            "WHERE ($1 IS NULL OR p.tenant_id = $1)
             ORDER BY p.tenant_id, p.version_number DESC"
        );
        with_pool!(self, pool => {
            sqlx::query_as::<_, PluginRow>(SQL)
                .bind(tenant_id)
                .fetch_all(pool)
                .await
        })
        .map_err(StoreError::query("list_plugins"))?
        .into_iter()
        .map(PluginVersion::try_from)
        .collect()
    }

    /// The tenant's plugin version's bytes (component and artifact), if the tenant has it.
    pub async fn plugin_bytes(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<PluginBytes>, StoreError> {
        let row = with_pool!(self, pool => {
            sqlx::query_as::<_, BytesRow>(
                "SELECT wasm, artifact, artifact_hash, compatibility_hash FROM plugins
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(pool)
            .await
        })
        .map_err(StoreError::query("plugin_bytes"))?;
        Ok(row.map(|row| PluginBytes {
            wasm: row.wasm,
            artifact: match (row.artifact, row.artifact_hash, row.compatibility_hash) {
                (Some(bytes), Some(artifact_hash), Some(compatibility_hash)) => {
                    Some(PluginArtifact {
                        bytes,
                        artifact_hash,
                        compatibility_hash,
                    })
                }
                _ => None,
            },
        }))
    }

    /// Replace the compiled artifact of the tenant's plugin version (after compiling it for a
    /// different engine). `NotFound` if the tenant has no such version.
    pub async fn set_plugin_artifact(
        &self,
        tenant_id: &str,
        id: &str,
        artifact: &PluginArtifact,
    ) -> Result<(), StoreError> {
        let changed = with_pool!(self, pool => {
            sqlx::query(
                "UPDATE plugins SET artifact = $3, artifact_hash = $4, compatibility_hash = $5
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(&artifact.bytes)
            .bind(&artifact.artifact_hash)
            .bind(&artifact.compatibility_hash)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(StoreError::query("set_plugin_artifact"))?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                what: "plugin",
                id: id.to_owned(),
            });
        }
        Ok(())
    }

    /// Make the tenant's plugin version `id` the one its new calls run. Activating the version
    /// that is already active changes nothing. `NotFound` if the tenant has no such version.
    pub async fn activate_plugin(
        &self,
        tenant_id: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<PluginVersion, StoreError> {
        let version = self
            .get_plugin(&Scope::Tenant(tenant_id.to_owned()), id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "plugin",
                id: id.to_owned(),
            })?;
        if version.active {
            return Ok(version);
        }
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO plugin_activations (id, tenant_id, plugin_id, activated_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(new_id())
            .bind(tenant_id)
            .bind(id)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(drop)
        })
        .map_err(StoreError::missing_parent("activate_plugin", "plugin", id))?;
        Ok(PluginVersion {
            active: true,
            ..version
        })
    }

    /// Undo the tenant's latest activation: the version active before it becomes active
    /// again, and is answered. Repeated roll-backs walk further back. `None` when there is no
    /// earlier activation to return to; nothing changes then.
    pub async fn roll_back_plugin(
        &self,
        tenant_id: &str,
        now_ms: i64,
    ) -> Result<Option<PluginVersion>, StoreError> {
        let live = with_pool!(self, pool => {
            sqlx::query_as::<_, (String, String)>(
                "SELECT id, plugin_id FROM plugin_activations
                 WHERE tenant_id = $1 AND rolled_back_at IS NULL
                 ORDER BY activated_at DESC, id DESC LIMIT 2",
            )
            .bind(tenant_id)
            .fetch_all(pool)
            .await
        })
        .map_err(StoreError::query("roll_back_plugin"))?;
        let [(latest, _), (_, earlier_plugin)] = live.as_slice() else {
            return Ok(None);
        };
        let changed = with_pool!(self, pool => {
            sqlx::query(
                "UPDATE plugin_activations SET rolled_back_at = $3
                 WHERE tenant_id = $1 AND id = $2 AND rolled_back_at IS NULL",
            )
            .bind(tenant_id)
            .bind(latest)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(StoreError::query("roll_back_plugin"))?;
        if changed == 0 {
            // A concurrent roll-back took this activation first.
            return Err(StoreError::Busy {
                operation: "roll_back_plugin",
            });
        }
        self.get_plugin(&Scope::Tenant(tenant_id.to_owned()), earlier_plugin)
            .await
    }

    /// The tenant's active plugin version, if it has activated one.
    pub async fn active_plugin(
        &self,
        tenant_id: &str,
    ) -> Result<Option<PluginVersion>, StoreError> {
        const SQL: &str = select_versions!(
            "WHERE p.tenant_id = $1 AND p.id = (",
            active_plugin_id!("$1"),
            ")"
        );
        with_pool!(self, pool => {
            sqlx::query_as::<_, PluginRow>(SQL)
                .bind(tenant_id)
                .fetch_optional(pool)
                .await
        })
        .map_err(StoreError::query("active_plugin"))?
        .map(PluginVersion::try_from)
        .transpose()
    }

    /// Every tenant's active plugin version, ordered by tenant, for building the server's
    /// routing at start. By nature not tenant-scoped: only the server itself calls it.
    pub async fn active_plugins(&self) -> Result<Vec<PluginVersion>, StoreError> {
        const SQL: &str = select_versions!(
            "WHERE p.id = (",
            active_plugin_id!("p.tenant_id"),
            ") ORDER BY p.tenant_id"
        );
        with_pool!(self, pool => {
            sqlx::query_as::<_, PluginRow>(SQL).fetch_all(pool).await
        })
        .map_err(StoreError::query("active_plugins"))?
        .into_iter()
        .map(PluginVersion::try_from)
        .collect()
    }
}
