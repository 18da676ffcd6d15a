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
    /// Opus (RFC 6716/7587), encoded and decoded at 16 kHz like G.722 (see [`crate::opus`]).
    /// RTP clock 48000 Hz (960 units per 20 ms); dynamic payload type, 111 unless negotiated.
    Opus,
}

impl Codec {
    /// The payload type to use when none was negotiated: the static one (RFC 3551: 0, 8 or
    /// 9), or 111 for Opus, whose payload type is dynamic.
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::G711(law) => law.static_payload_type(),
            Codec::G722 => crate::g722::PAYLOAD_TYPE,
            Codec::Opus => crate::opus::OFFER_PAYLOAD_TYPE,
        }
    }

    /// Sample rate of the decoded audio in Hz (8000 or 16000).
    pub fn sample_rate(self) -> u32 {
        match self {
            Codec::G711(_) => 8000,
            Codec::G722 | Codec::Opus => 16000,
        }
    }

    /// RTP clock rate in Hz: 8000, or 48000 for Opus.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::G711(_) | Codec::G722 => 8000,
            Codec::Opus => crate::opus::CLOCK_RATE,
        }
    }

    /// RTP timestamp units per 20 ms packet (160, or 960 for Opus).
    pub fn frame_units(self) -> u32 {
        self.clock_rate() / 50
    }

    /// Whether the decoded audio is 16 kHz (G.722, Opus): it goes to the VAD as it is.
    pub fn is_wideband(self) -> bool {
        self.sample_rate() == 16000
    }
}

impl From<Law> for Codec {
    fn from(law: Law) -> Self {
        Codec::G711(law)
    }
}
