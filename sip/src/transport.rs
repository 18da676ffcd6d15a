//! Plain data types shared by the sans-IO endpoint and the driver.

use std::net::SocketAddr;

/// The transport a SIP message travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Unreliable datagrams: the endpoint retransmits (timers E/G).
    Udp,
    /// A reliable stream: no retransmissions; responses go back on the same connection.
    Tcp,
    /// TCP with TLS on top (RFC 3261 §18, §26): reliable like [`Transport::Tcp`]; Via token
    /// `TLS`, Contact `;transport=tls`.
    Tls,
}

impl Transport {
    /// Whether the transport is reliable (no retransmission timers E/G).
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }

    /// The token used in `Via: SIP/2.0/<token>`.
    pub(crate) fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// Identifies one TCP or TLS connection owned by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// One message the driver must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Which transport to send on.
    pub transport: Transport,
    /// The peer address. For TCP without a live `connection`, the driver connects here; for
    /// TLS only when it has the settings of a call placed over TLS to this address (see
    /// [`crate::driver`]).
    pub destination: SocketAddr,
    /// For TCP and TLS: the connection to send on (the one the request came in on), if it is
    /// still open.
    pub connection: Option<ConnectionId>,
    /// The serialised SIP message.
    pub data: Vec<u8>,
}

/// Opaque handle for one inbound INVITE and the dialog it creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);
