//! What is written about a call when it ends, beside its outcome: per-turn latency rows and the
//! cost ledger with a latency summary. Written in one transaction with the final status, so a
//! finished call never lacks its figures.

use serde::{Deserialize, Serialize};

use super::{CallOutcome, EndedCallRow, require_call};
use crate::webhooks::enqueue_webhook_deliveries;
use crate::{Store, StoreError};

/// One conversational turn: from the end of the caller's speech to the first RTP packet of the
/// agent's reply. Durations are milliseconds; `None` when the stage never happened.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallTurn {
    /// 0-based, in the order the caller's speech ended.
    pub index: i64,
    /// Media time (ms since answer) at which the caller's speech ended.
    pub speech_end_ms: i64,
    /// The caller's final transcript (possibly truncated); `None` without speech-to-text.
    pub caller_text: Option<String>,
    /// End of speech → final transcript ready.
    pub transcript_ms: Option<i64>,
    /// Transcript (or end of speech without speech-to-text) → the plugin's first `say`.
    pub plugin_ms: Option<i64>,
    /// LLM request (or transcript) → first LLM token.
    pub llm_first_token_ms: Option<i64>,
    /// The plugin's first `say` → its first synthesized audio.
    pub tts_first_audio_ms: Option<i64>,
    /// First synthesized audio → first RTP packet of the reply.
    pub first_rtp_ms: Option<i64>,
    /// End of speech → first RTP packet of the reply.
    pub total_ms: Option<i64>,
    /// `total_ms` minus engine compute (STT processing, LLM time to first token, TTS synthesis):
    /// the time vaani itself added.
    pub server_added_ms: Option<i64>,
    /// Time the speech-to-text engine spent on the turn's utterance.
    pub stt_processing_ms: Option<i64>,
    /// Time the text-to-speech engine spent on the reply's first audio.
    pub tts_synthesis_ms: Option<i64>,
    /// The caller spoke again before the reply reached the wire (the turn was closed).
    pub superseded: bool,
}

/// Written with the call's outcome by [`Store::finish_call_with_report`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallReport {
    /// The call's turns, in order.
    pub turns: Vec<CallTurn>,
    /// The priced cost ledger's total, in micro-rupees (1 INR = 1 000 000).
    pub cost_inr_micros: i64,
    /// The whole cost ledger (quantities, priced lines, unpriced items).
    pub cost: serde_json::Value,
    /// Latency summary over the turns (count, percentiles).
    pub latency: serde_json::Value,
}

#[derive(sqlx::FromRow)]
struct TurnRow {
    turn_index: i64,
    speech_end_ms: i64,
    caller_text: Option<String>,
    transcript_ms: Option<i64>,
    plugin_ms: Option<i64>,
    llm_first_token_ms: Option<i64>,
    tts_first_audio_ms: Option<i64>,
    first_rtp_ms: Option<i64>,
    total_ms: Option<i64>,
    server_added_ms: Option<i64>,
    stt_processing_ms: Option<i64>,
    tts_synthesis_ms: Option<i64>,
    superseded: i64,
}

impl From<TurnRow> for CallTurn {
    fn from(row: TurnRow) -> Self {
        CallTurn {
            index: row.turn_index,
            speech_end_ms: row.speech_end_ms,
            caller_text: row.caller_text,
            transcript_ms: row.transcript_ms,
            plugin_ms: row.plugin_ms,
            llm_first_token_ms: row.llm_first_token_ms,
            tts_first_audio_ms: row.tts_first_audio_ms,
            first_rtp_ms: row.first_rtp_ms,
            total_ms: row.total_ms,
            server_added_ms: row.server_added_ms,
            stt_processing_ms: row.stt_processing_ms,
            tts_synthesis_ms: row.tts_synthesis_ms,
            superseded: row.superseded != 0,
        }
    }
}

/// The stored JSON columns of a call's report.
pub(crate) struct ReportJson {
    pub(crate) cost: Option<serde_json::Value>,
    pub(crate) latency: Option<serde_json::Value>,
}

fn parse_json(
    column: &'static str,
    text: Option<String>,
) -> Result<Option<serde_json::Value>, StoreError> {
    text.map(|text| {
        serde_json::from_str(&text).map_err(|_| StoreError::InvalidValue {
            column,
            value: text,
        })
    })
    .transpose()
}

