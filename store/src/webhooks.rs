//! Webhooks: each tenant's endpoints, and the durable outbox of deliveries to them.
//!
//! Call events are written to the outbox by the repository methods that change the call
//! ([`Store::insert_call`] → `call.started`; [`Store::finish_call`],
//! [`Store::finish_call_with_report`] and [`Store::mark_unfinished_calls_failed`] →
//! `call.ended`; [`Store::set_call_summary`] and [`Store::mark_call_analyzed`] →
//! `call.analyzed`), in the same transaction, one delivery per endpoint subscribed to the
//! event. A dispatcher leases due deliveries ([`Store::claim_webhook_deliveries`]), posts them
//! and records the outcome.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::{Scope, Store, StoreError, new_id};

/// The kinds of event a webhook endpoint can receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum WebhookEventType {
    /// A call was received or placed (`call.started`).
    #[serde(rename = "call.started")]
    CallStarted,
    /// A call ended, however it ended (`call.ended`).
    #[serde(rename = "call.ended")]
    CallEnded,
    /// A call's analysis is ready: its extractions, and its summary and sentiment when the
    /// tenant has a language model (`call.analyzed`).
    #[serde(rename = "call.analyzed")]
    CallAnalyzed,
}

impl WebhookEventType {
    /// Every event type.
    pub const ALL: [WebhookEventType; 3] = [
        WebhookEventType::CallStarted,
        WebhookEventType::CallEnded,
        WebhookEventType::CallAnalyzed,
    ];

    /// The name used on the wire and in the API, e.g. `call.ended`.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEventType::CallStarted => "call.started",
            WebhookEventType::CallEnded => "call.ended",
            WebhookEventType::CallAnalyzed => "call.analyzed",
        }
    }
}

impl fmt::Display for WebhookEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WebhookEventType {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        WebhookEventType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| StoreError::InvalidValue {
                column: "webhook event type",
                value: s.to_owned(),
            })
    }
}

/// A tenant's webhook endpoint (its secret is shown only when it is created).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WebhookEndpoint {
    /// Row id (UUIDv7).
    pub id: String,
    /// The owning tenant.
    pub tenant_id: String,
    /// Where events are posted.
    pub url: String,
    /// The events it receives.
    pub events: Vec<WebhookEventType>,
    /// When it was created (unix ms).
    pub created_at_ms: i64,
}

/// How a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not delivered yet; another attempt is due at `next_attempt_at_ms`.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed; no more will be made.
    Failed,
}

impl DeliveryStatus {
    /// The value stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

impl FromStr for DeliveryStatus {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "failed" => Ok(DeliveryStatus::Failed),
            other => Err(StoreError::InvalidValue {
                column: "webhook_deliveries.status",
                value: other.to_owned(),
            }),
        }
    }
}

/// One delivery of one event to one endpoint, as the tenant's delivery log shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WebhookDelivery {
    /// `event_id:endpoint_id`.
    pub id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// The event (the same for every endpoint that receives it).
    pub event_id: String,
    /// What happened.
    pub event_type: WebhookEventType,
    /// How the delivery stands.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i64,
    /// When the next attempt is due (unix ms; meaningful while pending).
    pub next_attempt_at_ms: i64,
    /// The HTTP status of the last attempt, if the endpoint answered.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the event happened (unix ms).
    pub created_at_ms: i64,
    /// When it was delivered (unix ms).
    pub delivered_at_ms: Option<i64>,
    /// The JSON body posted.
    pub payload: serde_json::Value,
}

/// A delivery the dispatcher has leased and must now attempt.
#[derive(Clone, PartialEq, Eq)]
pub struct DueDelivery {
    /// `event_id:endpoint_id`.
    pub id: String,
    /// The owning tenant.
    pub tenant_id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// Where to post.
    pub url: String,
    /// The signing key.
    pub secret: String,
    /// What happened.
    pub event_type: String,
    /// The JSON body to post, exactly as stored.
    pub payload: String,
    /// Attempts made, this one included.
    pub attempts: i64,
    /// When the event happened (unix ms).
    pub created_at_ms: i64,
    /// The lease's end (unix ms), which also identifies this lease when recording the outcome.
    pub lease_until_ms: i64,
}

