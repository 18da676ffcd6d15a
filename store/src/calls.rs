//! Calls: one row per call, with its status, timings and outcome.

mod call_log;
mod report;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub(crate) use call_log::ExtractionRow;
pub use call_log::{CallEvent, Extraction, NewTranscriptLine, Speaker, TranscriptLine};
pub use report::{CallReport, CallTurn};

use crate::conditions::{Bind, Conditions};
use crate::page::{Cursor, Page, page_of};
use crate::webhooks::{OutboxEvent, WebhookEventType, enqueue_webhook_deliveries};
use crate::{Scope, Sentiment, Store, StoreError};

/// Default number of calls returned by [`Store::list_calls`].
pub const DEFAULT_CALL_LIMIT: u32 = 50;
/// Largest number of calls [`Store::list_calls`] returns at once.
pub const MAX_CALL_LIMIT: u32 = 500;

/// Where a call is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// INVITE received, not yet answered.
    Ringing,
    /// Answered (200 OK sent); media flowing.
    InProgress,
    /// Ended normally after being answered.
    Completed,
    /// The caller gave up before the call was answered (CANCEL).
    Cancelled,
    /// Never answered within the allowed time.
    NoAnswer,
    /// A call we placed found the callee busy (486, 600).
    Busy,
    /// Ended by an internal fault (including a server restart mid-call).
    Failed,
    /// Refused before answering (unknown number, suspended tenant, over limits).
    Rejected,
}

impl CallStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [CallStatus; 8] = [
        CallStatus::Ringing,
        CallStatus::InProgress,
        CallStatus::Completed,
        CallStatus::Cancelled,
        CallStatus::NoAnswer,
        CallStatus::Busy,
        CallStatus::Failed,
        CallStatus::Rejected,
    ];

    /// The value stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in_progress",
            CallStatus::Completed => "completed",
            CallStatus::Cancelled => "cancelled",
            CallStatus::NoAnswer => "no_answer",
            CallStatus::Busy => "busy",
            CallStatus::Failed => "failed",
            CallStatus::Rejected => "rejected",
        }
    }

    /// True once the call has ended (no further status change is expected).
    pub fn is_final(self) -> bool {
        !matches!(self, CallStatus::Ringing | CallStatus::InProgress)
    }
}

impl fmt::Display for CallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CallStatus {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        CallStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| StoreError::InvalidValue {
                column: "calls.status",
                value: s.to_owned(),
            })
    }
}

/// Who placed the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallDirection {
    /// A trunk called us.
    Inbound,
    /// We called out through a trunk.
    Outbound,
}

impl CallDirection {
    /// The value stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            CallDirection::Inbound => "inbound",
            CallDirection::Outbound => "outbound",
        }
    }
}

impl fmt::Display for CallDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CallDirection {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "inbound" => Ok(CallDirection::Inbound),
            "outbound" => Ok(CallDirection::Outbound),
            other => Err(StoreError::InvalidValue {
                column: "calls.direction",
                value: other.to_owned(),
            }),
        }
    }
}

/// A call to insert when it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCall {
    /// Call id; use [`crate::new_id`] (UUIDv7).
    pub id: String,
    /// The tenant that owns the call.
    pub tenant_id: String,
    /// The provider's id for the call (e.g. `X-Twilio-CallSid`, else the SIP Call-ID).
    pub external_id: Option<String>,
    /// Inbound or outbound.
    pub direction: CallDirection,
    /// The calling number (`From`).
    pub caller: String,
    /// The dialled number (Request-URI user, else `To`).
    pub dialled: String,
    /// Initial status, normally [`CallStatus::Ringing`].
    pub status: CallStatus,
    /// When the INVITE arrived (unix ms).
    pub started_at_ms: i64,
    /// Name of the plugin handling the call, if already known.
    pub plugin_name: Option<String>,
    /// Version of that plugin.
    pub plugin_version: Option<String>,
}

