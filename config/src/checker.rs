//! The validation pass: turns raw (as-written) values into typed ones and
//! collects every problem with its key path instead of stopping at the first.

use std::fmt::Display;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::error::ConfigError;

/// Collects errors while raw sections are converted to typed ones.
pub(crate) struct Checker {
    errors: Vec<ConfigError>,
    config_dir: PathBuf,
    check_files: bool,
}

impl Checker {
    pub(crate) fn new(config_dir: PathBuf, check_files: bool) -> Checker {
        Checker {
            errors: Vec::new(),
            config_dir,
            check_files,
        }
    }

    pub(crate) fn push(&mut self, error: ConfigError) {
        self.errors.push(error);
    }

    pub(crate) fn into_errors(self) -> Vec<ConfigError> {
        self.errors
    }

    /// `IP:PORT`; on error records it and returns a placeholder.
    pub(crate) fn socket_addr(&mut self, key: &str, value: &str) -> SocketAddr {
        value.trim().parse().unwrap_or_else(|_| {
            self.push(ConfigError::InvalidSocketAddr {
                key: key.to_owned(),
                value: value.to_owned(),
            });
            SocketAddr::from(([0, 0, 0, 0], 0))
        })
    }

    /// Like [`Checker::socket_addr`], but an empty string means "disabled" (`None`).
    pub(crate) fn optional_socket_addr(&mut self, key: &str, value: &str) -> Option<SocketAddr> {
        if value.trim().is_empty() {
            None
        } else {
            Some(self.socket_addr(key, value))
        }
    }

    /// An IP address; on error records it and returns a placeholder.
    pub(crate) fn ip(&mut self, key: &str, value: &str) -> IpAddr {
        value.trim().parse().unwrap_or_else(|_| {
            self.push(ConfigError::InvalidIp {
                key: key.to_owned(),
                value: value.to_owned(),
            });
            IpAddr::from([0, 0, 0, 0])
        })
    }

    /// A host name or IP address without port, for SIP Contact and SDP.
    pub(crate) fn host(&mut self, key: &str, value: &str) -> String {
        let value = value.trim();
        let reason = if value.is_empty() {
            Some("must not be empty")
        } else if value.contains(char::is_whitespace) {
            Some("must not contain spaces")
        } else if value.contains(':') && value.parse::<Ipv6Addr>().is_err() {
            Some("write the host only, without a port")
        } else if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        {
            Some("use a DNS name or an IP address")
        } else {
            None
        };
        if let Some(reason) = reason {
            self.push(ConfigError::InvalidHost {
                key: key.to_owned(),
                value: value.to_owned(),
                reason,
            });
        }
        value.to_owned()
    }

    /// Records an error if `value` is empty (after trimming); returns it trimmed.
    pub(crate) fn non_empty(&mut self, key: &str, value: &str) -> String {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            self.push(ConfigError::Empty {
                key: key.to_owned(),
            });
        }
        trimmed.to_owned()
    }

    /// An identifier: non-empty ASCII letters, digits, `-`, `_`.
    pub(crate) fn id(&mut self, key: &str, value: &str) -> String {
        if value.is_empty() {
            self.push(ConfigError::Empty {
                key: key.to_owned(),
            });
        } else if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.push(ConfigError::InvalidId {
                key: key.to_owned(),
                value: value.to_owned(),
            });
        }
        value.to_owned()
    }

    /// Records an error unless `min <= value <= max`.
    pub(crate) fn in_range<T: PartialOrd + Display>(
        &mut self,
        key: &str,
        value: T,
        min: T,
        max: T,
    ) {
        if value < min || value > max {
            self.push(ConfigError::OutOfRange {
                key: key.to_owned(),
                value: value.to_string(),
                expected: format!("{min}..={max}"),
            });
        }
    }

    /// `path` resolved against the configuration file's directory if relative.
    pub(crate) fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.config_dir.join(path)
        }
    }

    /// The directory relative paths are resolved against.
    pub(crate) fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// Records an error if file checks are on and `path` is not an existing file.
    pub(crate) fn existing_file(&mut self, key: &str, path: &Path) {
        if self.check_files && !path.is_file() {
            self.push(ConfigError::MissingFile {
                key: key.to_owned(),
                path: path.to_path_buf(),
            });
        }
    }

    /// Records an error if file checks are on and `path` is not an existing directory.
    pub(crate) fn existing_dir(&mut self, key: &str, path: &Path) {
        if self.check_files && !path.is_dir() {
            self.push(ConfigError::MissingDirectory {
                key: key.to_owned(),
                path: path.to_path_buf(),
            });
        }
    }

    /// Records an error unless `value` is an absolute URL with one of `schemes`, a host,
    /// and no user information. Returns the value trimmed.
    pub(crate) fn url(&mut self, key: &str, value: &str, schemes: &[&str]) -> String {
        let value = value.trim();
        if let Some(reason) = url_problem(value, schemes) {
            self.push(ConfigError::InvalidUrl {
                key: key.to_owned(),
                value: value.to_owned(),
                reason,
            });
        }
        value.to_owned()
    }

    /// Records an error unless `value` is an environment variable name
    /// (`[A-Za-z_][A-Za-z0-9_]*`). Returns it trimmed.
    pub(crate) fn env_name(&mut self, key: &str, value: &str) -> String {
        let value = value.trim();
        let valid = value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            self.push(ConfigError::InvalidEnvName {
                key: key.to_owned(),
                value: value.to_owned(),
            });
        }
        value.to_owned()
    }
}

/// Why `value` is not an absolute URL with one of `schemes` and a host, or `None`.
fn url_problem(value: &str, schemes: &[&str]) -> Option<String> {
    let Some((scheme, rest)) = value.split_once("://") else {
        return Some(format!("expected {}://HOST/…", schemes.join(" or ")));
    };
    if !schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return Some(format!("scheme must be {}", schemes.join(" or ")));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Some("must not contain credentials".to_owned());
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Some("has no host".to_owned());
    }
    if value.contains(char::is_whitespace) {
        return Some("must not contain spaces".to_owned());
    }
    None
}
