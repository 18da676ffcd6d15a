//! Call history: a summary and the caller's sentiment per call, and a caller's recent calls
//! with what was extracted from them, so an agent can greet a returning caller with context.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::calls::require_call;
use crate::webhooks::enqueue_webhook_deliveries;
use crate::{Scope, Store, StoreError};

/// Largest number of calls [`Store::recent_calls`] returns at once.
pub const MAX_RECENT_CALLS: u32 = 20;

/// How the caller came across during a call, as judged when it was summarised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sentiment {
    /// Satisfied, friendly.
    Positive,
    /// Neither satisfied nor unhappy.
    Neutral,
    /// Unhappy, frustrated, angry.
    Negative,
}

impl Sentiment {
    /// Every sentiment, from best to worst.
    pub const ALL: [Sentiment; 3] = [Sentiment::Positive, Sentiment::Neutral, Sentiment::Negative];

    /// The value stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Sentiment::Positive => "positive",
            Sentiment::Neutral => "neutral",
            Sentiment::Negative => "negative",
        }
    }
}

impl fmt::Display for Sentiment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Sentiment {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        Sentiment::ALL
            .into_iter()
            .find(|sentiment| sentiment.as_str() == s)
            .ok_or_else(|| StoreError::InvalidValue {
                column: "calls.sentiment",
                value: s.to_owned(),
            })
    }
}

/// One of a caller's earlier calls, as returned by [`Store::recent_calls`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PastCall {
    /// Call id (UUIDv7).
    pub call_id: String,
    /// When the INVITE arrived (unix ms).
    pub started_at_unix_ms: i64,
    /// Talk time, from answer to end, rounded to the nearest second; `None` if the call was
    /// never answered or has not ended.
    pub duration_secs: Option<i64>,
    /// The call's summary, if one was written.
    pub summary: Option<String>,
    /// What plugins extracted during the call, in the order it was submitted.
    pub extractions: Vec<PastExtraction>,
}

/// Data a plugin extracted during a [`PastCall`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PastExtraction {
    /// The schema the data was validated against.
    pub schema_id: String,
    /// The data as stored: a JSON document, as text.
    pub data_json: String,
}

/// One row of the recent-calls query: a call joined with one of its extractions (or none).
#[derive(sqlx::FromRow)]
struct PastCallRow {
    id: String,
    started_at: i64,
    answered_at: Option<i64>,
    ended_at: Option<i64>,
    summary: Option<String>,
    schema_id: Option<String>,
    data: Option<String>,
}

/// Talk time in whole seconds (rounded), if the call was answered and has ended.
fn duration_secs(answered_at_ms: Option<i64>, ended_at_ms: Option<i64>) -> Option<i64> {
    let talk_ms = ended_at_ms?.saturating_sub(answered_at_ms?).max(0);
    Some(talk_ms.saturating_add(500) / 1000)
}

/// Decode a stored sentiment column.
fn parse_sentiment(text: Option<String>) -> Result<Option<Sentiment>, StoreError> {
    text.map(|text| text.parse()).transpose()
}

