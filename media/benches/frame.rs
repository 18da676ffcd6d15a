//! Cost of each step of the media path per 20 ms frame, and of a whole terminated call per
//! 20 ms (one packet in through jitter buffer, decode, 8→16 kHz resampling and VAD; one paced
//! packet out with playback audio). `cargo bench -p vaani-media --bench frame`. The latest
//! figures are in `docs/benchmarks.md`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vaani_media::g722::{FRAME_BYTES, FRAME_SAMPLES, G722Decoder, G722Encoder};
use vaani_media::jitter::{JitterBuffer, JitterConfig, PacketInfo};
use vaani_media::opus::OpusEncoder;
use vaani_media::packet::{RTP_HEADER_LEN, write_rtp_header};
use vaani_media::resample::FrameResampler;
use vaani_media::{Codec, EarshotVad, EnergyVad, Law, MediaSession, SessionConfig, Vad};

/// Packets prepared outside the timed region at a time.
const BATCH: usize = 1000;

/// 20 ms of a 1 kHz tone plus a 300 Hz tone at `rate` Hz: speech-like level, not silence
/// (codecs and VAD take data-dependent paths on silence).
fn tone(rate: usize) -> Vec<i16> {
    (0..rate / 50)
        .map(|i| {
            let t = i as f64 / rate as f64;
            let v = (t * 1000.0 * std::f64::consts::TAU).sin() * 4000.0
                + (t * 300.0 * std::f64::consts::TAU).sin() * 3000.0;
            v as i16
        })
        .collect()
}

/// 20 ms of digital silence at `rate` Hz (a caller who is listening).
fn silence(rate: usize) -> Vec<i16> {
    vec![0; rate / 50]
}

fn codec_steps(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_20ms_frame");
    group.throughput(Throughput::Elements(1));

    let narrow = tone(8000);
    let mut ulaw = [0u8; 160];
    Law::Mu.encode(&narrow, &mut ulaw);
    let mut pcm = [0i16; 320];
    group.bench_function("g711_decode", |b| {
        b.iter(|| Law::Mu.decode(black_box(&ulaw), &mut pcm))
    });
    let mut out = [0u8; 160];
    group.bench_function("g711_encode", |b| {
        b.iter(|| Law::Mu.encode(black_box(&narrow), &mut out))
    });

    let wide = tone(16000);
    let mut encoder = G722Encoder::new();
    let mut g722 = [0u8; FRAME_BYTES];
    group.bench_function("g722_encode", |b| {
        b.iter(|| encoder.encode(black_box(&wide), &mut g722))
    });
    let mut decoder = G722Decoder::new();
    let mut wide_out = [0i16; FRAME_SAMPLES];
    group.bench_function("g722_decode", |b| {
        b.iter(|| decoder.decode(black_box(&g722), &mut wide_out))
    });

    let mut up = FrameResampler::narrowband_to_wideband().expect("8→16 kHz resampler");
    group.bench_function("resample_8k_to_16k", |b| {
        b.iter(|| black_box(up.process(black_box(&narrow))[0]))
    });
    let mut down = FrameResampler::new(16000, 8000, 320).expect("16→8 kHz resampler");
    group.bench_function("resample_16k_to_8k", |b| {
        b.iter(|| black_box(down.process(black_box(&wide))[0]))
    });

    let mut earshot = EarshotVad::new();
    group.bench_function("vad_earshot", |b| {
        b.iter(|| earshot.speech_probability(black_box(&wide)))
    });
    let quiet = [0i16; 320];
    group.bench_function("vad_earshot_silence_gated", |b| {
        b.iter(|| earshot.speech_probability(black_box(&quiet)))
    });
    let mut energy = EnergyVad::default();
    group.bench_function("vad_energy", |b| {
        b.iter(|| energy.speech_probability(black_box(&wide)))
    });

    // One in-order packet in and its frame out, on a clock advancing 20 ms per packet.
    let mut buffer = JitterBuffer::new(JitterConfig::default(), Law::Mu);
    let t0 = Instant::now();
    let mut n = 0u32;
    group.bench_function("jitter_insert_and_release", |b| {
        b.iter(|| {
            let now = t0 + Duration::from_millis(20 * u64::from(n));
            let info = PacketInfo {
                sequence_number: n as u16,
                timestamp: n.wrapping_mul(160),
                ssrc: 0xF00D,
                marker: false,
            };
            black_box(buffer.insert_audio(now, info, &ulaw));
            while let Some(frame) = buffer.poll_frame(now) {
                black_box(frame.kind);
            }
            n = n.wrapping_add(1);
        })
    });
    group.finish();
}

