//! What is recorded during a call: transcript lines, extractions and events.
//! Each row carries the call's `tenant_id`; the schema refuses a row whose
//! tenant does not own the call.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Store, StoreError, new_id, now_ms};

/// Who spoke a transcript line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    /// The AI agent (text it spoke).
    Agent,
    /// The person on the phone (speech-to-text result).
    Caller,
}

impl Speaker {
    /// The value stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Speaker::Agent => "agent",
            Speaker::Caller => "caller",
        }
    }
}

impl fmt::Display for Speaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Speaker {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "agent" => Ok(Speaker::Agent),
            "caller" => Ok(Speaker::Caller),
            other => Err(StoreError::InvalidValue {
                column: "transcript_lines.speaker",
                value: other.to_owned(),
            }),
        }
    }
}

/// A transcript line to add.
#[derive(Clone, Debug, PartialEq)]
pub struct NewTranscriptLine {
    /// Who spoke.
    pub speaker: Speaker,
    /// What was said.
    pub text: String,
    /// Start, in ms since the call was answered.
    pub start_ms: i64,
    /// End, in ms since the call was answered.
    pub end_ms: i64,
    /// Recogniser confidence in `0.0..=1.0` (None for agent lines).
    pub confidence: Option<f64>,
}

/// A stored transcript line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TranscriptLine {
    /// Row id (UUIDv7).
    pub id: String,
    /// The call it belongs to.
    pub call_id: String,
    /// Who spoke.
    pub speaker: Speaker,
    /// What was said.
    pub text: String,
    /// Start, in ms since the call was answered.
    pub start_ms: i64,
    /// End, in ms since the call was answered.
    pub end_ms: i64,
    /// Recogniser confidence.
    pub confidence: Option<f64>,
}

/// Structured data a plugin extracted from a call.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Extraction {
    /// Row id (UUIDv7).
    pub id: String,
    /// The call it belongs to.
    pub call_id: String,
    /// The schema the data was validated against (declared by the plugin).
    pub schema_id: String,
    /// The data.
    pub data: serde_json::Value,
    /// When it was stored (unix ms).
    pub created_at_ms: i64,
}

/// Something that happened during a call: a plugin log line, a DTMF digit, a plugin failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct CallEvent {
    /// Row id (UUIDv7).
    pub id: String,
    /// The call it belongs to.
    pub call_id: String,
    /// When it happened (unix ms).
    pub at_ms: i64,
    /// What kind of event, e.g. `plugin_log`, `dtmf`, `plugin_failure`.
    pub kind: String,
    /// Free text (or JSON) describing it.
    pub detail: String,
}

#[derive(sqlx::FromRow)]
struct TranscriptRow {
    id: String,
    call_id: String,
    speaker: String,
    text: String,
    start_ms: i64,
    end_ms: i64,
    confidence: Option<f64>,
}

impl TryFrom<TranscriptRow> for TranscriptLine {
    type Error = StoreError;
    fn try_from(row: TranscriptRow) -> Result<Self, StoreError> {
        Ok(TranscriptLine {
            id: row.id,
            call_id: row.call_id,
            speaker: row.speaker.parse()?,
            text: row.text,
            start_ms: row.start_ms,
            end_ms: row.end_ms,
            confidence: row.confidence,
        })
    }
}

/// An `extractions` row as read (`data` still text).
#[derive(sqlx::FromRow)]
pub(crate) struct ExtractionRow {
    id: String,
    call_id: String,
    schema_id: String,
    data: String,
    created_at: i64,
}

impl TryFrom<ExtractionRow> for Extraction {
    type Error = StoreError;
    fn try_from(row: ExtractionRow) -> Result<Self, StoreError> {
        let data = serde_json::from_str(&row.data).map_err(|_| StoreError::InvalidValue {
            column: "extractions.data",
            value: row.data.clone(),
        })?;
        Ok(Extraction {
            id: row.id,
            call_id: row.call_id,
            schema_id: row.schema_id,
            data,
            created_at_ms: row.created_at,
        })
    }
}