/// How a call ended, written by [`Store::finish_call`].
#[derive(Clone, Debug, PartialEq)]
pub struct CallOutcome {
    /// Final status (normally one for which [`CallStatus::is_final`] holds).
    pub status: CallStatus,
    /// When the call ended (unix ms).
    pub ended_at_ms: i64,
    /// Why it ended, e.g. `caller_hangup`, `plugin_hangup`, `media_timeout`.
    pub end_reason: String,
    /// RTP and jitter-buffer statistics, as a JSON object.
    pub media_stats: Option<serde_json::Value>,
    /// What went wrong, for failed calls.
    pub error: Option<String>,
}

/// Which calls [`Store::list_calls`] returns. Every set field narrows the list (they combine
/// with AND). [`Store::list_recordings`] reads only `tenant` and `limit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallFilter {
    /// Only this tenant's calls (an operator narrowing the list; for a
    /// tenant scope, a different tenant here yields nothing).
    pub tenant: Option<String>,
    /// Maximum number of calls; clamped to `1..=500`. Default 50.
    pub limit: u32,
    /// Only calls that started at or after this time (unix ms, inclusive).
    pub from_ms: Option<i64>,
    /// Only calls that started before this time (unix ms, exclusive).
    pub to_ms: Option<i64>,
    /// Only calls with this status.
    pub status: Option<CallStatus>,
    /// Only calls to this number (exact match).
    pub dialled: Option<String>,
    /// Only calls from this number (exact match).
    pub caller: Option<String>,
    /// Continue after this call (the `next_cursor` of the previous page).
    pub cursor: Option<Cursor>,
}

impl Default for CallFilter {
    /// Every call the scope may see, 50 at a time.
    fn default() -> Self {
        CallFilter {
            tenant: None,
            limit: DEFAULT_CALL_LIMIT,
            from_ms: None,
            to_ms: None,
            status: None,
            dialled: None,
            caller: None,
            cursor: None,
        }
    }
}

impl CallFilter {
    /// The limit actually applied: `limit` clamped to `1..=500`.
    pub fn effective_limit(&self) -> u32 {
        self.limit.clamp(1, MAX_CALL_LIMIT)
    }
}

/// A stored call.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallRecord {
    /// Call id (UUIDv7).
    pub id: String,
    /// The tenant that owns the call.
    pub tenant_id: String,
    /// The provider's id for the call.
    pub external_id: Option<String>,
    /// Inbound or outbound.
    pub direction: CallDirection,
    /// The calling number.
    pub caller: String,
    /// The dialled number.
    pub dialled: String,
    /// Current or final status.
    pub status: CallStatus,
    /// When the INVITE arrived (unix ms).
    pub started_at_ms: i64,
    /// When the call was answered (unix ms).
    pub answered_at_ms: Option<i64>,
    /// When the call ended (unix ms).
    pub ended_at_ms: Option<i64>,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// DTMF digits received, in order (empty if none).
    pub dtmf: String,
    /// Name of the plugin that handled the call.
    pub plugin_name: Option<String>,
    /// Version of that plugin.
    pub plugin_version: Option<String>,
    /// RTP and jitter-buffer statistics.
    pub media_stats: Option<serde_json::Value>,
    /// What went wrong, for failed calls.
    pub error: Option<String>,
    /// The priced total of the call's cost ledger in micro-rupees (1 INR = 1 000 000);
    /// `None` until the call has finished with a report.
    pub cost_inr_micros: Option<i64>,
}

/// A call with everything recorded during it, for `GET /api/v1/calls/{id}`.
/// Serialises as the call's fields plus `transcript`, `extractions`, `events`, `turns`,
/// `cost`, `latency`, `summary`, `sentiment` and `recording` (the last five `null` when unset).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallDetail {
    /// The call row.
    #[serde(flatten)]
    pub call: CallRecord,
    /// Transcript lines ordered by start time.
    pub transcript: Vec<TranscriptLine>,
    /// Extracted data ordered by creation time.
    pub extractions: Vec<Extraction>,
    /// Events (plugin logs, DTMF, failures) ordered by time.
    pub events: Vec<CallEvent>,
    /// Conversational turns with their latency, in order.
    pub turns: Vec<CallTurn>,
    /// The cost ledger written when the call ended (`None` before).
    pub cost: Option<serde_json::Value>,
    /// The latency summary over the turns, written when the call ended (`None` before).
    pub latency: Option<serde_json::Value>,
    /// The call's summary, written by [`Store::set_call_summary`] (`None` before).
    pub summary: Option<String>,
    /// The caller's sentiment, written with the summary (`None` if not judged).
    pub sentiment: Option<Sentiment>,
    /// The call's recording (`duration_ms`, `created_at_ms`), downloadable at
    /// `GET /api/v1/calls/{id}/recording`; `None` when the call was not recorded.
    pub recording: Option<crate::Recording>,
}

