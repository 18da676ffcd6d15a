//! Typed vaani configuration.
//!
//! [`Config::load`] reads a TOML file, applies environment overrides named
//! `VAANI_<SECTION>__<KEY>` (e.g. `VAANI_HTTP__LISTEN=127.0.0.1:9000`,
//! `VAANI_MEDIA__RTP_PORTS=30000-30999`), then validates everything and
//! reports *every* problem with its key path (`tenants[1].numbers[0]: …`),
//! one per line. Unknown keys are errors, so typos are caught.
//!
//! Relative paths (plugin files, TLS files, a SQLite store path) are resolved
//! against the directory of the config file while loading, so the values in
//! [`Config`] can be used as they are.
//!
//! Overrides address `[section] key` values only; arrays of tables
//! (`[[trunks]]`, `[[tenants]]`) cannot be changed from the environment.
//! Environment variables with the prefix but without `__` (e.g. `VAANI_LOG`)
//! are not overrides and are ignored here.

mod auth;
mod checker;
mod conversation;
mod error;
mod http;
mod lenient;
mod log;
mod media;
mod outbound;
mod pricing;
mod recording;
mod sandbox;
mod sip;
mod source;
mod speech;
mod store;
mod tenant;
mod trunk;
mod turns;
mod vad;
mod webhooks;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use auth::InboundAuthConfig;
pub use conversation::{
    DEFAULT_HTTP_MAX_RESPONSE_BYTES, DEFAULT_HTTP_TIMEOUT_MS, DEFAULT_LLM_FIRST_TOKEN_TIMEOUT_MS,
    DEFAULT_LLM_MAX_TOKENS, DEFAULT_LLM_TOTAL_TIMEOUT_MS, HttpSettings, LlmSettings,
    MAX_HTTP_MAX_RESPONSE_BYTES, MAX_HTTP_TIMEOUT_MS,
};
pub use error::{ConfigError, ConfigErrors};
pub use http::{DEFAULT_REQUEST_BURST_PER_KEY, DEFAULT_REQUESTS_PER_SECOND_PER_KEY, HttpConfig};
pub use log::{LogConfig, LogFormat};
pub use media::{Codec, MediaConfig, PortRange, UnknownCodec};
pub use outbound::{OutboundConfig, SrtpPolicy};
pub use pricing::{
    EMBEDDED_STT_ENGINES, EMBEDDED_TTS_ENGINES, LlmPrice, MAX_RATE_INR, PRICING_CURRENCY,
    PricingConfig, SttPrice, TelephonyBilling, TtsPrice,
};
pub use recording::RecordingConfig;
pub use sandbox::{SandboxConfig, SandboxLimits};
pub use sip::SipConfig;
pub use source::{ENV_PREFIX, ENV_SEPARATOR};
pub use speech::{CLOUD_SPEECH_ENGINES, STT_ENGINES, SpeechConfig, TTS_ENGINES};
pub use store::{MAX_NODE_ID_LEN, StoreConfig};
pub use tenant::{
    DEFAULT_FALLBACK_TEXT, NOT_SETTINGS, TenantConfig, TenantIdentity, check_tenant_settings,
    is_e164, resolve_transfer_target,
};
pub use trunk::{EXOTEL_SIGNALLING, TWILIO_MEDIA, TWILIO_SIGNALLING, TrunkConfig, TrunkProfile};
pub use turns::TurnsConfig;
pub use vad::VadConfig;
pub use webhooks::WebhooksConfig;

use checker::Checker;
use source::RawConfig;

