//! Trunks: the SIP providers allowed to send calls.

use serde::Serialize;

use crate::{Store, StoreError};

/// A trunk row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Trunk {
    /// Stable identifier, e.g. `local` or `twilio`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Source networks accepted from this trunk, as CIDR strings (`127.0.0.0/8`).
    pub allowed_cidrs: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct TrunkRow {
    id: String,
    name: String,
    allowed_cidrs: String,
}

impl TryFrom<TrunkRow> for Trunk {
    type Error = StoreError;
    fn try_from(row: TrunkRow) -> Result<Self, StoreError> {
        let allowed_cidrs =
            serde_json::from_str(&row.allowed_cidrs).map_err(|_| StoreError::InvalidValue {
                column: "trunks.allowed_cidrs",
                value: row.allowed_cidrs.clone(),
            })?;
        Ok(Trunk {
            id: row.id,
            name: row.name,
            allowed_cidrs,
        })
    }
}

/// Where a trunk is defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrunkSource {
    /// The config file's `[[trunks]]` (mirrored into the store at start; changed there).
    Config,
    /// Created by the operator over the API: a plain trunk admitting its source networks.
    Api,
}

impl TrunkSource {
    fn as_str(self) -> &'static str {
        match self {
            TrunkSource::Config => "config",
            TrunkSource::Api => "api",
        }
    }
}

/// A trunk and where it is defined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListedTrunk {
    /// The trunk.
    #[serde(flatten)]
    pub trunk: Trunk,
    /// Where it is defined.
    pub source: TrunkSource,
}

#[derive(sqlx::FromRow)]
struct ListedTrunkRow {
    id: String,
    name: String,
    allowed_cidrs: String,
    source: String,
}

impl Store {
    /// Insert a trunk of the config file, or replace its name and address list if it exists
    /// (a trunk the API created with the same id becomes the config file's).
    pub async fn upsert_trunk(&self, trunk: &Trunk) -> Result<(), StoreError> {
        let cidrs = serde_json::Value::from(trunk.allowed_cidrs.clone()).to_string();
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO trunks (id, name, allowed_cidrs, source) VALUES ($1, $2, $3, 'config')
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name,
                                                allowed_cidrs = excluded.allowed_cidrs,
                                                source = 'config'",
            )
            .bind(&trunk.id)
            .bind(&trunk.name)
            .bind(&cidrs)
            .execute(pool)
            .await
            .map(drop)
        })
        .map_err(StoreError::query("upsert_trunk"))
    }

    /// The trunk with this id, if any.
    pub async fn get_trunk(&self, id: &str) -> Result<Option<Trunk>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_as::<_, TrunkRow>(
                "SELECT id, name, allowed_cidrs FROM trunks WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        })
        .map_err(StoreError::query("get_trunk"))?
        .map(Trunk::try_from)
        .transpose()
    }

    /// Every trunk with where it is defined, by id.
    pub async fn list_trunks(&self) -> Result<Vec<ListedTrunk>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, ListedTrunkRow>(
                "SELECT id, name, allowed_cidrs, source FROM trunks ORDER BY id",
            )
            .fetch_all(pool)
            .await
        })
        .map_err(StoreError::query("list_trunks"))?;
        rows.into_iter()
            .map(|row| {
                let source = match row.source.as_str() {
                    "config" => TrunkSource::Config,
                    "api" => TrunkSource::Api,
                    other => {
                        return Err(StoreError::InvalidValue {
                            column: "trunks.source",
                            value: other.to_owned(),
                        });
                    }
                };
                let trunk = Trunk::try_from(TrunkRow {
                    id: row.id,
                    name: row.name,
                    allowed_cidrs: row.allowed_cidrs,
                })?;
                Ok(ListedTrunk { trunk, source })
            })
            .collect()
    }

    /// Create or replace a trunk of the API. `Conflict` when the config file defines a trunk
    /// with this id (change that one in the file). Returns whether it was created.
    pub async fn put_api_trunk(&self, trunk: &Trunk) -> Result<bool, StoreError> {
        let cidrs = serde_json::Value::from(trunk.allowed_cidrs.clone()).to_string();
        let existing = self.trunk_source(&trunk.id).await?;
        if existing == Some(TrunkSource::Config) {
            return Err(StoreError::Conflict {
                what: "config trunk",
                id: trunk.id.clone(),
            });
        }
        let changed = with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO trunks (id, name, allowed_cidrs, source) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name,
                                                allowed_cidrs = excluded.allowed_cidrs
                 WHERE trunks.source = $4",
            )
            .bind(&trunk.id)
            .bind(&trunk.name)
            .bind(&cidrs)
            .bind(TrunkSource::Api.as_str())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(StoreError::query("put_api_trunk"))?;
        if changed == 0 {
            // The config file's trunk appeared in between.
            return Err(StoreError::Conflict {
                what: "config trunk",
                id: trunk.id.clone(),
            });
        }
        Ok(existing.is_none())
    }

    /// Delete a trunk of the API; its numbers keep routing over their tenant's trunk.
    /// `NotFound` if there is none, `Conflict` for a trunk of the config file.
    pub async fn delete_api_trunk(&self, id: &str) -> Result<(), StoreError> {
        match self.trunk_source(id).await? {
            None => Err(StoreError::NotFound {
                what: "trunk",
                id: id.to_owned(),
            }),
            Some(TrunkSource::Config) => Err(StoreError::Conflict {
                what: "config trunk",
                id: id.to_owned(),
            }),
            Some(TrunkSource::Api) => with_pool!(self, pool => {
                sqlx::query("DELETE FROM trunks WHERE id = $1 AND source = 'api'")
                    .bind(id)
                    .execute(pool)
                    .await
                    .map(drop)
            })
            .map_err(StoreError::query("delete_api_trunk")),
        }
    }

    async fn trunk_source(&self, id: &str) -> Result<Option<TrunkSource>, StoreError> {
        Ok(self
            .list_trunks()
            .await?
            .into_iter()
            .find(|listed| listed.trunk.id == id)
            .map(|listed| listed.source))
    }
}
