//! `[[trunks]]`: SIP providers allowed to send calls.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::auth::{InboundAuthConfig, RawInboundAuth};
use crate::checker::Checker;
use crate::error::ConfigError;
use crate::lenient;
use crate::media::{Codec, check_codecs};
use crate::outbound::{OutboundConfig, RawOutbound, SrtpPolicy, check_srtp};

/// Which provider a trunk is: sets the defaults a trunk from it needs to work the first time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrunkProfile {
    /// Any SIP trunk: no defaults beyond the server's.
    #[default]
    Generic,
    /// Twilio Elastic SIP Trunking.
    Twilio,
    /// Exotel vSIP.
    Exotel,
}

/// Twilio's published signalling networks; it fails over between all of them
/// (<https://www.twilio.com/docs/sip-trunking/ip-addresses>).
pub const TWILIO_SIGNALLING: [&str; 8] = [
    "54.172.60.0/30",
    "54.244.51.0/30",
    "54.171.127.192/30",
    "35.156.191.128/30",
    "54.65.63.192/30",
    "54.169.127.128/30",
    "54.252.254.64/30",
    "177.71.206.192/30",
];

/// Exotel's published vSIP addresses (Mumbai and Karnataka data centres); its INVITEs come
/// from these hosts.
pub const EXOTEL_SIGNALLING: [&str; 4] = [
    "182.76.143.61/32",
    "122.15.8.184/32",
    "14.194.10.247/32",
    "61.246.82.75/32",
];

/// Twilio's media network, the only one since 21 February 2024.
pub const TWILIO_MEDIA: [&str; 1] = ["168.86.128.0/18"];

impl TrunkProfile {
    const NAMES: [&str; 3] = ["generic", "twilio", "exotel"];

    fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "generic" => Some(TrunkProfile::Generic),
            "twilio" => Some(TrunkProfile::Twilio),
            "exotel" => Some(TrunkProfile::Exotel),
            _ => None,
        }
    }

    /// Signalling networks accepted when the trunk lists none.
    pub fn default_cidrs(self) -> Vec<IpNet> {
        let list: &[&str] = match self {
            TrunkProfile::Generic => &[],
            TrunkProfile::Twilio => &TWILIO_SIGNALLING,
            TrunkProfile::Exotel => &EXOTEL_SIGNALLING,
        };
        list.iter().filter_map(|net| parse_cidr(net)).collect()
    }

    /// Networks RTP is accepted from when the trunk lists none (empty: any source).
    pub fn default_media_cidrs(self) -> Vec<IpNet> {
        let list: &[&str] = match self {
            TrunkProfile::Generic => &[],
            TrunkProfile::Twilio => &TWILIO_MEDIA,
            // Exotel's media comes from the same four hosts as its signalling.
            TrunkProfile::Exotel => &EXOTEL_SIGNALLING,
        };
        list.iter().filter_map(|net| parse_cidr(net)).collect()
    }

    /// Codec preference when the trunk sets none: Twilio offers PCMU first, Exotel (Indian
    /// PSTN, A-law) PCMA first.
    pub fn default_codecs(self) -> Option<Vec<Codec>> {
        match self {
            TrunkProfile::Generic => None,
            TrunkProfile::Twilio => Some(vec![Codec::Pcmu, Codec::Pcma]),
            TrunkProfile::Exotel => Some(vec![Codec::Pcma, Codec::Pcmu]),
        }
    }

    /// The header whose value is the provider's id for the call.
    pub fn default_external_id_header(self) -> Option<&'static str> {
        match self {
            TrunkProfile::Twilio => Some("X-Twilio-CallSid"),
            TrunkProfile::Generic | TrunkProfile::Exotel => None,
        }
    }

    /// Headers handed to the plugin when the trunk names none.
    pub fn default_plugin_headers(self) -> Vec<String> {
        match self {
            TrunkProfile::Twilio => vec!["X-Twilio-*".to_owned()],
            TrunkProfile::Generic | TrunkProfile::Exotel => Vec::new(),
        }
    }
}

/// One `[[trunks]]` entry: a provider and the networks it sends SIP from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrunkConfig {
    /// Identifier tenants refer to (`trunk = "local"`). Required.
    pub id: String,
    /// Display name. Default: the id.
    pub name: String,
    /// Provider preset (`generic`, `twilio`, `exotel`). Default `generic`.
    pub profile: TrunkProfile,
    /// Source networks accepted from this trunk. A bare address means that
    /// single host (`/32` or `/128`). Empty: no address is accepted.
    pub allowed_cidrs: Vec<IpNet>,
    /// Networks RTP from this trunk is accepted from; empty accepts any source (and the
    /// call latches to the first). Default: the profile's (Twilio 168.86.128.0/18).
    pub media_cidrs: Vec<IpNet>,
    /// Codec preference for calls from this trunk, overriding `[media] codecs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codecs: Option<Vec<Codec>>,
    /// INVITE header whose value is stored as the call's external id (the provider's call
    /// id, e.g. `X-Twilio-CallSid`). Default: the profile's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id_header: Option<String>,
    /// INVITE headers the tenant's plugin receives: exact names, or prefixes ending in `*`
    /// (`X-Twilio-*`); case-insensitive. Default: the profile's.
    pub plugin_headers: Vec<String>,
    /// SRTP on this trunk's calls. Default `off`.
    pub srtp: SrtpPolicy,
    /// Digest credentials this trunk's INVITEs must carry (`[trunks.inbound_auth]`); with
    /// `allowed_cidrs` empty they replace the address check, otherwise both must pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound_auth: Option<InboundAuthConfig>,
    /// Placing calls out through this trunk (`[trunks.outbound]`); `None`: inbound only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound: Option<OutboundConfig>,
}

