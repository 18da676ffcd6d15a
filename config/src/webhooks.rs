//! `[webhooks]`: how the server delivers tenants' webhook events.

use serde::{Deserialize, Serialize};

use crate::checker::Checker;

/// `[webhooks]`: delivery of `call.started`, `call.ended` and `call.analyzed` to the
/// endpoints tenants register over the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct WebhooksConfig {
    /// Attempts per delivery before it is marked failed. Default 12.
    pub max_attempts: u32,
    /// Wait before the second attempt, ms; each later wait doubles (with jitter) up to
    /// `max_backoff_secs`. Default 2000.
    pub initial_backoff_ms: u64,
    /// Longest wait between attempts, seconds. Default 1800.
    pub max_backoff_secs: u64,
    /// Time allowed for one POST (connect, send, answer), ms. Default 10000.
    pub timeout_ms: u64,
    /// Allow endpoints on loopback, private, link-local and other non-public addresses.
    /// Default false (a tenant must not reach the operator's internal network).
    pub allow_private: bool,
    /// Allow `http://` endpoints. Default false: https only.
    pub allow_plain_http: bool,
}

/// `[webhooks]` as written.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawWebhooks {
    max_attempts: u32,
    initial_backoff_ms: u64,
    max_backoff_secs: u64,
    timeout_ms: u64,
    allow_private: bool,
    allow_plain_http: bool,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            max_attempts: 12,
            initial_backoff_ms: 2_000,
            max_backoff_secs: 1_800,
            timeout_ms: 10_000,
            allow_private: false,
            allow_plain_http: false,
        }
    }
}

impl Default for RawWebhooks {
    fn default() -> Self {
        let defaults = WebhooksConfig::default();
        RawWebhooks {
            max_attempts: defaults.max_attempts,
            initial_backoff_ms: defaults.initial_backoff_ms,
            max_backoff_secs: defaults.max_backoff_secs,
            timeout_ms: defaults.timeout_ms,
            allow_private: defaults.allow_private,
            allow_plain_http: defaults.allow_plain_http,
        }
    }
}

impl RawWebhooks {
    pub(crate) fn check(self, c: &mut Checker) -> WebhooksConfig {
        c.in_range("webhooks.max_attempts", self.max_attempts, 1, 100);
        c.in_range(
            "webhooks.initial_backoff_ms",
            self.initial_backoff_ms,
            10,
            3_600_000,
        );
        c.in_range(
            "webhooks.max_backoff_secs",
            self.max_backoff_secs,
            1,
            86_400,
        );
        c.in_range("webhooks.timeout_ms", self.timeout_ms, 100, 60_000);
        WebhooksConfig {
            max_attempts: self.max_attempts,
            initial_backoff_ms: self.initial_backoff_ms,
            max_backoff_secs: self.max_backoff_secs,
            timeout_ms: self.timeout_ms,
            allow_private: self.allow_private,
            allow_plain_http: self.allow_plain_http,
        }
    }
}
