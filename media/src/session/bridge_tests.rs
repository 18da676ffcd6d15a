//! Two sessions bridged on one thread, driven with a simulated 1 ms clock: leg A (the caller)
//! and leg B (the human), each with a simulated phone behind it.
//!
//! Every frame a phone sends is tagged ([`tagged_frame`]) so that what comes out of the other
//! leg can be matched, sample by sample within G.711 error, to exactly one frame sent.

use super::*;
use crate::bridge::test_signal::{Heard, hear, tagged_frame};
use crate::bridge::{BRIDGE_IN_FRAMES, UnbridgeReason};
use crate::packet::parse_rtp;
use crate::srtp::{SrtpKeys, SrtpSession, SrtpSuite};

/// Tone amplitude of what A's phone (the caller) says.
const CALLER_TONE: i16 = 3000;
/// Tone amplitude of what B's phone (the human) says.
const HUMAN_TONE: i16 = 6000;
/// Tone amplitude of the agent's playback on A.
const AGENT_TONE: i16 = 1500;
const DTMF_PT: u8 = 101;

/// Speech probability 1 when the mean absolute amplitude exceeds 2000, else 0.
struct AmplitudeVad;

impl Vad for AmplitudeVad {
    fn speech_probability(&mut self, pcm16k: &[i16]) -> f32 {
        let mean =
            pcm16k.iter().map(|&s| (s as i64).abs()).sum::<i64>() / pcm16k.len().max(1) as i64;
        if mean > 2000 { 1.0 } else { 0.0 }
    }
}

fn keys(seed: u8, suite: SrtpSuite) -> SrtpKeys {
    SrtpKeys {
        suite,
        local: [seed; 30],
        remote: [seed.wrapping_add(0x40); 30],
    }
}

/// One session and the phone at the other end of it.
struct Leg {
    session: MediaSession,
    law: Law,
    phone: SocketAddr,
    /// The phone's SRTP context (the session's keys seen from the other side).
    phone_srtp: Option<SrtpSession>,
    /// Datagrams the phone sends: (time ms, bytes), in time order.
    arrivals: VecDeque<(u64, Vec<u8>)>,
    /// Packets the session sent, decrypted: (time ms, RTP).
    sent: Vec<(u64, Vec<u8>)>,
    events: Vec<(u64, MediaEvent)>,
}

