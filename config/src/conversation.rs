//! `[tenants.llm]` and `[tenants.http]`: a tenant's language model and the hosts its
//! plugin may fetch from.
//!
//! Both tables are optional. Without `[tenants.llm]` the tenant has no language model;
//! without `[tenants.http]` every `http.fetch` of its plugin is refused. Secrets are never
//! written here: `api_key_env` names the environment variable that holds the key.

use serde::{Deserialize, Serialize};

use crate::checker::Checker;
use crate::error::ConfigError;
use crate::lenient;

/// Default `max_tokens` of a reply.
pub const DEFAULT_LLM_MAX_TOKENS: u32 = 300;
/// Default limit from request to first token, ms.
pub const DEFAULT_LLM_FIRST_TOKEN_TIMEOUT_MS: u64 = 4_000;
/// Default limit on a whole reply, ms.
pub const DEFAULT_LLM_TOTAL_TIMEOUT_MS: u64 = 20_000;
/// Default per-request limit of a plugin fetch, ms.
pub const DEFAULT_HTTP_TIMEOUT_MS: u64 = 5_000;
/// Highest `timeout_ms` a tenant may configure for plugin fetches.
pub const MAX_HTTP_TIMEOUT_MS: u64 = 30_000;
/// Default cap on a fetched response body, bytes (256 KiB).
pub const DEFAULT_HTTP_MAX_RESPONSE_BYTES: u64 = 256 * 1024;
/// Highest `max_response_bytes` a tenant may configure (4 MiB).
pub const MAX_HTTP_MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

/// `[tenants.llm]`: the OpenAI-compatible chat model a tenant's conversations use.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LlmSettings {
    /// API root of an OpenAI-compatible server, e.g. `https://api.openai.com/v1` or
    /// `http://127.0.0.1:8080/v1` (llama.cpp). Required; http or https.
    pub base_url: String,
    /// Model name sent with every request. Required.
    pub model: String,
    /// Name of the environment variable holding the API key; `None` sends no key
    /// (local servers). The key itself never appears in the configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Sampling temperature, 0–2; `None`: the provider's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Most tokens in one reply, 1–16384. Default 300.
    pub max_tokens: u32,
    /// Limit from sending a request to its first token, ms (100–60000). Default 4000.
    pub first_token_timeout_ms: u64,
    /// Limit on a whole reply, ms (1000–300000, at least `first_token_timeout_ms`).
    /// Default 20000.
    pub total_timeout_ms: u64,
    /// Write a summary and the caller's sentiment with the model when a call ends.
    /// Default true.
    pub summarize: bool,
}

/// `[tenants.http]`: where the tenant's plugin may send `http.fetch` requests.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HttpSettings {
    /// Host patterns the plugin may reach: `api.example.com` (that host) or
    /// `*.example.com` (any host below `example.com`, not `example.com` itself). Lower
    /// case, ASCII (write internationalised names in their `xn--` form).
    pub allow: Vec<String>,
    /// Allow hosts that resolve to loopback, private, link-local, CGNAT or other
    /// non-public addresses. Default false (protects against SSRF).
    pub allow_private: bool,
    /// Allow `http://` URLs. Default false: https only.
    pub allow_plain_http: bool,
    /// Longest a fetch may take, ms (100–30000). Default 5000; a plugin may ask for less.
    pub timeout_ms: u64,
    /// Largest response body accepted, bytes (1–4 MiB). Default 256 KiB.
    pub max_response_bytes: u64,
}

impl HttpSettings {
    /// Whether `host` (a DNS name or IP literal, as the `url` crate normalises it)
    /// matches one of the `allow` patterns. Case and a trailing dot are ignored.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allow
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(suffix) => host
                    .strip_suffix(suffix)
                    .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
                None => host == *pattern,
            })
    }
}

/// `[tenants.llm]` as written.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawLlm {
    #[serde(deserialize_with = "lenient::string")]
    base_url: String,
    #[serde(deserialize_with = "lenient::string")]
    model: String,
    #[serde(deserialize_with = "lenient::opt_string")]
    api_key_env: Option<String>,
    temperature: Option<f32>,
    max_tokens: u32,
    first_token_timeout_ms: u64,
    total_timeout_ms: u64,
    summarize: bool,
}

impl Default for RawLlm {
    fn default() -> Self {
        RawLlm {
            base_url: String::new(),
            model: String::new(),
            api_key_env: None,
            temperature: None,
            max_tokens: DEFAULT_LLM_MAX_TOKENS,
            first_token_timeout_ms: DEFAULT_LLM_FIRST_TOKEN_TIMEOUT_MS,
            total_timeout_ms: DEFAULT_LLM_TOTAL_TIMEOUT_MS,
            summarize: true,
        }
    }
}

