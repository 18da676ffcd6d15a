use super::*;

/// 64 samples of 1 kHz + 5 kHz and their encoding by an independent C implementation
/// (sippy/libg722, the `G722` Python package, 16000 Hz / 64000 bit/s).
const KAT_PCM: [i16; 64] = [
    0, 5833, 3535, 6242, 11000, 6242, 3535, 5833, 0, -5833, -3535, -6242, -11000, -6242, -3535,
    -5833, 0, 5833, 3535, 6242, 11000, 6242, 3535, 5833, 0, -5833, -3535, -6242, -11000, -6242,
    -3535, -5833, 0, 5833, 3535, 6242, 11000, 6242, 3535, 5833, 0, -5833, -3535, -6242, -11000,
    -6242, -3535, -5833, 0, 5833, 3535, 6242, 11000, 6242, 3535, 5833, 0, -5833, -3535, -6242,
    -11000, -6242, -3535, -5833,
];
const KAT_ENCODED: [u8; 32] = [
    183, 82, 45, 165, 4, 160, 160, 32, 160, 180, 14, 138, 17, 29, 175, 43, 175, 186, 20, 144, 20,
    30, 176, 44, 240, 187, 21, 145, 85, 62, 177, 46,
];
/// The same implementation decoding the bytes 0, 8, 16, …, 248 from a fresh state.
const KAT_DECODED: [i16; 64] = [
    0, 0, -1, 0, 0, -1, -1, 0, -1, -2, 1, 0, -4, -33, -28, -25, -13, -35, 14, 37, 110, 71, 103, 38,
    65, -28, 37, -9, -28, -178, -170, -155, -111, -161, 40, 290, 544, 517, 500, 376, 267, 51, 82,
    78, -241, -796, -954, -686, -680, -661, 66, 1599, 2557, 2811, 2429, 2186, 1241, 575, 154, 348,
    -1299, -3650, -4506, -3367,
];

fn tone(freq: f64, amplitude: f64, len: usize) -> Vec<i16> {
    (0..len)
        .map(|n| {
            (amplitude * (2.0 * std::f64::consts::PI * freq * n as f64 / 16000.0).sin()) as i16
        })
        .collect()
}

fn round_trip(pcm: &[i16]) -> Vec<i16> {
    let mut encoder = G722Encoder::new();
    let mut decoder = G722Decoder::new();
    let mut bytes = vec![0u8; pcm.len() / 2];
    assert_eq!(encoder.encode(pcm, &mut bytes), pcm.len() / 2);
    let mut out = vec![0i16; pcm.len()];
    assert_eq!(decoder.decode(&bytes, &mut out), pcm.len());
    out
}

fn rms(pcm: &[i16]) -> f64 {
    (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len().max(1) as f64).sqrt()
}