/// The whole, validated configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    /// `[sip]`: SIP listeners.
    pub sip: SipConfig,
    /// `[media]`: RTP, codecs, barge-in.
    pub media: MediaConfig,
    /// `[vad]`: voice activity detection.
    pub vad: VadConfig,
    /// `[http]`: HTTP API listener and operator key.
    pub http: HttpConfig,
    /// `[store]`: database URL.
    pub store: StoreConfig,
    /// `[speech]`: speech engines.
    pub speech: SpeechConfig,
    /// `[sandbox]`: plugin limits.
    pub sandbox: SandboxConfig,
    /// `[pricing]`: the INR price table for each call's cost ledger.
    pub pricing: PricingConfig,
    /// `[log]`: the shape of log lines (JSON or text).
    pub log: LogConfig,
    /// `[webhooks]`: delivery of tenants' webhook events.
    pub webhooks: WebhooksConfig,
    /// `[[trunks]]`: SIP providers.
    pub trunks: Vec<TrunkConfig>,
    /// `[[tenants]]`: businesses, their numbers and plugins.
    pub tenants: Vec<TenantConfig>,
    /// Absolute directory of the config file; relative paths were resolved against it.
    #[serde(skip)]
    pub config_dir: PathBuf,
}

/// How [`Config::load_with`] reads its inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// Environment variables to consider as overrides (name, value); only
    /// `VAANI_<SECTION>__<KEY>` names are used.
    pub env: Vec<(String, String)>,
    /// Whether files named in the config (plugins, TLS files) must exist.
    pub check_files: bool,
}

impl LoadOptions {
    /// This process's `VAANI_*` environment variables, with file checks on.
    pub fn from_process_env() -> LoadOptions {
        let env = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .collect();
        LoadOptions {
            env,
            check_files: true,
        }
    }

    /// No environment overrides, with file checks on.
    pub fn without_env() -> LoadOptions {
        LoadOptions {
            env: Vec::new(),
            check_files: true,
        }
    }
}

impl Config {
    /// Load `path` with this process's `VAANI_*` overrides and check that the
    /// files it names exist.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Config::load_with(path, &LoadOptions::from_process_env())
    }

    /// Load `path` with explicit overrides and file-check setting.
    pub fn load_with(path: &Path, options: &LoadOptions) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let config_dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        Config::from_toml_str(&text, &path.display().to_string(), &config_dir, options)
    }

    /// Parse and validate TOML `text`; `origin` names it in messages and
    /// relative paths resolve against `config_dir`.
    pub fn from_toml_str(
        text: &str,
        origin: &str,
        config_dir: &Path,
        options: &LoadOptions,
    ) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        let raw = source::read_raw(text, origin, &options.env, &mut errors);
        let mut checker = Checker::new(config_dir.to_path_buf(), options.check_files);
        let config = raw.map(|raw| check(raw, &mut checker));
        errors.extend(checker.into_errors());
        match config {
            Some(config) if errors.is_empty() => Ok(config),
            _ => Err(ConfigErrors(errors)),
        }
    }

    /// The configuration as TOML with secrets (`http.operator_key`) replaced
    /// by `<redacted>` and any password in the store URL by `***`, for logs and `check-config`
    /// output.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.http.operator_key = http::REDACTED.to_owned();
        shown.store.url = store::redact_password(&shown.store.url);
        toml::to_string_pretty(&shown)
            .unwrap_or_else(|e| format!("# configuration cannot be shown as TOML: {e}\n"))
    }

    /// The trunk with this id.
    pub fn trunk(&self, id: &str) -> Option<&TrunkConfig> {
        self.trunks.iter().find(|t| t.id == id)
    }

    /// The tenant with this id.
    pub fn tenant(&self, id: &str) -> Option<&TenantConfig> {
        self.tenants.iter().find(|t| t.id == id)
    }

    /// The tenant a dialled E.164 number routes to.
    pub fn tenant_for_number(&self, number: &str) -> Option<&TenantConfig> {
        self.tenants
            .iter()
            .find(|t| t.numbers.iter().any(|n| n == number))
    }
}

