//! Cost of SRTP per 20 ms G.711 packet (172 bytes of RTP): protect, unprotect, and both, for
//! the two SDES suites. `cargo bench -p vaani-media --bench srtp`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vaani_media::packet::{RTP_HEADER_LEN, write_rtp_header};
use vaani_media::srtp::{SrtpKeys, SrtpSession, SrtpSuite};

fn g711_packet(seq: u16) -> Vec<u8> {
    let mut buf = vec![0xD5u8; RTP_HEADER_LEN + 160];
    write_rtp_header(&mut buf, false, 0, seq, seq as u32 * 160, 0x1234_5678);
    buf
}

fn bench(c: &mut Criterion) {
    for (suite, name) in [
        (SrtpSuite::AesCm128HmacSha1_80, "sha1_80"),
        (SrtpSuite::AesCm128HmacSha1_32, "sha1_32"),
    ] {
        let keys = SrtpKeys {
            suite,
            local: [0x42; 30],
            remote: [0x24; 30],
        };
        let mut group = c.benchmark_group(format!("srtp_{name}_per_20ms_g711_packet"));
        group.throughput(Throughput::Elements(1));

        let mut us = SrtpSession::new(&keys);
        let mut seq = 0u16;
        group.bench_function("protect", |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                black_box(us.protect(black_box(&g711_packet(seq))).unwrap())
            })
        });

        // Unprotect needs a fresh sequence number each time (replay protection): protect a
        // long run ahead of time and cycle through it with a new receiving context per lap.
        let mut sender = SrtpSession::new(&keys.swapped());
        let packets: Vec<Vec<u8>> = (0..60_000u16)
            .map(|s| sender.protect(&g711_packet(s)).unwrap().to_vec())
            .collect();
        let mut rx = SrtpSession::new(&keys);
        let mut i = 0usize;
        group.bench_function("unprotect", |b| {
            b.iter(|| {
                if i == packets.len() {
                    i = 0;
                    rx = SrtpSession::new(&keys);
                }
                let out = rx.unprotect(black_box(&packets[i])).unwrap();
                i += 1;
                black_box(out)
            })
        });

        let mut tx = SrtpSession::new(&keys);
        let mut peer = SrtpSession::new(&keys.swapped());
        let mut seq = 0u16;
        group.bench_function("protect_then_unprotect", |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                if seq == 0 {
                    peer = SrtpSession::new(&keys.swapped());
                    tx = SrtpSession::new(&keys);
                }
                let protected = tx.protect(&g711_packet(seq)).unwrap();
                black_box(peer.unprotect(&protected).unwrap())
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
