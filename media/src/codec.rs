//! The audio codecs a [`MediaSession`](crate::MediaSession) speaks on the wire.

use crate::g711::Law;

/// A negotiated audio codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 (PCMU or PCMA): 8 kHz audio, decoded and encoded without any resampling.
    G711(Law),
    /// G.722 at 64 kbit/s: 16 kHz audio fed straight to VAD and speech-to-text; playback is
    /// upsampled from 8 kHz before encoding. RTP clock 8000 Hz (RFC 3551), payload type 9.
    G722,
}

impl Codec {
    /// The static RTP payload type (RFC 3551): 0, 8 or 9.
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::G711(law) => law.static_payload_type(),
            Codec::G722 => crate::g722::PAYLOAD_TYPE,
        }
    }

    /// Sample rate of the decoded audio in Hz (8000 or 16000).
    pub fn sample_rate(self) -> u32 {
        match self {
            Codec::G711(_) => 8000,
            Codec::G722 => 16000,
        }
    }

    /// Decoded samples per RTP timestamp unit (the RTP clock is 8000 Hz for all of them).
    pub fn samples_per_timestamp(self) -> usize {
        (self.sample_rate() / 8000) as usize
    }
}

impl From<Law> for Codec {
    fn from(law: Law) -> Self {
        Codec::G711(law)
    }
}
