//! `[[trunks]]`: SIP providers allowed to send calls.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::checker::Checker;
use crate::error::ConfigError;
use crate::lenient;
use crate::media::{Codec, check_codecs};

/// One `[[trunks]]` entry: a provider and the networks it sends SIP from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrunkConfig {
    /// Identifier tenants refer to (`trunk = "local"`). Required.
    pub id: String,
    /// Display name. Default: the id.
    pub name: String,
    /// Source networks accepted from this trunk. A bare address means that
    /// single host (`/32` or `/128`). Empty: no address is accepted.
    pub allowed_cidrs: Vec<IpNet>,
    /// Codec preference for calls from this trunk, overriding `[media] codecs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codecs: Option<Vec<Codec>>,
}

impl TrunkConfig {
    /// Whether a packet from `ip` comes from one of this trunk's networks
    /// (IPv4-mapped IPv6 addresses are treated as IPv4).
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allowed_cidrs.iter().any(|net| net.contains(&ip))
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
    #[serde(deserialize_with = "lenient::strings")]
    allowed_cidrs: Vec<String>,
    codecs: Option<Vec<String>>,
}

impl RawTrunk {
    pub(crate) fn check(self, c: &mut Checker, key: &str) -> TrunkConfig {
        let id = c.id(&format!("{key}.id"), self.id.trim());
        let name = match self.name.trim() {
            "" => id.clone(),
            name => name.to_owned(),
        };
        let mut allowed_cidrs = Vec::with_capacity(self.allowed_cidrs.len());
        for (i, text) in self.allowed_cidrs.iter().enumerate() {
            match parse_cidr(text) {
                Some(net) => allowed_cidrs.push(net),
                None => c.push(ConfigError::InvalidCidr {
                    key: format!("{key}.allowed_cidrs[{i}]"),
                    value: text.clone(),
                }),
            }
        }
        let codecs = self
            .codecs
            .map(|names| check_codecs(c, &format!("{key}.codecs"), &names));
        TrunkConfig {
            id,
            name,
            allowed_cidrs,
            codecs,
        }
    }
}

/// A CIDR (`10.0.0.0/8`) or a bare address taken as a single host.
fn parse_cidr(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}
