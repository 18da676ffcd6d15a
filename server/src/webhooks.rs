//! Webhook delivery: posts the events in the store's outbox to the tenants' endpoints.
//!
//! The store writes each call event to the outbox with the call change it reports (see
//! `vaani_store::WebhookEventType`), so nothing is lost to a crash or a restart. The
//! [`Dispatcher`] leases due deliveries, posts each one, and records the outcome: delivered on
//! any 2xx; otherwise another attempt after an exponential back-off with jitter
//! ([`retry_delay`]), until `[webhooks] max_attempts`, after which it is marked failed. Leases
//! make it safe for several nodes sharing one database to dispatch at once. An endpoint gets
//! its events one at a time and in the order they happened: a delivery being retried holds
//! back that endpoint's later events (and only that endpoint's).
//!
//! The delivery log keeps ended deliveries for 30 days.
//!
//! Every POST carries the event's JSON body and
//!
//! ```text
//! Content-Type: application/json
//! X-Vaani-Event: call.ended
//! X-Vaani-Delivery: <event id>:<endpoint id>
//! X-Vaani-Timestamp: <unix seconds>
//! X-Vaani-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
//! ```
//!
//! A receiver recomputes the signature over the timestamp it was sent and the raw body, and
//! should refuse old timestamps (replays). Endpoints are reached through the same guard as
//! plugin fetches ([`Egress`]): https only and public addresses only, unless the operator's
//! `[webhooks]` allows plain http or private addresses; redirects are not followed.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::watch;
use vaani_config::{HttpSettings, WebhooksConfig};
use vaani_store::{DueDelivery, Store};

use crate::egress::{Egress, FetchMethod, FetchRequest};

/// How long a dispatcher owns a leased delivery before another may take it: longer than
/// any attempt (the POST's timeout is at most a minute).
const LEASE_MS: i64 = 120_000;
/// Most deliveries in flight at once (each endpoint has at most one).
const MAX_IN_FLIGHT: usize = 32;
/// How often the outbox is polled when it was empty.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How long the delivery log keeps deliveries that ended (delivered or failed).
const DELIVERY_LOG_RETENTION_MS: i64 = 30 * 24 * 3_600_000;
/// How often ended deliveries past the retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3_600);
/// Largest event body posted.
const MAX_BODY_BYTES: usize = 1 << 20;
/// Largest answer read from an endpoint (its body is ignored).
const MAX_ANSWER_BYTES: u64 = 64 << 10;

/// The `X-Vaani-Signature` value for `body` sent at `timestamp` (unix seconds):
/// `v1=` and the lowercase hex HMAC-SHA256 of `"<timestamp>.<body>"` keyed by `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(3 + digest.len() * 2);
    hex.push_str("v1=");
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// The wait before the next attempt after `attempts` failed ones: `initial` doubled for each
/// earlier failure, capped at `max`, then scaled by `jitter` in `[0.5, 1.0]` (spreads retries
/// of many deliveries that failed together).
pub fn retry_delay(attempts: i64, initial: Duration, max: Duration, jitter: f64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let delay = initial
        .checked_mul(1u32 << doublings)
        .unwrap_or(max)
        .min(max);
    delay.mul_f64(jitter.clamp(0.5, 1.0))
}

/// What happened to one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    /// The endpoint answered 2xx.
    Delivered { status: u16 },
    /// It answered something else, or could not be reached.
    Failed { status: Option<u16>, error: String },
}

/// Posts due deliveries from the outbox until told to stop.
pub struct Dispatcher {
    store: Store,
    config: WebhooksConfig,
    tls: rustls::ClientConfig,
}

impl Dispatcher {
    /// A dispatcher for `store`'s outbox under `config`.
    pub fn new(store: Store, config: WebhooksConfig) -> anyhow::Result<Dispatcher> {
        let tls = vaani_speech::tls_client_config()
            .map_err(|error| anyhow::anyhow!("webhook TLS set-up: {error}"))?;
        Ok(Dispatcher { store, config, tls })
    }

