//! Cost of a bridged pair of sessions per 20 ms: both legs receive one G.711 packet, run their
//! whole inbound path (jitter buffer, decode, 8→16 kHz resampling, VAD), hand their frame to
//! the other leg and send one packet each (PCMU on one leg, PCMA on the other).
//! `cargo bench -p vaani-media --bench bridge`. Results are quoted in `vaani_media::bridge`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vaani_media::packet::{RTP_HEADER_LEN, write_rtp_header};
use vaani_media::srtp::{SrtpKeys, SrtpSession, SrtpSuite};
use vaani_media::{EarshotVad, EnergyVad, Law, MediaSession, SessionConfig, Vad};

/// Packets prepared (and SRTP-protected) outside the timed region at a time.
const BATCH: usize = 1000;

struct Leg {
    session: MediaSession,
    law: Law,
    phone: SocketAddr,
    phone_srtp: Option<SrtpSession>,
    /// A 20 ms 1 kHz tone at −16 dBFS, encoded with the leg's law.
    payload: [u8; 160],
    packets: Vec<Vec<u8>>,
}

impl Leg {
    fn new(law: Law, port: u16, srtp: Option<SrtpKeys>, vad: Box<dyn Vad>, t0: Instant) -> Leg {
        let phone = SocketAddr::from(([192, 0, 2, 1], port));
        let config = SessionConfig {
            remote: Some(phone),
            srtp: srtp.clone(),
            ..SessionConfig::new(law)
        };
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((i as f64 * std::f64::consts::TAU / 8.0).sin() * 5000.0) as i16)
            .collect();
        let mut payload = [0u8; 160];
        law.encode(&pcm, &mut payload);
        Leg {
            session: MediaSession::new(config, vad, t0),
            law,
            phone,
            phone_srtp: srtp.map(|k| SrtpSession::new(&k.swapped())),
            payload,
            packets: Vec::with_capacity(BATCH),
        }
    }

    /// The phone's packets `from..from + BATCH`.
    fn prepare(&mut self, from: u64) {
        self.packets.clear();
        for n in from..from + BATCH as u64 {
            let mut packet = vec![0u8; RTP_HEADER_LEN + 160];
            write_rtp_header(
                &mut packet,
                false,
                self.law.static_payload_type(),
                n as u16,
                (n * 160) as u32,
                0xF00D,
            );
            packet[RTP_HEADER_LEN..].copy_from_slice(&self.payload);
            if let Some(srtp) = &mut self.phone_srtp {
                packet = srtp.protect(&packet).unwrap().to_vec();
            }
            self.packets.push(packet);
        }
    }
}

/// One 20 ms step of the pair at `now` with packet `k` of the batch.
fn step(a: &mut Leg, b: &mut Leg, now: Instant, k: usize) {
    a.session.handle_rtp(now, a.phone, &a.packets[k]);
    b.session.handle_rtp(now, b.phone, &b.packets[k]);
    a.session.forward_bridge_frames(&mut b.session);
    b.session.forward_bridge_frames(&mut a.session);
    a.session.handle_timeout(now);
    b.session.handle_timeout(now);
    while let Some((_, bytes)) = a.session.poll_transmit() {
        black_box(bytes);
    }
    while let Some((_, bytes)) = b.session.poll_transmit() {
        black_box(bytes);
    }
}

fn pair_bench(c: &mut Criterion, name: &str, bridged: bool, srtp: bool, vad: fn() -> Box<dyn Vad>) {
    let keys = |seed: u8| {
        srtp.then_some(SrtpKeys {
            suite: SrtpSuite::AesCm128HmacSha1_80,
            local: [seed; 30],
            remote: [seed ^ 0xFF; 30],
        })
    };
    let t0 = Instant::now();
    let mut a = Leg::new(Law::Mu, 30_000, keys(0x11), vad(), t0);
    let mut b = Leg::new(Law::A, 40_000, keys(0x22), vad(), t0);
    if bridged {
        a.session.start_bridge();
        b.session.start_bridge();
    }
    let mut n = 0u64;
    let mut group = c.benchmark_group("pair_per_20ms");
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |bench| {
        bench.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let batch = left.min(BATCH);
                a.prepare(n);
                b.prepare(n);
                let start = Instant::now();
                for k in 0..batch {
                    let now = t0 + Duration::from_millis(20 * (n + k as u64));
                    step(&mut a, &mut b, now, k);
                }
                timed += start.elapsed();
                n += batch as u64;
                left -= batch;
            }
            timed
        })
    });
    group.finish();
    assert_eq!(a.session.stats().srtp_failures, 0);
    if bridged {
        let stats = b.session.stats();
        assert_eq!(stats.bridge_frames_dropped, 0, "{stats:?}");
        assert!(stats.bridge_frames_in > 0, "{stats:?}");
    }
}

fn energy() -> Box<dyn Vad> {
    Box::new(EnergyVad::default())
}

fn earshot() -> Box<dyn Vad> {
    Box::new(EarshotVad::new())
}

/// What the engine adds per bridged pair and 20 ms: each direction's frame through its
/// bounded channel (`try_send` on one shard, `try_recv` on the other; here on one thread).
fn channel_bench(c: &mut Criterion) {
    let (a_to_b, b_from_a) = std::sync::mpsc::sync_channel::<[i16; 160]>(4);
    let (b_to_a, a_from_b) = std::sync::mpsc::sync_channel::<[i16; 160]>(4);
    let frame = [1000i16; 160];
    let mut group = c.benchmark_group("pair_per_20ms");
    group.throughput(Throughput::Elements(1));
    group.bench_function("engine_channel_hops", |bench| {
        bench.iter(|| {
            a_to_b.try_send(black_box(frame)).unwrap();
            b_to_a.try_send(black_box(frame)).unwrap();
            black_box(b_from_a.try_recv().unwrap());
            black_box(a_from_b.try_recv().unwrap());
        })
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    channel_bench(c);
    pair_bench(c, "bridged_pcmu_pcma", true, false, energy);
    pair_bench(c, "unbridged_pcmu_pcma", false, false, energy);
    pair_bench(c, "bridged_pcmu_pcma_srtp", true, true, energy);
    pair_bench(c, "bridged_pcmu_pcma_earshot_vad", true, false, earshot);
}

criterion_group!(benches, bench);
criterion_main!(benches);