#[derive(sqlx::FromRow)]
struct CallRow {
    id: String,
    tenant_id: String,
    external_id: Option<String>,
    direction: String,
    caller: String,
    dialled: String,
    status: String,
    started_at: i64,
    answered_at: Option<i64>,
    ended_at: Option<i64>,
    end_reason: Option<String>,
    dtmf: String,
    plugin_name: Option<String>,
    plugin_version: Option<String>,
    media_stats: Option<String>,
    error: Option<String>,
    cost_inr_micros: Option<i64>,
}

impl TryFrom<CallRow> for CallRecord {
    type Error = StoreError;
    fn try_from(row: CallRow) -> Result<Self, StoreError> {
        let media_stats = row
            .media_stats
            .map(|text| {
                serde_json::from_str(&text).map_err(|_| StoreError::InvalidValue {
                    column: "calls.media_stats",
                    value: text,
                })
            })
            .transpose()?;
        Ok(CallRecord {
            id: row.id,
            tenant_id: row.tenant_id,
            external_id: row.external_id,
            direction: row.direction.parse()?,
            caller: row.caller,
            dialled: row.dialled,
            status: row.status.parse()?,
            started_at_ms: row.started_at,
            answered_at_ms: row.answered_at,
            ended_at_ms: row.ended_at,
            end_reason: row.end_reason,
            dtmf: row.dtmf,
            plugin_name: row.plugin_name,
            plugin_version: row.plugin_version,
            media_stats,
            error: row.error,
            cost_inr_micros: row.cost_inr_micros,
        })
    }
}

/// End reason written by [`Store::mark_unfinished_calls_failed`].
pub const SERVER_RESTART_END_REASON: &str = "server_restart";