    /// Runs until `stop` turns true: keeps up to [`MAX_IN_FLIGHT`] deliveries going (at most
    /// one per endpoint, so a slow endpoint holds up only its own queue), leasing more as
    /// each ends, and polls when nothing is due. First takes back the deliveries this node had
    /// leased when it last stopped.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        match self.store.release_webhook_leases().await {
            Ok(0) => {}
            Ok(released) => {
                tracing::info!(
                    released,
                    "webhook deliveries interrupted by the last stop are due again"
                );
            }
            Err(error) => tracing::warn!("releasing webhook leases: {error}"),
        }
        let mut in_flight = tokio::task::JoinSet::new();
        let mut next_prune = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_prune {
                next_prune += PRUNE_EVERY;
                let before = vaani_store::now_ms().saturating_sub(DELIVERY_LOG_RETENTION_MS);
                match self.store.prune_webhook_deliveries(before).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "webhook delivery log pruned"),
                    Err(error) => tracing::warn!("pruning the webhook delivery log: {error}"),
                }
            }
            if *stop.borrow() {
                // Deliveries cut short here are retried after their lease (or at next start).
                return;
            }
            let room = MAX_IN_FLIGHT.saturating_sub(in_flight.len());
            let mut leased = 0;
            if room > 0 {
                match self
                    .store
                    .claim_webhook_deliveries(
                        vaani_store::now_ms(),
                        LEASE_MS,
                        u32::try_from(room).unwrap_or(u32::MAX),
                    )
                    .await
                {
                    Ok(due) => {
                        leased = due.len();
                        for delivery in due {
                            let dispatcher = self.clone();
                            in_flight.spawn(async move { dispatcher.deliver(delivery).await });
                        }
                    }
                    Err(error) => tracing::warn!("webhook outbox: {error}"),
                }
            }
            if leased == 0 || in_flight.len() >= MAX_IN_FLIGHT {
                tokio::select! {
                    Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// Attempts one delivery and records the outcome.
    async fn deliver(&self, delivery: DueDelivery) {
        let outcome = self.post(&delivery).await;
        let recorded = match &outcome {
            Attempt::Delivered { status } => {
                tracing::info!(
                    tenant_id = %delivery.tenant_id,
                    delivery = %delivery.id,
                    event = %delivery.event_type,
                    attempts = delivery.attempts,
                    status,
                    "webhook delivered"
                );
                self.store
                    .record_webhook_delivered(&delivery, *status, vaani_store::now_ms())
                    .await
            }
            Attempt::Failed { status, error } => {
                let give_up = delivery.attempts >= i64::from(self.config.max_attempts);
                let retry_at = (!give_up).then(|| {
                    let delay = retry_delay(
                        delivery.attempts,
                        Duration::from_millis(self.config.initial_backoff_ms),
                        Duration::from_secs(self.config.max_backoff_secs),
                        0.5 + rand::random::<f64>() * 0.5,
                    );
                    vaani_store::now_ms()
                        .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
                });
                tracing::warn!(
                    tenant_id = %delivery.tenant_id,
                    delivery = %delivery.id,
                    event = %delivery.event_type,
                    attempts = delivery.attempts,
                    status = status.map(u64::from),
                    retry_at_ms = retry_at,
                    "webhook delivery failed: {error}"
                );
                self.store
                    .record_webhook_failure(&delivery, *status, error, retry_at)
                    .await
            }
        };
        match recorded {
            Ok(true) => {}
            Ok(false) => tracing::info!(
                delivery = %delivery.id,
                "webhook lease lost before the outcome was recorded (another dispatcher took it)"
            ),
            // The lease runs out and the delivery is attempted again: at least once.
            Err(error) => {
                tracing::warn!(delivery = %delivery.id, "recording a webhook attempt: {error}")
            }
        }
    }

    /// POSTs the delivery's body, signed, to its endpoint.
    async fn post(&self, delivery: &DueDelivery) -> Attempt {
        let host = match url::Url::parse(&delivery.url) {
            Ok(url) => match url.host() {
                // The egress guard compares bare addresses and names without a trailing dot.
                Some(url::Host::Ipv6(address)) => address.to_string(),
                Some(url::Host::Ipv4(address)) => address.to_string(),
                Some(url::Host::Domain(name)) => name.trim_end_matches('.').to_owned(),
                None => String::new(),
            },
            Err(error) => {
                return Attempt::Failed {
                    status: None,
                    error: format!("invalid URL: {error}"),
                };
            }
        };
        let settings = HttpSettings {
            allow: vec![host],
            allow_private: self.config.allow_private,
            allow_plain_http: self.config.allow_plain_http,
            timeout_ms: self.config.timeout_ms,
            max_response_bytes: MAX_ANSWER_BYTES,
        };
        let egress =
            Egress::with_tls(&settings, self.tls.clone()).with_max_request_bytes(MAX_BODY_BYTES);
        let timestamp = vaani_store::now_ms() / 1000;
        let request = FetchRequest {
            method: FetchMethod::Post,
            url: delivery.url.clone(),
            headers: vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("x-vaani-event".to_owned(), delivery.event_type.clone()),
                ("x-vaani-delivery".to_owned(), delivery.id.clone()),
                ("x-vaani-timestamp".to_owned(), timestamp.to_string()),
                (
                    "x-vaani-signature".to_owned(),
                    signature(&delivery.secret, timestamp, &delivery.payload),
                ),
            ],
            body: delivery.payload.as_bytes().to_vec(),
            timeout_ms: None,
        };
        match egress.fetch(request).await {
            Ok(answer) if (200..300).contains(&answer.status) => Attempt::Delivered {
                status: answer.status,
            },
            Ok(answer) => Attempt::Failed {
                status: Some(answer.status),
                error: format!("the endpoint answered HTTP {}", answer.status),
            },
            Err(error) => {
                let shown = tenant_reason(&error);
                if shown != error.to_string() {
                    // The details (which address a name resolves to) are the operator's.
                    tracing::info!(delivery = %delivery.id, "webhook endpoint refused: {error}");
                }
                Attempt::Failed {
                    status: None,
                    error: shown,
                }
            }
        }
    }
}