/// Goertzel power of `freq` in 16 kHz `pcm`, normalised to the signal's squared amplitude.
fn power_at(pcm: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / 16000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in pcm {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    4.0 * power / (pcm.len() as f64).powi(2)
}

/// SNR (dB) of `decoded` against `original` at the codec delay that fits best.
fn snr_db(original: &[i16], decoded: &[i16]) -> f64 {
    let skip = 320;
    (0..64)
        .map(|delay| {
            let (mut signal, mut noise) = (0.0, 0.0);
            for n in skip..original.len() - 64 {
                let s = f64::from(original[n]);
                let e = f64::from(decoded[n + delay]) - s;
                signal += s * s;
                noise += e * e;
            }
            10.0 * (signal / noise.max(1.0)).log10()
        })
        .fold(f64::MIN, f64::max)
}

#[test]
fn encoder_matches_independent_implementation() {
    let mut encoder = G722Encoder::new();
    let mut bytes = [0u8; 32];
    assert_eq!(encoder.encode(&KAT_PCM, &mut bytes), 32);
    assert_eq!(bytes, KAT_ENCODED);
}

#[test]
fn decoder_matches_independent_implementation() {
    let mut decoder = G722Decoder::new();
    let codes: Vec<u8> = (0..=255u8).step_by(8).collect();
    let mut pcm = [0i16; 64];
    assert_eq!(decoder.decode(&codes, &mut pcm), 64);
    assert_eq!(pcm, KAT_DECODED);
}

/// A 4000-sample chirp (100 Hz rising, amplitude 20 000): rolling hashes of the encoded bytes
/// and of the decoded samples, both from sippy/libg722.
#[test]
fn long_chirp_matches_independent_implementation() {
    let pcm: Vec<i16> = (0..4000)
        .map(|n| {
            let n = n as f64;
            let v = 20000.0 * (2.0 * std::f64::consts::PI * (100.0 + n * 0.5) * n / 16000.0).sin();
            v.clamp(-32768.0, 32767.0) as i16
        })
        .collect();
    let mut encoder = G722Encoder::new();
    let mut bytes = vec![0u8; 2000];
    encoder.encode(&pcm, &mut bytes);
    let mut decoder = G722Decoder::new();
    let mut out = vec![0i16; 4000];
    decoder.decode(&bytes, &mut out);
    let hash_bytes = bytes
        .iter()
        .fold(0u32, |h, &b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let hash_pcm = out.iter().fold(0u32, |h, &s| {
        h.wrapping_mul(31).wrapping_add(u32::from(s as u16))
    });
    assert_eq!(&bytes[1992..], &[245, 91, 184, 18, 254, 27, 182, 218]);
    assert_eq!(
        &out[3992..],
        &[16805, -11257, -16152, 12148, 15495, -13006, -14782, 13880]
    );
    assert_eq!((hash_bytes, hash_pcm), (HASH_BYTES, HASH_PCM));
}
const HASH_BYTES: u32 = 1_445_173_594;
const HASH_PCM: u32 = 3_852_504_720;

#[test]
fn tones_keep_frequency_and_level() {
    // 1 kHz (low band) and 6 kHz (high band: what G.711 cannot carry).
    for (freq, min_snr) in [(1000.0, 20.0), (6000.0, 8.0)] {
        let pcm = tone(freq, 10000.0, 16000);
        let out = round_trip(&pcm);
        let snr = snr_db(&pcm, &out);
        assert!(snr > min_snr, "{freq} Hz: SNR {snr:.1} dB");
        let level = rms(&out[320..]) / rms(&pcm[320..]);
        assert!(
            (0.85..1.15).contains(&level),
            "{freq} Hz: level ratio {level:.3}"
        );
        let wanted = power_at(&out[320..], freq);
        for other in [300.0, 2500.0, 4000.0, 7500.0] {
            if other != freq {
                assert!(
                    power_at(&out[320..], other) < wanted / 100.0,
                    "{freq} Hz leaks into {other} Hz"
                );
            }
        }
    }
}

#[test]
fn silence_stays_silent() {
    let out = round_trip(&[0i16; 3200]);
    assert!(
        out.iter().all(|s| s.abs() <= 4),
        "max {:?}",
        out.iter().map(|s| s.abs()).max()
    );
}

#[test]
fn arbitrary_bytes_decode_without_panic() {
    let mut decoder = G722Decoder::new();
    let mut state = 0x1234_5678u32;
    let mut pcm = [0i16; FRAME_SAMPLES];
    for _ in 0..2000 {
        let mut payload = [0u8; FRAME_BYTES];
        for byte in &mut payload {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *byte = state as u8;
        }
        assert_eq!(decoder.decode(&payload, &mut pcm), FRAME_SAMPLES);
    }
    // Extremes too: full-scale input encodes and decodes without overflow.
    let square: Vec<i16> = (0..3200)
        .map(|n| if n % 16 < 8 { i16::MAX } else { i16::MIN })
        .collect();
    round_trip(&square);
    // Short output buffers are respected.
    let mut short = [0i16; 3];
    assert_eq!(decoder.decode(&[1, 2, 3], &mut short), 2);
}

/// Run with `cargo test --release -p vaani-media cost_per_frame -- --ignored --nocapture`.
#[test]
#[ignore = "timing; run in release"]
fn cost_per_frame() {
    let pcm = tone(1000.0, 10000.0, FRAME_SAMPLES);
    let mut encoder = G722Encoder::new();
    let mut decoder = G722Decoder::new();
    let mut bytes = [0u8; FRAME_BYTES];
    let mut out = [0i16; FRAME_SAMPLES];
    let frames = 50_000;
    let start = std::time::Instant::now();
    for _ in 0..frames {
        encoder.encode(std::hint::black_box(&pcm), &mut bytes);
    }
    let encode = start.elapsed() / frames;
    let start = std::time::Instant::now();
    for _ in 0..frames {
        decoder.decode(std::hint::black_box(&bytes), &mut out);
    }
    let decode = start.elapsed() / frames;
    println!("G.722 per 20 ms frame: encode {encode:?}, decode {decode:?}");
}
