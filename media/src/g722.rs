//! ITU-T G.722 at 64 kbit/s (sub-band ADPCM, 16 kHz audio), RTP payload type 9.
//!
//! A port of the public-domain G.722 codec by Steve Underwood (SpanDSP `g722_encode.c` /
//! `g722_decode.c`), itself based on the CMU 1993 implementation by Chengxiang Lu and Alex
//! Hauptmann ("use for any research or commercial purpose is completely unrestricted").
//! Only mode 1 (64 kbit/s, one byte per pair of 16 kHz samples, unpacked) is implemented:
//! that is what SIP endpoints send for `a=rtpmap:9 G722/8000`.
//!
//! One byte carries 2 samples at 16 kHz, so 20 ms is 320 samples ↔ 160 bytes. The RTP clock
//! is 8000 Hz (RFC 3551 §4.5.2 keeps the erroneous rate for compatibility): 160 timestamp
//! units per 20 ms packet, exactly like G.711.
//!
//! Cost (release, one core of the reference 2-vCPU Xeon, measured by
//! `g722::tests::cost_per_frame`): encode ≈ 2.1 µs and decode ≈ 1.6 µs per 20 ms frame.
//! Neither allocates.

/// Samples (16 kHz) per 20 ms frame.
pub const FRAME_SAMPLES: usize = 320;
/// Payload bytes per 20 ms frame.
pub const FRAME_BYTES: usize = 160;
/// The static RTP payload type (RFC 3551).
pub const PAYLOAD_TYPE: u8 = 9;

const QMF_COEFFS: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
const RL42: [i32; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
const WH: [i32; 3] = [0, -214, 798];
const RH2: [i32; 4] = [2, 1, 2, 1];
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
const Q6: [i32; 32] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];
const ILN: [i32; 32] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4, 0,
];
const ILP: [i32; 32] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32, 0,
];
const IHN: [i32; 3] = [0, 1, 0];
const IHP: [i32; 3] = [0, 3, 2];

fn saturate(amp: i32) -> i32 {
    amp.clamp(i16::MIN as i32, i16::MAX as i32)
}

/// Adaptive predictor and quantiser state of one sub-band.
#[derive(Debug, Clone, Default)]
struct Band {
    s: i32,
    sp: i32,
    sz: i32,
    r: [i32; 3],
    a: [i32; 3],
    ap: [i32; 3],
    p: [i32; 3],
    d: [i32; 7],
    b: [i32; 7],
    bp: [i32; 7],
    sg: [i32; 7],
    nb: i32,
    det: i32,
}

impl Band {
    fn new() -> Self {
        Self::default()
    }

    /// Blocks 3L/3H (LOGSCL + SCALEL / LOGSCH + SCALEH): adapts the quantiser scale.
    fn scale(&mut self, weight: i32, limit: i32, shift: i32) {
        let nb = ((self.nb * 127) >> 7) + weight;
        self.nb = nb.clamp(0, limit);
        let wd1 = (self.nb >> 6) & 31;
        let wd2 = shift - (self.nb >> 11);
        let wd3 = if wd2 < 0 {
            ILB[wd1 as usize] << -wd2
        } else {
            ILB[wd1 as usize] >> wd2
        };
        self.det = wd3 << 2;
    }

    /// Block 4: reconstruction, pole/zero predictor adaptation and prediction.
    fn block4(&mut self, d: i32) {
        // RECONS
        self.d[0] = d;
        self.r[0] = saturate(self.s + d);
        // PARREC
        self.p[0] = saturate(self.sz + d);
        // UPPOL2
        for i in 0..3 {
            self.sg[i] = self.p[i] >> 15;
        }
        let wd1 = saturate(self.a[1] << 2);
        let wd2 = if self.sg[0] == self.sg[1] { -wd1 } else { wd1 }.min(32767);
        let mut wd3 = (wd2 >> 7) + if self.sg[0] == self.sg[2] { 128 } else { -128 };
        wd3 += (self.a[2] * 32512) >> 15;
        self.ap[2] = wd3.clamp(-12288, 12288);
        // UPPOL1
        self.sg[0] = self.p[0] >> 15;
        self.sg[1] = self.p[1] >> 15;
        let wd1 = if self.sg[0] == self.sg[1] { 192 } else { -192 };
        let wd2 = (self.a[1] * 32640) >> 15;
        self.ap[1] = saturate(wd1 + wd2);
        let wd3 = saturate(15360 - self.ap[2]);
        self.ap[1] = self.ap[1].clamp(-wd3, wd3);
        // UPZERO
        let wd1 = if d == 0 { 0 } else { 128 };
        self.sg[0] = d >> 15;
        for i in 1..7 {
            self.sg[i] = self.d[i] >> 15;
            let wd2 = if self.sg[i] == self.sg[0] { wd1 } else { -wd1 };
            let wd3 = (self.b[i] * 32640) >> 15;
            self.bp[i] = saturate(wd2 + wd3);
        }
        // DELAYA
        for i in (1..7).rev() {
            self.d[i] = self.d[i - 1];
            self.b[i] = self.bp[i];
        }
        for i in (1..3).rev() {
            self.r[i] = self.r[i - 1];
            self.p[i] = self.p[i - 1];
            self.a[i] = self.ap[i];
        }
        // FILTEP
        let wd1 = (self.a[1] * saturate(self.r[1] + self.r[1])) >> 15;
        let wd2 = (self.a[2] * saturate(self.r[2] + self.r[2])) >> 15;
        self.sp = saturate(wd1 + wd2);
        // FILTEZ
        let mut sz = 0;
        for i in (1..7).rev() {
            sz += (self.b[i] * saturate(self.d[i] + self.d[i])) >> 15;
        }
        self.sz = saturate(sz);
        // PREDIC
        self.s = saturate(self.sp + self.sz);
    }
}