/// Convert and cross-check the raw sections. A section that already failed
/// to deserialise is replaced by its defaults, checked silently, so it does
/// not add follow-on errors.
fn check(raw: RawConfig, c: &mut Checker) -> Config {
    let mut silent = Checker::new(c.config_dir().to_path_buf(), false);
    let sip = match raw.sip {
        Some(s) => s.check(c),
        None => sip::RawSip::default().check(&mut silent),
    };
    let media = match raw.media {
        Some(s) => s.check(c),
        None => media::RawMedia::default().check(&mut silent),
    };
    let vad = match raw.vad {
        Some(s) => s.check(c),
        None => vad::RawVad::default().check(&mut silent),
    };
    let http = match raw.http {
        Some(s) => s.check(c),
        None => http::RawHttp::default().check(&mut silent),
    };
    let store = match raw.store {
        Some(s) => s.check(c),
        None => store::RawStore::default().check(&mut silent),
    };
    let speech = match raw.speech {
        Some(s) => s.check(c),
        None => speech::RawSpeech::default().check(&mut silent),
    };
    let sandbox = match raw.sandbox {
        Some(s) => s.check(c),
        None => sandbox::RawSandbox::default().check(&mut silent),
    };
    let pricing = match raw.pricing {
        Some(s) => s.check(c),
        None => pricing::RawPricing::default().check(&mut silent),
    };
    let log = match raw.log {
        Some(s) => s.check(c),
        None => log::RawLog::default().check(&mut silent),
    };
    let webhooks = match raw.webhooks {
        Some(s) => s.check(c),
        None => webhooks::RawWebhooks::default().check(&mut silent),
    };

    let trunks_complete = raw.trunks.iter().all(Option::is_some);
    let mut trunks = Vec::new();
    let mut trunk_keys: HashMap<String, String> = HashMap::new();
    for (i, raw_trunk) in raw.trunks.into_iter().enumerate() {
        let Some(raw_trunk) = raw_trunk else { continue };
        let key = format!("trunks[{i}]");
        let trunk = raw_trunk.check(c, &key);
        if let Some(first) = trunk_keys.get(&trunk.id) {
            c.push(ConfigError::DuplicateId {
                key: format!("{key}.id"),
                id: trunk.id.clone(),
                first: format!("{first}.id"),
            });
        } else {
            trunk_keys.insert(trunk.id.clone(), key);
        }
        trunks.push(trunk);
    }
    let mut known_trunks: Vec<&str> = trunks.iter().map(|t| t.id.as_str()).collect();
    known_trunks.sort_unstable();
    let known_trunks = if known_trunks.is_empty() {
        "none".to_owned()
    } else {
        known_trunks.join(", ")
    };

    let limits = sandbox.limits();
    let mut tenants = Vec::new();
    let mut tenant_keys: HashMap<String, String> = HashMap::new();
    let mut number_keys: HashMap<String, String> = HashMap::new();
    for (i, raw_tenant) in raw.tenants.into_iter().enumerate() {
        let Some(raw_tenant) = raw_tenant else {
            continue;
        };
        let key = format!("tenants[{i}]");
        let tenant = raw_tenant.check(c, &key, &limits);
        if let Some(first) = tenant_keys.get(&tenant.id) {
            c.push(ConfigError::DuplicateId {
                key: format!("{key}.id"),
                id: tenant.id.clone(),
                first: format!("{first}.id"),
            });
        } else {
            tenant_keys.insert(tenant.id.clone(), key.clone());
        }
        if !tenant.trunk.is_empty() && trunks_complete && !trunk_keys.contains_key(&tenant.trunk) {
            c.push(ConfigError::UnknownTrunk {
                key: format!("{key}.trunk"),
                trunk: tenant.trunk.clone(),
                known: known_trunks.clone(),
            });
        }
        for (j, number) in tenant.numbers.iter().enumerate() {
            let number_key = format!("{key}.numbers[{j}]");
            if let Some(first) = number_keys.get(number) {
                c.push(ConfigError::DuplicateNumber {
                    key: number_key,
                    number: number.clone(),
                    first: first.clone(),
                });
            } else {
                number_keys.insert(number.clone(), number_key);
            }
        }
        tenants.push(tenant);
    }

    Config {
        sip,
        media,
        vad,
        http,
        store,
        speech,
        sandbox,
        pricing,
        log,
        webhooks,
        trunks,
        tenants,
        config_dir: c.config_dir().to_path_buf(),
    }
}
