//! RTCP between two sessions over a simulated network, on a simulated clock.

use super::*;
use crate::packet::parse_rtp;
use crate::rtcp::{PT_RR, PT_SR, parse_compound};
use crate::srtp::{KEY_SALT_LEN, SRTCP_TRAILER_LEN, SrtpKeys, SrtpSuite};

/// A silent VAD: these tests are about packets.
struct NoSpeech;

impl Vad for NoSpeech {
    fn speech_probability(&mut self, _pcm16k: &[i16]) -> f32 {
        0.0
    }
}

const A_ADDR: &str = "10.0.0.1:40000";
const B_ADDR: &str = "10.0.0.2:50000";
const A_SSRC: u32 = 0xAAAA_0001;
const B_SSRC: u32 = 0xBBBB_0002;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn rtcp_port(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip(), a.port() + 1)
}

/// A datagram in flight: due time (ms), from, to, bytes.
type Flight = (u64, SocketAddr, SocketAddr, Vec<u8>);

/// Two sessions, A (us) and B (the peer), with `one_way_ms` each way; every `drop_every`-th
/// RTP packet from B to A is lost (0: none).
struct Network {
    t0: Instant,
    a: MediaSession,
    b: MediaSession,
    one_way_ms: u64,
    drop_every: u64,
    b_rtp_sent: u64,
    /// Sequence number of B's first RTP packet.
    b_first_seq: Option<u16>,
    in_flight: Vec<Flight>,
    /// Every RTCP datagram A sent: (to, bytes).
    a_rtcp: Vec<(SocketAddr, Vec<u8>)>,
    /// Every RTCP datagram B sent.
    b_rtcp: Vec<(SocketAddr, Vec<u8>)>,
}

impl Network {
    fn new(srtp: Option<SrtpKeys>, one_way_ms: u64, drop_every: u64) -> Self {
        let t0 = Instant::now();
        let a_config = SessionConfig {
            remote: Some(addr(B_ADDR)),
            ssrc: A_SSRC,
            srtp: srtp.clone(),
            ..SessionConfig::new(Law::Mu)
        };
        let b_config = SessionConfig {
            remote: Some(addr(A_ADDR)),
            ssrc: B_SSRC,
            srtp: srtp.map(|k| k.swapped()),
            ..SessionConfig::new(Law::Mu)
        };
        let mut a = MediaSession::new(a_config, Box::new(NoSpeech), t0);
        a.set_wall_clock(
            t0,
            std::time::UNIX_EPOCH + Duration::from_secs(1_750_000_000),
        );
        let b = MediaSession::new(b_config, Box::new(NoSpeech), t0);
        Self {
            t0,
            a,
            b,
            one_way_ms,
            drop_every,
            b_rtp_sent: 0,
            b_first_seq: None,
            in_flight: Vec::new(),
            a_rtcp: Vec::new(),
            b_rtcp: Vec::new(),
        }
    }

    /// Runs the simulation for `ms` milliseconds in 1 ms steps.
    fn run(&mut self, from_ms: u64, ms: u64) {
        for t in from_ms..from_ms + ms {
            let now = self.t0 + Duration::from_millis(t);
            let (due, later): (Vec<Flight>, Vec<Flight>) =
                self.in_flight.drain(..).partition(|f| f.0 <= t);
            self.in_flight = later;
            for (_, from, to, bytes) in due {
                let session = if to.ip() == addr(A_ADDR).ip() {
                    &mut self.a
                } else {
                    &mut self.b
                };
                if to.port() % 2 == 1 {
                    session.handle_rtcp(now, from, &bytes);
                } else {
                    session.handle_rtp(now, from, &bytes);
                }
            }
            self.a.handle_timeout(now);
            self.b.handle_timeout(now);
            let arrive = t + self.one_way_ms;
            while let Some((to, bytes)) = self.a.poll_transmit() {
                self.in_flight
                    .push((arrive, addr(A_ADDR), to, bytes.to_vec()));
            }
            while let Some((to, bytes)) = self.b.poll_transmit() {
                self.b_rtp_sent += 1;
                if self.b_first_seq.is_none() {
                    self.b_first_seq = Some(parse_rtp(bytes).unwrap().header.sequence_number);
                }
                if self.drop_every > 0 && self.b_rtp_sent.is_multiple_of(self.drop_every) {
                    continue;
                }
                self.in_flight
                    .push((arrive, addr(B_ADDR), to, bytes.to_vec()));
            }
            if let Some((to, bytes)) = self.a.poll_transmit_rtcp() {
                self.a_rtcp.push((to, bytes.to_vec()));
                self.in_flight
                    .push((arrive, rtcp_port(addr(A_ADDR)), to, bytes.to_vec()));
            }
            if let Some((to, bytes)) = self.b.poll_transmit_rtcp() {
                self.b_rtcp.push((to, bytes.to_vec()));
                self.in_flight
                    .push((arrive, rtcp_port(addr(B_ADDR)), to, bytes.to_vec()));
            }
        }
    }
}

