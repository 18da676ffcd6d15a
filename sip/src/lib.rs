//! vaani-sip: the SIP side of vaani.
//!
//! * [`SipEndpoint`]: a sans-IO user agent for inbound calls (UAS) and calls it places through a
//!   trunk (UAC, [`SipEndpoint::place_call`]): RFC 3261 transactions and dialogs, RFC 3581 rport.
//!   Feed it messages and the time; take transmits, events and the next deadline.
//! * [`digest`]: digest authentication (MD5, SHA-256) for the INVITEs we send.
//! * [`sdes`]: SDES keys for SRTP (RFC 4568 `a=crypto`), parsed and written.
//! * [`sdp`]: offer/answer for G.711 with telephone-events, including re-offers (hold, resume).
//! * Session timers (RFC 4028): the endpoint answers and sends refreshes (UPDATE, or re-INVITE
//!   with an unchanged offer to peers that refuse UPDATE) and ends dead sessions.
//! * [`driver`]: a tokio UDP/TCP/TLS driver that owns one endpoint.
//! * [`tls`]: the TLS listener's certificate and key, and the trust roots of calls placed over
//!   TLS (rustls with `ring`).

pub mod digest;
pub mod driver;
mod endpoint;
mod error;
mod message;
pub mod sdes;
pub mod sdp;
mod session_timer;
pub mod tls;
mod transport;

pub use digest::DigestCredentials;
pub use driver::{SipCommand, SipDriver, SipDriverConfig};
pub use endpoint::{
    ANSWER_TIMEOUT, CallEndReason, EndpointConfig, IncomingCall, MAX_CALLS, MAX_LINGERING_CALLS,
    OutboundCall, OutboundFailure, SipEndpoint, SipEvent, TRANSFER_TIMEOUT,
};
pub use error::SipError;
pub use sdes::{CryptoAttribute, SdesError, SrtpSuite};
pub use sdp::{
    AudioCodec, MediaDirection, NegotiatedMedia, SdpError, SdpSession, SrtpKeyPair, SrtpMode,
    answer_offer,
};
pub use session_timer::Refresher;
pub use tls::{OutboundTls, TlsConfigError};
pub use transport::{CallKey, ConnectionId, Transmit, Transport};
