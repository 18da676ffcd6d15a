//! `[log]`: how the server writes its log lines.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::checker::Checker;
use crate::error::ConfigError;
use crate::lenient;

/// `[log]`: the shape of log lines. Which lines are written (the level and per-module
/// filter) stays with the `RUST_LOG` environment variable (default `info`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogConfig {
    /// `json` (default): one JSON object per line, with the fields of the enclosing spans
    /// (`call_id`, `tenant_id`, …) flattened in; `text`: human-readable lines for a terminal.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Json,
        }
    }
}

/// The shape of each log line (`[log] format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One flat JSON object per line, for log collectors.
    Json,
    /// `tracing`'s plain-text lines, for humans at a terminal.
    Text,
}

impl LogFormat {
    /// Every format, as written in the file.
    pub const ALL: [LogFormat; 2] = [LogFormat::Json, LogFormat::Text];

    /// The name written in the file (`json`, `text`).
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Json => "json",
            LogFormat::Text => "text",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[log]` as written.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawLog {
    #[serde(deserialize_with = "lenient::string")]
    format: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            format: LogFormat::Json.as_str().to_owned(),
        }
    }
}

impl RawLog {
    pub(crate) fn check(self, c: &mut Checker) -> LogConfig {
        let written = self.format.trim().to_ascii_lowercase();
        let format = match LogFormat::ALL.into_iter().find(|f| f.as_str() == written) {
            Some(format) => format,
            None => {
                let allowed: Vec<String> = LogFormat::ALL
                    .iter()
                    .map(|f| format!("{:?}", f.as_str()))
                    .collect();
                c.push(ConfigError::Inconsistent {
                    key: "log.format".to_owned(),
                    message: format!("{:?} is not one of {}", self.format, allowed.join(", ")),
                });
                LogFormat::Json
            }
        };
        LogConfig { format }
    }
}