#[test]
fn reports_flow_both_ways_with_loss_rtt_and_mos() {
    let mut net = Network::new(None, 30, 10);
    net.run(0, 20_000);
    let a = net.a.stats();
    let b = net.b.stats();
    // First report after 1.25–3.75 s, then every 2.5–7.5 s: 3 to 8 in 20 s.
    assert!((3..=8).contains(&a.rtcp.sent), "{:?}", a.rtcp);
    assert!((3..=8).contains(&b.rtcp.sent), "{:?}", b.rtcp);
    assert!(b.rtcp.received + 1 >= a.rtcp.sent, "{:?}", b.rtcp);
    assert_eq!(a.rtcp.invalid + b.rtcp.invalid, 0);
    // To the peer's RTP port + 1, SR (we send RTP all the time) with one block about B.
    for (to, bytes) in &net.a_rtcp {
        assert_eq!(*to, rtcp_port(addr(B_ADDR)));
        assert_eq!(bytes[1], PT_SR);
    }
    let last = parse_compound(&net.a_rtcp.last().unwrap().1).expect("our report parses");
    let block = last.blocks[0];
    assert_eq!(block.ssrc, B_SSRC);
    // One packet in ten dropped: 25.6/256.
    assert!((24..=27).contains(&block.fraction_lost), "{block:?}");
    assert!(
        block.last_sr != 0 && block.delay_since_last_sr > 0,
        "{block:?}"
    );
    // The jitter buffer's count at the time of the report: no more than at the end.
    assert!(block.cumulative_lost > 0 && block.cumulative_lost as u64 <= a.jitter.lost);
    // Every 10th of the packets B sent up to the highest one reported.
    let first = u32::from(net.b_first_seq.unwrap());
    let through_report = block.extended_highest_sequence.wrapping_sub(first) + 1;
    assert!(
        (through_report / 10).abs_diff(block.cumulative_lost as u32) <= 1,
        "{block:?}: {through_report} packets from B up to it"
    );
    // RTT: 2 × 30 ms, measured on both sides to within the 1 ms steps.
    for (who, stats) in [("A", &a), ("B", &b)] {
        let rtt = stats.rtcp.rtt_mean_ms.expect("rtt measured");
        assert!((rtt - 60.0).abs() <= 2.0, "{who}: {:?}", stats.rtcp);
        assert!(stats.rtcp.rtt_samples >= 2, "{who}: {:?}", stats.rtcp);
    }
    // B hears from A how much of its stream was lost; A hears B lost nothing.
    let peer_loss = b.rtcp.peer_fraction_lost.expect("B read A's block");
    assert!((peer_loss - 0.1).abs() < 0.01, "{:?}", b.rtcp);
    assert_eq!(a.rtcp.peer_fraction_lost, Some(0.0));
    assert_eq!(a.rtcp.peer_cumulative_lost, Some(0));
    // MOS from our own inbound loss: 10 % → about 3.4; the clean direction about 4.3.
    let loss = a.inbound_loss().expect("audio arrived");
    assert!((loss - 0.1).abs() < 0.01, "{loss}");
    let mos_a = a.mos().expect("mos");
    assert!((3.2..3.6).contains(&mos_a), "{mos_a}");
    let mos_b = b.mos().expect("mos");
    assert!(
        (4.2..4.41).contains(&mos_b),
        "{mos_b} {}",
        b.one_way_delay_ms()
    );
}