impl RawLlm {
    /// Validates the table found at `key` (e.g. `tenants[0].llm`).
    pub(crate) fn check(self, c: &mut Checker, key: &str) -> LlmSettings {
        let base_url = self.base_url.trim().to_owned();
        let base_url_key = format!("{key}.base_url");
        if base_url.is_empty() {
            c.push(ConfigError::Empty { key: base_url_key });
        } else {
            c.url(&base_url_key, &base_url, &["http", "https"]);
        }
        let model = c.non_empty(&format!("{key}.model"), &self.model);
        let api_key_env = self
            .api_key_env
            .map(|name| c.env_name(&format!("{key}.api_key_env"), &name));
        if let Some(temperature) = self.temperature {
            c.in_range(&format!("{key}.temperature"), temperature, 0.0, 2.0);
        }
        c.in_range(&format!("{key}.max_tokens"), self.max_tokens, 1, 16_384);
        c.in_range(
            &format!("{key}.first_token_timeout_ms"),
            self.first_token_timeout_ms,
            100,
            60_000,
        );
        c.in_range(
            &format!("{key}.total_timeout_ms"),
            self.total_timeout_ms,
            1_000,
            300_000,
        );
        if self.total_timeout_ms < self.first_token_timeout_ms {
            c.push(ConfigError::Inconsistent {
                key: format!("{key}.total_timeout_ms"),
                message: format!(
                    "{} must be at least first_token_timeout_ms ({})",
                    self.total_timeout_ms, self.first_token_timeout_ms
                ),
            });
        }
        LlmSettings {
            base_url,
            model,
            api_key_env,
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            first_token_timeout_ms: self.first_token_timeout_ms,
            total_timeout_ms: self.total_timeout_ms,
            summarize: self.summarize,
        }
    }
}

/// `[tenants.http]` as written.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawHttpEgress {
    #[serde(deserialize_with = "lenient::strings")]
    allow: Vec<String>,
    allow_private: bool,
    allow_plain_http: bool,
    timeout_ms: u64,
    max_response_bytes: u64,
}

impl Default for RawHttpEgress {
    fn default() -> Self {
        RawHttpEgress {
            allow: Vec::new(),
            allow_private: false,
            allow_plain_http: false,
            timeout_ms: DEFAULT_HTTP_TIMEOUT_MS,
            max_response_bytes: DEFAULT_HTTP_MAX_RESPONSE_BYTES,
        }
    }
}

impl RawHttpEgress {
    /// Validates the table found at `key` (e.g. `tenants[0].http`).
    pub(crate) fn check(self, c: &mut Checker, key: &str) -> HttpSettings {
        let allow = self
            .allow
            .iter()
            .enumerate()
            .map(|(i, pattern)| {
                let pattern_key = format!("{key}.allow[{i}]");
                let normalised = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
                if let Some(reason) = host_pattern_problem(&normalised) {
                    c.push(ConfigError::InvalidHostPattern {
                        key: pattern_key,
                        value: pattern.clone(),
                        reason,
                    });
                }
                normalised
            })
            .collect();
        c.in_range(
            &format!("{key}.timeout_ms"),
            self.timeout_ms,
            100,
            MAX_HTTP_TIMEOUT_MS,
        );
        c.in_range(
            &format!("{key}.max_response_bytes"),
            self.max_response_bytes,
            1,
            MAX_HTTP_MAX_RESPONSE_BYTES,
        );
        HttpSettings {
            allow,
            allow_private: self.allow_private,
            allow_plain_http: self.allow_plain_http,
            timeout_ms: self.timeout_ms,
            max_response_bytes: self.max_response_bytes,
        }
    }
}

/// Why `pattern` (trimmed, lower-cased) is not a host pattern, or `None` if it is one.
fn host_pattern_problem(pattern: &str) -> Option<&'static str> {
    if pattern.is_empty() {
        return Some("must not be empty");
    }
    if pattern.contains("://") {
        return Some("write the host only, without a scheme");
    }
    if pattern.contains('/') || pattern.contains('?') || pattern.contains('#') {
        return Some("write the host only, without a path");
    }
    if pattern.contains(':') || pattern.contains('[') {
        return Some("write the host only, without a port (IPv6 literals are not supported)");
    }
    if pattern.contains('@') {
        return Some("write the host only, without user information");
    }
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    if name.contains('*') {
        return Some("a wildcard is only allowed as a leading \"*.\"");
    }
    if !name.is_ascii() {
        return Some("write internationalised names in their ASCII \"xn--\" form");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Some("empty label (two dots in a row, or a leading dot)");
        }
        if label.len() > 63 {
            return Some("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Some("use letters, digits, '-' and '.' only");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some("a label may not start or end with '-'");
        }
    }
    if pattern.starts_with("*.") && !name.contains('.') {
        return Some("a wildcard must be followed by at least two labels (*.example.com)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(allow: &[&str]) -> HttpSettings {
        HttpSettings {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            allow_private: false,
            allow_plain_http: false,
            timeout_ms: DEFAULT_HTTP_TIMEOUT_MS,
            max_response_bytes: DEFAULT_HTTP_MAX_RESPONSE_BYTES,
        }
    }

    #[test]
    fn exact_and_wildcard_patterns_match() {
        let s = settings(&["api.example.com", "*.shop.in"]);
        assert!(s.allows_host("api.example.com"));
        assert!(s.allows_host("API.Example.COM."));
        assert!(!s.allows_host("example.com"));
        assert!(!s.allows_host("evilapi.example.com"));
        assert!(!s.allows_host("api.example.com.evil.net"));
        assert!(s.allows_host("orders.shop.in"));
        assert!(s.allows_host("a.b.shop.in"));
        assert!(!s.allows_host("shop.in"));
        assert!(!s.allows_host("evilshop.in"));
        assert!(!settings(&[]).allows_host("api.example.com"));
    }

    #[test]
    fn host_patterns_are_validated() {
        for good in ["api.example.com", "*.example.com", "10.0.0.7", "localhost"] {
            assert_eq!(host_pattern_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "https://api.example.com",
            "api.example.com/v1",
            "api.example.com:443",
            "*",
            "*.com",
            "a.*.example.com",
            "api..example.com",
            "-api.example.com",
            "bücher.de",
            "user@host.com",
        ] {
            assert!(host_pattern_problem(bad).is_some(), "{bad}");
        }
    }
}
