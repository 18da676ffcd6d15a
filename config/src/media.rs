//! `[media]`: RTP sockets, codecs and barge-in.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use figment::value::Value;
use serde::{Deserialize, Serialize, Serializer};

use crate::checker::Checker;
use crate::error::ConfigError;
use crate::lenient;

/// An audio codec vaani can negotiate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law (static payload type 0).
    Pcmu,
    /// G.711 A-law (static payload type 8).
    Pcma,
    /// G.722 wideband (static payload type 9).
    G722,
    /// Opus (dynamic payload type).
    Opus,
}

impl Codec {
    /// Every supported codec.
    pub const ALL: [Codec; 4] = [Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus];

    /// The encoding name as written in SDP `a=rtpmap` (`PCMU`, `PCMA`, `G722`, `opus`).
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
            Codec::Opus => "opus",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a codec name that is not supported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown codec {0:?}")]
pub struct UnknownCodec(pub String);

impl FromStr for Codec {
    type Err = UnknownCodec;
    /// Case-insensitive: `pcmu`, `PCMU`, `G722`, `Opus`, …
    fn from_str(s: &str) -> Result<Self, UnknownCodec> {
        Codec::ALL
            .into_iter()
            .find(|codec| codec.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownCodec(s.to_owned()))
    }
}

impl Serialize for Codec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Check a codec preference list (non-empty, known, no repeats).
pub(crate) fn check_codecs(c: &mut Checker, key: &str, names: &[String]) -> Vec<Codec> {
    if names.is_empty() {
        c.push(ConfigError::Empty {
            key: key.to_owned(),
        });
    }
    let mut codecs = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let item_key = format!("{key}[{i}]");
        match name.parse::<Codec>() {
            Ok(codec) if codecs.contains(&codec) => c.push(ConfigError::DuplicateCodec {
                key: item_key,
                value: codec.to_string(),
            }),
            Ok(codec) => codecs.push(codec),
            Err(_) => c.push(ConfigError::UnknownCodec {
                key: item_key,
                value: name.clone(),
            }),
        }
    }
    codecs
}

/// An inclusive UDP port range for RTP; RTP uses the even port of each pair,
/// RTCP the odd one above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// First port (even).
    pub start: u16,
    /// Last port (above `start`).
    pub end: u16,
}

impl PortRange {
    /// Number of RTP/RTCP port pairs in the range (concurrent calls it allows).
    pub fn pairs(&self) -> u32 {
        // Complete even/odd pairs in start..=end: ⌊(end - start + 1) / 2⌋.
        (u32::from(self.end) - u32::from(self.start)).div_ceil(2)
    }

    /// Whether `port` lies in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `[media]`: the RTP side of calls.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MediaConfig {
    /// Local address RTP sockets bind to. Default `0.0.0.0`.
    pub bind_ip: IpAddr,
    /// Address announced in SDP `c=` lines (what the trunk sends RTP to).
    /// Default `127.0.0.1`.
    pub public_ip: IpAddr,
    /// RTP/RTCP port range, written `"20000-20999"` or `[20000, 20999]`.
    /// Start must be even and below end. Default 20000-20999.
    pub rtp_ports: PortRange,
    /// Media worker threads (shards); 0 means one per CPU core. Default 0.
    pub shards: usize,
    /// End a call after this many seconds without RTP from the peer. Default 30.
    pub rtp_timeout_secs: u64,
    /// Codec preference, most preferred first. Default `["PCMU", "PCMA"]`.
    pub codecs: Vec<Codec>,
    /// Stop agent playback when the caller starts speaking. Default true.
    pub barge_in: bool,
    /// Caller speech needed before barge-in triggers, ms. Default 200.
    pub barge_in_min_speech_ms: u32,
}

impl MediaConfig {
    /// `shards`, with 0 replaced by the number of available CPU cores.
    pub fn effective_shards(&self) -> usize {
        if self.shards == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            self.shards
        }
    }
}

/// `[media]` as written.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawMedia {
    #[serde(deserialize_with = "lenient::string")]
    bind_ip: String,
    #[serde(deserialize_with = "lenient::string")]
    public_ip: String,
    rtp_ports: Value,
    shards: usize,
    rtp_timeout_secs: u64,
    #[serde(deserialize_with = "lenient::strings")]
    codecs: Vec<String>,
    barge_in: bool,
    barge_in_min_speech_ms: u32,
}

impl Default for RawMedia {
    fn default() -> Self {
        RawMedia {
            bind_ip: "0.0.0.0".to_owned(),
            public_ip: "127.0.0.1".to_owned(),
            rtp_ports: Value::from("20000-20999".to_owned()),
            shards: 0,
            rtp_timeout_secs: 30,
            codecs: vec!["PCMU".to_owned(), "PCMA".to_owned()],
            barge_in: true,
            barge_in_min_speech_ms: 200,
        }
    }
}

impl RawMedia {
    pub(crate) fn check(self, c: &mut Checker) -> MediaConfig {
        let bind_ip = c.ip("media.bind_ip", &self.bind_ip);
        let public_ip = c.ip("media.public_ip", &self.public_ip);
        if public_ip.is_unspecified() {
            c.push(ConfigError::Inconsistent {
                key: "media.public_ip".to_owned(),
                message: format!(
                    "{public_ip} cannot be announced in SDP; give a reachable address"
                ),
            });
        }
        let rtp_ports = check_port_range(c, "media.rtp_ports", &self.rtp_ports);
        c.in_range("media.shards", self.shards, 0, 1024);
        c.in_range("media.rtp_timeout_secs", self.rtp_timeout_secs, 1, 3600);
        let codecs = check_codecs(c, "media.codecs", &self.codecs);
        c.in_range(
            "media.barge_in_min_speech_ms",
            self.barge_in_min_speech_ms,
            0,
            5_000,
        );
        MediaConfig {
            bind_ip,
            public_ip,
            rtp_ports,
            shards: self.shards,
            rtp_timeout_secs: self.rtp_timeout_secs,
            codecs,
            barge_in: self.barge_in,
            barge_in_min_speech_ms: self.barge_in_min_speech_ms,
        }
    }
}

const PORT_RANGE_SHAPE: &str = "expected \"START-END\" or [START, END] with ports 1-65535";

/// A non-negative integer value that fits a port number.
fn port_number(value: &Value) -> Option<u16> {
    let n = value.to_num()?.to_u128_lossy()?;
    u16::try_from(n).ok()
}

fn check_port_range(c: &mut Checker, key: &str, value: &Value) -> PortRange {
    let placeholder = PortRange {
        start: 20_000,
        end: 20_999,
    };
    let bounds = match value {
        Value::String(_, text) => text.split_once('-').and_then(|(a, b)| {
            Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?))
        }),
        Value::Array(_, items) => match items.as_slice() {
            [a, b] => port_number(a).zip(port_number(b)),
            _ => None,
        },
        _ => None,
    };
    let Some((start, end)) = bounds.filter(|&(start, _)| start > 0) else {
        c.push(ConfigError::InvalidPortRange {
            key: key.to_owned(),
            reason: format!("invalid port range ({PORT_RANGE_SHAPE})"),
        });
        return placeholder;
    };
    if start % 2 != 0 || start >= end {
        c.push(ConfigError::InvalidPortRange {
            key: key.to_owned(),
            reason: format!("start must be even and below end (got {start}-{end})"),
        });
        return placeholder;
    }
    PortRange { start, end }
}