#[test]
fn srtcp_when_the_call_is_secured() {
    let mut local = [0u8; KEY_SALT_LEN];
    let mut remote = [0u8; KEY_SALT_LEN];
    for i in 0..KEY_SALT_LEN {
        local[i] = 3 * i as u8;
        remote[i] = 0x40 ^ i as u8;
    }
    let keys = SrtpKeys {
        suite: SrtpSuite::AesCm128HmacSha1_32,
        local,
        remote,
    };
    let mut net = Network::new(Some(keys), 25, 10);
    net.run(0, 12_000);
    let a = net.a.stats();
    let b = net.b.stats();
    assert!(
        a.rtcp.sent >= 2 && b.rtcp.received >= 2,
        "{:?} {:?}",
        a.rtcp,
        b.rtcp
    );
    assert_eq!(a.rtcp.invalid + b.rtcp.invalid, 0);
    assert_eq!(a.srtp_failures + b.srtp_failures, 0);
    for (_, bytes) in &net.a_rtcp {
        // E flag set, and the body does not read as plain RTCP.
        assert!(bytes[bytes.len() - SRTCP_TRAILER_LEN] & 0x80 != 0);
        let plain = parse_compound(&bytes[..bytes.len() - SRTCP_TRAILER_LEN]);
        assert!(plain.map_or(true, |r| r.blocks.first().is_none_or(|b| b.ssrc != B_SSRC)));
    }
    let rtt = a.rtcp.rtt_mean_ms.expect("rtt over SRTCP");
    assert!((rtt - 50.0).abs() <= 2.0, "{:?}", a.rtcp);
    let peer_loss = b.rtcp.peer_fraction_lost.expect("B read A's block");
    assert!((peer_loss - 0.1).abs() < 0.01, "{:?}", b.rtcp);
    // Plain RTCP on a secured call is refused, not read.
    let now = net.t0 + Duration::from_secs(13);
    let bogus = [0x80, 201, 0, 1, 0xBB, 0xBB, 0, 2];
    net.a.handle_rtcp(now, rtcp_port(addr(B_ADDR)), &bogus);
    assert_eq!(net.a.stats().rtcp.invalid, 1);
    assert_eq!(net.a.stats().rtcp.received, a.rtcp.received);
}

#[test]
fn rtcp_on_the_rtp_port_is_read_too() {
    let mut net = Network::new(None, 10, 0);
    net.run(0, 6_000);
    let (_, report) = net.b_rtcp.first().cloned().expect("B reported");
    let before = net.a.stats();
    let now = net.t0 + Duration::from_millis(6_000);
    net.a.handle_rtp(now, addr(B_ADDR), &report);
    let after = net.a.stats();
    assert_eq!(after.rtcp_packets, before.rtcp_packets + 1);
    assert_eq!(after.rtcp.received, before.rtcp.received + 1);
    assert_eq!(after.invalid_packets, before.invalid_packets);
}

#[test]
fn no_reports_without_interval_or_peer_and_garbage_is_counted() {
    let t0 = Instant::now();
    let config = SessionConfig {
        remote: Some(addr(B_ADDR)),
        rtcp_interval: None,
        ..SessionConfig::new(Law::A)
    };
    let mut off = MediaSession::new(config, Box::new(NoSpeech), t0);
    // Latching: no peer address until RTP arrives.
    let mut latching = MediaSession::new(SessionConfig::new(Law::A), Box::new(NoSpeech), t0);
    let mut reports = 0;
    for ms in (0..20_000).step_by(20) {
        let now = t0 + Duration::from_millis(ms);
        off.handle_timeout(now);
        latching.handle_timeout(now);
        while off.poll_transmit().is_some() {}
        reports += usize::from(off.poll_transmit_rtcp().is_some());
        reports += usize::from(latching.poll_transmit_rtcp().is_some());
    }
    assert_eq!(reports, 0);
    assert_eq!(off.stats().rtcp.sent, 0);
    // Receiving still works with sending off; garbage never panics and is counted.
    let from = rtcp_port(addr(B_ADDR));
    let now = t0 + Duration::from_secs(20);
    for len in 0..40 {
        off.handle_rtcp(now, from, &vec![0x81; len]);
    }
    let stats = off.stats();
    assert_eq!(stats.rtcp.received, 0);
    assert_eq!(stats.rtcp.invalid, 40);
    let rr = [0x80, PT_RR, 0, 1, 0xBB, 0xBB, 0, 2];
    off.handle_rtcp(now, from, &rr);
    assert_eq!(off.stats().rtcp.received, 1);
    // From outside the trunk's media networks: dropped before parsing.
    let mut fenced = MediaSession::new(
        SessionConfig {
            accept_from: vec!["192.0.2.0/24".parse().unwrap()],
            ..SessionConfig::new(Law::A)
        },
        Box::new(NoSpeech),
        t0,
    );
    fenced.handle_rtcp(now, from, &rr);
    assert_eq!(fenced.stats().rtcp.received, 0);
    assert_eq!(fenced.stats().foreign_packets, 1);
}