/// Why an attempt failed, as the tenant's delivery log says it: what the guard found about
/// the endpoint's address is not told (it would map the operator's network).
fn tenant_reason(error: &crate::egress::EgressError) -> String {
    use crate::egress::EgressError;
    match error {
        EgressError::AddressNotAllowed { .. }
        | EgressError::HostNotAllowed { .. }
        | EgressError::Dns { .. } => {
            "the endpoint's host does not resolve to a public address this server may reach"
                .to_owned()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_from_the_definition_matches_rfc_4231() {
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Checked against HMAC-SHA256 computed from its definition (below).
        assert_eq!(
            signature("secret", 1_700_000_000, "{}"),
            "v1=".to_owned() + &hmac_hex("secret", "1700000000.{}")
        );
        assert_ne!(
            signature("secret", 1_700_000_000, "{}"),
            signature("secret", 1_700_000_001, "{}"),
            "the timestamp is signed"
        );
        assert_ne!(
            signature("secret", 1_700_000_000, "{}"),
            signature("other", 1_700_000_000, "{}"),
            "the key matters"
        );
    }

    /// HMAC-SHA256 from its definition (RFC 2104) over sha2 alone, to check the `hmac` crate
    /// is used as intended.
    fn hmac_hex(key: &str, message: &str) -> String {
        use sha2::Digest;
        let mut block = [0u8; 64];
        block[..key.len()].copy_from_slice(key.as_bytes());
        let inner_pad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
        let outer_pad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
        let inner = Sha256::new()
            .chain_update(&inner_pad)
            .chain_update(message.as_bytes())
            .finalize();
        let outer = Sha256::new()
            .chain_update(&outer_pad)
            .chain_update(inner)
            .finalize();
        outer.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_delivery_log_does_not_map_the_operators_network() {
        use crate::egress::EgressError;
        let refused = EgressError::AddressNotAllowed {
            host: "db.corp.internal".to_owned(),
            address: "10.2.3.4".parse().unwrap(),
            class: "private",
        };
        let shown = tenant_reason(&refused);
        assert!(
            !shown.contains("10.2.3.4") && !shown.contains("private"),
            "{shown}"
        );
        let unresolved = EgressError::Dns {
            host: "secret.corp.internal".to_owned(),
            message: "no such host".to_owned(),
        };
        assert_eq!(
            tenant_reason(&unresolved),
            shown,
            "resolving or not looks the same"
        );
        let timeout = EgressError::Timeout { after_ms: 10_000 };
        assert_eq!(tenant_reason(&timeout), timeout.to_string());
    }

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap_with_jitter() {
        let initial = Duration::from_secs(2);
        let max = Duration::from_secs(60);
        let full = |attempts| retry_delay(attempts, initial, max, 1.0);
        assert_eq!(full(1), Duration::from_secs(2));
        assert_eq!(full(2), Duration::from_secs(4));
        assert_eq!(full(3), Duration::from_secs(8));
        assert_eq!(full(5), Duration::from_secs(32));
        assert_eq!(full(6), Duration::from_secs(60), "capped");
        assert_eq!(full(1_000), Duration::from_secs(60), "no overflow");
        assert_eq!(
            retry_delay(3, initial, max, 0.5),
            Duration::from_secs(4),
            "jitter scales down to half"
        );
        assert_eq!(
            retry_delay(3, initial, max, 0.0),
            Duration::from_secs(4),
            "jitter below a half counts as a half"
        );
    }
}
