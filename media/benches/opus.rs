//! Cost of Opus per 20 ms frame at vaani's settings (16 kHz mono, VoIP, complexity 5, in-band
//! FEC, 24 kbit/s): encode, decode, FEC recovery and PLC. Speech-like input (a 140 Hz voice
//! with harmonics, syllable-rate loudness), so the encoder runs its SILK voice path as on a
//! call. Then a whole call's media per 20 ms, Opus against PCMU: one inbound packet through
//! the jitter buffer, decoding, resampling and VAD, and one outbound packet of playback
//! encoded. `cargo bench -p vaani-media --bench opus`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vaani_media::opus::{FRAME_SAMPLES, MAX_PACKET_SAMPLES, OpusDecoder, OpusEncoder};
use vaani_media::packet::{RTP_HEADER_LEN, write_rtp_header};
use vaani_media::{Codec, EarshotVad, Law, MediaSession, SessionConfig};

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

    // What in-band FEC costs the encoder (the LBRR copy is encoded on every voiced frame).
    let mut encoder = OpusEncoder::new().unwrap();
    encoder.set_inband_fec(false).unwrap();
    let mut i = 0;
    group.bench_function("encode_without_fec", |b| {
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

    // Whole-call cost per 20 ms tick.
    let narrow: Vec<Vec<i16>> = frames
        .iter()
        .map(|f| vaani_media::resample::resample_buffer(f, 16000, 8000))
        .collect();
    let pcmu: Vec<Vec<u8>> = narrow
        .iter()
        .map(|f| {
            let mut out = vec![0u8; f.len()];
            Law::Mu.encode(f, &mut out);
            out
        })
        .collect();
    let playback: Arc<[i16]> = narrow.concat().repeat(10).into();
    let mut group = c.benchmark_group("call_media_per_20ms_tick");
    group.throughput(Throughput::Elements(1));
    for (name, codec, payloads) in [
        ("pcmu", Codec::G711(Law::Mu), &pcmu),
        ("opus", Codec::Opus, &packets),
    ] {
        let phone = SocketAddr::from(([192, 0, 2, 1], 4000));
        let t0 = Instant::now();
        let mut session = MediaSession::new(
            SessionConfig {
                remote: Some(phone),
                ..SessionConfig::new(codec)
            },
            Box::new(EarshotVad::new()),
            t0,
        );
        let payload_type = session.config().payload_type;
        let units = codec.frame_units() as u64;
        let mut buf = [0u8; RTP_HEADER_LEN + 400];
        let mut n = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                if n.is_multiple_of(500) {
                    // 10 s of playback, not interruptible (the caller talks all along).
                    session.enqueue(n, playback.clone(), false);
                }
                let payload = &payloads[(n % payloads.len() as u64) as usize];
                write_rtp_header(
                    &mut buf,
                    false,
                    payload_type,
                    n as u16,
                    (n * units) as u32,
                    0xCA11,
                );
                let len = RTP_HEADER_LEN + payload.len();
                buf[RTP_HEADER_LEN..len].copy_from_slice(payload);
                let now = t0 + Duration::from_millis(20 * n);
                session.handle_rtp(now, phone, &buf[..len]);
                session.handle_timeout(now);
                while session.poll_transmit().is_some() {}
                while session.poll_event().is_some() {}
                n += 1;
            })
        });
        let stats = session.stats();
        assert_eq!(stats.jitter.decode_errors, 0, "{stats:?}");
        assert!(stats.packets_sent + 2 >= n, "{stats:?}");
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
