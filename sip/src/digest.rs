//! HTTP digest authentication for SIP requests we send (RFC 3261 §22, RFC 7616, RFC 8760):
//! reading a `WWW-Authenticate`/`Proxy-Authenticate: Digest` challenge and writing the matching
//! `Authorization`/`Proxy-Authorization` value. MD5 and SHA-256, with `qop=auth` or no qop.
//!
//! Hashes come from the RustCrypto `md-5` and `sha2` crates.

use std::fmt::Write as _;

/// A username and password for digest authentication (e.g. a trunk's credential list entry).
#[derive(Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    /// The user name sent in `username=`.
    pub username: String,
    /// The shared secret; never written anywhere.
    pub password: String,
}

impl std::fmt::Debug for DigestCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The hash of a digest challenge (RFC 7616 §3.3, RFC 8760).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// `MD5` (also the meaning of no `algorithm` parameter).
    Md5,
    /// `SHA-256`.
    Sha256,
}

impl DigestAlgorithm {
    /// The algorithm an `algorithm=` token names (case-insensitive), if we support it.
    pub fn from_token(token: &str) -> Option<Self> {
        if token.eq_ignore_ascii_case("MD5") {
            Some(DigestAlgorithm::Md5)
        } else if token.eq_ignore_ascii_case("SHA-256") {
            Some(DigestAlgorithm::Sha256)
        } else {
            None
        }
    }

    /// The token written in `algorithm=`.
    pub fn token(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha256 => "SHA-256",
        }
    }

    /// Lower-case hex of the hash of `data`.
    pub fn hex_hash(self, data: &str) -> String {
        fn hex(bytes: &[u8]) -> String {
            let mut out = String::with_capacity(bytes.len() * 2);
            for b in bytes {
                // Writing to a String cannot fail.
                let _ = write!(out, "{b:02x}");
            }
            out
        }
        match self {
            DigestAlgorithm::Md5 => {
                use md5::Digest as _;
                hex(&md5::Md5::digest(data.as_bytes()))
            }
            DigestAlgorithm::Sha256 => {
                use sha2::Digest as _;
                hex(&sha2::Sha256::digest(data.as_bytes()))
            }
        }
    }
}

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The scheme is not `Digest` (e.g. `Basic`).
    #[error("authentication scheme is not Digest")]
    NotDigest,
    /// A mandatory parameter (`realm`, `nonce`) is missing.
    #[error("digest challenge has no {0}")]
    MissingParameter(&'static str),
    /// The algorithm is not MD5 or SHA-256 (e.g. `MD5-sess`, `SHA-512-256`).
    #[error("unsupported digest algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// The challenge offers only qop values we do not implement (e.g. `auth-int`).
    #[error("unsupported qop {0}")]
    UnsupportedQop(String),
}

/// A parsed `Digest` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, echoed back unchanged.
    pub opaque: Option<String>,
    /// `algorithm` (MD5 when absent).
    pub algorithm: DigestAlgorithm,
    /// Whether `qop=auth` is offered (we then answer with `qop=auth`, `nc` and `cnonce`).
    pub qop_auth: bool,
}

/// Splits the parameters of a `Digest` header (`a=b, c="d,e"`) into (name, unquoted value)
/// pairs; for challenges and for the credentials answering them.
pub fn auth_params(text: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else {
            break;
        };
        let name = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut escaped = false;
            let mut end = quoted.len();
            for (i, ch) in quoted.char_indices() {
                if escaped {
                    out.push(ch);
                    escaped = false;
                } else if ch == '\\' {
                    escaped = true;
                } else if ch == '"' {
                    end = i + 1;
                    break;
                } else {
                    out.push(ch);
                }
            }
            value = out;
            rest = quoted.get(end..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        params.push((name, value));
    }
    params
}

impl DigestChallenge {
    /// Parses a `WWW-Authenticate` or `Proxy-Authenticate` value.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let value = value.trim();
        let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(DigestError::NotDigest);
        }
        let params = auth_params(rest);
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let realm = get("realm").ok_or(DigestError::MissingParameter("realm"))?;
        let nonce = get("nonce").ok_or(DigestError::MissingParameter("nonce"))?;
        let algorithm = match get("algorithm") {
            None => DigestAlgorithm::Md5,
            Some(token) => DigestAlgorithm::from_token(&token)
                .ok_or(DigestError::UnsupportedAlgorithm(token))?,
        };
        let qop_auth = match get("qop") {
            None => false,
            Some(qop) => {
                if qop
                    .split(',')
                    .any(|q| q.trim().eq_ignore_ascii_case("auth"))
                {
                    true
                } else {
                    return Err(DigestError::UnsupportedQop(qop));
                }
            }
        };
        Ok(Self {
            realm,
            nonce,
            opaque: get("opaque"),
            algorithm,
            qop_auth,
        })
    }
}

