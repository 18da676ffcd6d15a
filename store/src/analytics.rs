//! Analytics over a period: how many calls, how many completed, how long the answered ones
//! lasted, what was extracted and what it cost. Aggregates are CAST to BIGINT or DOUBLE
//! PRECISION so they decode the same on SQLite and PostgreSQL (where SUM of a BIGINT is
//! NUMERIC).

use std::collections::BTreeMap;

use crate::calls::scoped_tenant;
use crate::conditions::Conditions;
use crate::{Scope, Store, StoreError};

/// Which calls [`Store::analytics`] adds up: those that started in `[from_ms, to_ms)`;
/// extractions count when stored in that period.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnalyticsFilter {
    /// Only this tenant (an operator narrowing; for a tenant scope, a different tenant here
    /// gives zeros).
    pub tenant: Option<String>,
    /// Start of the period (unix ms, inclusive); unbounded when `None`.
    pub from_ms: Option<i64>,
    /// End of the period (unix ms, exclusive); unbounded when `None`.
    pub to_ms: Option<i64>,
}

/// The figures for a period, from [`Store::analytics`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Analytics {
    /// Calls that started in the period, whatever their status.
    pub calls: i64,
    /// Of those, calls that ended normally after being answered (`completed`).
    pub completed: i64,
    /// Of those, calls that were answered.
    pub answered: i64,
    /// Mean talk time (answer to end) of the answered calls that have ended, in ms; `None`
    /// when there are none.
    pub average_talk_ms: Option<f64>,
    /// Extractions stored in the period, by schema id.
    pub extractions_by_schema: BTreeMap<String, i64>,
    /// The priced cost of the period's calls, in micro-rupees (1 INR = 1 000 000); calls
    /// without a cost ledger count as 0.
    pub cost_inr_micros: i64,
}

impl Analytics {
    /// `completed / calls`, or `None` when there were no calls.
    pub fn completion_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.completed as f64 / self.calls as f64)
    }
}

#[derive(sqlx::FromRow)]
struct CallTotalsRow {
    calls: i64,
    completed: i64,
    answered: i64,
    average_talk_ms: Option<f64>,
    cost_inr_micros: i64,
}

#[derive(sqlx::FromRow)]
struct SchemaCountRow {
    schema_id: String,
    count: i64,
}

impl Store {
    /// The figures of the calls visible to `scope` over the period of `filter`. A tenant scope
    /// always counts only its own calls.
    pub async fn analytics(
        &self,
        scope: &Scope,
        filter: &AnalyticsFilter,
    ) -> Result<Analytics, StoreError> {
        let Some(tenant) = scoped_tenant(scope, filter.tenant.as_deref()) else {
            return Ok(Analytics::default());
        };
        let period = |time_column: &'static str| {
            let mut conditions = Conditions::default();
            if let Some(tenant_id) = tenant {
                conditions.text_equals("tenant_id", tenant_id);
            }
            if let Some(from_ms) = filter.from_ms {
                conditions.at_least(time_column, from_ms);
            }
            if let Some(to_ms) = filter.to_ms {
                conditions.below(time_column, to_ms);
            }
            conditions
        };
        let calls = period("started_at");
        let calls_sql = format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS calls,
                    CAST(COALESCE(SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END), 0)
                         AS BIGINT) AS completed,
                    CAST(COUNT(answered_at) AS BIGINT) AS answered,
                    CAST(AVG(CASE WHEN answered_at IS NOT NULL AND ended_at IS NOT NULL
                                  THEN ended_at - answered_at END)
                         AS DOUBLE PRECISION) AS average_talk_ms,
                    CAST(COALESCE(SUM(cost_inr_micros), 0) AS BIGINT) AS cost_inr_micros
             FROM calls{}",
            calls.where_sql()
        );
        let totals = with_pool!(self, pool => {
            bind_all!(
                sqlx::query_as::<_, CallTotalsRow>(sqlx::AssertSqlSafe(calls_sql)),
                calls
            )
            .fetch_one(pool)
            .await
        })
        .map_err(StoreError::query("analytics"))?;
        let extractions = period("created_at");
        let extractions_sql = format!(
            "SELECT schema_id, CAST(COUNT(*) AS BIGINT) AS count
             FROM extractions{}
             GROUP BY schema_id ORDER BY schema_id",
            extractions.where_sql()
        );
        let by_schema = with_pool!(self, pool => {
            bind_all!(
                sqlx::query_as::<_, SchemaCountRow>(sqlx::AssertSqlSafe(extractions_sql)),
                extractions
            )
            .fetch_all(pool)
            .await
        })
        .map_err(StoreError::query("analytics"))?;
        Ok(Analytics {
            calls: totals.calls,
            completed: totals.completed,
            answered: totals.answered,
            average_talk_ms: totals.average_talk_ms,
            extractions_by_schema: by_schema
                .into_iter()
                .map(|row| (row.schema_id, row.count))
                .collect(),
            cost_inr_micros: totals.cost_inr_micros,
        })
    }
}
