//! Opus (RFC 6716) over RTP (RFC 7587), through libopus (the `audiopus` bindings).
//!
//! The RTP clock of Opus is always 48 kHz (`a=rtpmap:<pt> opus/48000/2`: 960 timestamp units
//! per 20 ms) whatever the audio bandwidth; vaani encodes and decodes at 16 kHz mono, the rate
//! its VAD and speech-to-text take, so one decoded sample is [`UNITS_PER_SAMPLE`] timestamp
//! units.
//!
//! * [`OpusEncoder`]: VoIP application, complexity [`COMPLEXITY`] (≤ 5 keeps a server core
//!   free for many calls, media.md §5), in-band FEC on (the encoder adds the previous frame's
//!   low-bitrate copy, LBRR, to every SILK packet), 20 ms frames.
//! * [`OpusDecoder`]: decodes packets, recovers a lost frame from the next packet's LBRR
//!   ([`OpusDecoder::decode_fec`]) and conceals loss with the codec's own PLC
//!   ([`OpusDecoder::conceal`]). Every error a peer's payload can cause is an [`OpusError`],
//!   never a panic.
//! * [`has_inband_fec`] and [`packet_duration_units`] read a packet's TOC without decoding it.

use audiopus::coder::{Decoder, Encoder};
use audiopus::{Application, Bandwidth, Bitrate, Channels, SampleRate, Signal};

/// RTP clock rate of Opus (RFC 7587 §4.1): always 48000 Hz.
pub const CLOCK_RATE: u32 = 48_000;
/// Rate vaani encodes and decodes Opus at (Hz).
pub const SAMPLE_RATE: u32 = 16_000;
/// RTP timestamp units per decoded sample (48 kHz clock / 16 kHz audio).
pub const UNITS_PER_SAMPLE: u32 = CLOCK_RATE / SAMPLE_RATE;
/// Samples of one 20 ms frame at [`SAMPLE_RATE`].
pub const FRAME_SAMPLES: usize = 320;
/// RTP timestamp units of one 20 ms frame.
pub const FRAME_UNITS: u32 = 960;
/// The dynamic payload type vaani offers Opus on (what WebRTC stacks and sipp examples use);
/// in an answer the offerer's payload type is used instead.
pub const OFFER_PAYLOAD_TYPE: u8 = 111;
/// Encoder complexity (0–10); media.md measured 86 µs per 20 ms at 5 vs 186 µs at 9 (16 kHz).
/// `benches/opus.rs` on speech-like input: ≈ 150 µs per 20 ms with in-band FEC, ≈ 118 µs
/// without; decoding ≈ 9 µs, FEC recovery ≈ 10 µs.
pub const COMPLEXITY: u8 = 5;
/// Target bitrate of our encoder (bit/s): wideband SILK with room for the LBRR copy.
pub const BITRATE: i32 = 24_000;
/// Expected packet loss the encoder is told about; libopus only adds LBRR when it is > 0.
pub const EXPECTED_LOSS_PERCENT: u8 = 10;
/// Longest Opus packet duration (RFC 6716 §3.2.5: 120 ms), in samples at [`SAMPLE_RATE`].
pub const MAX_PACKET_SAMPLES: usize = 1920;
/// PLC and FEC frame sizes must be whole multiples of 2.5 ms: 40 samples at 16 kHz.
const GRANULE_SAMPLES: usize = 40;

/// Why an Opus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OpusError {
    /// libopus refused the packet or the call (corrupt or empty packet, bad frame size).
    #[error("libopus: {0}")]
    Codec(#[from] audiopus::Error),
    /// The output buffer cannot hold the packet's audio.
    #[error("a {needed}-sample packet does not fit a {capacity}-sample buffer")]
    BufferTooSmall {
        /// Samples the packet decodes to.
        needed: usize,
        /// Samples the buffer holds.
        capacity: usize,
    },
    /// A frame size that is not a whole multiple of 2.5 ms (PLC and FEC need one).
    #[error("{0} samples is not a multiple of 2.5 ms")]
    FrameSize(usize),
}