/// The `response=` value (RFC 7616 §3.4.1; RFC 2617 §3.2.2.1 without qop). `qop` is `Some`
/// with `(nc, cnonce)` for `qop=auth`.
pub fn digest_response(
    algorithm: DigestAlgorithm,
    credentials: &DigestCredentials,
    realm: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str)>,
) -> String {
    let ha1 = algorithm.hex_hash(&format!(
        "{}:{realm}:{}",
        credentials.username, credentials.password
    ));
    let ha2 = algorithm.hex_hash(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce)) => {
            algorithm.hex_hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
        }
        None => algorithm.hex_hash(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// The nonce count we send: every challenge is answered once.
pub const NONCE_COUNT: &str = "00000001";

/// The `Authorization`/`Proxy-Authorization` value answering `challenge` for a request with
/// this method and Request-URI. `cnonce` is used only with `qop=auth`.
pub fn authorization(
    challenge: &DigestChallenge,
    credentials: &DigestCredentials,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> String {
    let qop = challenge.qop_auth.then_some((NONCE_COUNT, cnonce));
    let response = digest_response(
        challenge.algorithm,
        credentials,
        &challenge.realm,
        method,
        uri,
        &challenge.nonce,
        qop,
    );
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut value = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{response}\", algorithm={}",
        quote(&credentials.username),
        quote(&challenge.realm),
        quote(&challenge.nonce),
        quote(uri),
        challenge.algorithm.token(),
    );
    if challenge.qop_auth {
        let _ = write!(
            value,
            ", qop=auth, nc={NONCE_COUNT}, cnonce=\"{}\"",
            quote(cnonce)
        );
    }
    if let Some(opaque) = &challenge.opaque {
        let _ = write!(value, ", opaque=\"{}\"", quote(opaque));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mufasa() -> DigestCredentials {
        DigestCredentials {
            username: "Mufasa".to_string(),
            password: "Circle of Life".to_string(),
        }
    }

    const NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    /// RFC 7616 §3.9.1, MD5.
    #[test]
    fn rfc7616_md5_vector() {
        let response = digest_response(
            DigestAlgorithm::Md5,
            &mufasa(),
            "http-auth@example.org",
            "GET",
            "/dir/index.html",
            NONCE,
            Some(("00000001", CNONCE)),
        );
        assert_eq!(response, "8ca523f5e9506fed4657c9700eebdbec");
    }

    /// RFC 7616 §3.9.1, SHA-256.
    #[test]
    fn rfc7616_sha256_vector() {
        let response = digest_response(
            DigestAlgorithm::Sha256,
            &mufasa(),
            "http-auth@example.org",
            "GET",
            "/dir/index.html",
            NONCE,
            Some(("00000001", CNONCE)),
        );
        assert_eq!(
            response,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn parses_challenge_and_writes_authorization() {
        let challenge = DigestChallenge::parse(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        )
        .unwrap();
        assert_eq!(challenge.algorithm, DigestAlgorithm::Sha256);
        assert!(challenge.qop_auth);
        assert_eq!(challenge.realm, "http-auth@example.org");
        assert_eq!(
            challenge.opaque.as_deref(),
            Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
        );
        let value = authorization(&challenge, &mufasa(), "GET", "/dir/index.html", CNONCE);
        assert!(value.contains(
            "response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\""
        ));
        assert!(value.contains("qop=auth, nc=00000001"));
        assert!(value.contains("opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""));
    }

    #[test]
    fn no_qop_uses_rfc2617_form_and_rejects_others() {
        let challenge =
            DigestChallenge::parse(r#"Digest realm="sip.example", nonce="abc""#).unwrap();
        assert_eq!(challenge.algorithm, DigestAlgorithm::Md5);
        assert!(!challenge.qop_auth);
        let value = authorization(&challenge, &mufasa(), "INVITE", "sip:bob@x", "unused");
        let ha1 = DigestAlgorithm::Md5.hex_hash("Mufasa:sip.example:Circle of Life");
        let ha2 = DigestAlgorithm::Md5.hex_hash("INVITE:sip:bob@x");
        let expected = DigestAlgorithm::Md5.hex_hash(&format!("{ha1}:abc:{ha2}"));
        assert!(value.contains(&format!("response=\"{expected}\"")));
        assert!(!value.contains("qop"));
        assert_eq!(
            DigestChallenge::parse("Basic realm=\"x\""),
            Err(DigestError::NotDigest)
        );
        assert!(matches!(
            DigestChallenge::parse(r#"Digest realm="x", nonce="n", algorithm=MD5-sess"#),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        assert_eq!(
            DigestChallenge::parse(r#"Digest realm="x""#),
            Err(DigestError::MissingParameter("nonce"))
        );
    }
}