/// G.722 64 kbit/s encoder: 16 kHz PCM in, one byte per two samples out.
#[derive(Debug, Clone)]
pub struct G722Encoder {
    x: [i32; 24],
    low: Band,
    high: Band,
}

impl Default for G722Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Encoder {
    /// A fresh encoder (state as at the start of a stream).
    pub fn new() -> Self {
        let mut low = Band::new();
        low.det = 32;
        let mut high = Band::new();
        high.det = 8;
        Self {
            x: [0; 24],
            low,
            high,
        }
    }

    /// Encodes `pcm` (16 kHz; an odd last sample is ignored) into `out`; returns the bytes
    /// written (`pcm.len() / 2`, limited by `out.len()`).
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        let mut written = 0;
        for (pair, byte) in pcm.chunks_exact(2).zip(out.iter_mut()) {
            *byte = self.encode_pair(pair[0], pair[1]);
            written += 1;
        }
        written
    }

    fn encode_pair(&mut self, first: i16, second: i16) -> u8 {
        // Transmit QMF: split into low and high band at 8 kHz each.
        self.x.copy_within(2.., 0);
        self.x[22] = first as i32;
        self.x[23] = second as i32;
        let mut sumodd = 0;
        let mut sumeven = 0;
        for i in 0..12 {
            sumodd += self.x[2 * i] * QMF_COEFFS[i];
            sumeven += self.x[2 * i + 1] * QMF_COEFFS[11 - i];
        }
        let xlow = (sumeven + sumodd) >> 14;
        let xhigh = (sumeven - sumodd) >> 14;

        // Low band: SUBTRA, QUANTL.
        let el = saturate(xlow - self.low.s);
        let wd = if el >= 0 { el } else { -(el + 1) };
        let mut i = 1;
        while i < 30 {
            if wd < (Q6[i] * self.low.det) >> 12 {
                break;
            }
            i += 1;
        }
        let ilow = if el < 0 { ILN[i] } else { ILP[i] };
        // INVQAL, LOGSCL, SCALEL, block 4.
        let ril = (ilow >> 2) as usize;
        let dlow = (self.low.det * QM4[ril]) >> 15;
        self.low.scale(WL[RL42[ril] as usize], 18432, 8);
        self.low.block4(dlow);

        // High band: SUBTRA, QUANTH.
        let eh = saturate(xhigh - self.high.s);
        let wd = if eh >= 0 { eh } else { -(eh + 1) };
        let mih = if wd >= (564 * self.high.det) >> 12 {
            2
        } else {
            1
        };
        let ihigh = if eh < 0 { IHN[mih] } else { IHP[mih] };
        // INVQAH, LOGSCH, SCALEH, block 4.
        let dhigh = (self.high.det * QM2[ihigh as usize]) >> 15;
        self.high.scale(WH[RH2[ihigh as usize] as usize], 22528, 10);
        self.high.block4(dhigh);

        ((ihigh << 6) | ilow) as u8
    }
}

/// G.722 64 kbit/s decoder: one byte in, two 16 kHz samples out. Any byte is valid input.
#[derive(Debug, Clone)]
pub struct G722Decoder {
    x: [i32; 24],
    low: Band,
    high: Band,
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Decoder {
    /// A fresh decoder (state as at the start of a stream).
    pub fn new() -> Self {
        let mut low = Band::new();
        low.det = 32;
        let mut high = Band::new();
        high.det = 8;
        Self {
            x: [0; 24],
            low,
            high,
        }
    }

    /// Decodes `payload` into `out` (16 kHz, two samples per byte); returns the samples
    /// written (`2 * payload.len()`, limited by `out.len()` rounded down to even).
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> usize {
        let mut written = 0;
        for (&code, pair) in payload.iter().zip(out.chunks_exact_mut(2)) {
            let (first, second) = self.decode_byte(code);
            pair[0] = first;
            pair[1] = second;
            written += 2;
        }
        written
    }

    fn decode_byte(&mut self, code: u8) -> (i16, i16) {
        let code = code as i32;
        let ilow = code & 0x3f;
        let ihigh = (code >> 6) & 0x03;

        // Low band: INVQBL, RECONS, LIMIT.
        let wd2 = (self.low.det * QM6[ilow as usize]) >> 15;
        let rlow = (self.low.s + wd2).clamp(-16384, 16383);
        // INVQAL, LOGSCL, SCALEL, block 4.
        let ril = (ilow >> 2) as usize;
        let dlow = (self.low.det * QM4[ril]) >> 15;
        self.low.scale(WL[RL42[ril] as usize], 18432, 8);
        self.low.block4(dlow);

        // High band: INVQAH, RECONS, LIMIT.
        let dhigh = (self.high.det * QM2[ihigh as usize]) >> 15;
        let rhigh = (dhigh + self.high.s).clamp(-16384, 16383);
        // LOGSCH, SCALEH, block 4.
        self.high.scale(WH[RH2[ihigh as usize] as usize], 22528, 10);
        self.high.block4(dhigh);

        // Receive QMF: recombine the bands into two 16 kHz samples.
        self.x.copy_within(2.., 0);
        self.x[22] = rlow + rhigh;
        self.x[23] = rlow - rhigh;
        let mut xout1 = 0;
        let mut xout2 = 0;
        for i in 0..12 {
            xout2 += self.x[2 * i] * QMF_COEFFS[i];
            xout1 += self.x[2 * i + 1] * QMF_COEFFS[11 - i];
        }
        (saturate(xout1 >> 11) as i16, saturate(xout2 >> 11) as i16)
    }
}

#[cfg(test)]
mod tests;
