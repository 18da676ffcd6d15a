//! `[store]`: where call records live.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::checker::Checker;
use crate::error::ConfigError;
use crate::lenient;

/// `[store]`: the database.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoreConfig {
    /// Database URL: `sqlite://PATH`, `sqlite::memory:` or `postgres://…`.
    /// Default `sqlite://data/vaani.db`. After loading, a relative SQLite path
    /// has been resolved against the config file's directory, so this URL can
    /// be passed to the store as it is.
    pub url: String,
    /// Directory call recordings are written to (one sub-directory per tenant). Default
    /// `data/recordings`, resolved against the config file's directory.
    pub recordings_dir: PathBuf,
    /// This server's name among the nodes sharing the database (ASCII letters, digits, `-`,
    /// `_`; at most [`MAX_NODE_ID_LEN`]). Calls are stamped with it, and crash recovery at start
    /// fails only this node's unfinished calls. `None` (default): the machine's host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
}

/// Longest `[store] node_id`.
pub const MAX_NODE_ID_LEN: usize = 64;

/// `[store]` as written.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawStore {
    #[serde(deserialize_with = "lenient::string")]
    url: String,
    #[serde(deserialize_with = "lenient::string")]
    recordings_dir: String,
    #[serde(deserialize_with = "lenient::opt_string")]
    node_id: Option<String>,
}

/// `url` with any password in it (`scheme://user:PASSWORD@host`, `?password=…`) replaced by
/// `***`, for messages and `check-config` output.
pub(crate) fn redact_password(url: &str) -> String {
    let mut shown = url.to_owned();
    if let Some(scheme_end) = shown.find("://") {
        let authority_start = scheme_end + 3;
        let authority_end = shown[authority_start..]
            .find(['/', '?', '#'])
            .map_or(shown.len(), |i| authority_start + i);
        if let Some(at) = shown[authority_start..authority_end].rfind('@') {
            let userinfo = &shown[authority_start..authority_start + at];
            if let Some(colon) = userinfo.find(':') {
                let password_start = authority_start + colon + 1;
                shown.replace_range(password_start..authority_start + at, "***");
            }
        }
    }
    let mut from = 0;
    while let Some(found) = shown[from..].to_ascii_lowercase().find("password=") {
        let value_start = from + found + "password=".len();
        let before = shown[..from + found].chars().last();
        if matches!(before, Some('?' | '&')) {
            let value_end = shown[value_start..]
                .find(['&', '#'])
                .map_or(shown.len(), |i| value_start + i);
            shown.replace_range(value_start..value_end, "***");
            from = value_start + 3;
        } else {
            from = value_start;
        }
    }
    shown
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            url: "sqlite://data/vaani.db".to_owned(),
            recordings_dir: "data/recordings".to_owned(),
            node_id: None,
        }
    }
}

impl RawStore {
    pub(crate) fn check(self, c: &mut Checker) -> StoreConfig {
        let url = self.url.trim();
        let is_postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
        let is_sqlite_memory = url == "sqlite::memory:" || url.contains("mode=memory");
        let resolved = if is_postgres || is_sqlite_memory {
            url.to_owned()
        } else if let Some(rest) = url.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let (path, query) = match rest.split_once('?') {
                Some((path, query)) => (path, Some(query)),
                None => (rest, None),
            };
            if path.is_empty() {
                c.push(ConfigError::UnsupportedStoreUrl {
                    key: "store.url".to_owned(),
                    url: url.to_owned(),
                });
                url.to_owned()
            } else {
                let path = c.resolve(path);
                match query {
                    Some(query) => format!("sqlite://{}?{query}", path.display()),
                    None => format!("sqlite://{}", path.display()),
                }
            }
        } else {
            c.push(ConfigError::UnsupportedStoreUrl {
                key: "store.url".to_owned(),
                url: redact_password(url),
            });
            url.to_owned()
        };
        let recordings_dir = c.non_empty("store.recordings_dir", &self.recordings_dir);
        let recordings_dir = c.resolve(&recordings_dir);
        let node_id = self.node_id.filter(|id| !id.trim().is_empty()).map(|id| {
            let id = c.id("store.node_id", id.trim());
            if id.len() > MAX_NODE_ID_LEN {
                c.push(ConfigError::Inconsistent {
                    key: "store.node_id".to_owned(),
                    message: format!("at most {MAX_NODE_ID_LEN} characters"),
                });
            }
            id
        });
        StoreConfig {
            url: resolved,
            recordings_dir,
            node_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_password;

    #[test]
    fn passwords_in_store_urls_are_hidden() {
        assert_eq!(
            redact_password("postgres://vaani:s3cr%40t@db.internal:5432/vaani"),
            "postgres://vaani:***@db.internal:5432/vaani"
        );
        assert_eq!(
            redact_password("postgres://db/vaani?user=v&password=hunter2&sslmode=require"),
            "postgres://db/vaani?user=v&password=***&sslmode=require"
        );
        assert_eq!(
            redact_password("mysql://root:pw@host/db?PASSWORD=x"),
            "mysql://root:***@host/db?PASSWORD=***"
        );
        for unchanged in [
            "postgres://vaani@db/vaani",
            "sqlite://data/vaani.db",
            "sqlite:",
            "postgres://db/a?nopassword=1",
        ] {
            assert_eq!(redact_password(unchanged), unchanged);
        }
    }
}
