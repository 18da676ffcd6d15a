//! Configuration errors. Every error names the key it is about, written as a
//! path such as `tenants[1].numbers[0]` or `media.rtp_ports`.

use std::fmt;
use std::path::PathBuf;

/// One problem found in the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("{}: cannot read config file: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{origin}:{line}:{column}: invalid TOML: {message}")]
    Toml {
        /// The file (or `<string>`).
        origin: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A value has the wrong type or shape (reported by deserialisation).
    #[error("{key}: {message}")]
    Shape {
        /// Key path.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A key that the configuration does not have (typo?).
    #[error("{key}: unknown key (expected one of: {expected})")]
    UnknownKey {
        /// Key path.
        key: String,
        /// The keys allowed at this place.
        expected: String,
    },
    /// A required value is empty.
    #[error("{key}: must not be empty")]
    Empty {
        /// Key path.
        key: String,
    },
    /// Not an `IP:PORT` socket address.
    #[error("{key}: invalid socket address {value:?} (expected IP:PORT, e.g. 127.0.0.1:5060)")]
    InvalidSocketAddr {
        /// Key path.
        key: String,
        /// The value as written.
        value: String,
    },
    /// Not an IP address.
    #[error("{key}: invalid IP address {value:?}")]
    InvalidIp {
        /// Key path.
        key: String,
        /// The value as written.
        value: String,
    },
    /// Not a usable host name or address.
    #[error("{key}: invalid host {value:?} ({reason})")]
    InvalidHost {
        /// Key path.
        key: String,
        /// The value as written.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Not an id made of letters, digits, `-` and `_`.
    #[error("{key}: invalid id {value:?} (use ASCII letters, digits, '-' and '_')")]
    InvalidId {
        /// Key path.
        key: String,
        /// The value as written.
        value: String,
    },
    /// An id used twice.
    #[error("{key}: id {id:?} is already used by {first}")]
    DuplicateId {
        /// Key path.
        key: String,
        /// The id.
        id: String,
        /// Key path of the first use.
        first: String,
    },
    /// Not an E.164 phone number.
    #[error("{key}: {value:?} is not an E.164 number (+ and 8–15 digits)")]
    InvalidE164 {
        /// Key path.
        key: String,
        /// The value as written.
        value: String,
    },
    /// A phone number assigned twice.
    #[error("{key}: number {number} is already assigned at {first}")]
    DuplicateNumber {
        /// Key path.
        key: String,
        /// The number.
        number: String,
        /// Key path of the first assignment.
        first: String,
    },
    /// Not a CIDR network (or a bare IP address).
    #[error("{key}: invalid CIDR {value:?} (expected e.g. 10.0.0.0/8 or ::1/128)")]
    InvalidCidr {
        /// Key path.
        key: String,
        /// The value as written.
        value: String,
    },
    /// A bad RTP port range.
    #[error("{key}: {reason}")]
    InvalidPortRange {
        /// Key path.
        key: String,
        /// What is wrong, e.g. `start must be even and below end (got 20001-20999)`.
        reason: String,
    },
    /// A codec name that is not supported.
    #[error("{key}: unknown codec {value:?} (supported: PCMU, PCMA, G722, opus)")]
    UnknownCodec {
        /// Key path.
        key: String,
        /// The value as written.
        value: String,
    },
    /// A codec listed twice in one preference list.
    #[error("{key}: codec {value} is listed twice")]
    DuplicateCodec {
        /// Key path.
        key: String,
        /// The codec.
        value: String,
    },
    /// A tenant refers to a trunk that is not defined.
    #[error("{key}: unknown trunk {trunk:?} (defined [[trunks]] ids: {known})")]
    UnknownTrunk {
        /// Key path.
        key: String,
        /// The trunk id referred to.
        trunk: String,
        /// The ids that are defined.
        known: String,
    },
    /// A file named in the configuration does not exist.
    #[error("{key}: file not found: {}", path.display())]
    MissingFile {
        /// Key path.
        key: String,
        /// The resolved path.
        path: PathBuf,
    },
    /// A number outside its allowed range.
    #[error("{key}: {value} is out of range (expected {expected})")]
    OutOfRange {
        /// Key path.
        key: String,
        /// The value.
        value: String,
        /// The allowed range, e.g. `1..=1000`.
        expected: String,
    },
    /// A tenant sandbox override above the server-wide limit.
    #[error(
        "{key}: {value} exceeds the server limit {limit} (tenant sandbox overrides may only lower limits)"
    )]
    LimitRaised {
        /// Key path.
        key: String,
        /// The tenant's value.
        value: u64,
        /// The server-wide `[sandbox]` value.
        limit: u64,
    },
    /// A store URL with an unsupported scheme.
    #[error(
        "{key}: unsupported store URL {url:?} (expected sqlite://PATH, sqlite::memory: or postgres://…)"
    )]
    UnsupportedStoreUrl {
        /// Key path.
        key: String,
        /// The URL as written.
        url: String,
    },
    /// Not a usable URL.
    #[error("{key}: invalid URL {value:?} ({reason})")]
    InvalidUrl {
        /// Key path.
        key: String,
        /// The value as written.
        value: String,
        /// Why it is refused, e.g. `scheme must be http or https`.
        reason: String,
    },
    /// Not a host pattern (`api.example.com` or `*.example.com`).
    #[error("{key}: invalid host pattern {value:?} ({reason})")]
    InvalidHostPattern {
        /// Key path.
        key: String,
        /// The value as written.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Not an environment variable name.
    #[error(
        "{key}: invalid environment variable name {value:?} (use ASCII letters, digits and '_', not starting with a digit)"
    )]
    InvalidEnvName {
        /// Key path.
        key: String,
        /// The value as written.
        value: String,
    },
    /// A directory named in the configuration does not exist.
    #[error("{key}: directory not found: {}", path.display())]
    MissingDirectory {
        /// Key path.
        key: String,
        /// The resolved path.
        path: PathBuf,
    },
    /// Values that do not fit together.
    #[error("{key}: {message}")]
    Inconsistent {
        /// Key path.
        key: String,
        /// What does not fit.
        message: String,
    },
}