impl Store {
    /// Add a transcript line to the tenant's call; returns the new line's id.
    /// Fails with `NotFound` if the tenant has no such call.
    pub async fn add_transcript_line(
        &self,
        tenant_id: &str,
        call_id: &str,
        line: &NewTranscriptLine,
    ) -> Result<String, StoreError> {
        let id = new_id();
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO transcript_lines
                     (id, tenant_id, call_id, speaker, text, start_ms, end_ms, confidence)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&id)
            .bind(tenant_id)
            .bind(call_id)
            .bind(line.speaker.as_str())
            .bind(&line.text)
            .bind(line.start_ms)
            .bind(line.end_ms)
            .bind(line.confidence)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(StoreError::missing_parent(
            "add_transcript_line",
            "call",
            call_id,
        ))?;
        Ok(id)
    }

    /// Store data a plugin extracted (already validated against `schema_id`),
    /// stamped with the current time; returns the new row's id.
    /// Fails with `NotFound` if the tenant has no such call.
    pub async fn add_extraction(
        &self,
        tenant_id: &str,
        call_id: &str,
        schema_id: &str,
        data: &serde_json::Value,
    ) -> Result<String, StoreError> {
        let id = new_id();
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO extractions (id, tenant_id, call_id, schema_id, data, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&id)
            .bind(tenant_id)
            .bind(call_id)
            .bind(schema_id)
            .bind(data.to_string())
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(StoreError::missing_parent(
            "add_extraction",
            "call",
            call_id,
        ))?;
        Ok(id)
    }

    /// Record an event of `kind` at `at_ms` on the tenant's call; returns its id.
    /// Fails with `NotFound` if the tenant has no such call.
    pub async fn add_call_event(
        &self,
        tenant_id: &str,
        call_id: &str,
        at_ms: i64,
        kind: &str,
        detail: &str,
    ) -> Result<String, StoreError> {
        let id = new_id();
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO call_events (id, tenant_id, call_id, at_ms, kind, detail)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&id)
            .bind(tenant_id)
            .bind(call_id)
            .bind(at_ms)
            .bind(kind)
            .bind(detail)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(StoreError::missing_parent(
            "add_call_event",
            "call",
            call_id,
        ))?;
        Ok(id)
    }

    pub(crate) async fn transcript_for_call(
        &self,
        tenant_id: &str,
        call_id: &str,
    ) -> Result<Vec<TranscriptLine>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_as::<_, TranscriptRow>(
                "SELECT id, call_id, speaker, text, start_ms, end_ms, confidence
                 FROM transcript_lines WHERE tenant_id = $1 AND call_id = $2
                 ORDER BY start_ms, id",
            )
            .bind(tenant_id)
            .bind(call_id)
            .fetch_all(pool)
            .await
        })
        .map_err(StoreError::query("transcript_for_call"))?
        .into_iter()
        .map(TranscriptLine::try_from)
        .collect()
    }

    pub(crate) async fn extractions_for_call(
        &self,
        tenant_id: &str,
        call_id: &str,
    ) -> Result<Vec<Extraction>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_as::<_, ExtractionRow>(
                "SELECT id, call_id, schema_id, data, created_at
                 FROM extractions WHERE tenant_id = $1 AND call_id = $2
                 ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .bind(call_id)
            .fetch_all(pool)
            .await
        })
        .map_err(StoreError::query("extractions_for_call"))?
        .into_iter()
        .map(Extraction::try_from)
        .collect()
    }

    pub(crate) async fn events_for_call(
        &self,
        tenant_id: &str,
        call_id: &str,
    ) -> Result<Vec<CallEvent>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_as::<_, CallEvent>(
                "SELECT id, call_id, at_ms, kind, detail
                 FROM call_events WHERE tenant_id = $1 AND call_id = $2
                 ORDER BY at_ms, id",
            )
            .bind(tenant_id)
            .bind(call_id)
            .fetch_all(pool)
            .await
        })
        .map_err(StoreError::query("events_for_call"))
    }
}
