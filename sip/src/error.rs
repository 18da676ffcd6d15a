//! Error types of the SIP core and driver.

use crate::transport::CallKey;

/// Why an application command (accept, reject, hang up…) or the driver failed.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// The call key does not name a live call (never existed, or already cleaned up).
    #[error("unknown call {0:?}")]
    UnknownCall(CallKey),
    /// The call exists but is in a state where the command makes no sense.
    #[error("call {key:?} is {state}; cannot {action}")]
    InvalidState {
        /// The call the command was for.
        key: CallKey,
        /// The state the call is in.
        state: &'static str,
        /// What was attempted.
        action: &'static str,
    },
    /// The status code is not allowed for this command (e.g. `accept` with 180, `reject` with 200).
    #[error("status {status} is not valid for {action}")]
    InvalidStatus {
        /// The status code given.
        status: u16,
        /// What was attempted.
        action: &'static str,
    },
    /// A socket operation of the driver failed.
    #[error("{context}: {source}")]
    Io {
        /// What the driver was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A call to place is unusable (unparseable Request-URI, bad user part …); nothing was sent.
    #[error("cannot place call: {0}")]
    InvalidOutboundCall(String),
    /// The endpoint already holds [`MAX_CALLS`](crate::MAX_CALLS) calls.
    #[error("too many calls")]
    TooManyCalls,
    /// The driver cannot send on the transport asked for (e.g. TLS without trust roots, or UDP
    /// without a UDP socket).
    #[error("transport not available: {0}")]
    TransportUnavailable(String),
    /// A transfer target is not a `sip:`, `sips:` or `tel:` URI fit for a `Refer-To`.
    #[error("invalid transfer target {0:?}")]
    InvalidTarget(String),
    /// The driver's configuration cannot work (e.g. neither UDP nor TCP listener).
    #[error("invalid driver configuration: {0}")]
    Config(String),
}
