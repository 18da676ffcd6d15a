//! vaani media core: RTP, G.711, G.722 and Opus, jitter buffer, resampling, VAD, RFC 4733 DTMF, paced
//! playout and bridging of two calls' audio ([`bridge`]), as sans-IO state machines
//! ([`session::MediaSession`]) driven by a sharded UDP socket engine ([`engine::MediaEngine`]).

#![warn(missing_docs)]

pub mod bridge;
pub mod codec;
pub mod dtmf;
pub mod engine;
pub mod error;
pub mod g711;
pub mod g722;
pub mod jitter;
pub mod netsim;
pub mod opus;
pub mod packet;
pub mod playout;
pub mod recorder;
pub mod resample;
pub mod rtcp;
pub mod session;
pub mod srtp;
mod utterance;
pub mod vad;

pub use bridge::UnbridgeReason;
pub use codec::Codec;
pub use dtmf::{DtmfError, DtmfSenderConfig};
pub use engine::{EngineConfig, EngineCounters, MediaEngine, PortLease, SessionHandle};
pub use error::MediaError;
pub use g711::Law;
pub use session::{BargeInConfig, MediaEvent, MediaSession, MediaStats, SessionConfig};
pub use srtp::{SrtpError, SrtpKeys, SrtpSession, SrtpSuite};
pub use vad::{EarshotVad, EnergyVad, Vad, VadConfig};
