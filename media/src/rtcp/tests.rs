use super::*;
use rand::{Rng, SeedableRng, rngs::StdRng};

/// RFC 3550 RR + SDES + BYE + a PLI (skipped), from the `rtcp` crate's own test vector.
const COMPOUND: [u8; 104] = [
    0x81, 0xc9, 0x0, 0x7, // RR, 1 block, len 7
    0x90, 0x2f, 0x9e, 0x2e, // sender 0x902f9e2e
    0xbc, 0x5e, 0x9a, 0x40, // block about 0xbc5e9a40
    0x0, 0x0, 0x0, 0x0, // fraction 0, cumulative 0
    0x0, 0x0, 0x46, 0xe1, // highest seq 0x46e1
    0x0, 0x0, 0x1, 0x11, // jitter 273
    0x9, 0xf3, 0x64, 0x32, // LSR
    0x0, 0x2, 0x4a, 0x79, // DLSR
    0x81, 0xca, 0x0, 0xc, // SDES, len 12
    0x90, 0x2f, 0x9e, 0x2e, 0x1, 0x26, // CNAME, 38 bytes
    0x7b, 0x39, 0x63, 0x30, 0x30, 0x65, 0x62, 0x39, 0x32, 0x2d, 0x31, 0x61, 0x66, 0x62, 0x2d, 0x39,
    0x64, 0x34, 0x39, 0x2d, 0x61, 0x34, 0x37, 0x64, 0x2d, 0x39, 0x31, 0x66, 0x36, 0x34, 0x65, 0x65,
    0x65, 0x36, 0x39, 0x66, 0x35, 0x7d, 0x0, 0x0, 0x0, 0x0, // END + padding
    0x81, 0xcb, 0x0, 0x1, // BYE
    0x90, 0x2f, 0x9e, 0x2e, //
    0x81, 0xce, 0x0, 0x2, // PLI (payload-specific feedback): skipped
    0x90, 0x2f, 0x9e, 0x2e, 0x90, 0x2f, 0x9e, 0x2e,
];

#[test]
fn parses_rr_sdes_bye_and_skips_feedback() {
    let report = parse_compound(&COMPOUND).expect("valid compound");
    assert_eq!(report.sender, None);
    assert_eq!(report.reporter_ssrc, Some(0x902f9e2e));
    assert_eq!(
        report.blocks,
        vec![ReportBlock {
            ssrc: 0xbc5e9a40,
            fraction_lost: 0,
            cumulative_lost: 0,
            extended_highest_sequence: 0x46e1,
            jitter: 273,
            last_sr: 0x09f3_6432,
            delay_since_last_sr: 0x0002_4a79,
        }]
    );
    assert_eq!(
        report.cname.as_deref(),
        Some(&b"{9c00eb92-1afb-9d49-a47d-91f64eee69f5}"[..])
    );
    assert_eq!(report.bye, vec![0x902f9e2e]);
    assert_eq!(report.skipped, 1);
}

#[test]
fn negative_cumulative_loss_is_sign_extended() {
    let mut packet = COMPOUND[..32].to_vec();
    packet[13..16].copy_from_slice(&[0xFF, 0xFF, 0xFE]); // −2 (duplicates)
    let report = parse_compound(&packet).expect("valid RR");
    assert_eq!(report.blocks[0].cumulative_lost, -2);
}

#[test]
fn rejects_malformed_compounds() {
    assert_eq!(parse_compound(&[]), Err(RtcpError::TooShort { len: 0 }));
    assert_eq!(
        parse_compound(&[0x80, 201, 0]),
        Err(RtcpError::TooShort { len: 3 })
    );
    let mut v1 = COMPOUND;
    v1[0] = 0x41;
    assert_eq!(parse_compound(&v1), Err(RtcpError::BadVersion(1)));
    // RR claiming 8 words more than the datagram holds.
    let mut long = COMPOUND[..32].to_vec();
    long[3] = 15;
    assert!(matches!(
        parse_compound(&long),
        Err(RtcpError::BadLength { words: 15, .. })
    ));
    // RR whose count says two blocks but whose length holds one.
    let mut count = COMPOUND[..32].to_vec();
    count[0] = 0x82;
    assert_eq!(parse_compound(&count), Err(RtcpError::Malformed(PT_RR)));
    // A trailing partial header after a valid packet.
    let mut trailing = COMPOUND[..32].to_vec();
    trailing.extend_from_slice(&[0x80, 0xc9]);
    assert_eq!(
        parse_compound(&trailing),
        Err(RtcpError::TooShort { len: 2 })
    );
    // SR too short for its sender info.
    let sr = [0x80, 200, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8];
    assert_eq!(parse_compound(&sr), Err(RtcpError::Malformed(PT_SR)));
}