impl Store {
    /// Write the summary and sentiment of the tenant's call, replacing any earlier ones
    /// (`None` clears the sentiment). Fails with `NotFound` if the tenant has no such call.
    pub async fn set_call_summary(
        &self,
        tenant_id: &str,
        call_id: &str,
        summary: &str,
        sentiment: Option<Sentiment>,
    ) -> Result<(), StoreError> {
        let sentiment = sentiment.map(Sentiment::as_str);
        let event = self
            .analyzed_event(
                tenant_id,
                call_id,
                Some(summary),
                sentiment,
                crate::now_ms(),
            )
            .await?;
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(StoreError::query("set_call_summary"))?;
            let changed = sqlx::query(
                "UPDATE calls SET summary = $3, sentiment = $4 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(call_id)
            .bind(summary)
            .bind(sentiment)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("set_call_summary"))?
            .rows_affected();
            require_call(changed, call_id)?;
            enqueue_webhook_deliveries!(&mut *tx, event)
                .await
                .map_err(StoreError::query("set_call_summary"))?;
            tx.commit().await.map_err(StoreError::query("set_call_summary"))
        })
    }

    /// The summary and sentiment of a call `scope` may see; `None` if there is no such call
    /// (for this scope) or it has no summary yet.
    pub async fn call_summary(
        &self,
        scope: &Scope,
        call_id: &str,
    ) -> Result<Option<(String, Option<Sentiment>)>, StoreError> {
        let row: Option<(Option<String>, Option<String>)> = match scope.tenant_id() {
            Some(tenant_id) => {
                with_pool!(self, pool => {
                    sqlx::query_as(
                        "SELECT summary, sentiment FROM calls WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind(tenant_id)
                    .bind(call_id)
                    .fetch_optional(pool)
                    .await
                })
            }
            None => {
                with_pool!(self, pool => {
                    sqlx::query_as("SELECT summary, sentiment FROM calls WHERE id = $1")
                        .bind(call_id)
                        .fetch_optional(pool)
                        .await
                })
            }
        }
        .map_err(StoreError::query("call_summary"))?;
        match row {
            Some((Some(summary), sentiment)) => Ok(Some((summary, parse_sentiment(sentiment)?))),
            _ => Ok(None),
        }
    }

    /// The summary and sentiment of the tenant's call, each `None` until written (or if the
    /// tenant has no such call). For the call detail.
    pub(crate) async fn summary_for_call(
        &self,
        tenant_id: &str,
        call_id: &str,
    ) -> Result<(Option<String>, Option<Sentiment>), StoreError> {
        let row: Option<(Option<String>, Option<String>)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT summary, sentiment FROM calls WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(call_id)
                .fetch_optional(pool)
                .await
        })
        .map_err(StoreError::query("summary_for_call"))?;
        let (summary, sentiment) = row.unwrap_or((None, None));
        Ok((summary, parse_sentiment(sentiment)?))
    }

    /// The tenant's most recent calls from the number `caller`, newest first, leaving out
    /// `exclude_call_id` (the call in progress), each with its summary and extractions (in the
    /// order they were submitted). At most `limit` calls, and never more than
    /// [`MAX_RECENT_CALLS`]; `limit` 0 returns none. Every call from that number counts,
    /// answered or not.
    pub async fn recent_calls(
        &self,
        tenant_id: &str,
        caller: &str,
        exclude_call_id: &str,
        limit: u32,
    ) -> Result<Vec<PastCall>, StoreError> {
        let limit = limit.min(MAX_RECENT_CALLS);
        if limit == 0 {
            return Ok(Vec::new());
        }
        // One statement, so the calls and their extractions come from the same snapshot.
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, PastCallRow>(
                "SELECT c.id, c.started_at, c.answered_at, c.ended_at, c.summary,
                        e.schema_id, e.data
                 FROM (SELECT tenant_id, id, started_at, answered_at, ended_at, summary
                       FROM calls
                       WHERE tenant_id = $1 AND caller = $2 AND id <> $3
                       ORDER BY started_at DESC, id DESC
                       LIMIT $4) AS c
                 LEFT JOIN extractions AS e ON e.tenant_id = c.tenant_id AND e.call_id = c.id
                 ORDER BY c.started_at DESC, c.id DESC, e.created_at, e.id",
            )
            .bind(tenant_id)
            .bind(caller)
            .bind(exclude_call_id)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })
        .map_err(StoreError::query("recent_calls"))?;

        let mut calls: Vec<PastCall> = Vec::new();
        for row in rows {
            if calls.last().is_none_or(|call| call.call_id != row.id) {
                calls.push(PastCall {
                    call_id: row.id,
                    started_at_unix_ms: row.started_at,
                    duration_secs: duration_secs(row.answered_at, row.ended_at),
                    summary: row.summary,
                    extractions: Vec::new(),
                });
            }
            if let (Some(schema_id), Some(data_json), Some(call)) =
                (row.schema_id, row.data, calls.last_mut())
            {
                call.extractions.push(PastExtraction {
                    schema_id,
                    data_json,
                });
            }
        }
        Ok(calls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentiment_text_round_trips() {
        for sentiment in Sentiment::ALL {
            assert_eq!(sentiment.as_str().parse::<Sentiment>().unwrap(), sentiment);
            assert_eq!(sentiment.to_string(), sentiment.as_str());
            assert_eq!(
                serde_json::to_value(sentiment).unwrap(),
                serde_json::json!(sentiment.as_str())
            );
        }
        let err = "angry".parse::<Sentiment>().unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidValue { column: "calls.sentiment", ref value } if value == "angry"),
            "{err}"
        );
    }

    #[test]
    fn duration_is_talk_time_rounded() {
        assert_eq!(duration_secs(Some(1_000), Some(62_499)), Some(61));
        assert_eq!(duration_secs(Some(1_000), Some(62_500)), Some(62));
        assert_eq!(duration_secs(None, Some(5_000)), None, "never answered");
        assert_eq!(duration_secs(Some(1_000), None), None, "not ended");
        assert_eq!(
            duration_secs(Some(5_000), Some(1_000)),
            Some(0),
            "clock skew"
        );
    }
}
