//! Reading the TOML text, layering `VAANI_<SECTION>__<KEY>` environment
//! overrides on top (figment), and splitting the result into raw sections.
//! Shape errors (wrong type, unknown key) are collected per section and per
//! array element, so one bad section does not hide the problems in another.

use std::str::FromStr;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Value};
use serde::de::DeserializeOwned;

use crate::error::ConfigError;
use crate::http::RawHttp;
use crate::log::RawLog;
use crate::media::RawMedia;
use crate::pricing::RawPricing;
use crate::sandbox::RawSandbox;
use crate::sip::RawSip;
use crate::speech::RawSpeech;
use crate::store::RawStore;
use crate::tenant::RawTenant;
use crate::trunk::RawTrunk;
use crate::vad::RawVad;
use crate::webhooks::RawWebhooks;

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "VAANI_";
/// Separator between section and key in an override's name (`VAANI_HTTP__LISTEN`).
pub const ENV_SEPARATOR: &str = "__";

const SECTIONS: [&str; 12] = [
    "sip", "media", "vad", "http", "store", "speech", "sandbox", "pricing", "log", "webhooks",
    "trunks", "tenants",
];

/// The configuration as written. `None` marks a section (or array element)
/// that had shape errors; those errors are already recorded.
#[derive(Default)]
pub(crate) struct RawConfig {
    pub(crate) sip: Option<RawSip>,
    pub(crate) media: Option<RawMedia>,
    pub(crate) vad: Option<RawVad>,
    pub(crate) http: Option<RawHttp>,
    pub(crate) store: Option<RawStore>,
    pub(crate) speech: Option<RawSpeech>,
    pub(crate) sandbox: Option<RawSandbox>,
    pub(crate) pricing: Option<RawPricing>,
    pub(crate) log: Option<RawLog>,
    pub(crate) webhooks: Option<RawWebhooks>,
    pub(crate) trunks: Vec<Option<RawTrunk>>,
    pub(crate) tenants: Vec<Option<RawTenant>>,
}

/// Parse `text` (from `origin`, for messages) with `env` overrides applied.
/// Returns `None` if the text is not TOML at all.
pub(crate) fn read_raw(
    text: &str,
    origin: &str,
    env: &[(String, String)],
    errors: &mut Vec<ConfigError>,
) -> Option<RawConfig> {
    if let Err(e) = toml::from_str::<toml::Table>(text) {
        let (line, column) = e
            .span()
            .map_or((1, 1), |span| line_column(text, span.start));
        errors.push(ConfigError::Toml {
            origin: origin.to_owned(),
            line,
            column,
            message: e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
        });
        return None;
    }

    let mut figment = Figment::from(Toml::string(text));
    for (name, value) in env {
        if let Some(key) = env_key(name) {
            let value = Value::from_str(value).unwrap_or_else(|_| Value::from(value.clone()));
            figment = figment.merge(Serialized::global(&key, value));
        }
    }
    let mut root: Dict = match figment.extract() {
        Ok(root) => root,
        Err(e) => {
            push_figment_errors(errors, "", e);
            return None;
        }
    };

    let mut raw = RawConfig {
        sip: Some(RawSip::default()),
        media: Some(RawMedia::default()),
        vad: Some(RawVad::default()),
        http: Some(RawHttp::default()),
        store: Some(RawStore::default()),
        speech: Some(RawSpeech::default()),
        sandbox: Some(RawSandbox::default()),
        pricing: Some(RawPricing::default()),
        log: Some(RawLog::default()),
        webhooks: Some(RawWebhooks::default()),
        trunks: Vec::new(),
        tenants: Vec::new(),
    };
    // Sections in their documented order, so errors come out in that order.
    for key in SECTIONS {
        let Some(value) = root.remove(key) else {
            continue;
        };
        match key {
            "sip" => raw.sip = section(errors, key, &value),
            "media" => raw.media = section(errors, key, &value),
            "vad" => raw.vad = section(errors, key, &value),
            "http" => raw.http = section(errors, key, &value),
            "store" => raw.store = section(errors, key, &value),
            "speech" => raw.speech = section(errors, key, &value),
            "sandbox" => raw.sandbox = section(errors, key, &value),
            "pricing" => raw.pricing = section(errors, key, &value),
            "log" => raw.log = section(errors, key, &value),
            "webhooks" => raw.webhooks = section(errors, key, &value),
            "trunks" => raw.trunks = array_of_tables(errors, key, &value),
            _ => raw.tenants = array_of_tables(errors, key, &value),
        }
    }
    for key in root.into_keys() {
        errors.push(ConfigError::UnknownKey {
            key,
            expected: SECTIONS.join(", "),
        });
    }
    Some(raw)
}

/// `VAANI_HTTP__LISTEN` → `http.listen`; `None` for variables that are not overrides
/// (wrong prefix, or no `__`, such as `VAANI_LOG`).
pub(crate) fn env_key(name: &str) -> Option<String> {
    let rest = name.strip_prefix(ENV_PREFIX)?;
    if !rest.contains(ENV_SEPARATOR) {
        return None;
    }
    Some(rest.to_ascii_lowercase().replace(ENV_SEPARATOR, "."))
}

/// Deserializes the table `value` found at `key`, recording shape errors with their key paths.
pub(crate) fn section<T: DeserializeOwned>(
    errors: &mut Vec<ConfigError>,
    key: &str,
    value: &Value,
) -> Option<T> {
    match value {
        Value::Dict(..) => value
            .deserialize::<T>()
            .map_err(|e| push_figment_errors(errors, key, e))
            .ok(),
        _ => {
            errors.push(ConfigError::Shape {
                key: key.to_owned(),
                message: format!("expected a table ([{key}])"),
            });
            None
        }
    }
}

fn array_of_tables<T: DeserializeOwned>(
    errors: &mut Vec<ConfigError>,
    key: &str,
    value: &Value,
) -> Vec<Option<T>> {
    let Value::Array(_, items) = value else {
        errors.push(ConfigError::Shape {
            key: key.to_owned(),
            message: format!("expected an array of tables ([[{key}]])"),
        });
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| section(errors, &format!("{key}[{i}]"), item))
        .collect()
}

/// Record each error in a figment error chain, with `prefix` before its path.
fn push_figment_errors(errors: &mut Vec<ConfigError>, prefix: &str, error: figment::Error) {
    for e in error {
        let mut key = prefix.to_owned();
        for segment in &e.path {
            if segment.bytes().all(|b| b.is_ascii_digit()) && !segment.is_empty() {
                key.push_str(&format!("[{segment}]"));
            } else {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(segment);
            }
        }
        match &e.kind {
            figment::error::Kind::UnknownField(field, expected) => {
                // figment usually has the field in the path already.
                if e.path.last() != Some(field) {
                    if !key.is_empty() {
                        key.push('.');
                    }
                    key.push_str(field);
                }
                errors.push(ConfigError::UnknownKey {
                    key,
                    expected: expected.join(", "),
                });
            }
            kind => errors.push(ConfigError::Shape {
                key: if key.is_empty() {
                    "<root>".to_owned()
                } else {
                    key
                },
                message: kind.to_string(),
            }),
        }
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