#[test]
fn truncations_and_garbage_never_panic() {
    // Every prefix of a valid compound (with and without a fixed-up length).
    for cut in 0..COMPOUND.len() {
        let _ = parse_compound(&COMPOUND[..cut]);
    }
    let mut rng = StdRng::seed_from_u64(5);
    let mut parsed = 0;
    let seeds: [&[u8]; 3] = [&COMPOUND, &COMPOUND[..32], &COMPOUND[32..84]];
    for round in 0..300_000 {
        let mut buf: Vec<u8> = if round % 3 == 0 {
            let len = rng.random_range(0..96);
            (0..len).map(|_| rng.random()).collect()
        } else {
            // Mutate a valid packet: flip bytes, keep the version mostly right.
            let seed = seeds[rng.random_range(0..seeds.len())];
            let mut b = seed[..rng.random_range(0..=seed.len())].to_vec();
            for _ in 0..rng.random_range(1..6) {
                if b.is_empty() {
                    break;
                }
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
            b
        };
        if !buf.is_empty() && rng.random_bool(0.8) {
            buf[0] = (buf[0] & 0x3F) | 0x80;
        }
        if buf.len() > 1 && rng.random_bool(0.5) {
            buf[1] = rng.random_range(200..=204);
        }
        if parse_compound(&buf).is_ok() {
            parsed += 1;
        }
    }
    assert!(parsed > 1000, "the generator should reach the deep parsers");
}

#[test]
fn ntp_middle_bits_and_short_ntp() {
    let t = NtpTimestamp::from_unix(Duration::from_millis(1500));
    assert_eq!(t.0 >> 32, NTP_UNIX_OFFSET_SECS + 1);
    assert_eq!(t.0 as u32, 0x8000_0000);
    assert_eq!(
        t.middle_32(),
        (((NTP_UNIX_OFFSET_SECS + 1) as u32) << 16) | 0x8000
    );
    assert_eq!(duration_to_short_ntp(Duration::from_millis(250)), 0x4000);
    assert_eq!(
        short_ntp_to_duration(0x0001_8000),
        Duration::from_millis(1500)
    );
}

#[test]
fn rtt_is_arrival_minus_lsr_minus_dlsr() {
    // RFC 3550 §6.4.1 worked example: A = 0xb710:8000 (46864.500 s), LSR = 0xb705:2000
    // (46853.125 s), DLSR = 0x0005:4000 (5.250 s) → RTT 6.125 s.
    let rtt = round_trip_time(0xb710_8000, 0xb705_2000, 0x0005_4000).expect("rtt");
    assert_eq!(rtt, Duration::from_millis(6125));
    assert_eq!(round_trip_time(0xb710_8000, 0, 0x0005_4000), None);
    // DLSR longer than A − LSR: negative, discarded.
    assert_eq!(round_trip_time(0xb705_2000, 0xb705_2000, 1), None);
}

#[test]
fn e_model_worked_values() {
    // No loss, no delay: R = 93.2, MOS 4.41.
    assert!((r_factor(0.0, 0.0, G711_IE, G711_BPL) - 93.2).abs() < 1e-9);
    assert!(
        (g711_mos(0.0, 0.0) - 4.409).abs() < 0.001,
        "{}",
        g711_mos(0.0, 0.0)
    );
    // 1 % random loss: Ie_eff = 95 / 26.1 = 3.64 → R 89.56, MOS 4.33.
    let r = r_factor(0.0, 0.01, G711_IE, G711_BPL);
    assert!((r - 89.560).abs() < 0.01, "{r}");
    assert!((mos_from_r(r) - 4.328).abs() < 0.002, "{}", mos_from_r(r));
    // 10 % loss: Ie_eff = 950 / 35.1 = 27.07 → R 66.13, MOS 3.41.
    let r = r_factor(0.0, 0.10, G711_IE, G711_BPL);
    assert!((r - 66.134).abs() < 0.01, "{r}");
    assert!((mos_from_r(r) - 3.41).abs() < 0.01, "{}", mos_from_r(r));
    // 200 ms one way: Id = 4.8 + 0.11 × 22.7 = 7.297 → R 85.90.
    let r = r_factor(200.0, 0.0, G711_IE, G711_BPL);
    assert!((r - 85.903).abs() < 0.01, "{r}");
    // Below the knee only the 0.024/ms slope applies.
    assert!((r_factor(100.0, 0.0, G711_IE, G711_BPL) - 90.8).abs() < 1e-9);
    assert_eq!(mos_from_r(-5.0), 1.0);
    assert_eq!(mos_from_r(120.0), 4.5);
    // Monotonic in loss.
    assert!(g711_mos(0.0, 0.05) > g711_mos(0.0, 0.2));
}

fn reception(received: u64, lost: u64) -> ReceptionSnapshot {
    ReceptionSnapshot {
        ssrc: 0xCAFE,
        extended_highest_sequence: 0x0001_0010,
        received,
        lost,
        jitter: 80.4,
    }
}

#[test]
fn writes_sr_after_rtp_else_rr_with_block_and_cname() {
    let t0 = Instant::now();
    let mut rtcp = RtcpSession::new(0xABCD_0123, t0, DEFAULT_RTCP_INTERVAL);
    rtcp.set_wall_clock(t0, UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let mut out = [0u8; MAX_REPORT_LEN];
    // Nothing sent yet: RR.
    let sender = SenderSnapshot {
        rtp_time: 1234,
        packet_count: 0,
    };
    let n = rtcp
        .write_report(t0, Some(reception(90, 10)), sender, &mut out)
        .expect("fits");
    assert_eq!(out[1], PT_RR);
    let parsed = parse_compound(&out[..n]).expect("our RR parses");
    assert_eq!(parsed.reporter_ssrc, Some(0xABCD_0123));
    assert_eq!(parsed.sender, None);
    let block = parsed.blocks[0];
    assert_eq!(block.ssrc, 0xCAFE);
    assert_eq!(block.fraction_lost, 25); // 10 of 100 × 256 = 25.6
    assert_eq!(block.cumulative_lost, 10);
    assert_eq!(block.extended_highest_sequence, 0x0001_0010);
    assert_eq!(block.jitter, 80);
    assert_eq!((block.last_sr, block.delay_since_last_sr), (0, 0));
    assert_eq!(parsed.cname.as_deref(), Some(&b"vaani-abcd0123"[..]));

    // RTP sent since: SR, and the fraction covers only the new interval (5 of 50).
    for _ in 0..3 {
        rtcp.on_rtp_sent(160);
    }
    let t1 = t0 + Duration::from_secs(5);
    let sender = SenderSnapshot {
        rtp_time: 99,
        packet_count: 3,
    };
    let n = rtcp
        .write_report(t1, Some(reception(135, 15)), sender, &mut out)
        .expect("fits");
    assert!(n <= MAX_REPORT_LEN - 14, "room for SRTCP");
    let parsed = parse_compound(&out[..n]).expect("our SR parses");
    let info = parsed.sender.expect("an SR");
    assert_eq!(info.rtp_time, 99);
    assert_eq!(info.packet_count, 3);
    assert_eq!(info.octet_count, 480);
    assert_eq!(
        info.ntp_time,
        NtpTimestamp::from_unix(Duration::from_secs(1_700_000_005))
    );
    assert_eq!(parsed.blocks[0].fraction_lost, 25); // 5 of 50
    assert_eq!(parsed.blocks[0].cumulative_lost, 15);
    assert_eq!(rtcp.stats().sent, 2);
    // Next due 2.5–7.5 s later.
    let due = rtcp.poll_timeout() - t1;
    assert!(due >= Duration::from_millis(2500) && due < Duration::from_millis(7500));
    // Too small a buffer is an error, not a panic.
    assert_eq!(
        rtcp.write_report(t1, Some(reception(1, 1)), sender, &mut [0u8; 40]),
        Err(RtcpError::BufferTooSmall)
    );
}

#[test]
fn first_report_is_due_after_half_an_interval() {
    let t0 = Instant::now();
    for _ in 0..50 {
        let rtcp = RtcpSession::new(1, t0, Duration::from_secs(4));
        let due = rtcp.poll_timeout() - t0;
        assert!(
            due >= Duration::from_secs(1) && due < Duration::from_secs(3),
            "{due:?}"
        );
    }
}

#[test]
fn peer_reports_give_rtt_loss_and_lsr_dlsr() {
    let t0 = Instant::now();
    let ours = 0x1111_1111;
    let theirs = 0x2222_2222;
    let mut a = RtcpSession::new(ours, t0, DEFAULT_RTCP_INTERVAL);
    let mut b = RtcpSession::new(theirs, t0, DEFAULT_RTCP_INTERVAL);
    a.set_wall_clock(t0, UNIX_EPOCH + Duration::from_secs(1_000_000));
    // The peer's clock is 3 hours off: RTT must not care.
    b.set_wall_clock(t0, UNIX_EPOCH + Duration::from_secs(1_010_800));
    let mut out = [0u8; MAX_REPORT_LEN];
    a.on_rtp_sent(160);
    let sent_at = t0 + Duration::from_secs(2);
    let n = a
        .write_report(
            sent_at,
            None,
            SenderSnapshot {
                rtp_time: 0,
                packet_count: 1,
            },
            &mut out,
        )
        .expect("SR");
    // One-way 40 ms to the peer, which holds the SR 1.5 s, then 60 ms back: RTT 100 ms.
    let at_peer = sent_at + Duration::from_millis(40);
    b.handle_compound(at_peer, &out[..n])
        .expect("peer reads our SR");
    let peer_reports_at = at_peer + Duration::from_millis(1500);
    let snapshot = ReceptionSnapshot {
        ssrc: ours,
        extended_highest_sequence: 100,
        received: 98,
        lost: 2,
        jitter: 16.0,
    };
    let n = b
        .write_report(
            peer_reports_at,
            Some(snapshot),
            SenderSnapshot {
                rtp_time: 0,
                packet_count: 0,
            },
            &mut out,
        )
        .expect("RR");
    let report = a
        .handle_compound(peer_reports_at + Duration::from_millis(60), &out[..n])
        .expect("we read the RR");
    assert_eq!(report.blocks[0].delay_since_last_sr, 0x0001_8000);
    let stats = a.stats();
    let rtt = stats.rtt_last_ms.expect("rtt measured");
    // 16.16 fixed point: within a 1/65536 s step or two.
    assert!((rtt - 100.0).abs() < 0.1, "{rtt}");
    assert_eq!(stats.rtt_mean_ms, stats.rtt_last_ms);
    assert_eq!(stats.rtt_samples, 1);
    assert_eq!(stats.peer_fraction_lost, Some(5.0 / 256.0));
    assert_eq!(stats.peer_cumulative_lost, Some(2));
    assert_eq!(stats.peer_jitter_ms, Some(2.0));
    assert_eq!(stats.received, 1);
    // Garbage is counted, not fatal.
    assert!(a.handle_compound(t0, &[0x80, 200, 0, 9]).is_err());
    assert_eq!(a.stats().invalid, 1);
    assert_eq!(a.stats().received, 1);
}

#[test]
fn bye_from_the_peer_is_noted() {
    let t0 = Instant::now();
    let mut rtcp = RtcpSession::new(7, t0, DEFAULT_RTCP_INTERVAL);
    rtcp.handle_compound(t0, &COMPOUND).expect("valid");
    assert!(rtcp.stats().peer_bye);
    // A block about another SSRC is not about us: no loss figures.
    assert_eq!(rtcp.stats().peer_fraction_lost, None);
}
