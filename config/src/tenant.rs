//! `[[tenants]]`: the businesses served, their numbers and plugins.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::checker::Checker;
use crate::conversation::{HttpSettings, LlmSettings, RawHttpEgress, RawLlm};
use crate::error::ConfigError;
use crate::lenient;
use crate::recording::{RawRecording, RecordingConfig};
use crate::sandbox::{RawTenantSandbox, SandboxLimits};
use crate::turns::{RawTurns, TurnsConfig};

/// What a caller hears shortly before the maximum call duration, unless configured.
pub const DEFAULT_DURATION_WARNING_TEXT: &str =
    "We are almost out of time. This call will end shortly.";

/// What a caller hears when the tenant's plugin fails, unless configured.
pub const DEFAULT_FALLBACK_TEXT: &str = "Sorry, we are having trouble. Please call again later.";

/// One `[[tenants]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TenantConfig {
    /// Identifier (letters, digits, `-`, `_`). Required, unique.
    pub id: String,
    /// Display name. Default: the id.
    pub name: String,
    /// E.164 numbers (`+918000000001`) routed to this tenant; unique across tenants.
    pub numbers: Vec<String>,
    /// Id of the `[[trunks]]` entry these numbers are reached through. Required.
    pub trunk: String,
    /// The tenant's plugin component (`.wasm`), resolved against the config
    /// file's directory. `None`: no plugin configured (calls get the fallback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PathBuf>,
    /// Spoken when the plugin fails or is missing.
    /// Default "Sorry, we are having trouble. Please call again later."
    pub fallback_text: String,
    /// Tenant settings handed to the plugin as a JSON object
    /// (an inline TOML table in the file). Default `{}`.
    pub plugin_config: serde_json::Map<String, serde_json::Value>,
    /// Tell the plugin after this much caller silence, ms. `None`: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silence_timeout_ms: Option<u64>,
    /// Ring (send `180 Ringing`) this long before answering, ms. Default 0: answer at once.
    pub ring_ms: u32,
    /// Longest a call may last, seconds; `None`: no limit. The caller hears
    /// `duration_warning_text` `duration_warning_secs` before the end, then vaani hangs up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_call_duration_secs: Option<u32>,
    /// How long before the maximum duration the warning is spoken, seconds. Default 30.
    pub duration_warning_secs: u32,
    /// Spoken before the maximum duration ends the call.
    pub duration_warning_text: String,
    /// Effective plugin limits: `[sandbox]` lowered by this tenant's
    /// `[tenants.sandbox]` overrides (which may only lower them).
    pub sandbox: SandboxLimits,
    /// When a caller's turn is over (`[tenants.turns]`).
    pub turns: TurnsConfig,
    /// `[tenants.llm]`: the tenant's language model; `None`: the tenant has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmSettings>,
    /// `[tenants.http]`: hosts the tenant's plugin may fetch from; `None`: every plugin
    /// fetch is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSettings>,
    /// `[tenants.transfer_targets]`: where the tenant's plugin may transfer callers, by name
    /// (`frontdesk = "sip:+918000000009@trunk.example"`). The plugin names a target or gives
    /// one of these URIs; anything else is refused. Default: none (no transfers).
    pub transfer_targets: BTreeMap<String, String>,
    /// `[tenants.recording]`: call recording (off unless enabled).
    pub recording: RecordingConfig,
    /// New calls each of the tenant's numbers takes per minute; `None`: `[sip]
    /// max_calls_per_minute_per_number`. 0: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_calls_per_minute_per_number: Option<u32>,
    /// Most calls (inbound and placed) the tenant may have up at once; an INVITE over it gets
    /// `486 Busy Here`. `None` (default): no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_calls: Option<u32>,
}

impl TenantConfig {
    /// The URI of a transfer target the plugin asked for: a name from `transfer_targets`, or
    /// one of its URIs (compared ignoring ASCII case). `None`: not on the tenant's list.
    pub fn transfer_target(&self, target: &str) -> Option<&str> {
        resolve_transfer_target(&self.transfer_targets, target)
    }
}

/// The URI of `target` in a tenant's transfer targets: a name from `targets`, or one of its
/// URIs (compared ignoring ASCII case). `None`: not on the list.
pub fn resolve_transfer_target<'a>(
    targets: &'a BTreeMap<String, String>,
    target: &str,
) -> Option<&'a str> {
    targets
        .get(target)
        .or_else(|| {
            targets
                .values()
                .find(|uri| uri.eq_ignore_ascii_case(target))
        })
        .map(String::as_str)
}

