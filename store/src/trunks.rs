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

impl Store {
    /// Insert a trunk, or replace its name and address list if it exists.
    pub async fn upsert_trunk(&self, trunk: &Trunk) -> Result<(), StoreError> {
        let cidrs = serde_json::Value::from(trunk.allowed_cidrs.clone()).to_string();
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO trunks (id, name, allowed_cidrs) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name,
                                                allowed_cidrs = excluded.allowed_cidrs",
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
}
