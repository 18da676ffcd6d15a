//! `[http]`: the HTTP API listener and operator key.

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::checker::Checker;
use crate::lenient;

/// `[http]`: the HTTP API (`/api/v1`, `/healthz`, `/readyz`, `/metrics`).
/// `Debug` hides `operator_key`.
#[derive(Clone, PartialEq, Serialize)]
pub struct HttpConfig {
    /// Listen address. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Bearer key that manages tenants and sees every tenant's calls.
    /// Required, non-empty; keep it secret.
    pub operator_key: String,
    /// Requests per second each API key may make to `/api/v1` (requests without a valid key:
    /// each source address); over it the answer is `429 rate_limited` with `Retry-After`.
    /// 0: no limit. Default 20.
    pub requests_per_second_per_key: u32,
    /// How many requests a key may make at once above its rate (the bucket size). Default 40;
    /// at least `requests_per_second_per_key`.
    pub request_burst_per_key: u32,
}

/// Default `[http] requests_per_second_per_key`.
pub const DEFAULT_REQUESTS_PER_SECOND_PER_KEY: u32 = 20;
/// Default `[http] request_burst_per_key`.
pub const DEFAULT_REQUEST_BURST_PER_KEY: u32 = 40;

/// What replaces secrets in `Debug` output and redacted TOML.
pub(crate) const REDACTED: &str = "<redacted>";

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("listen", &self.listen)
            .field("operator_key", &REDACTED)
            .field(
                "requests_per_second_per_key",
                &self.requests_per_second_per_key,
            )
            .field("request_burst_per_key", &self.request_burst_per_key)
            .finish()
    }
}

/// `[http]` as written.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawHttp {
    #[serde(deserialize_with = "lenient::string")]
    listen: String,
    #[serde(deserialize_with = "lenient::string")]
    operator_key: String,
    requests_per_second_per_key: u32,
    request_burst_per_key: u32,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            listen: "127.0.0.1:8080".to_owned(),
            operator_key: String::new(),
            requests_per_second_per_key: DEFAULT_REQUESTS_PER_SECOND_PER_KEY,
            request_burst_per_key: DEFAULT_REQUEST_BURST_PER_KEY,
        }
    }
}

impl RawHttp {
    pub(crate) fn check(self, c: &mut Checker) -> HttpConfig {
        c.in_range(
            "http.requests_per_second_per_key",
            self.requests_per_second_per_key,
            0,
            1_000_000,
        );
        if self.requests_per_second_per_key > 0 {
            c.in_range(
                "http.request_burst_per_key",
                self.request_burst_per_key,
                self.requests_per_second_per_key,
                1_000_000,
            );
        }
        HttpConfig {
            listen: c.socket_addr("http.listen", &self.listen),
            operator_key: c.non_empty("http.operator_key", &self.operator_key),
            requests_per_second_per_key: self.requests_per_second_per_key,
            request_burst_per_key: self.request_burst_per_key,
        }
    }
}
