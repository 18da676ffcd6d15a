//! Digest authentication of a trunk's INVITEs (RFC 3261 §22.4, RFC 7616, RFC 8760): the 401
//! challenges (SHA-256 and MD5) and the check of the `Authorization` a caller sends back.
//!
//! Nonces are stateless: the issue time and a hash of it with a per-process secret, valid for
//! [`NONCE_LIFETIME_SECS`]; nothing is stored per challenge.

use std::collections::HashMap;

use vaani_config::InboundAuthConfig;
use vaani_sip::DigestCredentials;
use vaani_sip::digest::{DigestAlgorithm, auth_params, digest_response};

/// How long a nonce we issued is accepted.
pub const NONCE_LIFETIME_SECS: u64 = 300;

/// Why an INVITE's credentials were not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// No `Authorization: Digest` header (the normal first INVITE).
    #[error("no credentials")]
    Missing,
    /// The header is not a usable digest response.
    #[error("malformed Authorization: {0}")]
    Malformed(&'static str),
    /// Wrong user, realm or password.
    #[error("wrong credentials for user {0:?}")]
    Wrong(String),
    /// The nonce is not ours or too old.
    #[error("stale or foreign nonce")]
    StaleNonce,
}

/// One trunk's digest check.
#[derive(Debug)]
pub struct DigestGate {
    realm: String,
    /// Challenge order, most preferred first.
    algorithms: Vec<DigestAlgorithm>,
    credentials: DigestCredentials,
    secret: String,
}

impl DigestGate {
    /// Reads the password from its environment variable (a missing one is a start-up error).
    pub fn new(config: &InboundAuthConfig, default_realm: &str) -> Result<Self, String> {
        let password = std::env::var(&config.password_env).map_err(|_| {
            format!(
                "the environment variable {} (inbound_auth.password_env) is not set",
                config.password_env
            )
        })?;
        Ok(Self::with_password(config, default_realm, password))
    }

    fn with_password(config: &InboundAuthConfig, default_realm: &str, password: String) -> Self {
        Self {
            realm: config
                .realm
                .clone()
                .unwrap_or_else(|| default_realm.to_owned()),
            credentials: DigestCredentials {
                username: config.username.clone(),
                password,
            },
            secret: uuid::Uuid::new_v4().simple().to_string(),
            algorithms: config
                .algorithms
                .iter()
                .filter_map(|name| DigestAlgorithm::from_token(name))
                .collect(),
        }
    }

    fn nonce(&self, issued_unix_secs: u64) -> String {
        let mac = DigestAlgorithm::Sha256.hex_hash(&format!("{}:{issued_unix_secs}", self.secret));
        format!("{issued_unix_secs:x}.{}", &mac[..32])
    }

    fn nonce_is_fresh(&self, nonce: &str, now_unix_secs: u64) -> bool {
        let Some((issued, _)) = nonce.split_once('.') else {
            return false;
        };
        let Ok(issued) = u64::from_str_radix(issued, 16) else {
            return false;
        };
        now_unix_secs.saturating_sub(issued) <= NONCE_LIFETIME_SECS
            && issued <= now_unix_secs + 5
            && self.nonce(issued) == nonce
    }

    /// The `WWW-Authenticate` headers of a 401, one per configured algorithm in order of
    /// preference, all with `qop="auth"` and the same nonce.
    pub fn challenges(&self, now_unix_secs: u64) -> Vec<(&'static str, String)> {
        let nonce = self.nonce(now_unix_secs);
        self.algorithms
            .iter()
            .copied()
            .map(|algorithm| {
                (
                    "WWW-Authenticate",
                    format!(
                        "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
                        self.realm,
                        algorithm.token()
                    ),
                )
            })
            .collect()
    }

    /// Checks the INVITE's `Authorization` (or `Proxy-Authorization`) header.
    pub fn verify(
        &self,
        headers: &[(String, String)],
        method: &str,
        now_unix_secs: u64,
    ) -> Result<(), AuthFailure> {
        let value = headers
            .iter()
            .find(|(name, value)| {
                (name.eq_ignore_ascii_case("Authorization")
                    || name.eq_ignore_ascii_case("Proxy-Authorization"))
                    && value
                        .trim_start()
                        .to_ascii_lowercase()
                        .starts_with("digest ")
            })
            .map(|(_, value)| value.trim_start()[7..].to_string())
            .ok_or(AuthFailure::Missing)?;
        let params: HashMap<String, String> = auth_params(&value)
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        let get = |name: &'static str| {
            params
                .get(name)
                .map(String::as_str)
                .ok_or(AuthFailure::Malformed(name))
        };
        let username = get("username")?;
        let realm = get("realm")?;
        let nonce = get("nonce")?;
        let uri = get("uri")?;
        let response = get("response")?;
        let algorithm = match params.get("algorithm") {
            None => DigestAlgorithm::Md5,
            Some(token) => {
                DigestAlgorithm::from_token(token).ok_or(AuthFailure::Malformed("algorithm"))?
            }
        };
        if !self.algorithms.contains(&algorithm) {
            return Err(AuthFailure::Malformed("algorithm"));
        }
        if username != self.credentials.username || realm != self.realm {
            return Err(AuthFailure::Wrong(username.to_owned()));
        }
        if !self.nonce_is_fresh(nonce, now_unix_secs) {
            return Err(AuthFailure::StaleNonce);
        }
        let qop = match params.get("qop").map(String::as_str) {
            None => None,
            Some("auth") => Some((get("nc")?, get("cnonce")?)),
            Some(_) => return Err(AuthFailure::Malformed("qop")),
        };
        let expected = digest_response(
            algorithm,
            &self.credentials,
            &self.realm,
            method,
            uri,
            nonce,
            qop,
        );
        if expected.eq_ignore_ascii_case(response) {
            Ok(())
        } else {
            Err(AuthFailure::Wrong(username.to_owned()))
        }
    }
}