impl Store {
    /// Insert a new call, stamped with this handle's node ([`Store::with_node_id`]). Fails
    /// with `NotFound` if the tenant does not exist.
    pub async fn insert_call(&self, call: &NewCall) -> Result<(), StoreError> {
        let event = OutboxEvent::new(
            &call.tenant_id,
            WebhookEventType::CallStarted,
            serde_json::json!({
                "call_id": call.id,
                "direction": call.direction.as_str(),
                "caller": call.caller,
                "dialled": call.dialled,
                "status": call.status.as_str(),
                "started_at_ms": call.started_at_ms,
            }),
            call.started_at_ms,
        );
        let missing_tenant = StoreError::missing_parent("insert_call", "tenant", &call.tenant_id);
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(StoreError::query("insert_call"))?;
            let inserted = sqlx::query(
                "INSERT INTO calls (id, tenant_id, external_id, direction, caller, dialled, status,
                                    started_at, plugin_name, plugin_version, node_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&call.id)
            .bind(&call.tenant_id)
            .bind(call.external_id.as_deref())
            .bind(call.direction.as_str())
            .bind(&call.caller)
            .bind(&call.dialled)
            .bind(call.status.as_str())
            .bind(call.started_at_ms)
            .bind(call.plugin_name.as_deref())
            .bind(call.plugin_version.as_deref())
            .bind(self.node_id())
            .execute(&mut *tx)
            .await;
            if let Err(error) = inserted {
                return Err(missing_tenant(error));
            }
            enqueue_webhook_deliveries!(&mut *tx, event)
                .await
                .map_err(StoreError::query("insert_call"))?;
            tx.commit().await.map_err(StoreError::query("insert_call"))
        })
    }

    /// Record that the call was answered at `at_ms`; a `ringing` call becomes
    /// `in_progress` (a call that already ended keeps its final status).
    pub async fn mark_answered(
        &self,
        tenant_id: &str,
        call_id: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let changed = with_pool!(self, pool => {
            sqlx::query(
                "UPDATE calls SET answered_at = $3,
                     status = CASE WHEN status = 'ringing' THEN 'in_progress' ELSE status END
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(call_id)
            .bind(at_ms)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(StoreError::query("mark_answered"))?;
        require_call(changed, call_id)
    }

    /// Record which plugin (name and version) handles the call.
    pub async fn set_call_plugin(
        &self,
        tenant_id: &str,
        call_id: &str,
        plugin_name: &str,
        plugin_version: &str,
    ) -> Result<(), StoreError> {
        let changed = with_pool!(self, pool => {
            sqlx::query(
                "UPDATE calls SET plugin_name = $3, plugin_version = $4
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(call_id)
            .bind(plugin_name)
            .bind(plugin_version)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(StoreError::query("set_call_plugin"))?;
        require_call(changed, call_id)
    }

    /// Append one received DTMF digit (`0-9`, `*`, `#`, `A-D`) to the call's digit string.
    pub async fn append_dtmf(
        &self,
        tenant_id: &str,
        call_id: &str,
        digit: char,
    ) -> Result<(), StoreError> {
        let changed = with_pool!(self, pool => {
            sqlx::query("UPDATE calls SET dtmf = dtmf || $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(call_id)
                .bind(digit.to_string())
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(StoreError::query("append_dtmf"))?;
        require_call(changed, call_id)
    }

    /// Write how the call ended.
    pub async fn finish_call(
        &self,
        tenant_id: &str,
        call_id: &str,
        outcome: &CallOutcome,
    ) -> Result<(), StoreError> {
        let media_stats = outcome.media_stats.as_ref().map(|v| v.to_string());
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(StoreError::query("finish_call"))?;
            let ended = sqlx::query_as::<_, EndedCallRow>(
                "UPDATE calls SET status = $3, ended_at = $4, end_reason = $5, media_stats = $6,
                                  error = $7
                 WHERE tenant_id = $1 AND id = $2
                 RETURNING tenant_id, id, direction, caller, dialled, status, started_at,
                           answered_at, ended_at, end_reason, cost_inr_micros",
            )
            .bind(tenant_id)
            .bind(call_id)
            .bind(outcome.status.as_str())
            .bind(outcome.ended_at_ms)
            .bind(&outcome.end_reason)
            .bind(media_stats)
            .bind(outcome.error.as_deref())
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::query("finish_call"))?;
            let Some(ended) = ended else {
                return require_call(0, call_id);
            };
            let event = ended.event();
            enqueue_webhook_deliveries!(&mut *tx, event)
                .await
                .map_err(StoreError::query("finish_call"))?;
            tx.commit().await.map_err(StoreError::query("finish_call"))
        })
    }

    /// Calls visible to `scope`, narrowed by `filter`, newest first (by `started_at`, then
    /// id). The first page of [`Store::list_call_page`].
    pub async fn list_calls(
        &self,
        scope: &Scope,
        filter: &CallFilter,
    ) -> Result<Vec<CallRecord>, StoreError> {
        Ok(self.list_call_page(scope, filter).await?.items)
    }

    /// One page of the calls visible to `scope`, narrowed by `filter`, newest first (by
    /// `started_at`, then id), and the cursor of the next page. A tenant scope always limits
    /// the list to its own calls, whatever `filter.tenant` says.
    pub async fn list_call_page(
        &self,
        scope: &Scope,
        filter: &CallFilter,
    ) -> Result<Page<CallRecord>, StoreError> {
        let empty = Page {
            items: Vec::new(),
            next_cursor: None,
        };
        let Some(tenant) = scoped_tenant(scope, filter.tenant.as_deref()) else {
            return Ok(empty);
        };
        let mut conditions = Conditions::default();
        if let Some(tenant_id) = tenant {
            conditions.text_equals("tenant_id", tenant_id);
        }
        if let Some(from_ms) = filter.from_ms {
            conditions.at_least("started_at", from_ms);
        }
        if let Some(to_ms) = filter.to_ms {
            conditions.below("started_at", to_ms);
        }
        if let Some(status) = filter.status {
            conditions.text_equals("status", status.as_str());
        }
        if let Some(dialled) = &filter.dialled {
            conditions.text_equals("dialled", dialled);
        }
        if let Some(caller) = &filter.caller {
            conditions.text_equals("caller", caller);
        }
        if let Some(cursor) = &filter.cursor {
            conditions.after_cursor("started_at", "id", cursor);
        }
        let limit = filter.effective_limit() as usize;
        let limit_at = conditions.extra(Bind::Int(limit as i64 + 1));
        let sql = format!(
            "SELECT id, tenant_id, external_id, direction, caller, dialled, status,
                    started_at, answered_at, ended_at, end_reason, dtmf, plugin_name,
                    plugin_version, media_stats, error, cost_inr_micros
             FROM calls{}
             ORDER BY started_at DESC, id DESC LIMIT {limit_at}",
            conditions.where_sql()
        );
        let rows = with_pool!(self, pool => {
            bind_all!(sqlx::query_as::<_, CallRow>(sqlx::AssertSqlSafe(sql)), conditions)
                .fetch_all(pool)
                .await
        })
        .map_err(StoreError::query("list_calls"))?;
        let calls = rows
            .into_iter()
            .map(CallRecord::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page_of(calls, limit, |call| Cursor {
            at_ms: call.started_at_ms,
            id: call.id.clone(),
        }))
    }

    /// One call with its transcript, extractions, events, turns, cost, latency, summary and
    /// sentiment, if `scope` may see it.
    pub async fn get_call(
        &self,
        scope: &Scope,
        call_id: &str,
    ) -> Result<Option<CallDetail>, StoreError> {
        let row = match scope.tenant_id() {
            Some(tenant_id) => {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, CallRow>(
                        "SELECT id, tenant_id, external_id, direction, caller, dialled, status,
                                started_at, answered_at, ended_at, end_reason, dtmf, plugin_name,
                                plugin_version, media_stats, error, cost_inr_micros
                         FROM calls WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind(tenant_id)
                    .bind(call_id)
                    .fetch_optional(pool)
                    .await
                })
            }
            None => {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, CallRow>(
                        "SELECT id, tenant_id, external_id, direction, caller, dialled, status,
                                started_at, answered_at, ended_at, end_reason, dtmf, plugin_name,
                                plugin_version, media_stats, error, cost_inr_micros
                         FROM calls WHERE id = $1",
                    )
                    .bind(call_id)
                    .fetch_optional(pool)
                    .await
                })
            }
        }
        .map_err(StoreError::query("get_call"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let call = CallRecord::try_from(row)?;
        let transcript = self.transcript_for_call(&call.tenant_id, &call.id).await?;
        let extractions = self.extractions_for_call(&call.tenant_id, &call.id).await?;
        let events = self.events_for_call(&call.tenant_id, &call.id).await?;
        let turns = self.turns_for_call(&call.tenant_id, &call.id).await?;
        let report = self.report_json_for_call(&call.tenant_id, &call.id).await?;
        let (summary, sentiment) = self.summary_for_call(&call.tenant_id, &call.id).await?;
        let recording = self
            .recording_for_call(&Scope::Tenant(call.tenant_id.clone()), &call.id)
            .await?;
        Ok(Some(CallDetail {
            call,
            transcript,
            extractions,
            events,
            turns,
            cost: report.cost,
            latency: report.latency,
            summary,
            sentiment,
            recording,
        }))
    }

    /// Crash recovery, run once at start-up before taking calls: every call of this node
    /// ([`Store::with_node_id`]) still `ringing` or `in_progress` belongs to a previous run
    /// that died, so mark it `failed` with end reason `server_restart` at `now_ms`. Calls of
    /// other nodes sharing the database are left alone; calls stored without a node (before
    /// nodes existed, or by a handle without one) count as this node's. Each gets its
    /// `call.ended` webhook event in the same transaction.
    /// Not tenant-scoped (an operator maintenance task). Returns how many calls changed.
    pub async fn mark_unfinished_calls_failed(&self, now_ms: i64) -> Result<u64, StoreError> {
        let count = with_pool!(self, pool => {
            let mut tx = pool
                .begin()
                .await
                .map_err(StoreError::query("mark_unfinished_calls_failed"))?;
            let ended = sqlx::query_as::<_, EndedCallRow>(
                "UPDATE calls SET status = 'failed', ended_at = $1, end_reason = $2,
                     error = COALESCE(error, 'the server stopped before the call ended')
                 WHERE status IN ('ringing', 'in_progress')
                   AND (node_id IS NULL OR node_id = $3)
                 RETURNING tenant_id, id, direction, caller, dialled, status, started_at,
                           answered_at, ended_at, end_reason, cost_inr_micros",
            )
            .bind(now_ms)
            .bind(SERVER_RESTART_END_REASON)
            .bind(self.node_id())
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::query("mark_unfinished_calls_failed"))?;
            for call in &ended {
                let event = call.event();
                enqueue_webhook_deliveries!(&mut *tx, event)
                    .await
                    .map_err(StoreError::query("mark_unfinished_calls_failed"))?;
            }
            tx.commit()
                .await
                .map_err(StoreError::query("mark_unfinished_calls_failed"))?;
            ended.len() as u64
        });
        if count > 0 {
            tracing::warn!(
                count,
                "marked calls left unfinished by a previous run as failed"
            );
        }
        Ok(count)
    }
}

/// A call as it ended, read back by the UPDATE that ended it: what `call.ended` reports.
#[derive(sqlx::FromRow)]
pub(crate) struct EndedCallRow {
    tenant_id: String,
    id: String,
    direction: String,
    caller: String,
    dialled: String,
    status: String,
    started_at: i64,
    answered_at: Option<i64>,
    ended_at: Option<i64>,
    end_reason: Option<String>,
    cost_inr_micros: Option<i64>,
}

impl EndedCallRow {
    /// The `call.ended` event of this call.
    pub(crate) fn event(&self) -> OutboxEvent {
        let ended_at = self.ended_at.unwrap_or(self.started_at);
        let talked_ms = self
            .answered_at
            .map_or(0, |answered| (ended_at - answered).max(0));
        let cost_inr = self
            .cost_inr_micros
            .map(|micros| micros as f64 / 1_000_000.0);
        OutboxEvent::new(
            &self.tenant_id,
            WebhookEventType::CallEnded,
            serde_json::json!({
                "call_id": self.id,
                "direction": self.direction,
                "caller": self.caller,
                "dialled": self.dialled,
                "status": self.status,
                "end_reason": self.end_reason,
                "started_at_ms": self.started_at,
                "answered_at_ms": self.answered_at,
                "ended_at_ms": ended_at,
                "duration_ms": talked_ms,
                "cost_inr": cost_inr,
            }),
            ended_at,
        )
    }
}

/// The tenant a list is limited to, given who asks (`scope`) and which tenant the filter
/// names: `Some(Some(id))` one tenant, `Some(None)` every tenant (the operator, unfiltered),
/// `None` nothing at all (a tenant asking for another tenant's rows).
pub(crate) fn scoped_tenant<'a>(
    scope: &'a Scope,
    asked: Option<&'a str>,
) -> Option<Option<&'a str>> {
    match (scope.tenant_id(), asked) {
        (Some(own), Some(asked)) if own != asked => None,
        (Some(own), _) => Some(Some(own)),
        (None, asked) => Some(asked),
    }
}

/// `Ok` if an UPDATE touched the call, else `NotFound`.
pub(crate) fn require_call(rows_affected: u64, call_id: &str) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::NotFound {
            what: "call",
            id: call_id.to_owned(),
        })
    } else {
        Ok(())
    }
}