/// The Opus encoder of one call's outbound stream: 16 kHz mono, VoIP, complexity
/// [`COMPLEXITY`], in-band FEC on, [`BITRATE`] bit/s.
#[derive(Debug)]
pub struct OpusEncoder {
    inner: Encoder,
}

impl OpusEncoder {
    /// Creates the encoder with vaani's settings.
    pub fn new() -> Result<Self, OpusError> {
        let mut inner = Encoder::new(SampleRate::Hz16000, Channels::Mono, Application::Voip)?;
        inner.set_complexity(COMPLEXITY)?;
        inner.set_bitrate(Bitrate::BitsPerSecond(BITRATE))?;
        inner.set_signal(Signal::Voice)?;
        inner.set_max_bandwidth(Bandwidth::Wideband)?;
        inner.set_inband_fec(true)?;
        inner.set_packet_loss_perc(EXPECTED_LOSS_PERCENT)?;
        Ok(Self { inner })
    }

    /// Encodes one frame of 16 kHz PCM (2.5–60 ms; vaani sends 20 ms = [`FRAME_SAMPLES`]) into
    /// `out`; returns the payload length. `out` bounds the packet size (libopus lowers the
    /// bitrate of a frame that would not fit).
    pub fn encode(&mut self, pcm16k: &[i16], out: &mut [u8]) -> Result<usize, OpusError> {
        Ok(self.inner.encode(pcm16k, out)?)
    }

    /// The encoder's complexity setting as libopus reports it.
    pub fn complexity(&self) -> Result<u8, OpusError> {
        Ok(self.inner.complexity()?)
    }

    /// Turns in-band FEC on or off (on by default; a peer that sends no FEC is simulated with
    /// off).
    pub fn set_inband_fec(&mut self, on: bool) -> Result<(), OpusError> {
        Ok(self.inner.set_inband_fec(on)?)
    }

    /// Whether in-band FEC is on, as libopus reports it.
    pub fn inband_fec(&self) -> Result<bool, OpusError> {
        Ok(self.inner.inband_fec()?)
    }
}

/// The Opus decoder of one call's inbound stream, decoding to 16 kHz mono (a stereo packet is
/// down-mixed by libopus).
#[derive(Debug)]
pub struct OpusDecoder {
    inner: Decoder,
}

impl OpusDecoder {
    /// Creates a 16 kHz mono decoder.
    pub fn new() -> Result<Self, OpusError> {
        Ok(Self {
            inner: Decoder::new(SampleRate::Hz16000, Channels::Mono)?,
        })
    }

    /// Decodes one packet into `out`; returns the samples written (the packet's duration).
    /// `out` must hold the packet's duration ([`MAX_PACKET_SAMPLES`] always does).
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, OpusError> {
        let needed = packet_duration_units(payload)? as usize / UNITS_PER_SAMPLE as usize;
        if needed > out.len() {
            return Err(OpusError::BufferTooSmall {
                needed,
                capacity: out.len(),
            });
        }
        Ok(self
            .inner
            .decode(Some(payload), &mut out[..needed], false)?)
    }

    /// Recovers the frame lost just before `next_payload` from that packet's in-band FEC
    /// (LBRR) into all of `out`, whose length is the lost frame's duration (a multiple of
    /// 2.5 ms). Without LBRR in the packet libopus conceals instead; check with
    /// [`has_inband_fec`] first. `next_payload` must still be decoded normally afterwards.
    pub fn decode_fec(&mut self, next_payload: &[u8], out: &mut [i16]) -> Result<usize, OpusError> {
        if out.is_empty() || !out.len().is_multiple_of(GRANULE_SAMPLES) {
            return Err(OpusError::FrameSize(out.len()));
        }
        Ok(self.inner.decode(Some(next_payload), out, true)?)
    }