impl fmt::Debug for DueDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DueDelivery")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("url", &self.url)
            .field("event_type", &self.event_type)
            .field("attempts", &self.attempts)
            .field("created_at_ms", &self.created_at_ms)
            .finish_non_exhaustive()
    }
}

/// An event about to be written to the outbox: the envelope every endpoint receives.
pub(crate) struct OutboxEvent {
    pub(crate) id: String,
    pub(crate) tenant_id: String,
    pub(crate) event_type: WebhookEventType,
    /// `{"id", "type", "created_at_ms", "tenant_id", "data"}` as JSON text.
    pub(crate) body: String,
    pub(crate) created_at_ms: i64,
}

impl OutboxEvent {
    /// A new event of `tenant_id` with `data`, happening at `at_ms`.
    pub(crate) fn new(
        tenant_id: &str,
        event_type: WebhookEventType,
        data: serde_json::Value,
        at_ms: i64,
    ) -> OutboxEvent {
        let id = new_id();
        let body = serde_json::json!({
            "id": id,
            "type": event_type.as_str(),
            "created_at_ms": at_ms,
            "tenant_id": tenant_id,
            "data": data,
        })
        .to_string();
        OutboxEvent {
            id,
            tenant_id: tenant_id.to_owned(),
            event_type,
            body,
            created_at_ms: at_ms,
        }
    }
}

/// Writes one delivery of the [`OutboxEvent`] `$event` per endpoint of its tenant subscribed
/// to its type, on `$executor` (a pool or a transaction: `&mut *tx`). Evaluates to the
/// query's future.
macro_rules! enqueue_webhook_deliveries {
    ($executor:expr, $event:expr) => {
        sqlx::query(
            "INSERT INTO webhook_deliveries
                 (id, tenant_id, endpoint_id, event_id, event_type, payload, status, attempts,
                  next_attempt_at, created_at)
             SELECT $2 || ':' || e.id, e.tenant_id, e.id, $2, $3, $4, 'pending', 0, $5, $5
             FROM webhook_endpoints e
             WHERE e.tenant_id = $1 AND (',' || e.events || ',') LIKE ('%,' || $3 || ',%')
             ON CONFLICT DO NOTHING",
        )
        .bind(&$event.tenant_id)
        .bind(&$event.id)
        .bind($event.event_type.as_str())
        .bind(&$event.body)
        .bind($event.created_at_ms)
        .execute($executor)
    };
}
pub(crate) use enqueue_webhook_deliveries;

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: String,
    tenant_id: String,
    url: String,
    events: String,
    created_at: i64,
}

impl TryFrom<EndpointRow> for WebhookEndpoint {
    type Error = StoreError;
    fn try_from(row: EndpointRow) -> Result<Self, StoreError> {
        Ok(WebhookEndpoint {
            id: row.id,
            tenant_id: row.tenant_id,
            url: row.url,
            events: parse_events(&row.events)?,
            created_at_ms: row.created_at,
        })
    }
}

fn parse_events(text: &str) -> Result<Vec<WebhookEventType>, StoreError> {
    text.split(',')
        .filter(|part| !part.is_empty())
        .map(str::parse)
        .collect()
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: String,
    endpoint_id: String,
    event_id: String,
    event_type: String,
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    delivered_at: Option<i64>,
    payload: String,
}

impl TryFrom<DeliveryRow> for WebhookDelivery {
    type Error = StoreError;
    fn try_from(row: DeliveryRow) -> Result<Self, StoreError> {
        let payload = serde_json::from_str(&row.payload).map_err(|_| StoreError::InvalidValue {
            column: "webhook_deliveries.payload",
            value: row.payload.clone(),
        })?;
        Ok(WebhookDelivery {
            id: row.id,
            endpoint_id: row.endpoint_id,
            event_id: row.event_id,
            event_type: row.event_type.parse()?,
            status: row.status.parse()?,
            attempts: row.attempts,
            next_attempt_at_ms: row.next_attempt_at,
            last_status: row.last_status,
            last_error: row.last_error,
            created_at_ms: row.created_at,
            delivered_at_ms: row.delivered_at,
            payload,
        })
    }
}