impl TrunkConfig {
    /// Whether a packet from `ip` comes from one of this trunk's networks
    /// (IPv4-mapped IPv6 addresses are treated as IPv4), or from anywhere when the trunk has
    /// no networks but digest credentials (then the credentials are the check).
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allowed_cidrs.iter().any(|net| net.contains(&ip))
            || (self.allowed_cidrs.is_empty() && self.inbound_auth.is_some())
    }

    /// Whether the plugin may see the INVITE header `name`.
    pub fn passes_to_plugin(&self, name: &str) -> bool {
        self.plugin_headers
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => name
                    .get(..prefix.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
                None => name.eq_ignore_ascii_case(pattern),
            })
    }
}

/// `[[trunks]]` as written.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawTrunk {
    #[serde(deserialize_with = "lenient::string")]
    id: String,
    #[serde(deserialize_with = "lenient::string")]
    name: String,
    #[serde(deserialize_with = "lenient::string")]
    profile: String,
    allowed_cidrs: Option<Vec<String>>,
    media_cidrs: Option<Vec<String>>,
    codecs: Option<Vec<String>>,
    #[serde(deserialize_with = "lenient::opt_string")]
    external_id_header: Option<String>,
    plugin_headers: Option<Vec<String>>,
    #[serde(deserialize_with = "lenient::opt_string")]
    srtp: Option<String>,
    outbound: Option<RawOutbound>,
    inbound_auth: Option<RawInboundAuth>,
}

impl RawTrunk {
    pub(crate) fn check(self, c: &mut Checker, key: &str) -> TrunkConfig {
        let id = c.id(&format!("{key}.id"), self.id.trim());
        let name = match self.name.trim() {
            "" => id.clone(),
            name => name.to_owned(),
        };
        let profile = TrunkProfile::parse(&self.profile).unwrap_or_else(|| {
            c.push(ConfigError::Inconsistent {
                key: format!("{key}.profile"),
                message: format!(
                    "{:?} is not one of {}",
                    self.profile,
                    TrunkProfile::NAMES.join(", ")
                ),
            });
            TrunkProfile::Generic
        });
        let allowed_cidrs = match &self.allowed_cidrs {
            None => profile.default_cidrs(),
            Some(texts) => check_cidrs(c, &format!("{key}.allowed_cidrs"), texts),
        };
        let media_cidrs = match &self.media_cidrs {
            None => profile.default_media_cidrs(),
            Some(texts) => check_cidrs(c, &format!("{key}.media_cidrs"), texts),
        };
        let codecs = match self.codecs {
            Some(names) => Some(check_codecs(c, &format!("{key}.codecs"), &names)),
            None => profile.default_codecs(),
        };
        let external_id_header = match self.external_id_header.as_deref().map(str::trim) {
            Some("") => None,
            Some(header) => Some(header.to_owned()),
            None => profile.default_external_id_header().map(str::to_owned),
        };
        let plugin_headers = match self.plugin_headers {
            Some(names) => {
                for (i, name) in names.iter().enumerate() {
                    let bare = name.strip_suffix('*').unwrap_or(name);
                    let valid = !bare.is_empty()
                        && bare
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || "-_.!%'`~+".contains(ch));
                    if !valid {
                        c.push(ConfigError::Inconsistent {
                            key: format!("{key}.plugin_headers[{i}]"),
                            message: format!(
                                "{name:?} is not a header name (letters, digits, '-', with an optional trailing '*')"
                            ),
                        });
                    }
                }
                names
            }
            None => profile.default_plugin_headers(),
        };
        let srtp = check_srtp(c, &format!("{key}.srtp"), self.srtp.as_deref());
        let outbound = self
            .outbound
            .map(|raw| raw.check(c, &format!("{key}.outbound"), profile));
        let inbound_auth = self
            .inbound_auth
            .map(|raw| raw.check(c, &format!("{key}.inbound_auth")));
        TrunkConfig {
            id,
            name,
            profile,
            srtp,
            outbound,
            inbound_auth,
            allowed_cidrs,
            media_cidrs,
            codecs,
            external_id_header,
            plugin_headers,
        }
    }
}

/// Parses a list of networks, reporting each bad one under `key[i]`.
fn check_cidrs(c: &mut Checker, key: &str, texts: &[String]) -> Vec<IpNet> {
    let mut nets = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        match parse_cidr(text) {
            Some(net) => nets.push(net),
            None => c.push(ConfigError::InvalidCidr {
                key: format!("{key}[{i}]"),
                value: text.clone(),
            }),
        }
    }
    nets
}

/// A CIDR (`10.0.0.0/8`) or a bare address taken as a single host.
fn parse_cidr(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}