    /// Fills all of `out` (a multiple of 2.5 ms) with the codec's packet-loss concealment,
    /// continuing the last decoded audio and fading it out over consecutive losses.
    pub fn conceal(&mut self, out: &mut [i16]) -> Result<usize, OpusError> {
        if out.is_empty() || !out.len().is_multiple_of(GRANULE_SAMPLES) {
            return Err(OpusError::FrameSize(out.len()));
        }
        Ok(self.inner.decode(None::<&[u8]>, out, false)?)
    }
}

/// Rounds a sample count up to the 2.5 ms granule PLC and FEC decoding need.
pub fn round_up_to_granule(samples: usize) -> usize {
    samples.div_ceil(GRANULE_SAMPLES) * GRANULE_SAMPLES
}

/// Duration of an Opus packet in 48 kHz RTP timestamp units, from its TOC byte (and frame
/// count byte); an empty, malformed or longer-than-120 ms packet is an error.
pub fn packet_duration_units(payload: &[u8]) -> Result<u32, OpusError> {
    let units = audiopus::packet::nb_samples(payload, SampleRate::Hz48000)?;
    if units == 0 || units > MAX_PACKET_SAMPLES * UNITS_PER_SAMPLE as usize {
        return Err(OpusError::Codec(audiopus::Error::Opus(
            audiopus::ErrorCode::InvalidPacket,
        )));
    }
    Ok(units as u32)
}

/// Whether an Opus packet carries in-band FEC (an LBRR copy of the previous frame): the SILK
/// layer's LBRR flag of the first frame (libopus 1.5 `opus_packet_has_lbrr`). CELT-only packets
/// never do. Malformed packets answer `false`.
pub fn has_inband_fec(payload: &[u8]) -> bool {
    let Some(&toc) = payload.first() else {
        return false;
    };
    let config = toc >> 3;
    // Configurations 16–31 are CELT-only.
    if config >= 16 {
        return false;
    }
    // SILK frames (of 20 ms) per Opus frame: SILK-only 10/20/40/60 ms, hybrid 10/20 ms.
    let silk_frames: u32 = if config < 12 {
        match config % 4 {
            2 => 2,
            3 => 3,
            _ => 1,
        }
    } else {
        1
    };
    let stereo = toc & 0x04 != 0;
    let Some(first) = first_frame_byte(payload) else {
        return false;
    };
    let mut lbrr = (first >> (7 - silk_frames)) & 1 == 1;
    if stereo {
        lbrr |= (first >> (6 - 2 * silk_frames)) & 1 == 1;
    }
    lbrr
}

/// The first byte of the first frame of an Opus packet (RFC 6716 §3.2), if it has one.
fn first_frame_byte(payload: &[u8]) -> Option<u8> {
    let code = payload.first()? & 0x03;
    let offset = match code {
        // One frame, or two frames of equal size: the data starts after the TOC.
        0 | 1 => 1,
        // Two frames: the first frame's length (1 or 2 bytes) follows the TOC.
        2 => {
            let len = *payload.get(1)? as usize;
            if len == 0 {
                return None;
            }
            if len < 252 { 2 } else { 3 }
        }
        // Arbitrary frames: frame count byte, optional padding length, optional VBR lengths.
        _ => {
            let count_byte = *payload.get(1)?;
            let frames = (count_byte & 0x3F) as usize;
            if frames == 0 {
                return None;
            }
            let mut offset = 2;
            if count_byte & 0x40 != 0 {
                loop {
                    let b = *payload.get(offset)?;
                    offset += 1;
                    if b != 255 {
                        break;
                    }
                }
            }
            if count_byte & 0x80 != 0 {
                for frame in 0..frames - 1 {
                    let b = *payload.get(offset)?;
                    if frame == 0 && b == 0 {
                        return None;
                    }
                    offset += if b < 252 { 1 } else { 2 };
                }
            }
            offset
        }
    };
    payload.get(offset).copied()
}

#[cfg(test)]
mod tests;