#[derive(sqlx::FromRow)]
struct LeasedRow {
    id: String,
    tenant_id: String,
    endpoint_id: String,
    event_type: String,
    payload: String,
    attempts: i64,
    created_at: i64,
    lease_until: i64,
}

impl Store {
    /// Add a webhook endpoint for the tenant, receiving `events` (none: every event type),
    /// signed with `secret`. `NotFound` if the tenant does not exist.
    pub async fn create_webhook_endpoint(
        &self,
        tenant_id: &str,
        url: &str,
        events: &[WebhookEventType],
        secret: &str,
        now_ms: i64,
    ) -> Result<WebhookEndpoint, StoreError> {
        let events = if events.is_empty() {
            WebhookEventType::ALL.to_vec()
        } else {
            let mut unique = Vec::new();
            for event in events {
                if !unique.contains(event) {
                    unique.push(*event);
                }
            }
            unique
        };
        let text = events
            .iter()
            .map(|event| event.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let endpoint = WebhookEndpoint {
            id: new_id(),
            tenant_id: tenant_id.to_owned(),
            url: url.to_owned(),
            events,
            created_at_ms: now_ms,
        };
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO webhook_endpoints (id, tenant_id, url, secret, events, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&endpoint.id)
            .bind(tenant_id)
            .bind(url)
            .bind(secret)
            .bind(&text)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(drop)
        })
        .map_err(StoreError::missing_parent(
            "create_webhook_endpoint",
            "tenant",
            tenant_id,
        ))?;
        Ok(endpoint)
    }

    /// The tenant's webhook endpoints, oldest first (`None`: every tenant's).
    pub async fn list_webhook_endpoints(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<WebhookEndpoint>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_as::<_, EndpointRow>(
                "SELECT id, tenant_id, url, events, created_at FROM webhook_endpoints
                 WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .fetch_all(pool)
            .await
        })
        .map_err(StoreError::query("list_webhook_endpoints"))?
        .into_iter()
        .map(WebhookEndpoint::try_from)
        .collect()
    }

    /// Delete a webhook endpoint `scope` may see, and its deliveries. `NotFound` if there is
    /// no such endpoint in the scope.
    pub async fn delete_webhook_endpoint(&self, scope: &Scope, id: &str) -> Result<(), StoreError> {
        let deleted = with_pool!(self, pool => {
            sqlx::query(
                "DELETE FROM webhook_endpoints WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)",
            )
            .bind(id)
            .bind(scope.tenant_id())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(StoreError::query("delete_webhook_endpoint"))?;
        if deleted == 0 {
            return Err(StoreError::NotFound {
                what: "webhook endpoint",
                id: id.to_owned(),
            });
        }
        Ok(())
    }

    /// The tenant's deliveries (`None`: every tenant's), newest first, at most `limit`
    /// (1..=500), optionally only those with `status`.
    pub async fn list_webhook_deliveries(
        &self,
        tenant_id: Option<&str>,
        status: Option<DeliveryStatus>,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        let limit = i64::from(limit.clamp(1, 500));
        with_pool!(self, pool => {
            sqlx::query_as::<_, DeliveryRow>(
                "SELECT id, endpoint_id, event_id, event_type, status, attempts, next_attempt_at,
                        last_status, last_error, created_at, delivered_at, payload
                 FROM webhook_deliveries
                 WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR status = $2)
                 ORDER BY created_at DESC, id DESC LIMIT $3",
            )
            .bind(tenant_id)
            .bind(status.map(DeliveryStatus::as_str))
            .bind(limit)
            .fetch_all(pool)
            .await
        })
        .map_err(StoreError::query("list_webhook_deliveries"))?
        .into_iter()
        .map(WebhookDelivery::try_from)
        .collect()
    }

    /// Write a `call.analyzed` event for a call that has no summary to wait for (the tenant has
    /// no language model): its extractions so far. `NotFound` if the tenant has no such call.
    pub async fn mark_call_analyzed(
        &self,
        tenant_id: &str,
        call_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let exists = with_pool!(self, pool => {
            sqlx::query_scalar::<_, String>(
                "SELECT id FROM calls WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(call_id)
            .fetch_optional(pool)
            .await
        })
        .map_err(StoreError::query("mark_call_analyzed"))?;
        if exists.is_none() {
            return Err(StoreError::NotFound {
                what: "call",
                id: call_id.to_owned(),
            });
        }
        let event = self
            .analyzed_event(tenant_id, call_id, None, None, now_ms)
            .await?;
        with_pool!(self, pool => enqueue_webhook_deliveries!(pool, event).await.map(drop))
            .map_err(StoreError::query("mark_call_analyzed"))
    }

    /// The `call.analyzed` event of a call: its extractions, summary and sentiment.
    pub(crate) async fn analyzed_event(
        &self,
        tenant_id: &str,
        call_id: &str,
        summary: Option<&str>,
        sentiment: Option<&str>,
        now_ms: i64,
    ) -> Result<OutboxEvent, StoreError> {
        let extractions: Vec<serde_json::Value> = self
            .extractions_for_call(tenant_id, call_id)
            .await?
            .into_iter()
            .map(|e| {
                serde_json::json!({
                    "schema_id": e.schema_id,
                    "data": e.data,
                    "created_at_ms": e.created_at_ms,
                })
            })
            .collect();
        Ok(OutboxEvent::new(
            tenant_id,
            WebhookEventType::CallAnalyzed,
            serde_json::json!({
                "call_id": call_id,
                "summary": summary,
                "sentiment": sentiment,
                "extractions": extractions,
            }),
            now_ms,
        ))
    }

    /// Lease up to `limit` deliveries due at `now_ms` for `lease_ms`, counting an attempt on
    /// each: at most one per endpoint, and only an endpoint's oldest pending delivery, so an
    /// endpoint gets its events one at a time and in order (a slow or failing endpoint holds
    /// up only its own queue). Another dispatcher (another node on the same database) does not get them until
    /// the lease runs out; record each outcome with [`Store::record_webhook_delivered`] or
    /// [`Store::record_webhook_failure`]. By nature not tenant-scoped: only the dispatcher
    /// calls it.
    pub async fn claim_webhook_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let leased = with_pool!(self, pool => {
            sqlx::query_as::<_, LeasedRow>(
                "UPDATE webhook_deliveries SET lease_until = $2, leased_by = $4,
                                               attempts = attempts + 1
                 WHERE id IN (
                     SELECT d.id FROM webhook_deliveries d
                     WHERE d.status = 'pending' AND d.next_attempt_at <= $1
                       AND (d.lease_until IS NULL OR d.lease_until <= $1)
                       AND NOT EXISTS (
                           SELECT 1 FROM webhook_deliveries busy
                           WHERE busy.endpoint_id = d.endpoint_id
                             AND busy.status = 'pending' AND busy.lease_until > $1)
                       AND d.id = (
                           SELECT head.id FROM webhook_deliveries head
                           WHERE head.endpoint_id = d.endpoint_id AND head.status = 'pending'
                           ORDER BY head.created_at, head.id LIMIT 1)
                     ORDER BY d.next_attempt_at, d.created_at, d.id LIMIT $3)
                   AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $1)
                 RETURNING id, tenant_id, endpoint_id, event_type, payload, attempts, created_at,
                           lease_until",
            )
            .bind(now_ms)
            .bind(now_ms.saturating_add(lease_ms))
            .bind(i64::from(limit))
            .bind(self.node_id())
            .fetch_all(pool)
            .await
        })
        .map_err(StoreError::query("claim_webhook_deliveries"))?;
        let mut due = Vec::with_capacity(leased.len());
        for row in leased {
            let endpoint: Option<(String, String)> = with_pool!(self, pool => {
                sqlx::query_as(
                    "SELECT url, secret FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2",
                )
                .bind(&row.tenant_id)
                .bind(&row.endpoint_id)
                .fetch_optional(pool)
                .await
            })
            .map_err(StoreError::query("claim_webhook_deliveries"))?;
            // Deleting an endpoint deletes its deliveries; one leased just before is dropped.
            let Some((url, secret)) = endpoint else {
                continue;
            };
            due.push(DueDelivery {
                id: row.id,
                tenant_id: row.tenant_id,
                endpoint_id: row.endpoint_id,
                url,
                secret,
                event_type: row.event_type,
                payload: row.payload,
                attempts: row.attempts,
                created_at_ms: row.created_at,
                lease_until_ms: row.lease_until,
            });
        }
        // RETURNING gives no order: put them back in the order their events happened.
        due.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        Ok(due)
    }

    /// Delete the deliveries that ended (delivered or failed) before `before_ms`: the delivery
    /// log keeps a window, not everything forever. Pending deliveries are never deleted.
    /// Returns how many were deleted. By nature not tenant-scoped.
    pub async fn prune_webhook_deliveries(&self, before_ms: i64) -> Result<u64, StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "DELETE FROM webhook_deliveries
                 WHERE status <> 'pending' AND created_at < $1",
            )
            .bind(before_ms)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(StoreError::query("prune_webhook_deliveries"))
    }

    /// Give up the leases this node ([`Store::with_node_id`]) holds, so that deliveries it was
    /// attempting when it stopped (a crash) are due again at once instead of when their lease
    /// runs out. Run at start-up, before dispatching. Returns how many were released.
    pub async fn release_webhook_leases(&self) -> Result<u64, StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE webhook_deliveries SET lease_until = NULL, leased_by = NULL
                 WHERE status = 'pending' AND lease_until IS NOT NULL
                   AND ((leased_by IS NULL AND $1 IS NULL) OR leased_by = $1)",
            )
            .bind(self.node_id())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(StoreError::query("release_webhook_leases"))
    }

    /// Record that the leased `delivery` was accepted (`http_status` 2xx) at `now_ms`. Returns
    /// `false`, changing nothing, when the lease was lost (it ran out and another dispatcher
    /// took the delivery).
    pub async fn record_webhook_delivered(
        &self,
        delivery: &DueDelivery,
        http_status: u16,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE webhook_deliveries
                 SET status = 'delivered', delivered_at = $3, last_status = $4,
                     last_error = NULL, lease_until = NULL, leased_by = NULL
                 WHERE id = $1 AND status = 'pending' AND lease_until = $2",
            )
            .bind(&delivery.id)
            .bind(delivery.lease_until_ms)
            .bind(now_ms)
            .bind(i64::from(http_status))
            .execute(pool)
            .await
            .map(|done| done.rows_affected() == 1)
        })
        .map_err(StoreError::query("record_webhook_delivered"))
    }

    /// Record that an attempt of the leased `delivery` failed (`http_status` when the endpoint
    /// answered, and why): try again at `retry_at_ms`, or, when `None`, give up (`failed`).
    /// Returns `false`, changing nothing, when the lease was lost.
    pub async fn record_webhook_failure(
        &self,
        delivery: &DueDelivery,
        http_status: Option<u16>,
        error: &str,
        retry_at_ms: Option<i64>,
    ) -> Result<bool, StoreError> {
        let (status, next) = match retry_at_ms {
            Some(at) => (DeliveryStatus::Pending, Some(at)),
            None => (DeliveryStatus::Failed, None),
        };
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE webhook_deliveries
                 SET status = $3, next_attempt_at = COALESCE($4, next_attempt_at),
                     last_status = $5, last_error = $6, lease_until = NULL, leased_by = NULL
                 WHERE id = $1 AND status = 'pending' AND lease_until = $2",
            )
            .bind(&delivery.id)
            .bind(delivery.lease_until_ms)
            .bind(status.as_str())
            .bind(next)
            .bind(http_status.map(i64::from))
            .bind(error)
            .execute(pool)
            .await
            .map(|done| done.rows_affected() == 1)
        })
        .map_err(StoreError::query("record_webhook_failure"))
    }
}
