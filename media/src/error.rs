//! Errors of the media crate.

use std::net::SocketAddr;

/// Everything that can go wrong setting up or driving media.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The resampler could not be constructed (unsupported rate pair or chunk size).
    #[error("resampler construction failed: {0}")]
    Resampler(String),
    /// The engine configuration is unusable.
    #[error("invalid media configuration: {0}")]
    InvalidConfig(String),
    /// Every even port in the configured RTP range is in use or could not be bound.
    #[error("no free RTP port pair in {first}..={last} on {bind}")]
    NoFreePort {
        /// Address the ports are bound on.
        bind: std::net::IpAddr,
        /// First port of the range.
        first: u16,
        /// Last port of the range.
        last: u16,
    },
    /// A socket operation failed.
    #[error("{context} ({addr:?}): {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// Address involved, when known.
        addr: Option<SocketAddr>,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The shard's command queue is full; the command was not delivered (retry later).
    #[error("media shard command queue is full")]
    Busy,
    /// The session has been closed or the engine has stopped.
    #[error("media session is closed")]
    Closed,
    /// DTMF digits could not be queued for sending.
    #[error(transparent)]
    Dtmf(#[from] crate::dtmf::DtmfError),
    /// A session cannot be bridged to itself.
    #[error("a media session cannot be bridged to itself")]
    BridgeToSelf,
    /// A shard thread could not be started.
    #[error("could not start media shard thread: {0}")]
    Thread(std::io::Error),
}