/// Whether `uri` is a `sip:`, `sips:` or `tel:` URI that fits in a `Refer-To` (printable, no
/// spaces, quotes or angle brackets, at most 256 bytes).
fn is_transfer_uri(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    ["sip:", "sips:", "tel:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme) && lower.len() > scheme.len())
        && uri.len() <= 256
        && uri
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"'))
}

/// Keys of a `[[tenants]]` entry that are not settings: a tenant kept in the database has
/// its id and name in its row, claims its numbers (`/api/v1/numbers`, each with its trunk) and
/// uploads its plugin (`/api/v1/plugins`).
pub const NOT_SETTINGS: [&str; 5] = ["id", "name", "numbers", "trunk", "plugin"];

/// Who a tenant kept in the database is and where its calls arrive: everything of a
/// [`TenantConfig`] that its settings do not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantIdentity {
    /// The tenant id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The trunk its calls arrive over and its outbound calls leave by.
    pub trunk: String,
    /// Its numbers (E.164), the default caller id first.
    pub numbers: Vec<String>,
}

impl TenantConfig {
    /// A tenant kept in the database: `identity` plus its settings, a JSON object with the
    /// keys of a `[[tenants]]` entry except [`NOT_SETTINGS`] (`fallback_text`, `ring_ms`,
    /// `plugin_config`, `turns`, `sandbox`, `llm`, `http`, `transfer_targets`, `recording`,
    /// …). The settings are checked exactly as `[[tenants]]` entries of the file are, and
    /// every key left out takes its default (`{}` is a valid tenant). `server_limits` are the
    /// `[sandbox]` limits, which the settings may only lower.
    ///
    /// On error, every problem found, one message each, with its key path under `settings.`
    /// (`settings.ring_ms: 70000 is out of range …`).
    pub fn from_settings_json(
        identity: TenantIdentity,
        settings: &serde_json::Value,
        server_limits: &SandboxLimits,
    ) -> Result<TenantConfig, Vec<String>> {
        let Some(object) = settings.as_object() else {
            return Err(vec!["settings: must be a JSON object".to_owned()]);
        };
        let mut messages = Vec::new();
        let mut raw = object.clone();
        for key in NOT_SETTINGS {
            if raw.remove(key).is_some() {
                messages.push(format!(
                    "settings.{key}: not a setting (a tenant's id and name are its own fields, \
                     numbers are claimed with /api/v1/numbers and plugins uploaded with \
                     /api/v1/plugins)"
                ));
            }
        }
        raw.insert("id".to_owned(), identity.id.into());
        raw.insert("name".to_owned(), identity.name.into());
        raw.insert("trunk".to_owned(), identity.trunk.into());
        raw.insert("numbers".to_owned(), identity.numbers.into());
        let value = match figment::value::Value::serialize(&raw) {
            Ok(value) => value,
            Err(error) => return Err(vec![format!("settings: {error}")]),
        };
        let mut errors = Vec::new();
        let raw: Option<RawTenant> = crate::source::section(&mut errors, "settings", &value);
        // Settings name no files, so nothing is resolved against a directory or checked on
        // disk.
        let mut checker = Checker::new(std::path::PathBuf::new(), false);
        let tenant = raw.map(|raw| raw.check(&mut checker, "settings", server_limits));
        errors.extend(checker.into_errors());
        for error in &mut errors {
            // The keys the settings may have, not those of a whole `[[tenants]]` table.
            if let ConfigError::UnknownKey { expected, .. } = error {
                *expected = expected
                    .split(", ")
                    .filter(|key| !NOT_SETTINGS.contains(key))
                    .collect::<Vec<_>>()
                    .join(", ");
            }
        }
        messages.extend(errors.iter().map(ToString::to_string));
        match tenant {
            Some(tenant) if messages.is_empty() => Ok(tenant),
            _ => Err(messages),
        }
    }
}

/// Checks a tenant's settings JSON as [`TenantConfig::from_settings_json`] reads them; on
/// error, every problem found.
pub fn check_tenant_settings(
    settings: &serde_json::Value,
    server_limits: &SandboxLimits,
) -> Result<(), Vec<String>> {
    let identity = TenantIdentity {
        id: "tenant".to_owned(),
        name: "tenant".to_owned(),
        trunk: "trunk".to_owned(),
        numbers: Vec::new(),
    };
    TenantConfig::from_settings_json(identity, settings, server_limits).map(drop)
}

/// `[[tenants]]` as written.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawTenant {
    #[serde(deserialize_with = "lenient::string")]
    id: String,
    #[serde(deserialize_with = "lenient::string")]
    name: String,
    #[serde(deserialize_with = "lenient::strings")]
    numbers: Vec<String>,
    #[serde(deserialize_with = "lenient::string")]
    trunk: String,
    #[serde(deserialize_with = "lenient::opt_string")]
    plugin: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    fallback_text: String,
    plugin_config: serde_json::Map<String, serde_json::Value>,
    silence_timeout_ms: Option<u64>,
    ring_ms: u32,
    max_call_duration_secs: Option<u32>,
    duration_warning_secs: u32,
    #[serde(deserialize_with = "lenient::string")]
    duration_warning_text: String,
    sandbox: RawTenantSandbox,
    turns: RawTurns,
    llm: Option<RawLlm>,
    http: Option<RawHttpEgress>,
    transfer_targets: BTreeMap<String, String>,
    recording: RawRecording,
    max_calls_per_minute_per_number: Option<u32>,
    max_concurrent_calls: Option<u32>,
}