impl Leg {
    fn new(t0: Instant, start_ms: u64, law: Law, srtp: Option<SrtpKeys>, port: u16) -> Self {
        let phone = SocketAddr::from(([192, 0, 2, 20], port));
        let config = SessionConfig {
            remote: Some(phone),
            dtmf_payload_type: Some(DTMF_PT),
            srtp: srtp.clone(),
            ..SessionConfig::new(law)
        };
        Self {
            session: MediaSession::new(
                config,
                Box::new(AmplitudeVad),
                t0 + Duration::from_millis(start_ms),
            ),
            law,
            phone,
            phone_srtp: srtp.map(|k| SrtpSession::new(&k.swapped())),
            arrivals: VecDeque::new(),
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    fn protect(&mut self, packet: Vec<u8>) -> Vec<u8> {
        match &mut self.phone_srtp {
            Some(srtp) => srtp.protect(&packet).unwrap().to_vec(),
            None => packet,
        }
    }

    /// The phone sends `pcm` as the `n`th 20 ms packet of its stream, arriving at `at_ms`.
    fn phone_sends(&mut self, at_ms: u64, n: u64, pcm: &[i16; FRAME_SAMPLES]) {
        self.phone_sends_packet(at_ms, n, n * 160, pcm);
    }

    /// The phone sends packet `seq` with timestamp `ts` carrying `pcm` (any length).
    fn phone_sends_packet(&mut self, at_ms: u64, seq: u64, ts: u64, pcm: &[i16]) {
        let mut packet = vec![0u8; RTP_HEADER_LEN + pcm.len()];
        write_rtp_header(
            &mut packet,
            seq == 0,
            self.law.static_payload_type(),
            seq as u16,
            ts as u32,
            0xF0_0000 + u32::from(self.phone.port()),
        );
        self.law.encode(pcm, &mut packet[RTP_HEADER_LEN..]);
        let packet = self.protect(packet);
        self.push_arrival(at_ms, packet);
    }

    /// The phone sends tagged frames `ids` (packet `n` = id), one every 20 ms from `first_ms`
    /// for id 0.
    fn phone_talks(&mut self, ids: std::ops::Range<u8>, first_ms: u64, tone: i16) {
        for id in ids {
            self.phone_sends(
                first_ms + 20 * u64::from(id),
                u64::from(id),
                &tagged_frame(id, tone),
            );
        }
    }

    /// A DTMF end packet for `digit_event` (sent three times), on the audio stream's SSRC.
    fn phone_presses(&mut self, at_ms: u64, n: u64, event: u8) {
        for k in 0..3 {
            let mut packet = vec![0u8; RTP_HEADER_LEN + 4];
            write_rtp_header(
                &mut packet,
                false,
                DTMF_PT,
                (n + k) as u16,
                (n * 160) as u32,
                0xF0_0000 + u32::from(self.phone.port()),
            );
            packet[RTP_HEADER_LEN..].copy_from_slice(&[event, 0x8A, 0x03, 0x20]);
            let packet = self.protect(packet);
            self.push_arrival(at_ms, packet);
        }
    }

    fn push_arrival(&mut self, at_ms: u64, packet: Vec<u8>) {
        let index = self.arrivals.partition_point(|(t, _)| *t <= at_ms);
        self.arrivals.insert(index, (at_ms, packet));
    }

    fn deliver(&mut self, now: Instant, ms: u64) -> bool {
        let mut any = false;
        while self.arrivals.front().is_some_and(|(t, _)| *t <= ms) {
            let (_, bytes) = self.arrivals.pop_front().unwrap();
            self.session.handle_rtp(now, self.phone, &bytes);
            any = true;
        }
        any
    }

    fn collect(&mut self, ms: u64) {
        while let Some((to, bytes)) = self.session.poll_transmit() {
            assert_eq!(to, self.phone);
            let clear = match &mut self.phone_srtp {
                Some(srtp) => srtp.unprotect(bytes).expect("authentic SRTP").to_vec(),
                None => bytes.to_vec(),
            };
            self.sent.push((ms, clear));
        }
        while let Some(event) = self.session.poll_event() {
            self.events.push((ms, event));
        }
    }

    /// Audio packets sent in `from..to` ms, decoded: (time, what it sounds like with `tone`).
    fn heard(&self, from: u64, to: u64, tone: i16) -> Vec<(u64, Heard)> {
        let pt = self.law.static_payload_type();
        self.sent
            .iter()
            .filter(|(t, _)| (from..to).contains(t))
            .filter_map(|(t, bytes)| {
                let packet = parse_rtp(bytes).unwrap();
                (packet.header.payload_type == pt).then(|| {
                    let mut pcm = [0i16; FRAME_SAMPLES];
                    assert_eq!(self.law.decode(packet.payload, &mut pcm), FRAME_SAMPLES);
                    (*t, hear(&pcm, tone))
                })
            })
            .collect()
    }

    /// Tagged frames heard in `from..to` ms, in order: (time, id).
    fn frames_heard(&self, from: u64, to: u64, tone: i16) -> Vec<(u64, u8)> {
        self.heard(from, to, tone)
            .into_iter()
            .filter_map(|(t, h)| match h {
                Heard::Frame(id) => Some((t, id)),
                _ => None,
            })
            .collect()
    }

    fn events_matching(&self, pred: impl Fn(&MediaEvent) -> bool) -> Vec<(u64, MediaEvent)> {
        self.events
            .iter()
            .filter(|(_, e)| pred(e))
            .cloned()
            .collect()
    }
}

/// A (the caller's leg, outbound clock from 0 ms) and B (the human's leg, from 7 ms).
struct Pair {
    t0: Instant,
    now_ms: u64,
    a: Leg,
    b: Leg,
}

impl Pair {
    fn new(law_a: Law, law_b: Law, srtp_a: Option<SrtpKeys>, srtp_b: Option<SrtpKeys>) -> Self {
        let t0 = Instant::now();
        Self {
            t0,
            now_ms: 0,
            a: Leg::new(t0, 0, law_a, srtp_a, 30_000),
            b: Leg::new(t0, 7, law_b, srtp_b, 40_000),
        }
    }

    fn plain(law_a: Law, law_b: Law) -> Self {
        Self::new(law_a, law_b, None, None)
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn forward(&mut self) {
        self.a.session.forward_bridge_frames(&mut self.b.session);
        self.b.session.forward_bridge_frames(&mut self.a.session);
    }

    fn bridge(&mut self) {
        self.a.session.start_bridge();
        self.b.session.start_bridge();
    }

    fn unbridge(&mut self) {
        self.a.session.end_bridge(UnbridgeReason::Requested);
        self.b.session.end_bridge(UnbridgeReason::PeerUnbridged);
    }

    /// Runs both legs with a 1 ms clock through `end_ms` (inclusive): each millisecond, due
    /// datagrams first, then due timers; frames cross the bridge after every step.
    fn run_until(&mut self, end_ms: u64) {
        while self.now_ms <= end_ms {
            let ms = self.now_ms;
            let now = self.at(ms);
            if self.a.deliver(now, ms) {
                self.forward();
            }
            if self.b.deliver(now, ms) {
                self.forward();
            }
            for leg in [&mut self.a, &mut self.b] {
                if leg.session.poll_timeout() <= now {
                    leg.session.handle_timeout(now);
                }
            }
            self.forward();
            self.a.collect(ms);
            self.b.collect(ms);
            self.now_ms += 1;
        }
    }
}

/// Every id heard once, in order, each within `max_delay_ms` of when it was sent
/// (`first_ms + 20 × id`).
fn assert_in_order_once(heard: &[(u64, u8)], ids: &[u8], first_ms: u64, max_delay_ms: u64) {
    let got: Vec<u8> = heard.iter().map(|&(_, id)| id).collect();
    assert_eq!(got, ids, "each frame once, in order");
    for &(t, id) in heard {
        let sent = first_ms + 20 * u64::from(id);
        assert!(
            t >= sent && t - sent <= max_delay_ms,
            "frame {id} sent at {sent} ms went out at {t} ms"
        );
    }
}

fn bridge_both_ways(law_a: Law, law_b: Law, srtp_a: Option<SrtpKeys>, srtp_b: Option<SrtpKeys>) {
    let mut p = Pair::new(law_a, law_b, srtp_a, srtp_b);
    p.bridge();
    p.a.phone_talks(0..100, 3, CALLER_TONE);
    p.b.phone_talks(0..100, 11, HUMAN_TONE);
    p.run_until(2400);

    let ids: Vec<u8> = (0..100).collect();
    // Delay beyond the jitter buffer (which releases in-order packets at once): less than
    // one tick.
    assert_in_order_once(&p.b.frames_heard(0, 3000, CALLER_TONE), &ids, 3, 19);
    assert_in_order_once(&p.a.frames_heard(0, 3000, HUMAN_TONE), &ids, 11, 19);
    // Nothing else went out: silence before and after, never a frame twice or stale.
    for (leg, tone) in [(&p.b, CALLER_TONE), (&p.a, HUMAN_TONE)] {
        let heard = leg.heard(0, 3000, tone);
        assert!(heard.len() >= 119, "one packet per tick");
        assert!(
            heard
                .iter()
                .all(|(_, h)| matches!(h, Heard::Frame(_) | Heard::Silence)),
            "{heard:?}"
        );
        let stats = leg.session.stats();
        assert_eq!(stats.bridge_frames_out, 100);
        assert_eq!(stats.bridge_frames_in, 100);
        assert_eq!(stats.bridge_frames_dropped, 0);
        assert_eq!(stats.bridge_underruns, heard.len() as u64 - 100);
        assert_eq!(stats.srtp_failures, 0);
        assert_eq!(leg.events_matching(|e| *e == MediaEvent::Bridged).len(), 1);
    }
}

#[test]
fn a_tone_into_either_leg_comes_out_of_the_other_within_a_tick_pcmu_to_pcma() {
    bridge_both_ways(Law::Mu, Law::A, None, None);
}

#[test]
fn legs_with_the_same_law_and_legs_with_srtp_are_bridged_alike() {
    bridge_both_ways(Law::Mu, Law::Mu, None, None);
    bridge_both_ways(
        Law::A,
        Law::Mu,
        Some(keys(0x11, SrtpSuite::AesCm128HmacSha1_80)),
        None,
    );
    bridge_both_ways(
        Law::Mu,
        Law::A,
        Some(keys(0x21, SrtpSuite::AesCm128HmacSha1_32)),
        Some(keys(0x31, SrtpSuite::AesCm128HmacSha1_80)),
    );
}

#[test]
fn packets_of_30_and_60_ms_are_bridged_a_frame_per_tick_without_loss() {
    let mut p = Pair::plain(Law::Mu, Law::A);
    p.bridge();
    // A's phone: 60 ms packets (three tagged frames each) at 3 + 60 m ms. B's phone: 30 ms
    // packets (one and a half frames each) at 11 + 30 m ms.
    let caller: Vec<i16> = (0..90u8)
        .flat_map(|n| tagged_frame(n, CALLER_TONE))
        .collect();
    for (m, pcm) in caller.chunks(480).enumerate() {
        let m = m as u64;
        p.a.phone_sends_packet(3 + 60 * m, m, 480 * m, pcm);
    }
    let human: Vec<i16> = (0..90u8)
        .flat_map(|n| tagged_frame(n, HUMAN_TONE))
        .collect();
    for (m, pcm) in human.chunks(240).enumerate() {
        let m = m as u64;
        p.b.phone_sends_packet(11 + 30 * m, m, 240 * m, pcm);
    }
    p.run_until(2400);

    let ids: Vec<u8> = (0..90).collect();
    // Frame n of the caller is the (n % 3)th of a packet that arrived at 3 + 60 (n / 3):
    // it goes out in its own tick, as if it had come in a packet of its own 20 n % 3 later,
    // plus at most one tick.
    let to_b = p.b.frames_heard(0, 3000, CALLER_TONE);
    assert_eq!(to_b.iter().map(|f| f.1).collect::<Vec<u8>>(), ids);
    for &(t, n) in &to_b {
        let own_packet = 3 + 60 * u64::from(n / 3) + 20 * u64::from(n % 3);
        assert!(
            t >= own_packet && t - own_packet < 40,
            "frame {n} due {own_packet} ms, out at {t} ms"
        );
    }
    // Frame n of the human is complete when the packet with its last sample arrives.
    let to_a = p.a.frames_heard(0, 3000, HUMAN_TONE);
    assert_eq!(to_a.iter().map(|f| f.1).collect::<Vec<u8>>(), ids);
    for &(t, n) in &to_a {
        let complete = 11 + 30 * ((160 * u64::from(n) + 159) / 240);
        assert!(
            t >= complete && t - complete < 40,
            "frame {n} complete at {complete} ms, out at {t} ms"
        );
    }
    for leg in [&p.a, &p.b] {
        let stats = leg.session.stats();
        assert_eq!(stats.bridge_frames_dropped, 0, "{stats:?}");
        assert_eq!(stats.bridge_frames_in, 90);
    }
}

#[test]
fn loss_on_a_gives_silence_on_b_never_stale_audio() {
    let mut p = Pair::plain(Law::Mu, Law::A);
    p.bridge();
    // Frames 0..150 at 3 + 20 n ms; frame 20 is lost, and so are 40..100 (1.2 s).
    for n in (0..150u8).filter(|&n| n != 20 && !(40..100).contains(&n)) {
        p.a.phone_sends(
            3 + 20 * u64::from(n),
            u64::from(n),
            &tagged_frame(n, CALLER_TONE),
        );
    }
    p.run_until(3200);

    let heard = p.b.heard(0, 3300, CALLER_TONE);
    let frames: Vec<(u64, u8)> = p.b.frames_heard(0, 3300, CALLER_TONE);
    // No received frame is ever sent twice, and they keep their order.
    let ids: Vec<u8> = frames.iter().map(|&(_, id)| id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    // The single loss: silence on the ticks the jitter buffer waits for the packet; when it
    // gives up it releases its concealment with the next two frames at once, and of those
    // three the delay bound keeps the newest two (real audio beats concealment).
    for &(t, id) in &frames {
        let sent = 3 + 20 * u64::from(id);
        assert!(
            t - sent < 40,
            "frame {id} sent at {sent} ms went out at {t} ms"
        );
    }
    assert!(
        ids.contains(&19) && ids.contains(&39) && ids.contains(&100),
        "{ids:?}"
    );
    assert!(ids.iter().filter(|&&id| id > 20 && id < 40).count() >= 17);
    let between: Vec<_> = heard
        .iter()
        .skip_while(|(_, h)| *h != Heard::Frame(19))
        .skip(1)
        .take_while(|(_, h)| !matches!(h, Heard::Frame(_)))
        .collect();
    assert!(
        (1..=3).contains(&between.len()) && between.iter().all(|(_, h)| *h == Heard::Silence),
        "{between:?}"
    );
    // The long loss: at most a faded concealment, then only silence until frame 100 is
    // back.
    let last = 3 + 20 * 39;
    let back = 3 + 20 * 100;
    let during: Vec<_> = heard
        .iter()
        .filter(|(t, _)| *t >= last + 300 && *t < back)
        .collect();
    assert!(during.len() >= 45);
    assert!(
        during.iter().all(|(_, h)| *h == Heard::Silence),
        "{during:?}"
    );
    let concealment: Vec<_> = heard
        .iter()
        .filter(|(t, h)| *t > last && *t < back && *h != Heard::Silence)
        .collect();
    assert!(concealment.len() <= 4, "{concealment:?}");
    // And A's phone sending nothing at all also means silence to B.
    assert!(
        p.b.heard(3 + 20 * 150 + 40, 3300, CALLER_TONE)
            .iter()
            .all(|(_, h)| *h == Heard::Silence)
    );
}

#[test]
fn jitter_is_absorbed_with_at_most_one_tick_of_backlog_and_bursts_are_cut() {
    let mut p = Pair::plain(Law::A, Law::Mu);
    p.bridge();
    // Pairs: frames 2k and 2k+1 both arrive at 3 + 40 k + 21 ms (0..20 ms late).
    for n in 0..60u8 {
        let k = u64::from(n / 2);
        p.a.phone_sends(3 + 40 * k + 21, u64::from(n), &tagged_frame(n, CALLER_TONE));
    }
    // Then a 100 ms stall: frames 60..=65 arrive together.
    for n in 60..66u8 {
        p.a.phone_sends(3 + 20 * 65 + 1, u64::from(n), &tagged_frame(n, CALLER_TONE));
    }
    for n in 66..90u8 {
        p.a.phone_sends(
            3 + 20 * u64::from(n),
            u64::from(n),
            &tagged_frame(n, CALLER_TONE),
        );
    }
    p.run_until(2000);

    let frames = p.b.frames_heard(0, 2100, CALLER_TONE);
    let ids: Vec<u8> = frames.iter().map(|&(_, id)| id).collect();
    // One frame of backlog absorbs the paired arrivals: every frame goes out, in order.
    assert_eq!(&ids[..60], &(0..60).collect::<Vec<u8>>()[..]);
    // The burst: only the newest two frames (one tick of backlog) survive.
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(ids.contains(&65) && ids.contains(&89), "{ids:?}");
    assert!(ids.iter().filter(|&&id| (60..66).contains(&id)).count() <= BRIDGE_IN_FRAMES);
    for &(t, id) in &frames {
        // Delay behind the arrival (not the send time): at most one tick of backlog.
        let arrived = match id {
            0..60 => 3 + 40 * u64::from(id / 2) + 21,
            60..66 => 3 + 20 * 65 + 1,
            _ => 3 + 20 * u64::from(id),
        };
        assert!(
            t - arrived < 40,
            "frame {id} arrived at {arrived} ms, out at {t} ms"
        );
    }
    // Of the six, B kept the newest two.
    let (a, b) = (p.a.session.stats(), p.b.session.stats());
    assert_eq!((a.bridge_frames_dropped, b.bridge_frames_dropped), (0, 4));
    assert_eq!(a.bridge_frames_out, 90);
    assert_eq!(
        b.bridge_frames_in + b.bridge_frames_dropped,
        a.bridge_frames_out
    );
}

#[test]
fn hold_on_b_silences_a_and_b_resumes_with_current_audio() {
    let mut p = Pair::plain(Law::Mu, Law::A);
    p.bridge();
    p.a.phone_talks(0..100, 3, CALLER_TONE);
    // The human's phone is silent on the wire while on hold (600..1200 ms).
    p.b.phone_talks(0..30, 11, HUMAN_TONE);
    p.b.phone_talks(60..100, 11, HUMAN_TONE);
    p.run_until(600);
    p.b.session.set_direction(p.at(600), false, false);
    p.run_until(1200);
    p.b.session.set_direction(p.at(1201), true, true);
    p.run_until(2400);

    // B sends nothing while on hold, then A's current audio, not what was due meanwhile.
    assert!(
        p.b.sent.iter().all(|(t, _)| *t < 601 || *t > 1200),
        "no RTP on hold"
    );
    let after = p.b.frames_heard(1201, 3000, CALLER_TONE);
    let (t, first) = after[0];
    assert_eq!(t, 1207, "the first tick after the hold");
    assert_eq!(3 + 20 * u64::from(first), 1203, "sent 4 ms before: current");
    let ids: Vec<u8> = after.iter().map(|&(_, id)| id).collect();
    assert_eq!(ids, (first..100).collect::<Vec<u8>>());
    // A's caller hears silence while B's phone sends nothing, then the human again.
    let a_heard = p.a.heard(0, 3000, HUMAN_TONE);
    assert!(
        a_heard
            .iter()
            .filter(|(t, _)| (11 + 20 * 30..11 + 20 * 60).contains(t))
            .all(|(_, h)| *h == Heard::Silence)
    );
    let a_frames: Vec<u8> =
        p.a.frames_heard(0, 3000, HUMAN_TONE)
            .iter()
            .map(|f| f.1)
            .collect();
    assert_eq!(a_frames, (0..30).chain(60..100).collect::<Vec<u8>>());
    // The bridge consumed A's frames on schedule during the hold.
    let stats = p.b.session.stats();
    assert_eq!(stats.bridge_frames_in, 100);
}

#[test]
fn playback_is_held_during_the_bridge_and_resumes_where_it_stopped() {
    let mut p = Pair::plain(Law::Mu, Law::A);
    // 25 tagged frames of agent speech, interruptible, then a second item.
    let item: Vec<i16> = (0..25u8)
        .flat_map(|j| tagged_frame(j, AGENT_TONE))
        .collect();
    p.a.session.enqueue(1, item.into(), true);
    p.run_until(205);
    p.bridge();
    p.b.phone_talks(0..50, 211, HUMAN_TONE);
    // The caller talks (loud: speech) to the human for 500 ms, presses 7, then is quiet; the
    // speech only ends (500 ms hangover) after the bridge. Later they talk to the agent.
    for n in 0..90u8 {
        let at = 303 + 20 * u64::from(n);
        match n {
            0..25 => {
                p.a.phone_sends(at, u64::from(n), &tagged_frame(n, CALLER_TONE))
            }
            25 => p.a.phone_presses(at, 25, 7),
            26 | 27 => {}
            70.. => {
                p.a.phone_sends(at, u64::from(n), &tagged_frame(n, CALLER_TONE))
            }
            _ => p.a.phone_sends(at, u64::from(n), &[0; FRAME_SAMPLES]),
        }
    }
    p.run_until(700);
    p.a.session
        .enqueue(2, tagged_frame(99, AGENT_TONE).to_vec().into(), true);
    p.run_until(1205);
    p.unbridge();
    p.run_until(1600);
    let item_3: Vec<i16> = (0..50u8)
        .flat_map(|j| tagged_frame(j, AGENT_TONE))
        .collect();
    p.a.session.enqueue(3, item_3.into(), true);
    p.run_until(2000);

    // The agent's item: frames 0..=10 before the bridge, the rest after, none lost or twice.
    let agent = p.a.frames_heard(0, 1600, AGENT_TONE);
    let before: Vec<u8> = agent.iter().filter(|f| f.0 <= 205).map(|f| f.1).collect();
    let after: Vec<u8> = agent.iter().filter(|f| f.0 > 205).map(|f| f.1).collect();
    assert_eq!(before, (0..=10).collect::<Vec<u8>>());
    assert_eq!(after, (11..25).chain([99]).collect::<Vec<u8>>());
    assert_eq!(
        agent.iter().find(|f| f.1 == 11).unwrap().0,
        1220,
        "next tick"
    );
    // Meanwhile A sent the human's audio.
    let human: Vec<u8> =
        p.a.frames_heard(0, 2100, HUMAN_TONE)
            .iter()
            .map(|f| f.1)
            .collect();
    assert_eq!(human, (0..50).collect::<Vec<u8>>());
    // Events: speech and DTMF kept coming, nothing barged in, the items played out.
    let events: Vec<MediaEvent> =
        p.a.events
            .iter()
            .filter(|(t, _)| *t < 1600)
            .map(|(_, e)| e.clone())
            .collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, MediaEvent::SpeechStarted { .. }))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, MediaEvent::SpeechStopped { .. }))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, MediaEvent::Dtmf { digit: '7', .. }))
    );
    assert!(
        !events.iter().any(|e| matches!(
            e,
            MediaEvent::BargeIn { .. } | MediaEvent::PlaybackStopped { .. }
        )),
        "{events:?}"
    );
    let playback: Vec<&MediaEvent> = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                MediaEvent::PlaybackStarted { .. }
                    | MediaEvent::PlaybackFinished { .. }
                    | MediaEvent::Bridged
                    | MediaEvent::Unbridged { .. }
            )
        })
        .collect();
    assert_eq!(
        playback,
        vec![
            &MediaEvent::PlaybackStarted { id: 1 },
            &MediaEvent::Bridged,
            &MediaEvent::Unbridged {
                reason: UnbridgeReason::Requested
            },
            &MediaEvent::PlaybackFinished { id: 1 },
            &MediaEvent::PlaybackStarted { id: 2 },
            &MediaEvent::PlaybackFinished { id: 2 },
        ]
    );
    assert_eq!(
        p.b.events_matching(|e| matches!(e, MediaEvent::Unbridged { .. })),
        vec![(
            1206,
            MediaEvent::Unbridged {
                reason: UnbridgeReason::PeerUnbridged
            }
        )]
    );
    // The first packet of the bridged audio and of the resumed playback start talk spurts.
    let marker_at = |t: u64| {
        p.a.sent
            .iter()
            .find(|(at, _)| *at == t)
            .map(|(_, b)| parse_rtp(b).unwrap().header.marker)
            .unwrap()
    };
    assert!(marker_at(1220));
    let first_human = p.a.frames_heard(0, 2100, HUMAN_TONE)[0].0;
    assert!(marker_at(first_human));
    // New speech after the bridge barges in as usual (200 ms after it starts at 1703 ms).
    let barge_in =
        p.a.events_matching(|e| matches!(e, MediaEvent::BargeIn { .. }));
    assert_eq!(barge_in.len(), 1, "{barge_in:?}");
    assert!(matches!(barge_in[0].1, MediaEvent::BargeIn { id: 3, .. }));
    assert!((1900..1960).contains(&barge_in[0].0), "{barge_in:?}");
}

