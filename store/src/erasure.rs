//! Erasing a caller on request (a privacy "delete my data" request): the tenant forgets the
//! caller's profile and memory, and every call from that number keeps only what billing and
//! analytics need (times, status, dialled number, cost, media and latency figures) with the
//! number itself replaced by [`REDACTED_CALLER`].

use crate::{Store, StoreError};

/// What a redacted call shows as its caller after [`Store::erase_caller`].
pub const REDACTED_CALLER: &str = "redacted";

/// What [`Store::erase_caller`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallerErasure {
    /// The caller's profile (name, memory, counts) existed and was deleted.
    pub profile_deleted: bool,
    /// Calls from the number that were redacted.
    pub calls_redacted: u64,
    /// Paths of the recording files of those calls. Their rows are deleted; the caller of
    /// [`Store::erase_caller`] must delete the files.
    pub recording_paths: Vec<String>,
}

impl CallerErasure {
    /// Nothing was stored about the number.
    pub fn is_empty(&self) -> bool {
        !self.profile_deleted && self.calls_redacted == 0
    }
}

impl Store {
    /// Erases everything the tenant stored about the caller `phone`, in one transaction:
    /// - the caller's profile and memory (`callers` row);
    /// - in each call from `phone`: the transcript (both speakers: the agent's lines repeat
    ///   what the caller said), the caller's text in the turns, the extractions, the events
    ///   (plugin logs, DTMF), the DTMF digits, the summary and sentiment, and the recording
    ///   row (the returned paths are the files to delete);
    /// - the caller number of those calls, replaced by [`REDACTED_CALLER`].
    ///
    /// The call rows stay (id, times, status, dialled number, cost, latency, media stats) so
    /// billing and analytics still add up. Other tenants' data is never touched. The plugin's
    /// key-value data is the plugin's own and is not searched.
    pub async fn erase_caller(
        &self,
        tenant_id: &str,
        phone: &str,
    ) -> Result<CallerErasure, StoreError> {
        if phone == REDACTED_CALLER {
            // Not a number: the marker shared by every erased caller.
            return Ok(CallerErasure::default());
        }
        let op = "erase_caller";
        // Every statement narrows to the tenant's calls from the number; the call rows are
        // redacted last, since the others find the calls by their caller.
        const OF_CALLS: &str = "tenant_id = $1 AND call_id IN (SELECT id FROM calls WHERE tenant_id = $1 AND caller = $2)";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(StoreError::query(op))?;
            let profile_deleted = sqlx::query("DELETE FROM callers WHERE tenant_id = $1 AND phone = $2")
                .bind(tenant_id)
                .bind(phone)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::query(op))?
                .rows_affected()
                > 0;
            let recording_paths: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT path FROM recordings WHERE {OF_CALLS} ORDER BY call_id"
            )))
            .bind(tenant_id)
            .bind(phone)
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::query(op))?;
            for statement in [
                format!("DELETE FROM recordings WHERE {OF_CALLS}"),
                format!("DELETE FROM transcript_lines WHERE {OF_CALLS}"),
                format!("DELETE FROM extractions WHERE {OF_CALLS}"),
                format!("DELETE FROM call_events WHERE {OF_CALLS}"),
                format!("UPDATE call_turns SET caller_text = NULL WHERE {OF_CALLS}"),
            ] {
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .bind(tenant_id)
                    .bind(phone)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::query(op))?;
            }
            let calls_redacted = sqlx::query(
                "UPDATE calls SET caller = $3, dtmf = '', summary = NULL, sentiment = NULL
                 WHERE tenant_id = $1 AND caller = $2",
            )
            .bind(tenant_id)
            .bind(phone)
            .bind(REDACTED_CALLER)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query(op))?
            .rows_affected();
            tx.commit().await.map_err(StoreError::query(op))?;
            Ok(CallerErasure {
                profile_deleted,
                calls_redacted,
                recording_paths: recording_paths.into_iter().map(|(path,)| path).collect(),
            })
        })
    }
}