impl ConfigError {
    /// The key path the error is about (for file-level errors: the file).
    pub fn key(&self) -> String {
        match self {
            ConfigError::Read { path, .. } => path.display().to_string(),
            ConfigError::Toml { origin, .. } => origin.clone(),
            ConfigError::Shape { key, .. }
            | ConfigError::UnknownKey { key, .. }
            | ConfigError::Empty { key }
            | ConfigError::InvalidSocketAddr { key, .. }
            | ConfigError::InvalidIp { key, .. }
            | ConfigError::InvalidHost { key, .. }
            | ConfigError::InvalidId { key, .. }
            | ConfigError::DuplicateId { key, .. }
            | ConfigError::InvalidE164 { key, .. }
            | ConfigError::DuplicateNumber { key, .. }
            | ConfigError::InvalidCidr { key, .. }
            | ConfigError::InvalidPortRange { key, .. }
            | ConfigError::UnknownCodec { key, .. }
            | ConfigError::DuplicateCodec { key, .. }
            | ConfigError::UnknownTrunk { key, .. }
            | ConfigError::MissingFile { key, .. }
            | ConfigError::OutOfRange { key, .. }
            | ConfigError::LimitRaised { key, .. }
            | ConfigError::UnsupportedStoreUrl { key, .. }
            | ConfigError::InvalidUrl { key, .. }
            | ConfigError::InvalidHostPattern { key, .. }
            | ConfigError::InvalidEnvName { key, .. }
            | ConfigError::MissingDirectory { key, .. }
            | ConfigError::Inconsistent { key, .. } => key.clone(),
        }
    }
}

/// Every problem found while loading a configuration (never empty).
/// Displays one error per line.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The individual errors, in the order they were found.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }

    /// Number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are no errors (never the case for a returned `ConfigErrors`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