impl Default for RawTenant {
    fn default() -> Self {
        RawTenant {
            id: String::new(),
            name: String::new(),
            numbers: Vec::new(),
            trunk: String::new(),
            plugin: None,
            fallback_text: DEFAULT_FALLBACK_TEXT.to_owned(),
            plugin_config: serde_json::Map::new(),
            silence_timeout_ms: None,
            ring_ms: 0,
            max_call_duration_secs: None,
            duration_warning_secs: 30,
            duration_warning_text: DEFAULT_DURATION_WARNING_TEXT.to_owned(),
            sandbox: RawTenantSandbox::default(),
            turns: RawTurns::default(),
            llm: None,
            http: None,
            transfer_targets: BTreeMap::new(),
            recording: RawRecording::default(),
            max_calls_per_minute_per_number: None,
            max_concurrent_calls: None,
        }
    }
}

/// `+` then 8–15 digits, the first not zero.
pub fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

impl RawTenant {
    pub(crate) fn check(
        self,
        c: &mut Checker,
        key: &str,
        server_limits: &SandboxLimits,
    ) -> TenantConfig {
        let id = c.id(&format!("{key}.id"), self.id.trim());
        let name = match self.name.trim() {
            "" => id.clone(),
            name => name.to_owned(),
        };
        for (i, number) in self.numbers.iter().enumerate() {
            if !is_e164(number) {
                c.push(ConfigError::InvalidE164 {
                    key: format!("{key}.numbers[{i}]"),
                    value: number.clone(),
                });
            }
        }
        let trunk = c.non_empty(&format!("{key}.trunk"), &self.trunk);
        let plugin = self.plugin.map(|path| {
            let plugin_key = format!("{key}.plugin");
            if path.trim().is_empty() {
                c.push(ConfigError::Empty {
                    key: plugin_key.clone(),
                });
            }
            let resolved = c.resolve(path.trim());
            c.existing_file(&plugin_key, &resolved);
            resolved
        });
        let fallback_text = c.non_empty(&format!("{key}.fallback_text"), &self.fallback_text);
        if let Some(ms) = self.silence_timeout_ms {
            c.in_range(&format!("{key}.silence_timeout_ms"), ms, 500, 600_000);
        }
        c.in_range(
            &format!("{key}.ring_ms"),
            u64::from(self.ring_ms),
            0,
            60_000,
        );
        if let Some(max) = self.max_call_duration_secs {
            c.in_range(&format!("{key}.max_call_duration_secs"), max, 2, 86_400);
            if self.duration_warning_secs >= max {
                c.push(ConfigError::Inconsistent {
                    key: format!("{key}.duration_warning_secs"),
                    message: format!(
                        "{} must be below max_call_duration_secs ({max})",
                        self.duration_warning_secs
                    ),
                });
            }
        }
        let duration_warning_text = c.non_empty(
            &format!("{key}.duration_warning_text"),
            &self.duration_warning_text,
        );
        let sandbox = self
            .sandbox
            .check(c, &format!("{key}.sandbox"), server_limits);
        let turns = self.turns.check(c, &format!("{key}.turns"));
        let llm = self.llm.map(|llm| llm.check(c, &format!("{key}.llm")));
        let http = self.http.map(|http| http.check(c, &format!("{key}.http")));
        for (name, uri) in &self.transfer_targets {
            let entry = format!("{key}.transfer_targets.{name}");
            c.id(&entry, name);
            if !is_transfer_uri(uri.trim()) {
                c.push(ConfigError::InvalidUrl {
                    key: entry,
                    value: uri.clone(),
                    reason: "a transfer target is a sip:, sips: or tel: URI without spaces or <>"
                        .to_string(),
                });
            }
        }
        let transfer_targets = self
            .transfer_targets
            .into_iter()
            .map(|(name, uri)| (name, uri.trim().to_string()))
            .collect();
        let recording = self.recording.check(c, &format!("{key}.recording"));
        if let Some(per_minute) = self.max_calls_per_minute_per_number {
            c.in_range(
                &format!("{key}.max_calls_per_minute_per_number"),
                per_minute,
                0,
                1_000_000,
            );
        }
        if let Some(concurrent) = self.max_concurrent_calls {
            c.in_range(
                &format!("{key}.max_concurrent_calls"),
                concurrent,
                1,
                1_000_000,
            );
        }
        TenantConfig {
            id,
            name,
            numbers: self.numbers,
            trunk,
            plugin,
            fallback_text,
            plugin_config: self.plugin_config,
            silence_timeout_ms: self.silence_timeout_ms,
            ring_ms: self.ring_ms,
            max_call_duration_secs: self.max_call_duration_secs,
            duration_warning_secs: self.duration_warning_secs,
            duration_warning_text,
            sandbox,
            turns,
            llm,
            http,
            transfer_targets,
            recording,
            max_calls_per_minute_per_number: self.max_calls_per_minute_per_number,
            max_concurrent_calls: self.max_concurrent_calls,
        }
    }
}
