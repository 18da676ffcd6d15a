//! Tenant assets: audio prompts a tenant uploads and its plugin plays (`play-asset`), kept as
//! the server plays them (8 kHz mono PCM).

use serde::Serialize;

use crate::{Store, StoreError};

/// An asset's description (its audio is read with [`Store::asset_audio`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Asset {
    /// The owning tenant.
    pub tenant_id: String,
    /// The name the tenant gave it, which its plugin plays it by.
    pub id: String,
    /// Length of the audio.
    pub duration_ms: i64,
    /// Lowercase hex SHA-256 of the WAV as uploaded.
    pub content_hash: String,
    /// When it was first stored (unix ms).
    pub created_at_ms: i64,
    /// When its audio was last replaced (unix ms).
    pub updated_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct AssetRow {
    tenant_id: String,
    id: String,
    duration_ms: i64,
    content_hash: String,
    created_at: i64,
    updated_at: i64,
}

impl From<AssetRow> for Asset {
    fn from(row: AssetRow) -> Asset {
        Asset {
            tenant_id: row.tenant_id,
            id: row.id,
            duration_ms: row.duration_ms,
            content_hash: row.content_hash,
            created_at_ms: row.created_at,
            updated_at_ms: row.updated_at,
        }
    }
}

/// 8 kHz samples as stored: 16-bit little-endian.
fn to_bytes(pcm8k: &[i16]) -> Vec<u8> {
    pcm8k.iter().flat_map(|s| s.to_le_bytes()).collect()
}

impl Store {
    /// Store (or replace) the tenant's asset `id` with `pcm8k` (8 kHz mono). `NotFound` if the
    /// tenant does not exist. Returns the stored description.
    pub async fn put_asset(
        &self,
        tenant_id: &str,
        id: &str,
        pcm8k: &[i16],
        content_hash: &str,
        now_ms: i64,
    ) -> Result<Asset, StoreError> {
        let duration_ms = i64::try_from(pcm8k.len() / 8).unwrap_or(i64::MAX);
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO assets (tenant_id, id, pcm8k, duration_ms, content_hash, created_at,
                                     updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)
                 ON CONFLICT (tenant_id, id) DO UPDATE SET
                     pcm8k = excluded.pcm8k, duration_ms = excluded.duration_ms,
                     content_hash = excluded.content_hash, updated_at = excluded.updated_at",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(to_bytes(pcm8k))
            .bind(duration_ms)
            .bind(content_hash)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(drop)
        })
        .map_err(StoreError::missing_parent("put_asset", "tenant", tenant_id))?;
        self.get_asset(tenant_id, id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "asset",
                id: id.to_owned(),
            })
    }

    /// The tenant's asset `id`, if it has one.
    pub async fn get_asset(&self, tenant_id: &str, id: &str) -> Result<Option<Asset>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_as::<_, AssetRow>(
                "SELECT tenant_id, id, duration_ms, content_hash, created_at, updated_at
                 FROM assets WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(pool)
            .await
        })
        .map_err(StoreError::query("get_asset"))
        .map(|row| row.map(Asset::from))
    }

    /// The tenant's assets (`None`: every tenant's), by tenant and name.
    pub async fn list_assets(&self, tenant_id: Option<&str>) -> Result<Vec<Asset>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_as::<_, AssetRow>(
                "SELECT tenant_id, id, duration_ms, content_hash, created_at, updated_at
                 FROM assets WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY tenant_id, id",
            )
            .bind(tenant_id)
            .fetch_all(pool)
            .await
        })
        .map_err(StoreError::query("list_assets"))
        .map(|rows| rows.into_iter().map(Asset::from).collect())
    }

    /// The audio of the tenant's asset `id` (8 kHz mono), if it has one.
    pub async fn asset_audio(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<Vec<i16>>, StoreError> {
        let bytes = with_pool!(self, pool => {
            sqlx::query_scalar::<_, Vec<u8>>(
                "SELECT pcm8k FROM assets WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(pool)
            .await
        })
        .map_err(StoreError::query("asset_audio"))?;
        Ok(bytes.map(|bytes| {
            bytes
                .chunks_exact(2)
                .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
                .collect()
        }))
    }

    /// Delete the tenant's asset `id`. `NotFound` if it has none.
    pub async fn delete_asset(&self, tenant_id: &str, id: &str) -> Result<(), StoreError> {
        let deleted = with_pool!(self, pool => {
            sqlx::query("DELETE FROM assets WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(StoreError::query("delete_asset"))?;
        if deleted == 0 {
            return Err(StoreError::NotFound {
                what: "asset",
                id: id.to_owned(),
            });
        }
        Ok(())
    }
}