impl Store {
    /// Write how the call ended together with its turns, cost ledger and latency summary, in
    /// one transaction: either all of it is stored or none. Fails with `NotFound` if the tenant
    /// has no such call; a second report for the same call fails (turn indexes are unique).
    pub async fn finish_call_with_report(
        &self,
        tenant_id: &str,
        call_id: &str,
        outcome: &CallOutcome,
        report: &CallReport,
    ) -> Result<(), StoreError> {
        let media_stats = outcome.media_stats.as_ref().map(|v| v.to_string());
        with_pool!(self, pool => {
            let mut tx = pool
                .begin()
                .await
                .map_err(StoreError::query("finish_call_with_report"))?;
            let ended = sqlx::query_as::<_, EndedCallRow>(
                "UPDATE calls SET status = $3, ended_at = $4, end_reason = $5, media_stats = $6,
                                  error = $7, cost_inr_micros = $8, cost_json = $9,
                                  latency_json = $10
                 WHERE tenant_id = $1 AND id = $2
                 RETURNING tenant_id, id, direction, caller, dialled, status, started_at,
                           answered_at, ended_at, end_reason, cost_inr_micros",
            )
            .bind(tenant_id)
            .bind(call_id)
            .bind(outcome.status.as_str())
            .bind(outcome.ended_at_ms)
            .bind(&outcome.end_reason)
            .bind(media_stats.as_deref())
            .bind(outcome.error.as_deref())
            .bind(report.cost_inr_micros)
            .bind(report.cost.to_string())
            .bind(report.latency.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::query("finish_call_with_report"))?;
            // Dropping `tx` on the way out rolls back.
            let Some(ended) = ended else {
                return require_call(0, call_id);
            };
            let event = ended.event();
            enqueue_webhook_deliveries!(&mut *tx, event)
                .await
                .map_err(StoreError::query("finish_call_with_report"))?;
            for turn in &report.turns {
                sqlx::query(
                    "INSERT INTO call_turns
                         (tenant_id, call_id, turn_index, speech_end_ms, caller_text,
                          transcript_ms, plugin_ms, llm_first_token_ms, tts_first_audio_ms,
                          first_rtp_ms, total_ms, server_added_ms, stt_processing_ms,
                          tts_synthesis_ms, superseded)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                )
                .bind(tenant_id)
                .bind(call_id)
                .bind(turn.index)
                .bind(turn.speech_end_ms)
                .bind(turn.caller_text.as_deref())
                .bind(turn.transcript_ms)
                .bind(turn.plugin_ms)
                .bind(turn.llm_first_token_ms)
                .bind(turn.tts_first_audio_ms)
                .bind(turn.first_rtp_ms)
                .bind(turn.total_ms)
                .bind(turn.server_added_ms)
                .bind(turn.stt_processing_ms)
                .bind(turn.tts_synthesis_ms)
                .bind(i64::from(turn.superseded))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::query("finish_call_with_report"))?;
            }
            tx.commit()
                .await
                .map_err(StoreError::query("finish_call_with_report"))
        })
    }

    /// The tenant's call's turns, in order (empty if it has none or is not the tenant's).
    pub async fn turns_for_call(
        &self,
        tenant_id: &str,
        call_id: &str,
    ) -> Result<Vec<CallTurn>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, TurnRow>(
                "SELECT turn_index, speech_end_ms, caller_text, transcript_ms, plugin_ms,
                        llm_first_token_ms, tts_first_audio_ms, first_rtp_ms, total_ms,
                        server_added_ms, stt_processing_ms, tts_synthesis_ms, superseded
                 FROM call_turns WHERE tenant_id = $1 AND call_id = $2
                 ORDER BY turn_index",
            )
            .bind(tenant_id)
            .bind(call_id)
            .fetch_all(pool)
            .await
        })
        .map_err(StoreError::query("turns_for_call"))?;
        Ok(rows.into_iter().map(CallTurn::from).collect())
    }

    /// The cost ledger and latency summary JSON of the tenant's call (`None` each until the
    /// call has finished with a report).
    pub(crate) async fn report_json_for_call(
        &self,
        tenant_id: &str,
        call_id: &str,
    ) -> Result<ReportJson, StoreError> {
        let row: Option<(Option<String>, Option<String>)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT cost_json, latency_json FROM calls WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(call_id)
            .fetch_optional(pool)
            .await
        })
        .map_err(StoreError::query("report_json_for_call"))?;
        let (cost, latency) = row.unwrap_or((None, None));
        Ok(ReportJson {
            cost: parse_json("calls.cost_json", cost)?,
            latency: parse_json("calls.latency_json", latency)?,
        })
    }
}
