//! SDES key exchange for SRTP (RFC 4568): the SDP `a=crypto` attribute.
//!
//! Twilio Secure Trunking and Exotel's TLS variant key SRTP this way (`RTP/SAVP` with
//! `a=crypto` lines). We support the suites `AES_CM_128_HMAC_SHA1_80` and
//! `AES_CM_128_HMAC_SHA1_32`, one `inline:` key per line, without MKI (Twilio does not support
//! MKI either). Pure: no I/O.
//!
//! The value after `a=crypto:` is `<tag> <suite> <key-params> [<session-params>...]` with
//! `key-params` = `inline:<base64 of 16-byte key || 14-byte salt>[|<lifetime>][|<mki>:<len>]`.
//! Lines we cannot honour are refused with a typed [`SdesError`]: unknown suites, MKI, more than
//! one key, a key of the wrong length, bad base64, and the session parameters that would change
//! the packet format or key derivation (`UNENCRYPTED_SRTP`, `UNENCRYPTED_SRTCP`,
//! `UNAUTHENTICATED_SRTP`, a non-zero `KDR`). Other session parameters (`WSH`, `FEC_ORDER`, …)
//! are tolerated and ignored.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rand::Rng as _;

/// Length of the SRTP master key of the supported suites (bytes).
pub const SDES_KEY_LEN: usize = 16;
/// Length of the SRTP master salt (bytes).
pub const SDES_SALT_LEN: usize = 14;

/// Standard alphabet; padding accepted whether present or not (30 bytes never need any).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// RFC 3711 §9.2: at most 2^48 SRTP packets under one master key.
const MAX_LIFETIME_LOG2: u32 = 48;

/// An SRTP crypto suite of `a=crypto` (RFC 4568 §6.2) that we support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    /// `AES_CM_128_HMAC_SHA1_80`: AES-128 counter mode, 80-bit HMAC-SHA1 tag.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`: AES-128 counter mode, 32-bit HMAC-SHA1 tag.
    AesCm128HmacSha1_32,
}

impl SrtpSuite {
    /// The suite's name as written in SDP.
    pub fn name(self) -> &'static str {
        match self {
            Self::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }
}

impl fmt::Display for SrtpSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SrtpSuite {
    type Err = SdesError;

    /// Parses a suite name (case-sensitive, as RFC 4568 registers them).
    fn from_str(s: &str) -> Result<Self, SdesError> {
        match s {
            "AES_CM_128_HMAC_SHA1_80" => Ok(Self::AesCm128HmacSha1_80),
            "AES_CM_128_HMAC_SHA1_32" => Ok(Self::AesCm128HmacSha1_32),
            other => Err(SdesError::UnknownSuite(other.to_owned())),
        }
    }
}

/// Why an `a=crypto` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdesError {
    /// The tag, suite or key parameters are missing.
    #[error("a=crypto: missing {0}")]
    Missing(&'static str),
    /// The tag is not 1 to 9 decimal digits.
    #[error("a=crypto: bad tag {0:?} (1 to 9 digits expected)")]
    BadTag(String),
    /// A crypto suite we do not support.
    #[error("a=crypto: unsupported crypto suite {0}")]
    UnknownSuite(String),
    /// A key method other than `inline:`.
    #[error("a=crypto: unsupported key method in {0:?} (only inline: is supported)")]
    UnsupportedKeyMethod(String),
    /// More than one key (`;`-separated key parameters, used with MKI).
    #[error("a=crypto: several keys in one line are not supported")]
    MultipleKeys,
    /// The key and salt are not valid base64.
    #[error("a=crypto: key and salt are not valid base64")]
    BadBase64,
    /// The decoded key and salt do not have the suite's length.
    #[error("a=crypto: key and salt are {actual} bytes, {expected} expected")]
    KeyLength {
        /// Bytes the suite needs (key + salt).
        expected: usize,
        /// Bytes decoded.
        actual: usize,
    },
    /// The key lifetime is not `2^n` or a decimal packet count, or exceeds 2^48.
    #[error("a=crypto: bad key lifetime {0:?}")]
    BadLifetime(String),
    /// The key carries a master key identifier (MKI), which we do not support.
    #[error("a=crypto: MKI {0:?} is not supported")]
    MkiNotSupported(String),
    /// A session parameter that changes the packet format or key derivation.
    #[error("a=crypto: unsupported session parameter {0:?}")]
    UnsupportedSessionParam(String),
}

/// One `a=crypto` attribute with a single inline key and no MKI.
#[derive(Clone, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// The tag (1 to 999 999 999): the answer echoes the tag of the offer line it accepts.
    pub tag: u32,
    /// The crypto suite.
    pub suite: SrtpSuite,
    /// SRTP master key.
    pub master_key: [u8; SDES_KEY_LEN],
    /// SRTP master salt.
    pub master_salt: [u8; SDES_SALT_LEN],
    /// Key lifetime in packets (`|2^31`), if given. Informational: calls never come near it.
    pub lifetime: Option<u64>,
}

impl fmt::Debug for CryptoAttribute {
    /// Never prints key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoAttribute")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl CryptoAttribute {
    /// A new attribute with fresh random key material (the thread-local CSPRNG), for our own
    /// offer or answer.
    pub fn generate(tag: u32, suite: SrtpSuite) -> Self {
        let mut rng = rand::rng();
        let mut master_key = [0u8; SDES_KEY_LEN];
        let mut master_salt = [0u8; SDES_SALT_LEN];
        rng.fill(&mut master_key[..]);
        rng.fill(&mut master_salt[..]);
        Self {
            tag,
            suite,
            master_key,
            master_salt,
            lifetime: None,
        }
    }

