//! Call recordings: where each recorded call's WAV file is, how long it is, and the retention
//! sweep's queries. The files themselves are the server's business.

use serde::Serialize;

use crate::{CallFilter, Scope, Store, StoreError};

/// A call's recording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Recording {
    /// The tenant that owns the call.
    pub tenant_id: String,
    /// The recorded call.
    pub call_id: String,
    /// Path of the WAV file on the server (never shown over the API).
    #[serde(skip)]
    pub path: String,
    /// Length of the recording.
    pub duration_ms: i64,
    /// When the recording was finished (unix ms).
    pub created_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct RecordingRow {
    tenant_id: String,
    call_id: String,
    path: String,
    duration_ms: i64,
    created_at: i64,
}

impl From<RecordingRow> for Recording {
    fn from(row: RecordingRow) -> Self {
        Recording {
            tenant_id: row.tenant_id,
            call_id: row.call_id,
            path: row.path,
            duration_ms: row.duration_ms,
            created_at_ms: row.created_at,
        }
    }
}

impl Store {
    /// Records (or replaces) the recording of a call. `NotFound` if the tenant has no such
    /// call.
    pub async fn set_recording(&self, recording: &Recording) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO recordings (tenant_id, call_id, path, duration_ms, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id, call_id) DO UPDATE SET
                     path = excluded.path, duration_ms = excluded.duration_ms,
                     created_at = excluded.created_at",
            )
            .bind(&recording.tenant_id)
            .bind(&recording.call_id)
            .bind(&recording.path)
            .bind(recording.duration_ms)
            .bind(recording.created_at_ms)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(StoreError::missing_parent(
            "set_recording",
            "call",
            &recording.call_id,
        ))?;
        Ok(())
    }

    /// The recording of a call, if it has one and `scope` may see the call.
    pub async fn recording_for_call(
        &self,
        scope: &Scope,
        call_id: &str,
    ) -> Result<Option<Recording>, StoreError> {
        let row = match scope.tenant_id() {
            Some(tenant_id) => {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, RecordingRow>(
                        "SELECT tenant_id, call_id, path, duration_ms, created_at
                         FROM recordings WHERE tenant_id = $1 AND call_id = $2",
                    )
                    .bind(tenant_id)
                    .bind(call_id)
                    .fetch_optional(pool)
                    .await
                })
            }
            None => {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, RecordingRow>(
                        "SELECT tenant_id, call_id, path, duration_ms, created_at
                         FROM recordings WHERE call_id = $1",
                    )
                    .bind(call_id)
                    .fetch_optional(pool)
                    .await
                })
            }
        }
        .map_err(StoreError::query("recording_for_call"))?;
        Ok(row.map(Recording::from))
    }

    /// Recordings visible to `scope`, narrowed by `filter` (tenant, limit clamped to
    /// `1..=500`), newest first.
    pub async fn list_recordings(
        &self,
        scope: &Scope,
        filter: &CallFilter,
    ) -> Result<Vec<Recording>, StoreError> {
        let tenant = match (scope.tenant_id(), filter.tenant.as_deref()) {
            (Some(own), Some(asked)) if own != asked => return Ok(Vec::new()),
            (Some(own), _) => Some(own),
            (None, asked) => asked,
        };
        let limit = i64::from(filter.effective_limit());
        let rows = match tenant {
            Some(tenant_id) => {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, RecordingRow>(
                        "SELECT tenant_id, call_id, path, duration_ms, created_at
                         FROM recordings WHERE tenant_id = $1
                         ORDER BY created_at DESC, call_id DESC LIMIT $2",
                    )
                    .bind(tenant_id)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
                })
            }
            None => {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, RecordingRow>(
                        "SELECT tenant_id, call_id, path, duration_ms, created_at
                         FROM recordings ORDER BY created_at DESC, call_id DESC LIMIT $1",
                    )
                    .bind(limit)
                    .fetch_all(pool)
                    .await
                })
            }
        }
        .map_err(StoreError::query("list_recordings"))?;
        Ok(rows.into_iter().map(Recording::from).collect())
    }

    /// A tenant's recordings finished before `before_ms` (oldest first, at most `limit`):
    /// what its retention has expired.
    pub async fn recordings_before(
        &self,
        tenant_id: &str,
        before_ms: i64,
        limit: u32,
    ) -> Result<Vec<Recording>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, RecordingRow>(
                "SELECT tenant_id, call_id, path, duration_ms, created_at
                 FROM recordings WHERE tenant_id = $1 AND created_at < $2
                 ORDER BY created_at LIMIT $3",
            )
            .bind(tenant_id)
            .bind(before_ms)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })
        .map_err(StoreError::query("recordings_before"))?;
        Ok(rows.into_iter().map(Recording::from).collect())
    }

    /// Forgets a call's recording (after its file was deleted). Returns whether there was one.
    pub async fn delete_recording(
        &self,
        tenant_id: &str,
        call_id: &str,
    ) -> Result<bool, StoreError> {
        let changed = with_pool!(self, pool => {
            sqlx::query("DELETE FROM recordings WHERE tenant_id = $1 AND call_id = $2")
                .bind(tenant_id)
                .bind(call_id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(StoreError::query("delete_recording"))?;
        Ok(changed > 0)
    }
}
