//! `[trunks.outbound]`: placing calls out through a trunk, and `[[trunks]] srtp`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::checker::Checker;
use crate::error::ConfigError;
use crate::lenient;
use crate::tenant::is_e164;
use crate::trunk::TrunkProfile;

/// Whether calls on a trunk use SRTP (SDES keys, `RTP/SAVP`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SrtpPolicy {
    /// Plain RTP only; an offer that insists on SRTP gets `488`.
    #[default]
    Off,
    /// SRTP when the peer offers it, plain RTP otherwise.
    Optional,
    /// SRTP only; a plain offer gets `488` (Twilio Secure Trunking).
    Required,
}

impl SrtpPolicy {
    fn parse(c: &mut Checker, key: &str, text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "off" => SrtpPolicy::Off,
            "optional" => SrtpPolicy::Optional,
            "required" => SrtpPolicy::Required,
            _ => {
                c.push(ConfigError::Inconsistent {
                    key: key.to_owned(),
                    message: format!("{text:?} is not one of off, optional, required"),
                });
                SrtpPolicy::Off
            }
        }
    }
}

/// Calls vaani places through a trunk.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutboundConfig {
    /// Where INVITEs go: the provider's termination URI, e.g.
    /// `sip:example.pstn.twilio.com` or `sip:pstn.in2.exotel.com:5070;transport=tcp`.
    pub uri: String,
    /// Digest user name for providers that challenge (a Twilio credential list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Environment variable holding the digest password (never written in the file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Caller id (E.164) when a request names none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_id: Option<String>,
    /// Most new calls per second. Default: the profile's (Twilio 30 per source address,
    /// Exotel 200 per minute), else 10.
    pub calls_per_second: f64,
    /// Most outbound calls up at once on the trunk. Default 100.
    pub max_concurrent: u32,
    /// Seconds to ring before the call is cancelled as unanswered. Default 45.
    pub ring_timeout_secs: u32,
    /// PEM file of the CA certificates the trunk's TLS certificate must chain to (resolved
    /// against the config directory). Required when `uri` is TLS (`sips:` or
    /// `;transport=tls`): outbound TLS trusts only these roots, never the system's (servers
    /// may run offline, and a trunk's CA is a deliberate choice). The certificate must name
    /// the `uri`'s host, which is also sent as SNI. Unused for UDP and TCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
}

impl OutboundConfig {
    /// Whether calls go out over TLS (`sips:` or `;transport=tls` on the `uri`).
    pub fn uses_tls(&self) -> bool {
        uri_uses_tls(&self.uri)
    }
}

/// `sips:`, or a `transport=tls` parameter.
fn uri_uses_tls(uri: &str) -> bool {
    let lower = uri.trim().to_ascii_lowercase();
    lower.starts_with("sips:")
        || lower
            .split(';')
            .skip(1)
            .any(|param| param.trim() == "transport=tls")
}

/// `[trunks.outbound]` as written.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawOutbound {
    #[serde(deserialize_with = "lenient::string")]
    uri: String,
    #[serde(deserialize_with = "lenient::opt_string")]
    username: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    password_env: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    caller_id: Option<String>,
    calls_per_second: Option<f64>,
    max_concurrent: Option<u32>,
    ring_timeout_secs: Option<u32>,
    #[serde(deserialize_with = "lenient::opt_string")]
    tls_ca: Option<String>,
}

impl RawOutbound {
    /// Validates the table found at `key` (e.g. `trunks[0].outbound`).
    pub(crate) fn check(self, c: &mut Checker, key: &str, profile: TrunkProfile) -> OutboundConfig {
        let uri_key = format!("{key}.uri");
        let uri = self.uri.trim().to_owned();
        if uri.is_empty() {
            c.push(ConfigError::Empty { key: uri_key });
        } else if let Err(reason) = check_sip_uri(&uri) {
            c.push(ConfigError::Inconsistent {
                key: uri_key,
                message: format!("{uri:?} is not a SIP URI: {reason}"),
            });
        }
        let username = self
            .username
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty());
        let password_env = self
            .password_env
            .map(|name| c.env_name(&format!("{key}.password_env"), &name));
        if username.is_some() != password_env.is_some() {
            c.push(ConfigError::Inconsistent {
                key: format!("{key}.username"),
                message: "username and password_env go together".to_owned(),
            });
        }
        let caller_id = self.caller_id.map(|n| n.trim().to_owned());
        if let Some(number) = &caller_id
            && !is_e164(number)
        {
            c.push(ConfigError::Inconsistent {
                key: format!("{key}.caller_id"),
                message: format!("{number:?} is not an E.164 number (+ and 8-15 digits)"),
            });
        }
        let calls_per_second = self.calls_per_second.unwrap_or(match profile {
            TrunkProfile::Twilio => 30.0,
            TrunkProfile::Exotel => 200.0 / 60.0,
            TrunkProfile::Generic => 10.0,
        });
        c.in_range(
            &format!("{key}.calls_per_second"),
            calls_per_second,
            0.01,
            1000.0,
        );
        let max_concurrent = self.max_concurrent.unwrap_or(100);
        c.in_range(&format!("{key}.max_concurrent"), max_concurrent, 1, 10_000);
        let ring_timeout_secs = self.ring_timeout_secs.unwrap_or(45);
        c.in_range(
            &format!("{key}.ring_timeout_secs"),
            ring_timeout_secs,
            5,
            300,
        );
        let tls_ca_key = format!("{key}.tls_ca");
        let tls_ca = self
            .tls_ca
            .filter(|path| !path.trim().is_empty())
            .map(|path| c.resolve(path.trim()));
        match &tls_ca {
            Some(path) => c.existing_file(&tls_ca_key, path),
            None if uri_uses_tls(&uri) => c.push(ConfigError::Inconsistent {
                key: tls_ca_key,
                message: "required for a TLS uri (sips: or ;transport=tls): calls over TLS \
                          trust only this CA file, not the system's roots"
                    .to_owned(),
            }),
            None => {}
        }
        OutboundConfig {
            uri,
            username,
            password_env,
            caller_id,
            calls_per_second,
            max_concurrent,
            ring_timeout_secs,
            tls_ca,
        }
    }
}

