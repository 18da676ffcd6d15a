//! G.711 µ-law (PCMU, payload type 0) and A-law (PCMA, payload type 8) codecs.
//!
//! Decoding is a 256-entry table lookup built at compile time; encoding uses the classic
//! segment search with bit operations (ITU-T G.711, as in the Sun reference `g711.c`).
//! Samples are 16-bit linear PCM at 8 kHz.

/// Which G.711 companding law a call uses (negotiated in SDP: PCMU = µ-law, PCMA = A-law).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law (PCMU, static payload type 0): North America, Japan, most SIP trunks' default.
    Mu,
    /// A-law (PCMA, static payload type 8): Europe, India.
    A,
}

impl Law {
    /// The static RTP payload type of this law (RFC 3551): 0 for PCMU, 8 for PCMA.
    pub fn static_payload_type(self) -> u8 {
        match self {
            Law::Mu => 0,
            Law::A => 8,
        }
    }

    /// The encoded byte that represents digital silence (linear 0) in this law.
    pub fn silence_byte(self) -> u8 {
        match self {
            Law::Mu => ULAW_SILENCE,
            Law::A => ALAW_SILENCE,
        }
    }

    /// Encodes one linear sample.
    #[inline]
    pub fn encode_sample(self, sample: i16) -> u8 {
        match self {
            Law::Mu => linear_to_ulaw(sample),
            Law::A => linear_to_alaw(sample),
        }
    }

    /// Decodes one companded byte.
    #[inline]
    pub fn decode_sample(self, byte: u8) -> i16 {
        match self {
            Law::Mu => ULAW_TO_LINEAR[byte as usize],
            Law::A => ALAW_TO_LINEAR[byte as usize],
        }
    }

    /// Encodes `pcm` into `out` sample by sample; encodes `min(pcm.len(), out.len())` samples and
    /// returns that count.
    pub fn encode(self, pcm: &[i16], out: &mut [u8]) -> usize {
        let n = pcm.len().min(out.len());
        match self {
            Law::Mu => {
                for (o, &s) in out.iter_mut().zip(pcm) {
                    *o = linear_to_ulaw(s);
                }
            }
            Law::A => {
                for (o, &s) in out.iter_mut().zip(pcm) {
                    *o = linear_to_alaw(s);
                }
            }
        }
        n
    }

    /// Decodes `payload` into `out`; decodes `min(payload.len(), out.len())` bytes and returns
    /// that count.
    pub fn decode(self, payload: &[u8], out: &mut [i16]) -> usize {
        let n = payload.len().min(out.len());
        let table = match self {
            Law::Mu => &ULAW_TO_LINEAR,
            Law::A => &ALAW_TO_LINEAR,
        };
        for (o, &b) in out.iter_mut().zip(payload) {
            *o = table[b as usize];
        }
        n
    }
}

/// µ-law byte for linear 0.
pub const ULAW_SILENCE: u8 = 0xFF;
/// A-law byte for linear 0 (decodes to +8, the smallest A-law magnitude).
pub const ALAW_SILENCE: u8 = 0xD5;

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// Encodes one 16-bit linear sample as µ-law.
#[inline]
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut value = sample as i32;
    let sign: u8 = if value < 0 {
        value = -value;
        0x80
    } else {
        0
    };
    if value > ULAW_CLIP {
        value = ULAW_CLIP;
    }
    value += ULAW_BIAS;
    // value is in [132, 32767]: the highest set bit is bit 7..=14, i.e. segment 0..=7.
    let exponent = (31 - value.leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = (value >> (exponent + 3)) & 0x0F;
    !(sign | ((exponent as u8) << 4) | mantissa as u8)
}

/// Encodes one 16-bit linear sample as A-law.
#[inline]
pub fn linear_to_alaw(sample: i16) -> u8 {
    // A-law works on 13-bit magnitudes.
    let mut value = (sample as i32) >> 3;
    let mask: u8 = if value >= 0 {
        0xD5
    } else {
        value = -value - 1;
        0x55
    };
    // Segment end points (13-bit scale).
    let segment = match value {
        v if v <= 0x1F => 0,
        v if v <= 0x3F => 1,
        v if v <= 0x7F => 2,
        v if v <= 0xFF => 3,
        v if v <= 0x1FF => 4,
        v if v <= 0x3FF => 5,
        v if v <= 0x7FF => 6,
        v if v <= 0xFFF => 7,
        _ => return 0x7F ^ mask,
    };
    let mut alaw = (segment << 4) as u8;
    if segment < 2 {
        alaw |= ((value >> 1) & 0x0F) as u8;
    } else {
        alaw |= ((value >> segment) & 0x0F) as u8;
    }
    alaw ^ mask
}

