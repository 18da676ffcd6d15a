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
}

/// What replaces secrets in `Debug` output and redacted TOML.
pub(crate) const REDACTED: &str = "<redacted>";

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("listen", &self.listen)
            .field("operator_key", &REDACTED)
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
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            listen: "127.0.0.1:8080".to_owned(),
            operator_key: String::new(),
        }
    }
}

impl RawHttp {
    pub(crate) fn check(self, c: &mut Checker) -> HttpConfig {
        HttpConfig {
            listen: c.socket_addr("http.listen", &self.listen),
            operator_key: c.non_empty("http.operator_key", &self.operator_key),
        }
    }
}