/// `srtp` of a `[[trunks]]` entry.
pub(crate) fn check_srtp(c: &mut Checker, key: &str, text: Option<&str>) -> SrtpPolicy {
    SrtpPolicy::parse(c, key, text.unwrap_or(""))
}

/// A `sip:`/`sips:` URI with a host, an optional port and an optional transport.
fn check_sip_uri(uri: &str) -> Result<(), &'static str> {
    let rest = uri
        .strip_prefix("sips:")
        .or_else(|| uri.strip_prefix("sip:"))
        .ok_or("it must start with sip: or sips:")?;
    let mut parts = rest.split(';');
    let address = parts.next().unwrap_or("");
    let host_port = address.rsplit_once('@').map_or(address, |(_, h)| h);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => (host, Some(port)),
        _ => (host_port, None),
    };
    if host.is_empty()
        || !host
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '[' | ']' | ':'))
    {
        return Err("it needs a host name or address");
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err("the port must be 1-65535");
    }
    for param in parts {
        if let Some(transport) = param.strip_prefix("transport=")
            && !matches!(
                transport.to_ascii_lowercase().as_str(),
                "udp" | "tcp" | "tls"
            )
        {
            return Err("transport must be udp, tcp or tls");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{Config, LoadOptions};

    fn parse(text: &str, check_files: bool) -> Result<Config, crate::ConfigErrors> {
        let opts = LoadOptions {
            env: Vec::new(),
            check_files,
        };
        Config::from_toml_str(text, "test.toml", Path::new("/etc/vaani"), &opts)
    }

    const TRUNK: &str = "[http]\noperator_key = \"k\"\n[[trunks]]\nid = \"t\"\n[trunks.outbound]\n";

    #[test]
    fn a_tls_uri_needs_a_ca_file_resolved_against_the_config_directory() {
        for uri in [
            "sips:vaani.pstn.twilio.com",
            "sip:vaani.pstn.twilio.com;transport=tls",
            "sip:pstn.in2.exotel.com:443;transport=TLS",
        ] {
            let errors = parse(&format!("{TRUNK}uri = \"{uri}\"\n"), false).unwrap_err();
            let lines: Vec<String> = errors.errors().iter().map(|e| e.to_string()).collect();
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with("trunks[0].outbound.tls_ca: required for a TLS uri")),
                "{uri}: {lines:#?}"
            );
            let config = parse(
                &format!("{TRUNK}uri = \"{uri}\"\ntls_ca = \"certs/twilio-ca.pem\"\n"),
                false,
            )
            .unwrap();
            let outbound = config.trunk("t").unwrap().outbound.clone().unwrap();
            assert!(outbound.uses_tls(), "{uri}");
            assert_eq!(
                outbound.tls_ca.as_deref(),
                Some(Path::new("/etc/vaani/certs/twilio-ca.pem"))
            );
        }
        // Plain transports need none, and an absolute path stays as written.
        let config = parse(
            &format!("{TRUNK}uri = \"sip:pstn.in2.exotel.com:5070;transport=tcp\"\ntls_ca = \"/x/ca.pem\"\n"),
            false,
        )
        .unwrap();
        let outbound = config.trunk("t").unwrap().outbound.clone().unwrap();
        assert!(!outbound.uses_tls());
        assert_eq!(outbound.tls_ca.as_deref(), Some(Path::new("/x/ca.pem")));
        assert!(parse(&format!("{TRUNK}uri = \"sip:a.example\"\n"), false).is_ok());
    }

    #[test]
    fn a_missing_ca_file_is_reported_when_files_are_checked() {
        let errors = parse(
            &format!("{TRUNK}uri = \"sips:a.example\"\ntls_ca = \"/nonexistent/vaani-ca.pem\"\n"),
            true,
        )
        .unwrap_err();
        assert!(
            errors
                .errors()
                .iter()
                .any(|e| e.to_string().starts_with("trunks[0].outbound.tls_ca: ")),
            "{errors:?}"
        );
    }
}
