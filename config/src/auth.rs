//! `[trunks.inbound_auth]`: digest authentication of a trunk's INVITEs (RFC 3261 §22, RFC 8760).

use serde::{Deserialize, Serialize};

use crate::checker::Checker;
use crate::error::ConfigError;
use crate::lenient;

/// Credentials a trunk's INVITEs must prove (instead of, or besides, its source networks).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InboundAuthConfig {
    /// The user name the peer must use.
    pub username: String,
    /// Environment variable holding the password (never written in the file).
    pub password_env: String,
    /// The realm of our challenges. Default: `[sip] public_address`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    /// Digest algorithms we challenge with, most preferred first (`SHA-256`, `MD5`). Many SIP
    /// peers (and sipp) answer only the first challenge and only know MD5: list `MD5` first or
    /// alone for them. Default `["SHA-256", "MD5"]`.
    pub algorithms: Vec<String>,
}

/// `[trunks.inbound_auth]` as written.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawInboundAuth {
    #[serde(deserialize_with = "lenient::string")]
    username: String,
    #[serde(deserialize_with = "lenient::string")]
    password_env: String,
    #[serde(deserialize_with = "lenient::opt_string")]
    realm: Option<String>,
    algorithms: Option<Vec<String>>,
}

impl RawInboundAuth {
    /// Validates the table found at `key` (e.g. `trunks[0].inbound_auth`).
    pub(crate) fn check(self, c: &mut Checker, key: &str) -> InboundAuthConfig {
        let username = c.non_empty(&format!("{key}.username"), &self.username);
        let password_env = c.env_name(&format!("{key}.password_env"), &self.password_env);
        let realm = self
            .realm
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        let algorithms = match self.algorithms {
            None => vec!["SHA-256".to_owned(), "MD5".to_owned()],
            Some(names) => {
                let key = format!("{key}.algorithms");
                if names.is_empty() {
                    c.push(ConfigError::Empty { key: key.clone() });
                }
                names
                    .iter()
                    .enumerate()
                    .filter_map(
                        |(i, name)| match name.trim().to_ascii_uppercase().as_str() {
                            "SHA-256" => Some("SHA-256".to_owned()),
                            "MD5" => Some("MD5".to_owned()),
                            _ => {
                                c.push(ConfigError::Inconsistent {
                                    key: format!("{key}[{i}]"),
                                    message: format!("{name:?} is not SHA-256 or MD5"),
                                });
                                None
                            }
                        },
                    )
                    .collect()
            }
        };
        InboundAuthConfig {
            username,
            password_env,
            realm,
            algorithms,
        }
    }
}