#[test]
fn dtmf_sent_while_bridged_replaces_the_bridged_audio_which_then_resumes_current() {
    let mut p = Pair::plain(Law::Mu, Law::A);
    p.bridge();
    p.a.phone_talks(0..100, 3, CALLER_TONE);
    p.run_until(400);
    p.b.session.send_dtmf(p.at(401), "1").unwrap();
    p.run_until(2400);

    let payload_types: Vec<u8> =
        p.b.sent
            .iter()
            .map(|(_, b)| parse_rtp(b).unwrap().header.payload_type)
            .collect();
    assert!(payload_types.contains(&DTMF_PT));
    assert_eq!(
        p.b.events_matching(|e| matches!(e, MediaEvent::DtmfSent { .. }))
            .len(),
        1
    );
    // Frames due while the digit went out are skipped; the others go out on time.
    let frames = p.b.frames_heard(0, 3000, CALLER_TONE);
    let ids: Vec<u8> = frames.iter().map(|f| f.1).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(ids.len() >= 85 && ids.contains(&99), "{ids:?}");
    for &(t, id) in &frames {
        assert!(t - (3 + 20 * u64::from(id)) < 20, "frame {id} at {t} ms");
    }
}

#[test]
fn frames_move_only_while_bridged_and_events_come_once() {
    let mut p = Pair::plain(Law::Mu, Law::Mu);
    p.a.phone_talks(0..10, 3, CALLER_TONE);
    p.run_until(200);
    // Not bridged: nothing to take, pushes are ignored, playback (silence) goes out.
    assert_eq!(p.a.session.take_bridge_frame(), None);
    p.b.session.push_bridge_frame(&tagged_frame(5, CALLER_TONE));
    assert!(!p.b.session.is_bridged());
    p.bridge();
    p.bridge();
    p.a.phone_talks(10..20, 3, CALLER_TONE);
    p.run_until(400);
    p.unbridge();
    p.unbridge();
    p.a.phone_talks(20..30, 3, CALLER_TONE);
    p.run_until(700);

    let ids: Vec<u8> =
        p.b.frames_heard(0, 800, CALLER_TONE)
            .iter()
            .map(|f| f.1)
            .collect();
    assert_eq!(ids, (10..20).collect::<Vec<u8>>());
    for leg in [&p.a, &p.b] {
        let bridge_events: Vec<_> = leg
            .events_matching(|e| matches!(e, MediaEvent::Bridged | MediaEvent::Unbridged { .. }))
            .into_iter()
            .map(|(t, e)| (t, format!("{e:?}")))
            .collect();
        assert_eq!(bridge_events.len(), 2, "{bridge_events:?}");
        assert_eq!(bridge_events[0].0, 201);
        assert_eq!(bridge_events[1].0, 401);
    }
    assert_eq!(
        format!(
            "{:?}",
            p.a.events_matching(|e| matches!(e, MediaEvent::Unbridged { .. }))[0].1
        ),
        "Unbridged { reason: Requested }"
    );
}
