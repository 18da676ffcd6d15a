//! Cost of Opus per 20 ms frame at vaani's settings (16 kHz mono, VoIP, complexity 5, in-band
//! FEC, 24 kbit/s): encode, decode, FEC recovery and PLC. Speech-like input (a 140 Hz voice
//! with harmonics, syllable-rate loudness), so the encoder runs its SILK voice path as on a
//! call. `cargo bench -p vaani-media --bench opus`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vaani_media::opus::{FRAME_SAMPLES, MAX_PACKET_SAMPLES, OpusDecoder, OpusEncoder};

/// One second of speech-like 16 kHz audio in 20 ms frames.
fn voiced_frames() -> Vec<Vec<i16>> {
    (0..50)
        .map(|frame| {
            (0..FRAME_SAMPLES)
                .map(|i| {
                    let t = (frame * FRAME_SAMPLES + i) as f64 / 16000.0;
                    let envelope = 0.55 + 0.45 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
                    let voice: f64 = (1..=25)
                        .map(|h| {
                            (2.0 * std::f64::consts::PI * 140.0 * h as f64 * t).sin() / h as f64
                        })
                        .sum();
                    (6000.0 * envelope * voice) as i16
                })
                .collect()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let frames = voiced_frames();
    let mut encoder = OpusEncoder::new().unwrap();
    let packets: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| {
            let mut out = [0u8; 160];
            let n = encoder.encode(f, &mut out).unwrap();
            out[..n].to_vec()
        })
        .collect();

    let mut group = c.benchmark_group("opus_16khz_per_20ms_frame");
    group.throughput(Throughput::Elements(1));

    let mut encoder = OpusEncoder::new().unwrap();
    let mut i = 0;
    group.bench_function("encode", |b| {
        let mut out = [0u8; 160];
        b.iter(|| {
            i = (i + 1) % frames.len();
            black_box(encoder.encode(black_box(&frames[i]), &mut out).unwrap())
        })
    });

    let mut decoder = OpusDecoder::new().unwrap();
    let mut i = 0;
    group.bench_function("decode", |b| {
        let mut pcm = [0i16; MAX_PACKET_SAMPLES];
        b.iter(|| {
            i = (i + 1) % packets.len();
            black_box(decoder.decode(black_box(&packets[i]), &mut pcm).unwrap())
        })
    });

    let mut decoder = OpusDecoder::new().unwrap();
    let mut i = 0;
    group.bench_function("fec_recover", |b| {
        let mut pcm = [0i16; FRAME_SAMPLES];
        b.iter(|| {
            i = (i + 1) % packets.len();
            black_box(
                decoder
                    .decode_fec(black_box(&packets[i]), &mut pcm)
                    .unwrap(),
            )
        })
    });

    let mut decoder = OpusDecoder::new().unwrap();
    let mut i = 0;
    group.bench_function("decode_then_plc", |b| {
        let mut pcm = [0i16; MAX_PACKET_SAMPLES];
        b.iter(|| {
            // Keep the decoder's state realistic: one concealed frame after each decoded one.
            i = (i + 1) % packets.len();
            decoder.decode(&packets[i], &mut pcm).unwrap();
            black_box(decoder.conceal(&mut pcm[..FRAME_SAMPLES]).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