/// The digest gates of every trunk that has `[trunks.inbound_auth]`, by trunk id.
pub fn gates(config: &vaani_config::Config) -> Result<HashMap<String, DigestGate>, String> {
    config
        .trunks
        .iter()
        .filter_map(|trunk| trunk.inbound_auth.as_ref().map(|auth| (trunk, auth)))
        .map(|(trunk, auth)| {
            DigestGate::new(auth, &config.sip.public_address)
                .map(|gate| (trunk.id.clone(), gate))
                .map_err(|e| format!("trunk {}: {e}", trunk.id))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vaani_sip::digest::{DigestChallenge, authorization};

    fn gate() -> DigestGate {
        DigestGate::with_password(
            &InboundAuthConfig {
                username: "exotel".into(),
                password_env: "UNUSED".into(),
                realm: None,
                algorithms: vec!["SHA-256".into(), "MD5".into()],
            },
            "sip.vaani.example",
            "s3cret".into(),
        )
    }

    fn answered(
        gate: &DigestGate,
        challenge: usize,
        password: &str,
        now: u64,
    ) -> Vec<(String, String)> {
        let header = &gate.challenges(now)[challenge].1;
        let challenge = DigestChallenge::parse(header).expect("our challenge parses");
        let value = authorization(
            &challenge,
            &DigestCredentials {
                username: "exotel".into(),
                password: password.into(),
            },
            "INVITE",
            "sip:+918000000001@sip.vaani.example",
            "0a4f113b",
        );
        vec![("Authorization".to_string(), value)]
    }

    #[test]
    fn both_challenges_are_answerable_and_wrong_answers_fail() {
        let gate = gate();
        let now = 1_800_000_000;
        for challenge in 0..2 {
            assert_eq!(
                gate.verify(&answered(&gate, challenge, "s3cret", now), "INVITE", now),
                Ok(())
            );
            assert_eq!(
                gate.verify(&answered(&gate, challenge, "guess", now), "INVITE", now),
                Err(AuthFailure::Wrong("exotel".into()))
            );
        }
        assert!(gate.challenges(now)[0].1.contains("algorithm=SHA-256"));
        assert!(gate.challenges(now)[1].1.contains("algorithm=MD5"));
        assert!(
            gate.challenges(now)[0]
                .1
                .contains("realm=\"sip.vaani.example\"")
        );
        assert_eq!(gate.verify(&[], "INVITE", now), Err(AuthFailure::Missing));
    }

    #[test]
    fn old_or_forged_nonces_are_refused() {
        let gate = gate();
        let issued = 1_800_000_000;
        let headers = answered(&gate, 0, "s3cret", issued);
        assert_eq!(
            gate.verify(&headers, "INVITE", issued + NONCE_LIFETIME_SECS),
            Ok(())
        );
        assert_eq!(
            gate.verify(&headers, "INVITE", issued + NONCE_LIFETIME_SECS + 1),
            Err(AuthFailure::StaleNonce)
        );
        // Another process (another secret) issued it.
        let other = super::DigestGate::with_password(
            &InboundAuthConfig {
                username: "exotel".into(),
                password_env: "UNUSED".into(),
                realm: None,
                algorithms: vec!["SHA-256".into(), "MD5".into()],
            },
            "sip.vaani.example",
            "s3cret".into(),
        );
        assert_eq!(
            other.verify(&headers, "INVITE", issued),
            Err(AuthFailure::StaleNonce)
        );
        // A response for another method does not pass.
        assert!(gate.verify(&headers, "BYE", issued).is_err());
        let garbage = vec![("Authorization".to_string(), "Digest username=".to_string())];
        assert!(matches!(
            gate.verify(&garbage, "INVITE", issued),
            Err(AuthFailure::Malformed(_))
        ));
    }
}