/// A whole call per 20 ms: the caller's packet through the session's inbound pipeline, the
/// session's tick, and its outbound packet carrying playback audio (re-queued as it drains).
fn call_bench(
    c: &mut Criterion,
    name: &str,
    codec: Codec,
    vad: fn() -> Box<dyn Vad>,
    caller: fn(usize) -> Vec<i16>,
) {
    let phone = SocketAddr::from(([192, 0, 2, 1], 30_000));
    let t0 = Instant::now();
    let config = SessionConfig {
        remote: Some(phone),
        ..SessionConfig::new(codec)
    };
    let mut session = MediaSession::new(config, vad(), t0);
    let payload: Vec<u8> = match codec {
        Codec::G711(law) => {
            let mut bytes = vec![0u8; 160];
            law.encode(&caller(8000), &mut bytes);
            bytes
        }
        Codec::G722 => {
            let mut bytes = vec![0u8; FRAME_BYTES];
            G722Encoder::new().encode(&caller(16000), &mut bytes);
            bytes
        }
        Codec::Opus => {
            let mut bytes = vec![0u8; 400];
            let mut encoder = OpusEncoder::new().expect("Opus encoder");
            let n = encoder
                .encode(&caller(16000), &mut bytes)
                .expect("Opus encodes a tone");
            bytes.truncate(n);
            bytes
        }
    };
    // Twenty seconds of agent audio (one batch) (8 kHz, as the speech stack produces it).
    let agent: Arc<[i16]> = tone(8000).repeat(1000).into();
    let mut playback_id = 0u64;
    let mut packets: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    let mut n = 0u64;
    let mut group = c.benchmark_group("call_per_20ms");
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |bench| {
        bench.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let batch = left.min(BATCH);
                packets.clear();
                for k in n..n + batch as u64 {
                    let mut packet = vec![0u8; RTP_HEADER_LEN + payload.len()];
                    write_rtp_header(
                        &mut packet,
                        false,
                        codec.static_payload_type(),
                        k as u16,
                        (k as u32).wrapping_mul(codec.frame_units()),
                        0xF00D,
                    );
                    packet[RTP_HEADER_LEN..].copy_from_slice(&payload);
                    packets.push(packet);
                }
                // Keep the agent talking: queue the next twenty seconds before this batch.
                playback_id += 1;
                session.enqueue(playback_id, agent.clone(), false);
                let start = Instant::now();
                for packet in &packets {
                    let now = t0 + Duration::from_millis(20 * n);
                    session.handle_rtp(now, phone, packet);
                    session.handle_timeout(now);
                    while let Some((_, bytes)) = session.poll_transmit() {
                        black_box(bytes);
                    }
                    while let Some(event) = session.poll_event() {
                        black_box(event);
                    }
                    n += 1;
                }
                timed += start.elapsed();
                left -= batch;
            }
            timed
        })
    });
    group.finish();
    let stats = session.stats();
    assert!(stats.packets_received > 0, "{stats:?}");
}

fn energy() -> Box<dyn Vad> {
    Box::new(EnergyVad::default())
}

fn earshot() -> Box<dyn Vad> {
    Box::new(EarshotVad::new())
}

fn bench(c: &mut Criterion) {
    codec_steps(c);
    call_bench(c, "pcmu_earshot_vad", Codec::G711(Law::Mu), earshot, tone);
    call_bench(
        c,
        "pcmu_earshot_vad_silent_caller",
        Codec::G711(Law::Mu),
        earshot,
        silence,
    );
    call_bench(c, "pcmu_energy_vad", Codec::G711(Law::Mu), energy, tone);
    call_bench(c, "g722_earshot_vad", Codec::G722, earshot, tone);
    call_bench(c, "opus_earshot_vad", Codec::Opus, earshot, tone);
}

criterion_group!(benches, bench);
criterion_main!(benches);
