//! `[sip]`: SIP listeners and protocol timers.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize, Serializer};

use crate::checker::Checker;
use crate::error::ConfigError;
use crate::lenient;

/// Longest `[sip] shutdown_grace_secs` (one hour): a drain longer than that is a stuck stop.
pub const MAX_SHUTDOWN_GRACE_SECS: u32 = 3600;

/// Default `[sip] max_calls_per_minute_per_number`: new calls one dialled number takes per
/// minute.
pub const DEFAULT_CALLS_PER_MINUTE_PER_NUMBER: u32 = 10;

/// Default `[sip] max_invites_per_second_per_source`: new-call INVITEs one source address may
/// send per second (a provider sends every call from a few addresses, so this is high).
pub const DEFAULT_INVITES_PER_SECOND_PER_SOURCE: u32 = 100;

/// Highest value the rate settings take (0 turns a limit off).
const MAX_RATE_SETTING: u32 = 1_000_000;

/// `[sip]`: where SIP listens and how it presents itself.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SipConfig {
    /// UDP listen address. Default `0.0.0.0:5060`.
    pub listen_udp: SocketAddr,
    /// TCP listen address; `None` (an empty string in the file) disables TCP.
    /// Default `0.0.0.0:5060`.
    #[serde(serialize_with = "disabled_as_empty")]
    pub listen_tcp: Option<SocketAddr>,
    /// TLS listen address (usually port 5061); `None` (default) disables TLS.
    #[serde(serialize_with = "disabled_as_empty")]
    pub listen_tls: Option<SocketAddr>,
    /// PEM certificate chain for TLS (resolved against the config directory).
    /// Required when `listen_tls` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS (resolved against the config directory).
    /// Required when `listen_tls` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Host (DNS name or IP, no port) put in Contact and Via headers.
    /// Default `127.0.0.1`.
    pub public_address: String,
    /// `User-Agent`/`Server` header value. Default `vaani/<version>`.
    pub user_agent: String,
    /// RFC 3261 T1 (round-trip estimate) in ms; retransmission timers derive
    /// from it. Default 500.
    pub t1_ms: u64,
    /// On SIGTERM or Ctrl-C, how long calls in progress may go on while new INVITEs get
    /// `503`; calls still up then are hung up (BYE). 0 hangs up at once. Default 30.
    pub shutdown_grace_secs: u32,
    /// New calls each dialled number takes per minute (a burst of that many, then one every
    /// 60/n s); over it an INVITE gets `503` with `Retry-After`. A tenant may set its own
    /// (`[[tenants]] max_calls_per_minute_per_number`). 0: no limit. Default 10.
    pub max_calls_per_minute_per_number: u32,
    /// New-call INVITEs each source address may send per second (a burst of one second's
    /// worth); over it an INVITE gets `503` with `Retry-After`. 0: no limit. Default 100.
    pub max_invites_per_second_per_source: u32,
}

fn disabled_as_empty<S: Serializer>(addr: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
    match addr {
        Some(addr) => s.collect_str(addr),
        None => s.serialize_str(""),
    }
}

/// `[sip]` as written.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawSip {
    #[serde(deserialize_with = "lenient::string")]
    listen_udp: String,
    #[serde(deserialize_with = "lenient::string")]
    listen_tcp: String,
    #[serde(deserialize_with = "lenient::string")]
    listen_tls: String,
    #[serde(deserialize_with = "lenient::opt_string")]
    tls_cert: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    tls_key: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    public_address: String,
    #[serde(deserialize_with = "lenient::string")]
    user_agent: String,
    t1_ms: u64,
    shutdown_grace_secs: u32,
    max_calls_per_minute_per_number: u32,
    max_invites_per_second_per_source: u32,
}

impl Default for RawSip {
    fn default() -> Self {
        RawSip {
            listen_udp: "0.0.0.0:5060".to_owned(),
            listen_tcp: "0.0.0.0:5060".to_owned(),
            listen_tls: String::new(),
            tls_cert: None,
            tls_key: None,
            public_address: "127.0.0.1".to_owned(),
            user_agent: concat!("vaani/", env!("CARGO_PKG_VERSION")).to_owned(),
            t1_ms: 500,
            shutdown_grace_secs: 30,
            max_calls_per_minute_per_number: DEFAULT_CALLS_PER_MINUTE_PER_NUMBER,
            max_invites_per_second_per_source: DEFAULT_INVITES_PER_SECOND_PER_SOURCE,
        }
    }
}

impl RawSip {
    pub(crate) fn check(self, c: &mut Checker) -> SipConfig {
        let listen_udp = c.socket_addr("sip.listen_udp", &self.listen_udp);
        let listen_tcp = c.optional_socket_addr("sip.listen_tcp", &self.listen_tcp);
        let listen_tls = c.optional_socket_addr("sip.listen_tls", &self.listen_tls);
        let mut tls_file = |key: &str, value: Option<String>| {
            let path = value
                .filter(|v| !v.trim().is_empty())
                .map(|v| c.resolve(&v));
            match (&path, listen_tls) {
                (Some(path), Some(_)) => c.existing_file(key, path),
                (None, Some(_)) => c.push(ConfigError::Inconsistent {
                    key: key.to_owned(),
                    message: "required when sip.listen_tls is set".to_owned(),
                }),
                _ => {}
            }
            path
        };
        let tls_cert = tls_file("sip.tls_cert", self.tls_cert);
        let tls_key = tls_file("sip.tls_key", self.tls_key);
        let public_address = c.host("sip.public_address", &self.public_address);
        let user_agent = c.non_empty("sip.user_agent", &self.user_agent);
        c.in_range("sip.t1_ms", self.t1_ms, 10, 10_000);
        c.in_range(
            "sip.shutdown_grace_secs",
            self.shutdown_grace_secs,
            0,
            MAX_SHUTDOWN_GRACE_SECS,
        );
        c.in_range(
            "sip.max_calls_per_minute_per_number",
            self.max_calls_per_minute_per_number,
            0,
            MAX_RATE_SETTING,
        );
        c.in_range(
            "sip.max_invites_per_second_per_source",
            self.max_invites_per_second_per_source,
            0,
            MAX_RATE_SETTING,
        );
        SipConfig {
            listen_udp,
            listen_tcp,
            listen_tls,
            tls_cert,
            tls_key,
            public_address,
            user_agent,
            t1_ms: self.t1_ms,
            shutdown_grace_secs: self.shutdown_grace_secs,
            max_calls_per_minute_per_number: self.max_calls_per_minute_per_number,
            max_invites_per_second_per_source: self.max_invites_per_second_per_source,
        }
    }
}