const fn ulaw_decode(byte: u8) -> i16 {
    let u = !byte;
    let exponent = ((u & 0x70) >> 4) as i32;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_decode(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let mut t = ((a & 0x0F) as i32) << 4;
    let segment = ((a & 0x70) >> 4) as i32;
    match segment {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= segment - 1;
        }
    }
    if a & 0x80 != 0 { t as i16 } else { -t as i16 }
}

const fn build_table(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if alaw {
            alaw_decode(i as u8)
        } else {
            ulaw_decode(i as u8)
        };
        i += 1;
    }
    table
}

/// µ-law byte → linear sample.
pub static ULAW_TO_LINEAR: [i16; 256] = build_table(false);
/// A-law byte → linear sample.
pub static ALAW_TO_LINEAR: [i16; 256] = build_table(true);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_reference_values() {
        // Values from the ITU-T G.711 tables / Sun g711.c.
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(ULAW_TO_LINEAR[0xFF], 0);
        assert_eq!(ULAW_TO_LINEAR[0x7F], 0);
        assert_eq!(ULAW_TO_LINEAR[0x00], -32124);
        assert_eq!(ULAW_TO_LINEAR[0x80], 32124);
        assert_eq!(ULAW_TO_LINEAR[0xFE], 8);
        assert_eq!(ULAW_TO_LINEAR[0x7E], -8);
        assert_eq!(ULAW_TO_LINEAR[0xF0], 120);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_ulaw(-1), 0x7F);
        assert_eq!(linear_to_ulaw(1000), 0xCE);
        assert_eq!(linear_to_ulaw(-1000), 0x4E);
    }

    #[test]
    fn alaw_reference_values() {
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(ALAW_TO_LINEAR[0xD5], 8);
        assert_eq!(ALAW_TO_LINEAR[0x55], -8);
        assert_eq!(ALAW_TO_LINEAR[0xAA], 32256);
        assert_eq!(ALAW_TO_LINEAR[0x2A], -32256);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        assert_eq!(linear_to_alaw(-8), 0x55);
        assert_eq!(linear_to_alaw(1000), 0xFA);
        assert_eq!(linear_to_alaw(-1000), 0x7A);
    }

    #[test]
    fn ulaw_round_trip_error_is_within_half_a_step() {
        for x in i16::MIN..=i16::MAX {
            let y = ULAW_TO_LINEAR[linear_to_ulaw(x) as usize] as i32;
            let x = x as i32;
            let magnitude = x.abs().min(ULAW_CLIP);
            // Segment e covers (magnitude + bias) in [128<<e, 256<<e); half a step is 4<<e,
            // which is at most (magnitude + bias) / 32.
            let bound = (magnitude + ULAW_BIAS) / 32 + 1;
            let clip_error = x.abs() - magnitude;
            assert!(
                (x - y).abs() <= bound + clip_error,
                "x={x} decoded={y} bound={bound}"
            );
            assert!(x.signum() * y.signum() >= 0, "sign flipped for {x}");
        }
    }

    #[test]
    fn alaw_round_trip_error_is_within_half_a_step() {
        for x in i16::MIN..=i16::MAX {
            let y = ALAW_TO_LINEAR[linear_to_alaw(x) as usize] as i32;
            let x = x as i32;
            let bound = (x.abs() / 32).max(8) + 1;
            assert!((x - y).abs() <= bound, "x={x} decoded={y} bound={bound}");
        }
    }

    #[test]
    fn every_byte_decodes_and_reencodes_to_itself() {
        for b in 0..=255u8 {
            let a = linear_to_alaw(ALAW_TO_LINEAR[b as usize]);
            assert_eq!(a, b, "A-law {b:#04x}");
            let u = linear_to_ulaw(ULAW_TO_LINEAR[b as usize]);
            // 0x7F (negative zero) re-encodes as 0xFF (positive zero).
            if b == 0x7F {
                assert_eq!(u, 0xFF);
            } else {
                assert_eq!(u, b, "µ-law {b:#04x}");
            }
        }
    }

    #[test]
    fn slice_encode_decode_use_the_shorter_length() {
        let pcm = [0i16, 1000, -1000, 32000];
        let mut bytes = [0u8; 3];
        assert_eq!(Law::Mu.encode(&pcm, &mut bytes), 3);
        assert_eq!(bytes, [0xFF, 0xCE, 0x4E]);
        let mut back = [0i16; 8];
        assert_eq!(Law::Mu.decode(&bytes, &mut back), 3);
        assert_eq!(back[0], 0);
        assert!((back[1] - 1000).abs() <= 32);
        assert_eq!(Law::A.silence_byte(), 0xD5);
        assert_eq!(Law::A.decode_sample(Law::A.silence_byte()), 8);
        assert_eq!(Law::Mu.static_payload_type(), 0);
        assert_eq!(Law::A.static_payload_type(), 8);
    }
}
