//! API keys: the bearer keys a tenant's programs use on the HTTP API.
//!
//! A key is `vk_` + 8 public characters + `_` + 40 secret characters, all alphanumeric from a
//! cryptographically secure generator (about 238 bits of secret). The whole key is shown once,
//! when it is created; the store keeps only its SHA-256 hash (the key has so much entropy that
//! a plain hash is as good as a slow one) and its public prefix (`vk_` + 8), which listings
//! show so people can tell keys apart. A key authenticates until it is revoked or its tenant
//! is deleted; a *suspended* tenant's keys keep working (suspension stops calls, not access
//! to the tenant's data; revoke the keys or delete the tenant to cut access).

use rand::Rng;
use rand::distr::Alphanumeric;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Scope, Store, StoreError};

/// What every API key starts with.
pub const API_KEY_PREFIX: &str = "vk_";
/// Length of the public part after [`API_KEY_PREFIX`].
const PUBLIC_LEN: usize = 8;
/// Length of the secret part.
const SECRET_LEN: usize = 40;
/// Total length of a key: `vk_` + public + `_` + secret.
const KEY_LEN: usize = API_KEY_PREFIX.len() + PUBLIC_LEN + 1 + SECRET_LEN;
/// `last_used_at` is written only when the stored value is older than this, so an API client
/// making many requests costs one write a minute, not one per request.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// An API key as listings show it (never the key itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    /// Key id (UUIDv7); revoke the key by it.
    pub id: String,
    /// The tenant the key acts for.
    pub tenant_id: String,
    /// What the tenant calls the key.
    pub name: String,
    /// The key's public start (`vk_` and 8 characters).
    pub prefix: String,
    /// When the key was created (unix ms).
    pub created_at_ms: i64,
    /// When the key last authenticated a request (unix ms, to about a minute), if ever.
    pub last_used_at_ms: Option<i64>,
    /// When the key was revoked (unix ms); a revoked key no longer authenticates.
    pub revoked_at_ms: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: String,
    tenant_id: String,
    name: String,
    prefix: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(row: ApiKeyRow) -> Self {
        ApiKey {
            id: row.id,
            tenant_id: row.tenant_id,
            name: row.name,
            prefix: row.prefix,
            created_at_ms: row.created_at,
            last_used_at_ms: row.last_used_at,
            revoked_at_ms: row.revoked_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct KeyOwnerRow {
    id: String,
    tenant_id: String,
    last_used_at: Option<i64>,
}

/// A new random key and its public prefix: (`vk_XXXXXXXX`, `vk_XXXXXXXX_<secret>`).
fn generate_key() -> (String, String) {
    let mut rng = rand::rng();
    let mut random = |len: usize| -> String {
        (&mut rng)
            .sample_iter(&Alphanumeric)
            .take(len)
            .map(char::from)
            .collect()
    };
    let prefix = format!("{API_KEY_PREFIX}{}", random(PUBLIC_LEN));
    let key = format!("{prefix}_{}", random(SECRET_LEN));
    (prefix, key)
}

/// Does `key` have the shape of an API key? (Saves a query for anything else.)
fn looks_like_key(key: &str) -> bool {
    key.len() == KEY_LEN
        && key.starts_with(API_KEY_PREFIX)
        && key.as_bytes()[API_KEY_PREFIX.len() + PUBLIC_LEN] == b'_'
}

/// Lowercase hex SHA-256 of the key, as stored in `api_keys.key_hash`.
fn hash_key(key: &str) -> String {
    use std::fmt::Write;
    Sha256::digest(key.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

impl Store {
    /// Create a key for `tenant_id`, returning it as listed and the key itself. The key is
    /// not stored and cannot be shown again. `NotFound` when there is no such tenant.
    pub async fn create_api_key(
        &self,
        tenant_id: &str,
        name: &str,
    ) -> Result<(ApiKey, String), StoreError> {
        let (prefix, key) = generate_key();
        let id = crate::new_id();
        let created_at = crate::now_ms();
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&id)
            .bind(tenant_id)
            .bind(name)
            .bind(&prefix)
            .bind(hash_key(&key))
            .bind(created_at)
            .execute(pool)
            .await
            .map(drop)
        })
        .map_err(StoreError::missing_parent(
            "create_api_key",
            "tenant",
            tenant_id,
        ))?;
        let listed = ApiKey {
            id,
            tenant_id: tenant_id.to_owned(),
            name: name.to_owned(),
            prefix,
            created_at_ms: created_at,
            last_used_at_ms: None,
            revoked_at_ms: None,
        };
        Ok((listed, key))
    }

    /// Keys visible to `scope` (revoked ones included), oldest first; `tenant` narrows an
    /// operator's list to one tenant (for a tenant scope, another tenant yields nothing).
    pub async fn list_api_keys(
        &self,
        scope: &Scope,
        tenant: Option<&str>,
    ) -> Result<Vec<ApiKey>, StoreError> {
        let tenant = match (scope.tenant_id(), tenant) {
            (Some(own), Some(asked)) if own != asked => return Ok(Vec::new()),
            (Some(own), _) => Some(own),
            (None, asked) => asked,
        };
        let rows = match tenant {
            Some(tenant_id) => with_pool!(self, pool => {
                sqlx::query_as::<_, ApiKeyRow>(
                    "SELECT id, tenant_id, name, prefix, created_at, last_used_at, revoked_at
                     FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id",
                )
                .bind(tenant_id)
                .fetch_all(pool)
                .await
            }),
            None => with_pool!(self, pool => {
                sqlx::query_as::<_, ApiKeyRow>(
                    "SELECT id, tenant_id, name, prefix, created_at, last_used_at, revoked_at
                     FROM api_keys ORDER BY tenant_id, created_at, id",
                )
                .fetch_all(pool)
                .await
            }),
        }
        .map_err(StoreError::query("list_api_keys"))?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    /// Revoke the key `key_id`, if `scope` may see it, and return it as it now is. Revoking a
    /// revoked key changes nothing. `NotFound` when there is no such key in the scope
    /// (another tenant's key included).
    pub async fn revoke_api_key(&self, scope: &Scope, key_id: &str) -> Result<ApiKey, StoreError> {
        let now = crate::now_ms();
        let row = match scope.tenant_id() {
            Some(tenant_id) => with_pool!(self, pool => {
                sqlx::query_as::<_, ApiKeyRow>(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3)
                     WHERE tenant_id = $1 AND id = $2
                     RETURNING id, tenant_id, name, prefix, created_at, last_used_at, revoked_at",
                )
                .bind(tenant_id)
                .bind(key_id)
                .bind(now)
                .fetch_optional(pool)
                .await
            }),
            None => with_pool!(self, pool => {
                sqlx::query_as::<_, ApiKeyRow>(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2)
                     WHERE id = $1
                     RETURNING id, tenant_id, name, prefix, created_at, last_used_at, revoked_at",
                )
                .bind(key_id)
                .bind(now)
                .fetch_optional(pool)
                .await
            }),
        }
        .map_err(StoreError::query("revoke_api_key"))?;
        row.map(ApiKey::from).ok_or_else(|| StoreError::NotFound {
            what: "API key",
            id: key_id.to_owned(),
        })
    }

    /// Authentication: the tenant a presented key acts for, or `None` when the key is not a
    /// live key (malformed, unknown or revoked). Keys of suspended tenants still answer (see
    /// the module doc). Records the use in `last_used_at` at most about once a minute.
    ///
    /// Like [`Store::tenant_for_number`] this is not tenant-scoped: it runs to find the tenant.
    pub async fn tenant_for_api_key(&self, key: &str) -> Result<Option<String>, StoreError> {
        if !looks_like_key(key) {
            return Ok(None);
        }
        let hash = hash_key(key);
        let owner = with_pool!(self, pool => {
            sqlx::query_as::<_, KeyOwnerRow>(
                "SELECT id, tenant_id, last_used_at FROM api_keys
                 WHERE key_hash = $1 AND revoked_at IS NULL",
            )
            .bind(&hash)
            .fetch_optional(pool)
            .await
        })
        .map_err(StoreError::query("tenant_for_api_key"))?;
        let Some(owner) = owner else {
            return Ok(None);
        };
        let now = crate::now_ms();
        let stale = owner
            .last_used_at
            .is_none_or(|at| now - at >= LAST_USED_RESOLUTION_MS);
        if stale {
            with_pool!(self, pool => {
                sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                    .bind(&owner.id)
                    .bind(now)
                    .execute(pool)
                    .await
                    .map(drop)
            })
            .map_err(StoreError::query("tenant_for_api_key"))?;
        }
        Ok(Some(owner.tenant_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape_and_differ() {
        let (prefix, key) = generate_key();
        assert!(looks_like_key(&key), "{key}");
        assert_eq!(prefix.len(), API_KEY_PREFIX.len() + PUBLIC_LEN);
        assert!(key.starts_with(&format!("{prefix}_")));
        assert!(
            key.chars()
                .skip(3)
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        );
        let (_, other) = generate_key();
        assert_ne!(key, other);
    }

    #[test]
    fn other_strings_do_not_look_like_keys() {
        let (_, key) = generate_key();
        for bad in [
            "",
            "operator-secret",
            &key[..key.len() - 1],
            &format!("{key}x"),
            &key.replacen("vk_", "xk_", 1),
            &key.replacen('_', "-", 2),
        ] {
            assert!(!looks_like_key(bad), "{bad}");
        }
    }

    #[test]
    fn the_hash_is_lowercase_hex_sha256() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