    /// Master key || master salt, as the media side takes them.
    pub fn key_salt(&self) -> [u8; SDES_KEY_LEN + SDES_SALT_LEN] {
        let mut out = [0u8; SDES_KEY_LEN + SDES_SALT_LEN];
        out[..SDES_KEY_LEN].copy_from_slice(&self.master_key);
        out[SDES_KEY_LEN..].copy_from_slice(&self.master_salt);
        out
    }

    /// Parses the value of an `a=crypto` attribute (a leading `a=crypto:` or `crypto:` is
    /// accepted too).
    pub fn parse(value: &str) -> Result<Self, SdesError> {
        let value = value.trim();
        let value = value
            .strip_prefix("a=crypto:")
            .or_else(|| value.strip_prefix("crypto:"))
            .unwrap_or(value);
        let mut fields = value.split_ascii_whitespace();
        let tag = fields.next().ok_or(SdesError::Missing("tag"))?;
        if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SdesError::BadTag(tag.to_owned()));
        }
        let tag: u32 = tag.parse().map_err(|_| SdesError::BadTag(tag.to_owned()))?;
        let suite: SrtpSuite = fields.next().ok_or(SdesError::Missing("suite"))?.parse()?;
        let key_params = fields.next().ok_or(SdesError::Missing("key parameters"))?;
        for param in fields {
            check_session_param(param)?;
        }
        if key_params.contains(';') {
            return Err(SdesError::MultipleKeys);
        }
        let Some(key_info) = strip_prefix_ignore_case(key_params, "inline:") else {
            return Err(SdesError::UnsupportedKeyMethod(key_params.to_owned()));
        };
        let mut parts = key_info.split('|');
        let key_salt = parts.next().unwrap_or_default();
        let mut lifetime = None;
        for part in parts {
            if part.contains(':') {
                return Err(SdesError::MkiNotSupported(part.to_owned()));
            }
            if lifetime.is_some() {
                return Err(SdesError::BadLifetime(part.to_owned()));
            }
            lifetime = Some(parse_lifetime(part)?);
        }
        let decoded = BASE64.decode(key_salt).map_err(|_| SdesError::BadBase64)?;
        let expected = SDES_KEY_LEN + SDES_SALT_LEN;
        if decoded.len() != expected {
            return Err(SdesError::KeyLength {
                expected,
                actual: decoded.len(),
            });
        }
        let mut master_key = [0u8; SDES_KEY_LEN];
        let mut master_salt = [0u8; SDES_SALT_LEN];
        master_key.copy_from_slice(&decoded[..SDES_KEY_LEN]);
        master_salt.copy_from_slice(&decoded[SDES_KEY_LEN..]);
        Ok(Self {
            tag,
            suite,
            master_key,
            master_salt,
            lifetime,
        })
    }
}

impl FromStr for CryptoAttribute {
    type Err = SdesError;

    /// Same as [`CryptoAttribute::parse`].
    fn from_str(s: &str) -> Result<Self, SdesError> {
        Self::parse(s)
    }
}

impl fmt::Display for CryptoAttribute {
    /// Writes the attribute value (without `a=crypto:`): `1 AES_CM_128_HMAC_SHA1_80
    /// inline:<base64>[|2^n]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} inline:{}",
            self.tag,
            self.suite,
            BASE64.encode(self.key_salt())
        )?;
        match self.lifetime {
            Some(n) if n.is_power_of_two() => write!(f, "|2^{}", n.trailing_zeros()),
            Some(n) => write!(f, "|{n}"),
            None => Ok(()),
        }
    }
}

/// The offered line to accept: the first one (in offer order) of the most preferred suite in
/// `preference` that is offered at all; `None` if no offered suite is acceptable.
pub fn choose<'a>(
    offered: &'a [CryptoAttribute],
    preference: &[SrtpSuite],
) -> Option<&'a CryptoAttribute> {
    preference
        .iter()
        .find_map(|suite| offered.iter().find(|c| c.suite == *suite))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `lifetime = ["2^"] 1*(DIGIT)`, at most 2^48.
fn parse_lifetime(s: &str) -> Result<u64, SdesError> {
    let bad = || SdesError::BadLifetime(s.to_owned());
    let digits = |d: &str| -> Result<u64, SdesError> {
        if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        d.parse().map_err(|_| bad())
    };
    let packets = match s.strip_prefix("2^") {
        Some(exp) => {
            let exp = digits(exp)?;
            if exp > MAX_LIFETIME_LOG2 as u64 {
                return Err(bad());
            }
            1u64 << exp
        }
        None => digits(s)?,
    };
    if packets == 0 || packets > 1u64 << MAX_LIFETIME_LOG2 {
        return Err(bad());
    }
    Ok(packets)
}

/// Session parameters (RFC 4568 §6.3): refuse the ones that change what we would do.
fn check_session_param(param: &str) -> Result<(), SdesError> {
    let name = param.split('=').next().unwrap_or_default();
    let refused = match name {
        "UNENCRYPTED_SRTP" | "UNENCRYPTED_SRTCP" | "UNAUTHENTICATED_SRTP" => true,
        // Key derivation rate: only 0 (derive once) is supported.
        "KDR" => param.strip_prefix("KDR=") != Some("0"),
        _ => false,
    };
    if refused {
        Err(SdesError::UnsupportedSessionParam(param.to_owned()))
    } else {
        Ok(())
    }
}
