use super::*;
use crate::g711::{ULAW_SILENCE, linear_to_ulaw};
use crate::packet::parse_rtp;
use crate::srtp::{SrtpKeys, SrtpSession};
use rand::{Rng, SeedableRng, rngs::StdRng};

const REMOTE: &str = "192.0.2.10:30000";
const CALLER_SSRC: u32 = 0xCA11_0000;

/// Speech probability 1 when the mean absolute amplitude exceeds 2000, else 0.
struct AmplitudeVad;

impl Vad for AmplitudeVad {
    fn speech_probability(&mut self, pcm16k: &[i16]) -> f32 {
        let mean =
            pcm16k.iter().map(|&s| (s as i64).abs()).sum::<i64>() / pcm16k.len().max(1) as i64;
        if mean > 2000 { 1.0 } else { 0.0 }
    }
}

fn remote() -> SocketAddr {
    REMOTE.parse().unwrap()
}

fn config() -> SessionConfig {
    SessionConfig {
        remote: Some(remote()),
        ssrc: 0xB07,
        ..SessionConfig::new(Law::Mu)
    }
}

/// A 1 kHz square wave (±amplitude), µ-law encoded, 20 ms.
fn tone_payload(amplitude: i16) -> Vec<u8> {
    (0..160)
        .map(|i| {
            linear_to_ulaw(if (i / 4) % 2 == 0 {
                amplitude
            } else {
                -amplitude
            })
        })
        .collect()
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; RTP_HEADER_LEN + payload.len()];
    write_rtp_header(&mut buf, marker, pt, seq, ts, ssrc);
    buf[RTP_HEADER_LEN..].copy_from_slice(payload);
    buf
}

/// Caller audio packet `i` of a 20 ms stream.
fn caller_packet(i: u64, amplitude: i16) -> Vec<u8> {
    rtp(
        0,
        i as u16,
        (i * 160) as u32,
        CALLER_SSRC,
        i == 0,
        &tone_payload(amplitude),
    )
}

#[derive(Debug, Clone)]
struct Sent {
    at_ms: u64,
    to: SocketAddr,
    bytes: Vec<u8>,
}

impl Sent {
    fn seq(&self) -> u16 {
        parse_rtp(&self.bytes).unwrap().header.sequence_number
    }
    fn ts(&self) -> u32 {
        parse_rtp(&self.bytes).unwrap().header.timestamp
    }
    fn marker(&self) -> bool {
        parse_rtp(&self.bytes).unwrap().header.marker
    }
    fn is_silence(&self) -> bool {
        self.bytes[RTP_HEADER_LEN..]
            .iter()
            .all(|&b| b == ULAW_SILENCE)
    }
}

struct Harness {
    session: MediaSession,
    t0: Instant,
    sent: Vec<Sent>,
    events: Vec<(u64, MediaEvent)>,
    /// Pending datagrams to deliver: (time ms, source, bytes).
    arrivals: VecDeque<(u64, SocketAddr, Vec<u8>)>,
}

impl Harness {
    fn new(config: SessionConfig) -> Self {
        Self::with_vad(config, Box::new(AmplitudeVad))
    }

    fn with_vad(config: SessionConfig, vad: Box<dyn Vad>) -> Self {
        let t0 = Instant::now();
        Self {
            session: MediaSession::new(config, vad, t0),
            t0,
            sent: Vec::new(),
            events: Vec::new(),
            arrivals: VecDeque::new(),
        }
    }

    fn ms(&self, at: Instant) -> u64 {
        at.duration_since(self.t0).as_millis() as u64
    }

    fn collect(&mut self, at_ms: u64) {
        while let Some((to, bytes)) = self.session.poll_transmit() {
            self.sent.push(Sent {
                at_ms,
                to,
                bytes: bytes.to_vec(),
            });
        }
        while let Some(e) = self.session.poll_event() {
            self.events.push((at_ms, e));
        }
    }

    /// Schedules caller packets `from..to` (20 ms apart, packet i at i×20 ms).
    fn caller_stream(&mut self, from: u64, to: u64, amplitude: i16) {
        let source: SocketAddr = REMOTE.parse().unwrap();
        for i in from..to {
            self.arrivals
                .push_back((i * 20, source, caller_packet(i, amplitude)));
        }
    }

    /// Runs the session as a driver would, until `end_ms`: deliver arrivals when due (before
    /// timers due at the same instant), otherwise wake at `poll_timeout`.
    fn run_until(&mut self, end_ms: u64) {
        let mut sorted: Vec<_> = self.arrivals.drain(..).collect();
        sorted.sort_by_key(|a| a.0);
        self.arrivals = sorted.into();
        loop {
            // Round the deadline up to the next whole millisecond.
            let due = self
                .session
                .poll_timeout()
                .saturating_duration_since(self.t0);
            let timer = due.as_nanos().div_ceil(1_000_000) as u64;
            let arrival = self.arrivals.front().map(|a| a.0);
            match arrival {
                Some(a) if a <= timer && a <= end_ms => {
                    let (at, source, bytes) = self.arrivals.pop_front().unwrap();
                    self.session
                        .handle_rtp(self.t0 + Duration::from_millis(at), source, &bytes);
                    self.collect(at);
                }
                _ if timer <= end_ms => {
                    self.session
                        .handle_timeout(self.t0 + Duration::from_millis(timer));
                    self.collect(timer);
                }
                _ => break,
            }
        }
    }

    fn event_times(&self, pred: impl Fn(&MediaEvent) -> bool) -> Vec<u64> {
        self.events
            .iter()
            .filter(|(_, e)| pred(e))
            .map(|(t, _)| *t)
            .collect()
    }
}

#[test]
fn sends_one_packet_every_20_ms_with_increasing_seq_and_timestamp() {
    let mut h = Harness::new(config());
    h.run_until(1000);
    assert_eq!(h.sent.len(), 51);
    for (i, p) in h.sent.iter().enumerate() {
        assert_eq!(p.at_ms, 20 * i as u64, "packet {i} sent at {}", p.at_ms);
        assert_eq!(p.to, remote());
        assert_eq!(p.bytes.len(), RTP_HEADER_LEN + 160);
        let header = parse_rtp(&p.bytes).unwrap().header;
        assert_eq!(header.payload_type, 0);
        assert_eq!(header.ssrc, 0xB07);
        assert!(!header.marker);
        assert!(p.is_silence(), "silence is sent while nothing is queued");
        if i > 0 {
            let prev = &h.sent[i - 1];
            assert_eq!(p.seq(), prev.seq().wrapping_add(1));
            assert_eq!(p.ts(), prev.ts().wrapping_add(160));
        }
    }
    let stats = h.session.stats();
    assert_eq!(stats.packets_sent, 51);
    assert_eq!(stats.bytes_sent, 51 * 172);
}

#[test]
fn late_wakeups_do_not_drift_and_long_stalls_skip_ticks() {
    let mut h = Harness::new(config());
    let mut rng = StdRng::seed_from_u64(3);
    // Wake up 0..15 ms late for 10 s.
    for k in 0..500u64 {
        let at = 20 * k + rng.random_range(0..15);
        h.session.handle_timeout(h.t0 + Duration::from_millis(at));
        h.collect(at);
    }
    assert_eq!(h.sent.len(), 500);
    for (i, p) in h.sent.iter().enumerate() {
        let scheduled = 20 * i as u64;
        assert!(
            p.at_ms >= scheduled && p.at_ms < scheduled + 15,
            "packet {i} at {}",
            p.at_ms
        );
        if i > 0 {
            assert_eq!(p.ts(), h.sent[i - 1].ts().wrapping_add(160));
        }
    }
    // A 45 ms stall is caught up in a burst (no timestamp jump).
    h.session
        .handle_timeout(h.t0 + Duration::from_millis(10_045));
    h.collect(10_045);
    assert_eq!(h.sent.len(), 503);
    // A 300 ms stall skips the missed ticks: one packet, timestamp jumps, sequence does not.
    h.session
        .handle_timeout(h.t0 + Duration::from_millis(10_350));
    h.collect(10_350);
    assert_eq!(h.sent.len(), 504);
    let (a, b) = (&h.sent[502], &h.sent[503]);
    assert_eq!(b.seq(), a.seq().wrapping_add(1));
    assert_eq!(b.ts(), a.ts().wrapping_add(160 * (517 - 502)));
    assert_eq!(h.session.stats().skipped_ticks, 14);
    // The schedule continues on the original grid.
    assert_eq!(h.ms(h.session.poll_timeout()), 10_360);
}

#[test]
fn playout_plays_in_order_with_marker_and_events() {
    let mut h = Harness::new(config());
    h.run_until(40); // 3 silent packets at 0, 20, 40
    h.session.enqueue(1, vec![8000i16; 320].into(), true);
    h.session.enqueue(2, vec![-8000i16; 160].into(), true);
    h.run_until(200);
    let audio: Vec<&Sent> = h.sent.iter().filter(|p| !p.is_silence()).collect();
    assert_eq!(audio.len(), 3);
    assert_eq!(
        audio.iter().map(|p| p.at_ms).collect::<Vec<_>>(),
        vec![60, 80, 100]
    );
    assert_eq!(audio[0].bytes[RTP_HEADER_LEN], linear_to_ulaw(8000));
    assert_eq!(audio[1].bytes[RTP_HEADER_LEN], linear_to_ulaw(8000));
    assert_eq!(audio[2].bytes[RTP_HEADER_LEN], linear_to_ulaw(-8000));
    assert_eq!(
        audio.iter().map(|p| p.marker()).collect::<Vec<_>>(),
        vec![true, false, false]
    );
    let events: Vec<_> = h.events.clone();
    assert_eq!(
        events,
        vec![
            (60, MediaEvent::PlaybackStarted { id: 1 }),
            (80, MediaEvent::PlaybackFinished { id: 1 }),
            (100, MediaEvent::PlaybackStarted { id: 2 }),
            (100, MediaEvent::PlaybackFinished { id: 2 }),
        ]
    );
    // A later item is a new talk spurt: marker again.
    h.session.enqueue(3, vec![100i16; 160].into(), true);
    h.run_until(300);
    let last_audio = h.sent.iter().rev().find(|p| !p.is_silence()).unwrap();
    assert!(last_audio.marker());
    assert!(h.sent.iter().filter(|p| p.marker()).count() == 2);
}

#[test]
fn flush_stops_playback_with_played_time() {
    let mut h = Harness::new(config());
    h.session.enqueue(5, vec![8000i16; 8000].into(), true);
    h.session.enqueue(6, vec![8000i16; 8000].into(), false);
    h.run_until(100); // 6 frames of item 5
    h.session.flush(Some(5));
    h.collect(100);
    assert_eq!(
        h.events.last(),
        Some(&(
            100,
            MediaEvent::PlaybackStopped {
                id: 5,
                played_ms: 120
            }
        ))
    );
    h.session.flush(None);
    h.collect(100);
    assert_eq!(
        h.events.last(),
        Some(&(
            100,
            MediaEvent::PlaybackStopped {
                id: 6,
                played_ms: 0
            }
        ))
    );
    h.run_until(200);
    assert!(
        h.sent
            .iter()
            .filter(|p| p.at_ms > 100)
            .all(|p| p.is_silence())
    );
}

#[test]
fn caller_speech_produces_speech_events_in_media_time() {
    let mut h = Harness::new(config());
    h.caller_stream(0, 25, 0); // 500 ms silence
    h.caller_stream(25, 75, 12000); // 1 s speech
    h.caller_stream(75, 125, 0); // 1 s silence
    h.run_until(2600);
    let speech: Vec<_> = h
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                MediaEvent::SpeechStarted { .. } | MediaEvent::SpeechStopped { .. }
            )
        })
        .map(|(_, e)| e.clone())
        .collect();
    assert_eq!(speech.len(), 2, "{speech:?}");
    let MediaEvent::SpeechStarted { media_ms } = speech[0] else {
        panic!()
    };
    // Onset at 500 ms of media, give or take the resampler's 10 ms delay (one frame).
    assert!((480..=520).contains(&media_ms), "started at {media_ms}");
    let MediaEvent::SpeechStopped { duration_ms } = speech[1] else {
        panic!()
    };
    assert!(
        (980..=1040).contains(&duration_ms),
        "duration {duration_ms}"
    );
    assert_eq!(h.session.media_ms(), 2500);
    let stats = h.session.stats();
    assert_eq!(stats.packets_received, 125);
    assert_eq!(stats.jitter.received, 125);
    assert_eq!(stats.jitter.lost, 0);
}

#[test]
fn barge_in_flushes_within_the_frame_of_onset() {
    let mut h = Harness::new(config());
    h.session.enqueue(7, vec![6000i16; 16000].into(), true); // 2 s
    h.session.enqueue(8, vec![6000i16; 1600].into(), true);
    h.caller_stream(0, 20, 0);
    h.caller_stream(20, 60, 12000); // speech from 400 ms
    h.run_until(1200);
    let barge = h.event_times(|e| matches!(e, MediaEvent::BargeIn { .. }));
    assert_eq!(barge.len(), 1, "{:?}", h.events);
    let at = barge[0];
    // Speech starts with the packet that arrives at 400 ms (media 400..420); 200 ms of speech
    // are complete when the packet carrying media 580..600 arrives at 580 ms (+ at most one
    // frame for the resampler's 10 ms delay).
    assert!((580..=600).contains(&at), "barge-in at {at}");
    let idx = h
        .events
        .iter()
        .position(|(_, e)| matches!(e, MediaEvent::BargeIn { .. }))
        .unwrap();
    let MediaEvent::BargeIn { id, played_ms } = h.events[idx].1 else {
        unreachable!()
    };
    assert_eq!(id, 7);
    assert_eq!(
        h.events[idx + 1].1,
        MediaEvent::PlaybackStopped { id: 7, played_ms }
    );
    assert_eq!(
        h.events[idx + 2].1,
        MediaEvent::PlaybackStopped {
            id: 8,
            played_ms: 0
        }
    );
    // The loud caller frame at 400 ms held the playback at once (its 400 ms were heard);
    // confirmed speech flushed it at `at`.
    assert_eq!(played_ms, 400);
    // Audio up to the onset, silence from the very next packet.
    for p in &h.sent {
        if p.at_ms < 400 {
            assert!(!p.is_silence(), "packet at {} should be audio", p.at_ms);
        } else if p.at_ms > 400 {
            assert!(p.is_silence(), "packet at {} should be silence", p.at_ms);
        }
    }
    assert_eq!(h.session.stats().barge_ins, 1);
    let started = h.event_times(|e| matches!(e, MediaEvent::SpeechStarted { .. }));
    assert_eq!(started.len(), 1);
    assert!(started[0] < at);
}

#[test]
fn a_minimum_shorter_than_the_vad_onset_cuts_playback_that_early() {
    // The detector needs 100 ms above the onset threshold to declare speech; a barge-in
    // minimum of one frame must not wait for it.
    for (min_speech_ms, earliest, latest) in [(20, 400, 420), (60, 440, 460), (0, 400, 420)] {
        let mut cfg = config();
        cfg.barge_in.min_speech_ms = min_speech_ms;
        let mut h = Harness::new(cfg);
        h.session.enqueue(7, vec![6000i16; 16000].into(), true); // 2 s
        h.caller_stream(0, 20, 0);
        h.caller_stream(20, 60, 12000); // speech from 400 ms
        h.run_until(1000);
        let barge = h.event_times(|e| matches!(e, MediaEvent::BargeIn { .. }));
        assert_eq!(barge.len(), 1, "min {min_speech_ms}: {:?}", h.events);
        assert!(
            (earliest..=latest).contains(&barge[0]),
            "min {min_speech_ms}: barge-in at {}",
            barge[0]
        );
        let started = h.event_times(|e| matches!(e, MediaEvent::SpeechStarted { .. }));
        assert!(barge[0] < started[0], "before the detector's onset");
    }
}

#[test]
fn a_click_holds_the_playback_then_it_resumes_with_nothing_lost() {
    let mut h = Harness::new(config());
    h.session.enqueue(7, vec![6000i16; 8000].into(), true); // 1 s
    h.caller_stream(0, 20, 0);
    h.caller_stream(20, 22, 12000); // 40 ms click at 400 ms
    h.caller_stream(22, 120, 0);
    h.run_until(2500);
    assert!(
        h.event_times(|e| matches!(e, MediaEvent::BargeIn { .. }))
            .is_empty(),
        "{:?}",
        h.events
    );
    let finished = h.event_times(|e| matches!(e, MediaEvent::PlaybackFinished { id: 7 }));
    assert_eq!(finished.len(), 1, "{:?}", h.events);
    let audio = h.sent.iter().filter(|p| !p.is_silence()).count();
    assert_eq!(audio, 50, "every frame of the item went out");
    // Held from the click until the grace ran out: 200 + 300 ms of silence in the middle.
    assert!(finished[0] >= 1000 + 400, "finished at {}", finished[0]);
    assert_eq!(h.session.stats().barge_in_holds_released, 1);
}

#[test]
fn a_hold_ends_by_itself_when_the_caller_goes_silent_on_the_wire() {
    let mut h = Harness::new(config());
    h.session.enqueue(7, vec![6000i16; 8000].into(), true); // 1 s
    h.caller_stream(0, 20, 0);
    h.caller_stream(20, 22, 12000); // a click, then no RTP at all (silence suppression)
    h.run_until(2500);
    let finished = h.event_times(|e| matches!(e, MediaEvent::PlaybackFinished { id: 7 }));
    assert_eq!(finished.len(), 1, "{:?}", h.events);
    assert_eq!(h.sent.iter().filter(|p| !p.is_silence()).count(), 50);
}

#[test]
fn steady_loud_line_noise_does_not_hold_the_agent() {
    let mut h = Harness::new(config());
    h.session.enqueue(7, vec![6000i16; 8000].into(), true); // 1 s from 0
    // A loud but steady line from the start: the background level, not an onset.
    h.caller_stream(0, 120, 3000);
    h.run_until(2500);
    // The test VAD calls a loud tone speech, so it may barge in once 200 ms of it are
    // confirmed; before that the agent must not have been held.
    for p in h.sent.iter().filter(|p| p.at_ms < 180) {
        assert!(!p.is_silence(), "held at {} ms", p.at_ms);
    }
    assert_eq!(h.session.stats().barge_in_holds_released, 0);
}

#[test]
fn silence_never_barges_in_even_with_no_minimum() {
    let mut cfg = config();
    cfg.barge_in.min_speech_ms = 0;
    let mut h = Harness::new(cfg);
    h.session.enqueue(7, vec![6000i16; 8000].into(), true); // 1 s
    h.caller_stream(0, 60, 0);
    h.run_until(1300);
    assert!(
        h.event_times(|e| matches!(e, MediaEvent::BargeIn { .. }))
            .is_empty(),
        "{:?}",
        h.events
    );
}

#[test]
fn speech_does_not_interrupt_non_interruptible_items_or_when_disabled() {
    for (interruptible, enabled) in [(false, true), (true, false)] {
        let mut cfg = config();
        cfg.barge_in.enabled = enabled;
        let mut h = Harness::new(cfg);
        h.session
            .enqueue(9, vec![6000i16; 8000].into(), interruptible); // 1 s
        h.caller_stream(0, 60, 12000);
        h.run_until(1300);
        assert!(
            h.event_times(|e| matches!(e, MediaEvent::BargeIn { .. }))
                .is_empty()
        );
        assert_eq!(
            h.event_times(|e| *e == MediaEvent::PlaybackFinished { id: 9 }),
            vec![980]
        );
    }
}

#[test]
fn rtp_timeout_fires_once_and_rearms_when_rtp_resumes() {
    let mut h = Harness::new(config());
    h.run_until(65_000);
    assert_eq!(
        h.event_times(|e| *e == MediaEvent::RtpTimeout),
        vec![30_000]
    );
    h.arrivals
        .push_back((65_000, remote(), caller_packet(0, 0)));
    h.run_until(100_000);
    assert_eq!(
        h.event_times(|e| *e == MediaEvent::RtpTimeout),
        vec![30_000, 95_000]
    );
    // The send clock kept running through it all.
    assert_eq!(h.sent.len(), 5001);
}

#[test]
fn on_hold_nothing_is_sent_and_a_silent_peer_is_not_timed_out() {
    let mut h = Harness::new(config());
    h.run_until(1_000);
    let before_hold = h.sent.len();
    // The peer holds with `inactive`: we neither send nor expect RTP.
    h.session
        .set_direction(h.t0 + Duration::from_millis(1_000), false, false);
    h.run_until(61_000);
    assert_eq!(h.sent.len(), before_hold, "RTP went out while on hold");
    assert!(h.event_times(|e| *e == MediaEvent::RtpTimeout).is_empty());
    // Resume: sending restarts with a timestamp that kept counting, and the RTP timeout
    // counts from the resume.
    h.session
        .set_direction(h.t0 + Duration::from_millis(61_000), true, true);
    h.run_until(92_000);
    let resumed = &h.sent[before_hold..];
    assert!(!resumed.is_empty());
    let gap_ts = resumed[0].ts().wrapping_sub(h.sent[before_hold - 1].ts());
    assert!(gap_ts >= 60_000 * 8, "timestamp jumped by only {gap_ts}");
    assert_eq!(
        resumed[0].seq(),
        h.sent[before_hold - 1].seq().wrapping_add(1),
        "sequence numbers continue without a gap"
    );
    assert_eq!(
        h.event_times(|e| *e == MediaEvent::RtpTimeout),
        vec![91_000]
    );
}

#[test]
fn garbage_never_panics_and_is_counted() {
    let mut h = Harness::new(config());
    let mut rng = StdRng::seed_from_u64(11);
    let source = remote();
    let mut t = 0;
    for i in 0..20_000u64 {
        let len = rng.random_range(0..400);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if len >= 2 && i % 2 == 0 {
            bytes[0] = (bytes[0] & 0x3F) | 0x80; // version 2, so parsing goes deeper
            bytes[1] = if i % 4 == 0 {
                bytes[1] & 0x80
            } else {
                bytes[1]
            }; // often PT 0
        }
        t += rng.random_range(0..3);
        h.session
            .handle_rtp(h.t0 + Duration::from_millis(t), source, &bytes);
        h.session.handle_timeout(h.t0 + Duration::from_millis(t));
        h.collect(t);
    }
    let stats = h.session.stats();
    assert!(stats.invalid_packets > 1000, "{stats:?}");
    assert!(stats.packets_received > 1000, "{stats:?}");
    // Specific nasties: empty, RTCP, header only, padding-only.
    let now = h.t0 + Duration::from_millis(t);
    h.session.handle_rtp(now, source, &[]);
    h.session
        .handle_rtp(now, source, &[0x80, 200, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
    h.session
        .handle_rtp(now, source, &rtp(0, 1, 1, 1, false, &[]));
    h.session
        .handle_rtp(now, source, &[0xA0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0]);
    assert_eq!(h.session.stats().rtcp_packets, stats.rtcp_packets + 1);
    // Still sending on schedule.
    let before = h.sent.len();
    h.session.handle_timeout(now + Duration::from_millis(100));
    h.collect(t + 100);
    assert!(h.sent.len() > before);
}

#[test]
fn without_sdp_address_latches_once_to_the_first_rtp_source() {
    let mut cfg = config();
    cfg.remote = None;
    let mut h = Harness::new(cfg);
    h.run_until(100);
    assert!(
        h.sent.is_empty(),
        "nothing is sent before the remote is known"
    );
    let first: SocketAddr = "198.51.100.1:4000".parse().unwrap();
    let second: SocketAddr = "198.51.100.2:5000".parse().unwrap();
    // An unknown payload type does not latch; audio does.
    h.arrivals
        .push_back((105, second, rtp(97, 1, 1, 5, false, &[0; 4])));
    h.arrivals.push_back((110, first, caller_packet(0, 0)));
    h.arrivals.push_back((150, second, caller_packet(2, 0)));
    h.run_until(300);
    assert_eq!(h.sent.first().map(|p| p.at_ms), Some(120));
    assert!(h.sent.iter().all(|p| p.to == first));
    assert_eq!(h.session.remote(), Some(first));
    assert_eq!(h.session.stats().unknown_payload_packets, 1);
}

#[test]
fn rtp_from_outside_the_peers_media_networks_is_dropped_and_never_latched() {
    let mut cfg = config();
    cfg.remote = None;
    cfg.accept_from = vec!["168.86.128.0/18".parse().unwrap()];
    let mut h = Harness::new(cfg);
    let intruder: SocketAddr = "203.0.113.66:4000".parse().unwrap();
    let carrier: SocketAddr = "168.86.130.7:40150".parse().unwrap();
    // The intruder is first and loud: it must neither be latched to nor heard.
    for i in 0..10 {
        h.arrivals
            .push_back((100 + i * 20, intruder, caller_packet(i, 8000)));
    }
    h.arrivals.push_back((400, carrier, caller_packet(20, 0)));
    h.run_until(600);
    assert_eq!(h.session.remote(), Some(carrier));
    assert!(h.sent.iter().all(|p| p.to == carrier));
    let stats = h.session.stats();
    assert_eq!(stats.foreign_packets, 10);
    assert_eq!(stats.packets_received, 1, "{stats:?}");
    assert!(
        h.event_times(|e| matches!(e, MediaEvent::SpeechStarted { .. }))
            .is_empty(),
        "the intruder's audio reached the VAD"
    );
}

#[test]
fn sipp_dtmf_on_its_own_ssrc_gives_one_digit() {
    let mut cfg = config();
    cfg.dtmf_payload_type = Some(96);
    let mut h = Harness::new(cfg);
    h.caller_stream(0, 50, 0);
    let src = remote();
    let dtmf_ssrc = 0x0102_0305;
    let mut seq = 0u16;
    let mut t = 100;
    for _ in 0..20 {
        h.arrivals
            .push_back((t, src, rtp(97, seq, 0, dtmf_ssrc, false, &[0; 4])));
        seq += 1;
    }
    for press in 0..2u32 {
        let ts = 8000 + press * 4000;
        for i in 0..=8u16 {
            let d = (i * 160).to_be_bytes();
            h.arrivals.push_back((
                t,
                src,
                rtp(96, seq, ts, dtmf_ssrc, i == 0, &[1, 10, d[0], d[1]]),
            ));
            seq += 1;
            t += 20;
        }
        for _ in 0..3 {
            let d = 1280u16.to_be_bytes();
            h.arrivals.push_back((
                t,
                src,
                rtp(96, seq, ts, dtmf_ssrc, false, &[1, 0x80 | 10, d[0], d[1]]),
            ));
            seq += 1;
        }
        t += 100;
    }
    h.run_until(1100);
    let digits: Vec<_> = h
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            MediaEvent::Dtmf { digit, .. } => Some(*digit),
            _ => None,
        })
        .collect();
    assert_eq!(digits, vec!['1', '1']);
    let stats = h.session.stats();
    assert_eq!(stats.dtmf_digits, 2);
    assert_eq!(stats.unknown_payload_packets, 20);
    // The voice stream was not disturbed by the other SSRC.
    assert_eq!(
        (
            stats.jitter.lost,
            stats.jitter.resets,
            stats.jitter.received
        ),
        (0, 0, 50)
    );
}

#[test]
fn dtmf_on_the_voice_ssrc_is_not_audio_loss() {
    let mut cfg = config();
    cfg.dtmf_payload_type = Some(101);
    let mut h = Harness::new(cfg);
    let src = remote();
    for i in 0..10u64 {
        h.arrivals.push_back((i * 20, src, caller_packet(i, 0)));
    }
    // Twilio style: the event replaces audio in the same RTP stream (same SSRC, seq space).
    for i in 0..8u16 {
        let d = (160 * (i + 1)).min(1280).to_be_bytes();
        let e = if i >= 5 { 0x80 } else { 0 };
        h.arrivals.push_back((
            200 + 20 * i as u64,
            src,
            rtp(
                101,
                10 + i,
                1600,
                CALLER_SSRC,
                i == 0,
                &[5, e | 10, d[0], d[1]],
            ),
        ));
    }
    for i in 0..10u64 {
        let seq = 18 + i as u16;
        let ts = (1600 + 1280 + 160 * i) as u32;
        h.arrivals.push_back((
            360 + 20 * i,
            src,
            rtp(0, seq, ts, CALLER_SSRC, false, &tone_payload(0)),
        ));
    }
    h.run_until(700);
    let digits: Vec<_> = h
        .events
        .iter()
        .filter(|(_, e)| matches!(e, MediaEvent::Dtmf { .. }))
        .collect();
    assert_eq!(digits.len(), 1);
    assert!(matches!(digits[0].1, MediaEvent::Dtmf { digit: '5', .. }));
    let j = h.session.stats().jitter;
    assert_eq!(
        (j.lost, j.resets, j.gap_samples, j.received),
        (0, 0, 1280, 20)
    );
    // Media time includes the event's duration.
    assert_eq!(h.session.media_ms(), 200 + 160 + 200);
}

#[test]
fn caller_audio_is_kept_at_16_khz_in_a_bounded_ring() {
    let mut cfg = config();
    cfg.caller_audio_ms = 100;
    let mut h = Harness::new(cfg);
    h.caller_stream(0, 3, 8000);
    h.run_until(60);
    let mut out = Vec::new();
    assert_eq!(h.session.drain_caller_audio(&mut out), 3 * 320);
    assert_eq!(h.session.drain_caller_audio(&mut out), 0);
    h.caller_stream(3, 20, 8000);
    h.run_until(400);
    out.clear();
    assert_eq!(
        h.session.drain_caller_audio(&mut out),
        1600,
        "bounded to 100 ms"
    );
    assert!(out.iter().any(|&s| s.abs() > 4000));
}

#[test]
fn session_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<MediaSession>();
    assert_send::<MediaEvent>();
}

/// Scripted VAD: probability 1 for the 20 ms frames (counted from media time 0) that start
/// inside one of `speech` (`(from_ms, to_ms)`, end exclusive), else 0.
struct ScriptedVad {
    speech: Vec<std::ops::Range<u64>>,
    frame: u64,
}

impl ScriptedVad {
    fn boxed(speech: &[(u64, u64)]) -> Box<dyn Vad> {
        let speech = speech.iter().map(|&(from, to)| from..to).collect();
        Box::new(Self { speech, frame: 0 })
    }
}

impl Vad for ScriptedVad {
    fn speech_probability(&mut self, _pcm16k: &[i16]) -> f32 {
        let at = self.frame * 20;
        self.frame += 1;
        if self.speech.iter().any(|r| r.contains(&at)) {
            1.0
        } else {
            0.0
        }
    }
}

/// Caller audio at 8 kHz: a 1 kHz tone in 700..1000 ms, a 400 Hz tone in 1000..2000 ms,
/// silence elsewhere.
fn two_tones(sample: u64) -> i16 {
    let t_ms = sample / 8;
    let phase = |hz: f64| (2.0 * std::f64::consts::PI * hz * sample as f64 / 8000.0 + 0.3).sin();
    let value = match t_ms {
        700..1000 => phase(1000.0),
        1000..2000 => phase(400.0),
        _ => 0.0,
    };
    (value * 8000.0) as i16
}

/// Schedules caller packets `0..packets` whose 8 kHz audio is `signal(sample index)`;
/// returns the payloads sent.
fn stream_signal(h: &mut Harness, packets: u64, signal: impl Fn(u64) -> i16) -> Vec<Vec<u8>> {
    let mut payloads = Vec::new();
    for i in 0..packets {
        let payload: Vec<u8> = (0..160)
            .map(|k| linear_to_ulaw(signal(i * 160 + k)))
            .collect();
        let packet = rtp(0, i as u16, (i * 160) as u32, CALLER_SSRC, i == 0, &payload);
        h.arrivals.push_back((i * 20, remote(), packet));
        payloads.push(payload);
    }
    payloads
}

/// What the session's inbound path should see: the payloads decoded and resampled to 16 kHz
/// by an independent resampler.
fn reference_16k(payloads: &[Vec<u8>]) -> Vec<i16> {
    let mut resampler = FrameResampler::narrowband_to_wideband().unwrap();
    let mut pcm = [0i16; FRAME_SAMPLES];
    let mut out = Vec::new();
    for payload in payloads {
        Law::Mu.decode(payload, &mut pcm);
        out.extend_from_slice(resampler.process(&pcm));
    }
    out
}

/// Sign changes (a tone of f Hz has 2·f per second).
fn zero_crossings(pcm: &[i16]) -> usize {
    pcm.windows(2)
        .filter(|w| (w[0] >= 0) != (w[1] >= 0))
        .count()
}

/// (time collected, start_ms, end_ms, audio) of each utterance.
fn utterances(h: &Harness) -> Vec<(u64, u32, u32, Arc<[i16]>)> {
    h.events
        .iter()
        .filter_map(|(at, e)| match e {
            MediaEvent::Utterance {
                start_ms,
                end_ms,
                audio,
            } => Some((*at, *start_ms, *end_ms, Arc::clone(audio))),
            _ => None,
        })
        .collect()
}

fn utterance_config() -> SessionConfig {
    SessionConfig {
        utterances: true,
        ..config()
    }
}

#[test]
fn utterance_holds_the_callers_audio_from_preroll_to_tail() {
    let mut cfg = utterance_config();
    cfg.caller_audio_ms = 100; // the same history also serves drain_caller_audio
    let mut h = Harness::with_vad(cfg, ScriptedVad::boxed(&[(1000, 2000)]));
    let payloads = stream_signal(&mut h, 150, two_tones);
    h.run_until(3100);
    let speech: Vec<MediaEvent> = h
        .events
        .iter()
        .map(|(_, e)| e.clone())
        .filter(|e| {
            matches!(
                e,
                MediaEvent::SpeechStarted { .. }
                    | MediaEvent::SpeechStopped { .. }
                    | MediaEvent::Utterance { .. }
            )
        })
        .collect();
    assert_eq!(speech.len(), 3, "{speech:?}");
    assert_eq!(speech[0], MediaEvent::SpeechStarted { media_ms: 1000 });
    assert_eq!(speech[1], MediaEvent::SpeechStopped { duration_ms: 1000 });
    let MediaEvent::Utterance {
        start_ms,
        end_ms,
        audio,
    } = &speech[2]
    else {
        panic!("{speech:?}")
    };
    // 300 ms of pre-roll before the onset at 1000; speech ends at 2000, the hangover (500 ms)
    // contributes the 300 ms tail.
    assert_eq!((*start_ms, *end_ms), (700, 2300));
    assert_eq!(audio.len(), 1600 * 16);
    // Emitted in the same step as SpeechStopped (hangover complete at 2500 + jitter delay).
    let stopped_at = h.event_times(|e| matches!(e, MediaEvent::SpeechStopped { .. }));
    assert_eq!(utterances(&h)[0].0, stopped_at[0]);
    // Exactly the caller's audio as the VAD saw it.
    let reference = reference_16k(&payloads);
    assert!(audio[..] == reference[700 * 16..2300 * 16]);
    // And recognisably the tones fed in (the 16 kHz stream lags the RTP audio by 10 ms):
    // the pre-roll carries the 1 kHz tone, the speech the 400 Hz one, the tail silence.
    let ms = |from: usize, to: usize| &audio[(from - 700) * 16..(to - 700) * 16];
    let preroll = zero_crossings(ms(730, 990));
    assert!(
        (510..=530).contains(&preroll),
        "{preroll} crossings in 260 ms"
    );
    let speech_part = zero_crossings(ms(1030, 1990));
    assert!(
        (758..=778).contains(&speech_part),
        "{speech_part} in 960 ms"
    );
    assert!(ms(2040, 2300).iter().all(|s| s.abs() < 100));
    assert!(ms(1030, 1990).iter().any(|s| s.abs() > 6000));
    // Debug output summarises the audio instead of dumping it.
    assert!(format!("{:?}", speech[2]).contains("samples: 25600"));
    // drain_caller_audio reads the last 100 ms from the same history.
    let mut drained = Vec::new();
    assert_eq!(h.session.drain_caller_audio(&mut drained), 1600);
    let written = h.session.media_ms() as usize * 16;
    assert!(drained[..] == reference[written - 1600..written]);
}

#[test]
fn no_utterances_unless_enabled() {
    let mut h = Harness::with_vad(config(), ScriptedVad::boxed(&[(1000, 2000)]));
    stream_signal(&mut h, 150, two_tones);
    h.run_until(3100);
    assert!(utterances(&h).is_empty(), "{:?}", h.events);
    assert_eq!(
        h.event_times(|e| matches!(
            e,
            MediaEvent::SpeechStarted { .. } | MediaEvent::SpeechStopped { .. }
        ))
        .len(),
        2
    );
}

#[test]
fn long_speech_comes_in_pieces_of_at_most_max_utterance_ms() {
    let cfg = SessionConfig {
        max_utterance_ms: 30_000,
        ..utterance_config()
    };
    let mut h = Harness::with_vad(cfg, ScriptedVad::boxed(&[(1000, 71_000)]));
    // A slow chirp, so that every piece has different audio.
    let payloads = stream_signal(&mut h, 3625, |n| {
        let t = n as f64 / 8000.0;
        ((2.0 * std::f64::consts::PI * (200.0 + 5.0 * t) * t).sin() * 6000.0) as i16
    });
    h.run_until(72_600);
    let pieces = utterances(&h);
    let bounds: Vec<(u32, u32)> = pieces.iter().map(|p| (p.1, p.2)).collect();
    assert_eq!(
        bounds,
        vec![(700, 30_700), (30_700, 60_700), (60_700, 71_300)]
    );
    let stopped_at = h.event_times(|e| matches!(e, MediaEvent::SpeechStopped { .. }));
    assert_eq!(stopped_at.len(), 1);
    // The first two while the caller is still talking, the last with SpeechStopped.
    assert!(pieces[0].0 < 31_000 && pieces[1].0 < 61_000, "{bounds:?}");
    assert_eq!(pieces[2].0, stopped_at[0]);
    let stop_index = h
        .events
        .iter()
        .position(|(_, e)| matches!(e, MediaEvent::SpeechStopped { .. }))
        .unwrap();
    assert!(matches!(
        h.events[stop_index + 1].1,
        MediaEvent::Utterance {
            start_ms: 60_700,
            ..
        }
    ));
    let total: usize = pieces.iter().map(|p| p.3.len()).sum();
    assert_eq!(total, (71_300 - 700) * 16);
    for p in &pieces {
        assert_eq!(p.3.len(), (p.2 - p.1) as usize * 16);
        assert!(p.3.len() <= 30_000 * 16);
    }
    let joined: Vec<i16> = pieces.iter().flat_map(|p| p.3.iter().copied()).collect();
    let reference = reference_16k(&payloads);
    assert!(joined[..] == reference[700 * 16..71_300 * 16]);
}

#[test]
fn short_pauses_stay_inside_one_utterance_and_utterances_never_overlap() {
    // 1000..1500 and 1800..2200 are one segment (the 300 ms pause is under the 500 ms
    // hangover); the next segment starts 500 ms after that one ended, so its pre-roll would
    // reach back into the previous utterance's tail.
    let vad = ScriptedVad::boxed(&[(1000, 1500), (1800, 2200), (2700, 3000)]);
    let mut h = Harness::with_vad(utterance_config(), vad);
    let payloads = stream_signal(&mut h, 200, |n| ((n * 37) % 2000) as i16 - 1000);
    h.run_until(4100);
    let pieces = utterances(&h);
    let bounds: Vec<(u32, u32)> = pieces.iter().map(|p| (p.1, p.2)).collect();
    assert_eq!(bounds, vec![(700, 2500), (2500, 3300)]);
    let reference = reference_16k(&payloads);
    assert!(pieces[0].3[..] == reference[700 * 16..2500 * 16]);
    assert!(pieces[1].3[..] == reference[2500 * 16..3300 * 16]);
    assert_eq!(
        h.event_times(|e| matches!(e, MediaEvent::SpeechStopped { .. }))
            .len(),
        2
    );
}

#[test]
fn tail_and_preroll_are_configurable() {
    let cfg = SessionConfig {
        utterance_preroll_ms: 100,
        utterance_tail_ms: 0,
        ..utterance_config()
    };
    let mut h = Harness::with_vad(cfg, ScriptedVad::boxed(&[(1000, 2000)]));
    stream_signal(&mut h, 150, two_tones);
    h.run_until(3100);
    let bounds: Vec<(u32, u32)> = utterances(&h).iter().map(|p| (p.1, p.2)).collect();
    assert_eq!(bounds, vec![(900, 2000)]);
    // Speech right at the start of the call: the pre-roll is cut at media time 0.
    let mut h = Harness::with_vad(utterance_config(), ScriptedVad::boxed(&[(100, 600)]));
    stream_signal(&mut h, 100, two_tones);
    h.run_until(2100);
    let bounds: Vec<(u32, u32)> = utterances(&h).iter().map(|p| (p.1, p.2)).collect();
    assert_eq!(bounds, vec![(0, 900)]);
}

// ---- SRTP (SDES keys) ----

fn srtp_keys(suite: crate::srtp::SrtpSuite) -> SrtpKeys {
    let mut rng = StdRng::seed_from_u64(0x5D35);
    SrtpKeys {
        suite,
        local: rng.random(),
        remote: rng.random(),
    }
}

fn srtp_config(suite: crate::srtp::SrtpSuite) -> SessionConfig {
    SessionConfig {
        srtp: Some(srtp_keys(suite)),
        ..config()
    }
}

/// The peer of an SRTP session: the session's keys seen from the other side.
fn srtp_peer(h: &Harness) -> SrtpSession {
    SrtpSession::new(&h.session.config().srtp.as_ref().unwrap().swapped())
}

#[test]
fn srtp_caller_audio_is_decrypted_into_speech_events() {
    use crate::srtp::SrtpSuite;
    for suite in [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
    ] {
        let mut h = Harness::new(srtp_config(suite));
        let mut peer = srtp_peer(&h);
        let source = remote();
        for i in 0..125u64 {
            let amplitude = if (25..75).contains(&i) { 12000 } else { 0 };
            let protected = peer.protect(&caller_packet(i, amplitude)).unwrap();
            assert_eq!(protected.len(), TX_PACKET_LEN + suite.auth_tag_len());
            h.arrivals.push_back((i * 20, source, protected.to_vec()));
        }
        h.run_until(2600);
        let speech: Vec<_> = h
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                MediaEvent::SpeechStarted { media_ms } => Some(("start", *media_ms)),
                MediaEvent::SpeechStopped { duration_ms } => Some(("stop", *duration_ms)),
                _ => None,
            })
            .collect();
        assert_eq!(speech.len(), 2, "{suite:?}: {speech:?}");
        assert_eq!(speech[0].0, "start");
        assert!((480..=520).contains(&speech[0].1), "{speech:?}");
        assert!((980..=1040).contains(&speech[1].1), "{speech:?}");
        let stats = h.session.stats();
        assert_eq!(stats.srtp_failures, 0, "{stats:?}");
        assert_eq!(stats.packets_received, 125);
        assert_eq!(stats.jitter.lost, 0);
        assert_eq!(
            stats.bytes_received,
            125 * (TX_PACKET_LEN + suite.auth_tag_len()) as u64
        );
        assert_eq!(h.session.media_ms(), 2500);
    }
}

#[test]
fn srtp_outbound_packets_decrypt_to_the_exact_g711_payload() {
    use crate::srtp::SrtpSuite;
    let suite = SrtpSuite::AesCm128HmacSha1_80;
    // The same session without SRTP is the reference for what should be sent.
    let mut plain = Harness::new(config());
    let mut secure = Harness::new(srtp_config(suite));
    for h in [&mut plain, &mut secure] {
        h.run_until(40);
        h.session.enqueue(1, vec![8000i16; 320].into(), true);
        h.session.enqueue(2, vec![-8000i16; 160].into(), true);
        h.run_until(200);
    }
    let mut peer = srtp_peer(&secure);
    assert_eq!(plain.sent.len(), 11);
    assert_eq!(secure.sent.len(), 11);
    for (p, s) in plain.sent.iter().zip(&secure.sent) {
        assert_eq!(s.at_ms, p.at_ms);
        assert_eq!(s.to, p.to);
        assert_eq!(s.bytes.len(), TX_PACKET_LEN + 10);
        assert_eq!(s.bytes.len(), p.bytes.len() + suite.auth_tag_len());
        let clear = peer.unprotect(&s.bytes).unwrap();
        let (pp, sp) = (parse_rtp(&p.bytes).unwrap(), parse_rtp(&clear).unwrap());
        assert_eq!(sp.header.ssrc, 0xB07);
        assert_eq!(sp.header.marker, pp.header.marker);
        assert_eq!(sp.header.payload_type, 0);
        // The payload is what the session meant to send, and it was not sent in the clear.
        assert_eq!(sp.payload, pp.payload);
        assert_ne!(&s.bytes[RTP_HEADER_LEN..TX_PACKET_LEN], pp.payload);
    }
    let stats = secure.session.stats();
    assert_eq!(stats.packets_sent, 11);
    assert_eq!(stats.bytes_sent, 11 * (TX_PACKET_LEN as u64 + 10));
    assert_eq!(stats.srtp_failures, 0);
    // Consecutive sequence numbers, so the peer's rollover counter tracks them.
    let seqs: Vec<u16> = secure.sent.iter().map(|s| s.seq()).collect();
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1));
    }
}

#[test]
fn srtp_tampered_replayed_and_plain_packets_are_dropped_and_counted() {
    use crate::srtp::SrtpSuite;
    let mut h = Harness::new(srtp_config(SrtpSuite::AesCm128HmacSha1_32));
    let mut peer = srtp_peer(&h);
    let source = remote();
    let p0 = peer.protect(&caller_packet(0, 12000)).unwrap().to_vec();
    let p1 = peer.protect(&caller_packet(1, 12000)).unwrap().to_vec();
    let t = |ms| h.t0 + Duration::from_millis(ms);
    let (t0, t10, t20, t30) = (t(0), t(10), t(20), t(30));
    h.session.handle_rtp(t0, source, &p0);
    assert_eq!(h.session.stats().packets_received, 1);
    // Replay of p0.
    h.session.handle_rtp(t10, source, &p0);
    // p1 with one payload bit flipped, with its tag cut off, and in the clear.
    let mut tampered = p1.clone();
    tampered[RTP_HEADER_LEN + 5] ^= 0x40;
    h.session.handle_rtp(t20, source, &tampered);
    h.session.handle_rtp(t20, source, &p1[..p1.len() - 4]);
    h.session.handle_rtp(t20, source, &caller_packet(1, 12000));
    // A packet protected with other keys (a third party that knows the SSRC).
    let mut stranger = SrtpSession::new(&srtp_keys(SrtpSuite::AesCm128HmacSha1_80));
    h.session.handle_rtp(
        t20,
        source,
        &stranger.protect(&caller_packet(2, 12000)).unwrap(),
    );
    let stats = h.session.stats();
    assert_eq!(stats.srtp_failures, 5, "{stats:?}");
    assert_eq!(stats.packets_received, 1, "{stats:?}");
    assert_eq!(stats.jitter.received, 1, "{stats:?}");
    // The genuine p1 still passes: failures did not advance the replay window.
    h.session.handle_rtp(t30, source, &p1);
    let stats = h.session.stats();
    assert_eq!(stats.packets_received, 2, "{stats:?}");
    assert_eq!(stats.srtp_failures, 5);
    // RTCP and non-RTP are still recognised and counted as without SRTP.
    h.session
        .handle_rtp(t30, source, &[0x80, 200, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
    h.session.handle_rtp(t30, source, &[1, 2, 3]);
    let stats = h.session.stats();
    assert_eq!(stats.rtcp_packets, 1);
    assert_eq!(stats.invalid_packets, 1);
    assert_eq!(stats.srtp_failures, 5);
}

#[test]
fn srtp_garbage_never_panics() {
    use crate::srtp::SrtpSuite;
    let mut h = Harness::new(srtp_config(SrtpSuite::AesCm128HmacSha1_80));
    let mut rng = StdRng::seed_from_u64(12);
    let source = remote();
    for i in 0..5_000u64 {
        let len = rng.random_range(0..300);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if len >= 2 && i % 2 == 0 {
            bytes[0] = (bytes[0] & 0x3F) | 0x80;
            bytes[1] &= 0x80;
        }
        let now = h.t0 + Duration::from_millis(i);
        h.session.handle_rtp(now, source, &bytes);
        h.session.handle_timeout(now);
        h.collect(i);
    }
    let stats = h.session.stats();
    assert_eq!(stats.packets_received, 0, "{stats:?}");
    assert!(stats.srtp_failures > 1000, "{stats:?}");
    assert!(h.events.iter().all(|(_, e)| !matches!(
        e,
        MediaEvent::SpeechStarted { .. } | MediaEvent::Dtmf { .. }
    )));
}

#[test]
fn without_srtp_nothing_changes_and_rekeying_takes_effect() {
    use crate::srtp::SrtpSuite;
    let mut h = Harness::new(config());
    assert!(h.session.config().srtp.is_none());
    h.caller_stream(0, 10, 12000);
    h.run_until(200);
    assert!(h.sent.iter().all(|s| s.bytes.len() == TX_PACKET_LEN));
    let stats = h.session.stats();
    assert_eq!(stats.packets_received, 10);
    assert_eq!(stats.srtp_failures, 0);
    assert_eq!(stats.bytes_sent, stats.packets_sent * TX_PACKET_LEN as u64);
    // A re-INVITE turns SRTP on: plain RTP is now refused, our packets carry a tag.
    let keys = srtp_keys(SrtpSuite::AesCm128HmacSha1_80);
    h.session.set_srtp(Some(keys.clone()));
    let mut peer = SrtpSession::new(&keys.swapped());
    let source = remote();
    h.session.handle_rtp(
        h.t0 + Duration::from_millis(200),
        source,
        &caller_packet(10, 0),
    );
    assert_eq!(h.session.stats().srtp_failures, 1);
    h.session.handle_rtp(
        h.t0 + Duration::from_millis(220),
        source,
        &peer.protect(&caller_packet(11, 0)).unwrap(),
    );
    assert_eq!(h.session.stats().packets_received, 11);
    let before = h.sent.len();
    h.run_until(300);
    let after = &h.sent[before..];
    assert!(!after.is_empty());
    for s in after {
        assert_eq!(s.bytes.len(), TX_PACKET_LEN + 10);
        assert!(peer.unprotect(&s.bytes).is_ok());
    }
    // And off again.
    h.session.set_srtp(None);
    h.run_until(400);
    assert_eq!(h.sent.last().unwrap().bytes.len(), TX_PACKET_LEN);
}

// ---- DTMF out (RFC 4733) ----

const DTMF_PT: u8 = 101;

fn dtmf_config() -> SessionConfig {
    SessionConfig {
        dtmf_payload_type: Some(DTMF_PT),
        ..config()
    }
}

fn pt(bytes: &[u8]) -> u8 {
    parse_rtp(bytes).unwrap().header.payload_type
}

/// The telephone-event payloads (event, E bit, duration) of the DTMF packets sent.
fn dtmf_payloads(sent: &[Sent]) -> Vec<(u8, bool, u16)> {
    sent.iter()
        .filter(|p| pt(&p.bytes) == DTMF_PT)
        .map(|p| {
            let b = &p.bytes[RTP_HEADER_LEN..];
            (b[0], b[1] & 0x80 != 0, u16::from_be_bytes([b[2], b[3]]))
        })
        .collect()
}

fn dtmf_sent_events(h: &Harness) -> Vec<(u64, String)> {
    h.events
        .iter()
        .filter_map(|(t, e)| match e {
            MediaEvent::DtmfSent { digits } => Some((*t, digits.clone())),
            _ => None,
        })
        .collect()
}

/// One packet per 20 ms tick from the first: consecutive sequence numbers; an audio packet
/// carries its tick's timestamp, a telephone-event packet the timestamp of the tick its event
/// started in (the first packet with the marker).
fn assert_one_stream(sent: &[Sent]) {
    let first = &sent[0];
    let mut event_start = None;
    for (i, p) in sent.iter().enumerate() {
        let tick_ts = first.ts().wrapping_add(160 * i as u32);
        assert_eq!(p.at_ms, first.at_ms + 20 * i as u64, "packet {i}");
        assert_eq!(p.seq(), first.seq().wrapping_add(i as u16), "packet {i}");
        assert_eq!(parse_rtp(&p.bytes).unwrap().header.ssrc, 0xB07);
        if pt(&p.bytes) == DTMF_PT {
            if p.marker() {
                event_start = Some(tick_ts);
            }
            assert_eq!(Some(p.ts()), event_start, "event packet {i}");
        } else {
            assert_eq!(p.ts(), tick_ts, "audio packet {i}");
        }
    }
}

#[test]
fn dtmf_digit_packets_are_byte_exact_rfc_4733() {
    let mut h = Harness::new(dtmf_config());
    h.run_until(40); // silence at 0, 20, 40
    h.session
        .send_dtmf(h.t0 + Duration::from_millis(50), "1")
        .unwrap();
    assert_eq!(h.session.dtmf_pending(), 1);
    h.run_until(400);
    let before = h.sent[2].clone();
    let events: Vec<&Sent> = h.sent.iter().filter(|p| pt(&p.bytes) == DTMF_PT).collect();
    assert_eq!(events.len(), 11, "8 updates and 3 end packets");
    // The first packet of the event, byte for byte: V=2, M=1, PT 101, the next sequence
    // number, the timestamp of its frame, our SSRC; event 1, E=0, volume 10, duration 160.
    let seq = before.seq().wrapping_add(1).to_be_bytes();
    let ts = before.ts().wrapping_add(160).to_be_bytes();
    let mut expected = vec![0x80, 0x80 | DTMF_PT, seq[0], seq[1]];
    expected.extend_from_slice(&ts);
    expected.extend_from_slice(&[0x00, 0x00, 0x0B, 0x07]);
    expected.extend_from_slice(&[0x01, 0x0A, 0x00, 0xA0]);
    assert_eq!(events[0].bytes, expected);
    assert_eq!(
        events[0].at_ms, 60,
        "starts at the first frame after the request"
    );
    // The rest: the same timestamp, marker only on the first, duration +160 per packet,
    // then three identical end packets (E=1, final duration 1280) with their own sequence
    // numbers.
    for (i, p) in events.iter().enumerate() {
        assert_eq!(p.bytes.len(), RTP_HEADER_LEN + 4);
        assert_eq!(p.ts(), events[0].ts());
        assert_eq!(p.marker(), i == 0, "packet {i}");
        assert_eq!(p.at_ms, 60 + 20 * i as u64);
        let end_flags = if i < 8 { 0x0A } else { 0x8A };
        let duration = (160 * (i as u16 + 1).min(8)).to_be_bytes();
        assert_eq!(
            &p.bytes[RTP_HEADER_LEN..],
            &[1, end_flags, duration[0], duration[1]],
            "packet {i}"
        );
    }
    assert_eq!(events[10].bytes[4..], events[8].bytes[4..]);
    assert_ne!(events[10].seq(), events[8].seq());
    // Audio goes on after the end packets, in the same stream.
    assert!(
        h.sent
            .iter()
            .filter(|p| p.at_ms > 260)
            .all(|p| pt(&p.bytes) == 0)
    );
    assert_one_stream(&h.sent);
    assert_eq!(
        dtmf_sent_events(&h),
        vec![(260, "1".to_string())],
        "reported with the last end packet"
    );
    assert_eq!(h.session.dtmf_pending(), 0);
    let stats = h.session.stats();
    assert_eq!(stats.dtmf_digits_sent, 1);
    assert_eq!(stats.packets_sent, h.sent.len() as u64);
    assert_eq!(
        stats.bytes_sent,
        (h.sent.len() - 11) as u64 * TX_PACKET_LEN as u64 + 11 * 16
    );
}

#[test]
fn dtmf_digits_are_separated_by_the_gap() {
    let mut h = Harness::new(dtmf_config());
    h.session.send_dtmf(h.t0, "9*").unwrap();
    h.run_until(200);
    assert_eq!(h.session.stats().dtmf_digits_sent, 1, "counted per digit");
    assert_eq!(h.session.dtmf_pending(), 1);
    h.run_until(700);
    assert_eq!(h.session.stats().dtmf_digits_sent, 2);
    // '9' at 0..=200 ms, 60 ms gap of audio silence, '*' at 280..=480 ms.
    let kinds: Vec<u8> = h.sent.iter().map(|p| pt(&p.bytes)).collect();
    assert!(kinds[..11].iter().all(|&k| k == DTMF_PT));
    assert_eq!(&kinds[11..14], &[0, 0, 0]);
    assert!(h.sent[11..14].iter().all(|p| p.is_silence()));
    assert!(kinds[14..25].iter().all(|&k| k == DTMF_PT));
    assert!(kinds[25..].iter().all(|&k| k == 0));
    assert_eq!(h.sent[14].at_ms, 280);
    assert!(h.sent[14].marker());
    assert_eq!(h.sent[14].ts(), h.sent[0].ts().wrapping_add(14 * 160));
    let payloads = dtmf_payloads(&h.sent);
    assert_eq!(payloads[10], (9, true, 1280));
    assert_eq!(payloads[11], (10, false, 160));
    assert_one_stream(&h.sent);
    assert_eq!(dtmf_sent_events(&h), vec![(480, "9*".to_string())]);

    // A longer gap and tone from the configuration.
    let mut h = Harness::new(SessionConfig {
        dtmf_sender: crate::dtmf::DtmfSenderConfig {
            tone_ms: 100,
            gap_ms: 120,
            volume: 20,
            ..crate::dtmf::DtmfSenderConfig::default()
        },
        ..dtmf_config()
    });
    h.session.send_dtmf(h.t0, "44").unwrap();
    h.run_until(700);
    let kinds: Vec<u8> = h.sent.iter().map(|p| pt(&p.bytes)).collect();
    assert!(
        kinds[..8].iter().all(|&k| k == DTMF_PT),
        "5 updates + 3 ends"
    );
    assert!(
        kinds[8..14].iter().all(|&k| k == 0),
        "6 frames = 120 ms gap"
    );
    assert_eq!(kinds[14], DTMF_PT);
    assert_eq!(h.sent[0].bytes[RTP_HEADER_LEN + 1], 20);
    assert_eq!(dtmf_payloads(&h.sent)[7], (4, true, 800));
}

#[test]
fn playback_pauses_for_dtmf_and_resumes_where_it_was() {
    let mut h = Harness::new(dtmf_config());
    // Ten frames, each with its own level, so that a lost or repeated frame shows.
    let level = |k: usize| 1000 * (k as i16 + 1);
    let pcm: Vec<i16> = (0..1600).map(|i| level(i / 160)).collect();
    h.session.enqueue(7, pcm.into(), true);
    h.run_until(40); // frames 0, 1, 2
    h.session
        .send_dtmf(h.t0 + Duration::from_millis(40), "0")
        .unwrap();
    h.run_until(800);
    let audio: Vec<&Sent> = h
        .sent
        .iter()
        .filter(|p| pt(&p.bytes) == 0 && !p.is_silence())
        .collect();
    assert_eq!(audio.len(), 10, "no frame lost or repeated");
    for (k, p) in audio.iter().enumerate() {
        assert_eq!(
            p.bytes[RTP_HEADER_LEN],
            linear_to_ulaw(level(k)),
            "frame {k}"
        );
    }
    assert_eq!(audio[2].at_ms, 40);
    assert_eq!(
        audio[3].at_ms,
        60 + 11 * 20,
        "resumes right after the end packets"
    );
    assert_eq!(
        audio.iter().map(|p| p.marker()).collect::<Vec<_>>(),
        [
            true, false, false, true, false, false, false, false, false, false
        ],
        "resumed audio is a new talk spurt"
    );
    assert_one_stream(&h.sent);
    // The timestamp kept counting through the event: 12 frames after frame 2.
    assert_eq!(audio[3].ts(), audio[2].ts().wrapping_add(12 * 160));
    let playback: Vec<_> = h
        .events
        .iter()
        .filter(|(_, e)| !matches!(e, MediaEvent::DtmfSent { .. }))
        .cloned()
        .collect();
    assert_eq!(
        playback,
        vec![
            (0, MediaEvent::PlaybackStarted { id: 7 }),
            (400, MediaEvent::PlaybackFinished { id: 7 }),
        ]
    );
    assert_eq!(dtmf_sent_events(&h), vec![(260, "0".to_string())]);
}

#[test]
fn dtmf_starts_at_the_first_frame_due_after_the_request() {
    let mut h = Harness::new(dtmf_config());
    h.run_until(40);
    // The driver wakes late: the request at 70 ms, the frames of 60, 80 and 100 at 100 ms.
    h.session
        .send_dtmf(h.t0 + Duration::from_millis(70), "2")
        .unwrap();
    h.session.handle_timeout(h.t0 + Duration::from_millis(100));
    h.collect(100);
    let kinds: Vec<u8> = h.sent[3..].iter().map(|p| pt(&p.bytes)).collect();
    assert_eq!(kinds, vec![0, DTMF_PT, DTMF_PT]);
    assert_eq!(h.sent[4].ts(), h.sent[0].ts().wrapping_add(4 * 160));
}

#[test]
fn srtp_dtmf_decrypts_to_telephone_events() {
    use crate::srtp::SrtpSuite;
    let suite = SrtpSuite::AesCm128HmacSha1_32;
    let mut h = Harness::new(SessionConfig {
        dtmf_payload_type: Some(DTMF_PT),
        ..srtp_config(suite)
    });
    h.run_until(20);
    h.session
        .send_dtmf(h.t0 + Duration::from_millis(20), "#")
        .unwrap();
    h.run_until(400);
    let mut peer = srtp_peer(&h);
    let mut rx = DtmfReceiver::new(DTMF_PT);
    let mut digits = Vec::new();
    let mut events = 0;
    for s in &h.sent {
        let clear = peer.unprotect(&s.bytes).expect("authentic SRTP");
        let packet = parse_rtp(&clear).unwrap();
        if packet.header.payload_type != DTMF_PT {
            continue;
        }
        events += 1;
        assert_eq!(s.bytes.len(), RTP_HEADER_LEN + 4 + suite.auth_tag_len());
        assert_ne!(&s.bytes[RTP_HEADER_LEN..RTP_HEADER_LEN + 4], packet.payload);
        assert_eq!(packet.payload[0], 11);
        assert_eq!(packet.payload[1] & 0x3F, 10);
        let found = rx.handle_packet(
            h.t0,
            packet.header.payload_type,
            packet.header.ssrc,
            packet.header.timestamp,
            packet.payload,
        );
        digits.extend(found.into_iter().flatten().map(|d| d.digit));
    }
    assert_eq!(events, 11);
    assert_eq!(digits, vec!['#']);
    assert_eq!(h.session.stats().srtp_failures, 0);
    assert_eq!(dtmf_sent_events(&h), vec![(240, "#".to_string())]);
}

#[test]
fn dtmf_round_trips_through_a_receiving_session() {
    let mut sender = Harness::new(dtmf_config());
    sender.session.enqueue(1, vec![3000i16; 4000].into(), true);
    sender.run_until(100);
    sender
        .session
        .send_dtmf(sender.t0 + Duration::from_millis(100), "159")
        .unwrap();
    sender.run_until(500);
    sender
        .session
        .send_dtmf(sender.t0 + Duration::from_millis(500), "*#D0")
        .unwrap();
    sender.run_until(3000);
    assert_eq!(
        dtmf_sent_events(&sender)
            .into_iter()
            .map(|(_, d)| d)
            .collect::<Vec<_>>(),
        vec!["159*#D0".to_string()],
        "digits queued while others were being sent are one batch"
    );
    // Everything the sender sent arrives at another session negotiated the same way.
    let mut receiver = Harness::new(dtmf_config());
    for s in &sender.sent {
        receiver
            .arrivals
            .push_back((s.at_ms, remote(), s.bytes.clone()));
    }
    receiver.run_until(3500);
    let digits: String = receiver
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            MediaEvent::Dtmf { digit, .. } => Some(*digit),
            _ => None,
        })
        .collect();
    assert_eq!(digits, "159*#D0");
    let stats = receiver.session.stats();
    assert_eq!(stats.dtmf_digits, 7);
    assert_eq!(stats.jitter.lost, 0, "{stats:?}");
    assert_eq!(stats.unknown_payload_packets, 0);
}

#[test]
fn send_dtmf_errors_are_typed_and_queue_nothing() {
    use crate::dtmf::DtmfError;
    let mut plain = Harness::new(config());
    assert!(matches!(
        plain.session.send_dtmf(plain.t0, "1"),
        Err(MediaError::Dtmf(DtmfError::NotNegotiated))
    ));
    let mut h = Harness::new(dtmf_config());
    assert!(matches!(
        h.session.send_dtmf(h.t0, "12E"),
        Err(MediaError::Dtmf(DtmfError::InvalidDigit {
            digit: 'E',
            position: 2
        }))
    ));
    assert!(matches!(
        h.session.send_dtmf(h.t0, &"7".repeat(65)),
        Err(MediaError::Dtmf(DtmfError::QueueFull { requested: 65, .. }))
    ));
    h.session.send_dtmf(h.t0, &"7".repeat(60)).unwrap();
    let error = h.session.send_dtmf(h.t0, "12345").unwrap_err();
    assert_eq!(
        error.to_string(),
        "DTMF queue full: 60 digits pending, 5 more requested, at most 64"
    );
    h.session.send_dtmf(h.t0, "").unwrap();
    h.session.send_dtmf(h.t0, "1234").unwrap();
    assert_eq!(h.session.dtmf_pending(), 64);
    h.run_until(100);
    assert!(dtmf_sent_events(&h).is_empty());
}

#[test]
fn dtmf_waits_out_a_hold_and_finishes_an_interrupted_digit() {
    let mut h = Harness::new(dtmf_config());
    h.session.send_dtmf(h.t0, "12").unwrap();
    h.session.enqueue(3, vec![5000i16; 320].into(), true);
    h.run_until(40); // three packets of '1'
    h.session
        .set_direction(h.t0 + Duration::from_millis(50), false, true);
    h.run_until(1_990);
    assert_eq!(h.sent.len(), 3, "nothing sent on hold");
    assert!(h.events.is_empty(), "playback waits behind the digits");
    h.session
        .set_direction(h.t0 + Duration::from_millis(1_990), true, true);
    h.run_until(3_000);
    let resumed = &h.sent[3..];
    // '1' ends with three end packets at its original timestamp and the duration it had.
    for p in &resumed[..3] {
        assert_eq!(pt(&p.bytes), DTMF_PT);
        assert_eq!(p.ts(), h.sent[0].ts());
        assert!(!p.marker());
        assert_eq!(&p.bytes[RTP_HEADER_LEN..], &[1, 0x8A, 0x01, 0xE0]);
    }
    assert_eq!(resumed[0].at_ms, 2_000);
    assert_eq!(resumed[0].seq(), h.sent[2].seq().wrapping_add(1));
    // Gap, then '2' whole, then the playback.
    assert!(resumed[3..6].iter().all(|p| p.is_silence()));
    assert!(resumed[6].marker());
    assert_eq!(dtmf_payloads(&resumed[6..17])[10], (2, true, 1280));
    let audio: Vec<&Sent> = resumed[17..].iter().filter(|p| !p.is_silence()).collect();
    assert_eq!(audio.len(), 2);
    assert_eq!(audio[0].at_ms, 2_000 + 17 * 20);
    assert_eq!(
        dtmf_sent_events(&h),
        vec![(2_000 + 16 * 20, "12".to_string())]
    );
    // The peer's receiver reports each digit once, whatever it made of the pause.
    let mut rx = DtmfReceiver::new(DTMF_PT);
    let mut digits = String::new();
    for p in &h.sent {
        let packet = parse_rtp(&p.bytes).unwrap();
        let at = h.t0 + Duration::from_millis(p.at_ms);
        if let Some(d) = rx.handle_timeout(at) {
            digits.push(d.digit);
        }
        let h = &packet.header;
        for d in rx.handle_packet(at, h.payload_type, h.ssrc, h.timestamp, packet.payload) {
            digits.extend(d.map(|d| d.digit));
        }
    }
    assert_eq!(digits, "12");
}

/// The recording of a session: (start_ms, interleaved caller/agent) batches.
fn recorded(h: &Harness) -> Vec<(u64, Arc<[i16]>)> {
    h.events
        .iter()
        .filter_map(|(_, e)| match e {
            MediaEvent::Recorded { start_ms, audio } => Some((*start_ms, audio.clone())),
            _ => None,
        })
        .collect()
}

/// Per 20 ms frame of a recording: (caller rms, agent rms, first agent sample).
fn recorded_frames(batches: &[(u64, Arc<[i16]>)]) -> Vec<(f64, f64, i16)> {
    let samples: Vec<i16> = batches
        .iter()
        .flat_map(|(_, a)| a.iter().copied())
        .collect();
    samples
        .chunks(2 * FRAME_SAMPLES)
        .map(|frame| {
            let caller: Vec<i16> = frame.iter().step_by(2).copied().collect();
            let agent: Vec<i16> = frame.iter().skip(1).step_by(2).copied().collect();
            (frame_rms(&caller), frame_rms(&agent), agent[0])
        })
        .collect()
}

#[test]
fn recording_pairs_caller_and_agent_frames_on_the_tick_clock() {
    let mut h = Harness::new(SessionConfig {
        record: true,
        barge_in: BargeInConfig {
            enabled: false,
            ..BargeInConfig::default()
        },
        ..config()
    });
    // The caller talks for the first second; the agent plays 400 ms from 500 ms on.
    h.caller_stream(0, 50, 8000);
    h.run_until(490);
    h.session.enqueue(1, vec![6000i16; 3200].into(), false);
    h.run_until(2000);
    let batches = recorded(&h);
    // 101 ticks (0..=2000 ms): ten full 200 ms batches, contiguous.
    assert_eq!(
        batches.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        (0..10).map(|i| i * 200).collect::<Vec<_>>()
    );
    assert!(batches.iter().all(|(_, a)| a.len() == 2 * 160 * 10));
    let frames = recorded_frames(&batches);
    assert_eq!(frames.len(), 100);
    // Agent channel: exactly the ticks whose packet carried audio, with the samples sent.
    for (k, (_, agent_rms, first)) in frames.iter().enumerate() {
        let sent = h.sent.iter().find(|p| p.at_ms == k as u64 * 20).unwrap();
        if sent.is_silence() {
            assert_eq!(*agent_rms, 0.0, "tick {k}");
        } else {
            assert_eq!(*first, 6000, "tick {k}");
        }
    }
    let agent_ticks: Vec<usize> = (0..100).filter(|&k| frames[k].1 > 0.0).collect();
    assert_eq!(agent_ticks.len(), 20);
    assert_eq!(
        agent_ticks[0], 25,
        "played from the tick after enqueue at 490 ms"
    );
    // Caller channel: loud for 50 frames, starting within the jitter buffer's delay.
    let caller_ticks: Vec<usize> = (0..100).filter(|&k| frames[k].0 > 4000.0).collect();
    assert_eq!(caller_ticks.len(), 50, "{caller_ticks:?}");
    assert!(
        caller_ticks[0] <= 8,
        "caller onset at tick {}",
        caller_ticks[0]
    );
    assert_eq!(
        caller_ticks.last().unwrap() - caller_ticks[0],
        49,
        "contiguous"
    );
    assert!(frames[90..].iter().all(|f| f.0 < 100.0));
}

#[test]
fn recording_is_off_by_default_and_skipped_ticks_leave_a_gap() {
    let mut h = Harness::new(config());
    h.caller_stream(0, 20, 8000);
    h.run_until(1000);
    assert!(recorded(&h).is_empty());

    let mut h = Harness::new(SessionConfig {
        record: true,
        ..config()
    });
    h.run_until(100); // ticks 0..=5
    // The driver stalls for 1 s: missed ticks are skipped, the batch ends early.
    h.session.handle_timeout(h.t0 + Duration::from_millis(1100));
    h.collect(1100);
    h.run_until(1500);
    let starts: Vec<u64> = recorded(&h).iter().map(|(t, _)| *t).collect();
    assert_eq!(starts[0], 0);
    assert_eq!(recorded(&h)[0].1.len(), 2 * 160 * 6);
    assert_eq!(starts[1], 1100);
}

/// Cost of recording per 20 ms tick (caller frame in, agent frame out, batches every 200 ms):
/// `cargo test --release -p vaani-media --lib recording_cost -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn recording_cost_per_tick() {
    const TICKS: u64 = 50_000;
    let mut per_tick = [0.0f64; 2];
    for (i, record) in [false, true].into_iter().enumerate() {
        let mut h = Harness::new(SessionConfig { record, ..config() });
        let payload = tone_payload(8000);
        let pcm: Arc<[i16]> = vec![3000i16; 160 * TICKS as usize].into();
        h.session.enqueue(1, pcm, false);
        let started = std::time::Instant::now();
        for k in 0..TICKS {
            let at = h.t0 + Duration::from_millis(k * 20);
            let packet = rtp(0, k as u16, (k * 160) as u32, CALLER_SSRC, k == 0, &payload);
            h.session.handle_rtp(at, remote(), &packet);
            h.session.handle_timeout(at);
            while h.session.poll_transmit().is_some() {}
            while h.session.poll_event().is_some() {}
        }
        per_tick[i] = started.elapsed().as_nanos() as f64 / TICKS as f64;
    }
    eprintln!(
        "per 20 ms tick: {:.2} µs without recording, {:.2} µs with (+{:.2} µs)",
        per_tick[0] / 1000.0,
        per_tick[1] / 1000.0,
        (per_tick[1] - per_tick[0]) / 1000.0
    );
}

/// `packets` 20 ms G.722 packets (payload type 9) of the 16 kHz `signal`, sample index in.
fn g722_packets(packets: u64, signal: impl Fn(u64) -> i16) -> Vec<Vec<u8>> {
    let mut encoder = crate::g722::G722Encoder::new();
    (0..packets)
        .map(|i| {
            let pcm: Vec<i16> = (0..320).map(|n| signal(i * 320 + n)).collect();
            let mut payload = [0u8; 160];
            assert_eq!(encoder.encode(&pcm, &mut payload), 160);
            rtp(9, i as u16, (i * 160) as u32, CALLER_SSRC, i == 0, &payload)
        })
        .collect()
}

fn sine16k(freq: f64, amplitude: f64) -> impl Fn(u64) -> i16 {
    move |n| (amplitude * (2.0 * std::f64::consts::PI * freq * n as f64 / 16000.0).sin()) as i16
}

/// Goertzel amplitude of `freq` in 16 kHz `pcm`.
fn amplitude_at(pcm: &[i16], freq: f64) -> f64 {
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * freq / 16000.0).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in pcm {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    2.0 * (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0).sqrt() / pcm.len() as f64
}

fn g722_config() -> SessionConfig {
    SessionConfig {
        remote: Some(remote()),
        ssrc: 0xB07,
        caller_audio_ms: 1000,
        ..SessionConfig::new(Codec::G722)
    }
}

#[test]
fn g722_caller_audio_reaches_the_vad_at_16_khz_without_resampling() {
    let mut h = Harness::new(g722_config());
    assert_eq!(h.session.config().payload_type, 9);
    // 6 kHz: above what any 8 kHz path can carry. 200 ms silence, 600 ms tone, 1.2 s silence.
    let tone = sine16k(6000.0, 12000.0);
    let packets = g722_packets(100, |n| {
        if (3200..12800).contains(&n) {
            tone(n)
        } else {
            0
        }
    });
    let source = remote();
    for (i, packet) in packets.into_iter().enumerate() {
        // One packet of the silence is lost: concealment counts in 8 kHz timestamp units.
        if i != 90 {
            h.arrivals.push_back((i as u64 * 20, source, packet));
        }
    }
    h.run_until(820);
    let mut wide = Vec::new();
    assert_eq!(h.session.drain_caller_audio(&mut wide), 840 * 16);
    let level = amplitude_at(&wide[4000..12000], 6000.0);
    assert!(
        (9000.0..14000.0).contains(&level),
        "6 kHz amplitude {level:.0}"
    );
    assert!(
        wide[..3000].iter().all(|s| s.abs() < 50),
        "silence stays silent"
    );
    h.run_until(2100);
    let started = h.event_times(|e| matches!(e, MediaEvent::SpeechStarted { .. }));
    let stopped = h.event_times(|e| matches!(e, MediaEvent::SpeechStopped { .. }));
    assert_eq!((started.len(), stopped.len()), (1, 1), "{:?}", h.events);
    let onset = h.events.iter().find_map(|(_, e)| match e {
        MediaEvent::SpeechStarted { media_ms } => Some(*media_ms),
        _ => None,
    });
    // No resampler in the way: the onset is exactly where the tone starts.
    assert_eq!(onset, Some(200));
    let stats = h.session.stats();
    assert_eq!(stats.jitter.lost, 1);
    assert_eq!(stats.jitter.concealed_samples, 160);
    assert_eq!(h.session.media_ms(), 2000);
}

#[test]
fn g722_playback_is_upsampled_and_encoded_with_an_8000_hz_clock() {
    let mut h = Harness::new(g722_config());
    // 400 ms of a 1 kHz tone at 8 kHz, as text-to-speech hands it over.
    let pcm8k: Vec<i16> = (0..3200)
        .map(|n| (10000.0 * (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 8000.0).sin()) as i16)
        .collect();
    h.session.enqueue(1, pcm8k.into(), true);
    h.run_until(600);
    assert!(h.sent.len() >= 30);
    let mut decoder = crate::g722::G722Decoder::new();
    let mut decoded = Vec::new();
    for pair in h.sent.windows(2) {
        assert_eq!(pair[1].ts().wrapping_sub(pair[0].ts()), 160);
    }
    for packet in &h.sent {
        let rtp = parse_rtp(&packet.bytes).unwrap();
        assert_eq!(rtp.header.payload_type, 9);
        assert_eq!(rtp.payload.len(), 160);
        let mut pcm = [0i16; 320];
        assert_eq!(decoder.decode(rtp.payload, &mut pcm), 320);
        decoded.extend_from_slice(&pcm);
    }
    let tone = &decoded[320 * 2..320 * 18];
    let level = amplitude_at(tone, 1000.0);
    assert!(
        (8500.0..11500.0).contains(&level),
        "1 kHz amplitude {level:.0}"
    );
    assert!(amplitude_at(tone, 3000.0) < 300.0);
    // After the playback: silence, still G.722.
    assert!(decoded[320 * 25..].iter().all(|s| s.abs() < 50));
}

/// A voiced, speech-like 16 kHz signal (140 Hz with harmonics to 3.5 kHz, syllable-rate
/// loudness swing), mean absolute amplitude well above [`AmplitudeVad`]'s 2000.
fn voiced16k(n: u64) -> i16 {
    let t = n as f64 / 16000.0;
    let envelope = 0.75 + 0.25 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
    let mut sample = 0.0;
    for harmonic in 1..=25 {
        let f = 140.0 * harmonic as f64;
        sample += (2.0 * std::f64::consts::PI * f * t).sin() / harmonic as f64;
    }
    (9000.0 * envelope * sample) as i16
}

/// `packets` 20 ms Opus packets (payload type 111, 960 timestamp units apart) of the 16 kHz
/// `signal`, sample index in, from an encoder with in-band FEC on or off.
fn opus_packets(packets: u64, fec: bool, signal: impl Fn(u64) -> i16) -> Vec<Vec<u8>> {
    let mut encoder = crate::opus::OpusEncoder::new().unwrap();
    encoder.set_inband_fec(fec).unwrap();
    (0..packets)
        .map(|i| {
            let pcm: Vec<i16> = (0..320).map(|n| signal(i * 320 + n)).collect();
            let mut payload = [0u8; 160];
            let len = encoder.encode(&pcm, &mut payload).unwrap();
            rtp(
                111,
                i as u16,
                (i * 960) as u32,
                CALLER_SSRC,
                i == 0,
                &payload[..len],
            )
        })
        .collect()
}

fn opus_config() -> SessionConfig {
    SessionConfig {
        remote: Some(remote()),
        ssrc: 0x0B05,
        caller_audio_ms: 3000,
        ..SessionConfig::new(Codec::Opus)
    }
}

/// RMS of `pcm` in 20 ms (320-sample) frames.
fn frame_levels(pcm: &[i16]) -> Vec<f64> {
    pcm.chunks(320)
        .map(|f| (f.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / f.len() as f64).sqrt())
        .collect()
}

/// Delivers `packets` at 20 ms intervals except the indices in `lost`.
fn deliver(h: &mut Harness, packets: Vec<Vec<u8>>, lost: &[usize]) {
    for (i, packet) in packets.into_iter().enumerate() {
        if !lost.contains(&i) {
            h.arrivals.push_back((i as u64 * 20, remote(), packet));
        }
    }
}

#[test]
fn opus_caller_speech_decodes_at_16_khz_with_a_48_khz_clock_and_barges_in() {
    let mut h = Harness::new(opus_config());
    assert_eq!(h.session.config().payload_type, 111);
    // The agent is talking (interruptible) when the caller starts: 200 ms of silence, 1 s of
    // speech, then silence.
    let greeting: Vec<i16> = (0..8000 * 3)
        .map(|n| ((n % 40) as i16 - 20) * 500)
        .collect();
    h.session.enqueue(7, greeting.into(), true);
    let packets = opus_packets(100, true, |n| {
        if (3200..19200).contains(&n) {
            voiced16k(n)
        } else {
            0
        }
    });
    deliver(&mut h, packets, &[]);
    h.run_until(2100);

    let mut wide = Vec::new();
    h.session.drain_caller_audio(&mut wide);
    let levels = frame_levels(&wide);
    // 20 ms frames inside the speech (allowing for the codec's start-up) are speech-level;
    // the leading silence decodes to silence.
    assert!(levels[..8].iter().all(|&l| l < 100.0), "{levels:?}");
    let voiced = levels[12..58].iter().filter(|&&l| l > 3000.0).count();
    assert!(voiced >= 44, "{voiced} speech-level frames: {levels:?}");

    let started = h.event_times(|e| matches!(e, MediaEvent::SpeechStarted { .. }));
    assert_eq!(started.len(), 1, "{:?}", h.events);
    assert_eq!(
        h.event_times(|e| matches!(e, MediaEvent::BargeIn { .. }))
            .len(),
        1
    );
    let stats = h.session.stats();
    assert_eq!(stats.barge_ins, 1);
    assert_eq!(stats.jitter.clock_rate, 48_000);
    // Counters in 48 kHz timestamp units: 100 packets × 960.
    assert_eq!(stats.jitter.played_samples, 100 * 960);
    assert_eq!(
        (
            stats.jitter.lost,
            stats.jitter.concealed_frames,
            stats.jitter.decode_errors
        ),
        (0, 0, 0)
    );
    assert_eq!(h.session.media_ms(), 2000);
}

#[test]
fn opus_lost_packet_is_recovered_from_the_next_packets_fec() {
    let mut h = Harness::new(opus_config());
    let packets = opus_packets(60, true, voiced16k);
    // libopus adds LBRR to frames it judges active speech: packet 21 carries packet 20's.
    assert!(crate::opus::has_inband_fec(
        parse_rtp(&packets[21]).unwrap().payload
    ));
    deliver(&mut h, packets, &[20]);
    h.run_until(1300);
    let stats = h.session.stats().jitter;
    assert_eq!((stats.lost, stats.fec_recovered), (1, 1), "{stats:?}");
    assert_eq!((stats.concealed_frames, stats.codec_plc_frames), (0, 0));
    // No hole where packet 20 was: the recovered frame is speech-level like its neighbours.
    let mut wide = Vec::new();
    h.session.drain_caller_audio(&mut wide);
    assert_eq!(wide.len(), 60 * 320);
    let levels = frame_levels(&wide);
    assert!(levels[20] > 0.5 * levels[19], "{levels:?}");
    assert_eq!(stats.played_samples, 59 * 960);
}

#[test]
fn opus_loss_without_fec_in_the_next_packet_uses_the_decoder_plc() {
    // A peer that sends no FEC: one lost packet is concealed by the codec.
    let mut h = Harness::new(opus_config());
    deliver(&mut h, opus_packets(60, false, voiced16k), &[20]);
    h.run_until(1300);
    let stats = h.session.stats().jitter;
    assert_eq!((stats.lost, stats.fec_recovered), (1, 0), "{stats:?}");
    assert_eq!((stats.concealed_frames, stats.codec_plc_frames), (1, 1));
    assert_eq!(stats.concealed_samples, 960);
    let mut wide = Vec::new();
    h.session.drain_caller_audio(&mut wide);
    let levels = frame_levels(&wide);
    assert!(levels[20] > 500.0, "PLC continues the voice: {levels:?}");

    // Two in a row with FEC on: the first has no buffered successor carrying its FEC (PLC),
    // the second is recovered from the packet after it.
    let mut h = Harness::new(opus_config());
    deliver(&mut h, opus_packets(60, true, voiced16k), &[19, 20]);
    h.run_until(1300);
    let stats = h.session.stats().jitter;
    assert_eq!(
        (stats.lost, stats.fec_recovered, stats.codec_plc_frames),
        (2, 1, 1)
    );
}

#[test]
fn opus_garbage_payload_is_counted_and_concealed_and_the_stream_goes_on() {
    let mut h = Harness::new(opus_config());
    let mut packets = opus_packets(50, true, voiced16k);
    // Packet 20: a code-3 packet with zero frames, which libopus rejects; packet 21: empty.
    packets[20] = rtp(111, 20, 20 * 960, CALLER_SSRC, false, &[(1 << 3) | 3, 0]);
    packets[21] = rtp(111, 21, 21 * 960, CALLER_SSRC, false, &[]);
    deliver(&mut h, packets, &[]);
    h.run_until(1100);
    let stats = h.session.stats();
    assert_eq!(stats.jitter.decode_errors, 2, "{stats:?}");
    assert_eq!(stats.jitter.concealed_frames, 2);
    assert_eq!(stats.jitter.played_samples, 48 * 960);
    assert_eq!(stats.invalid_packets, 0);
    // Media time runs on through the bad packets.
    let mut wide = Vec::new();
    h.session.drain_caller_audio(&mut wide);
    assert_eq!(wide.len(), 50 * 320);
    assert!(frame_levels(&wide)[30..].iter().all(|&l| l > 1000.0));
}

#[test]
fn opus_playback_is_encoded_at_16_khz_with_960_units_per_packet() {
    let mut h = Harness::new(opus_config());
    // 400 ms of a 1 kHz tone at 8 kHz, as text-to-speech hands it over.
    let pcm8k: Vec<i16> = (0..3200)
        .map(|n| (10000.0 * (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 8000.0).sin()) as i16)
        .collect();
    h.session.enqueue(1, pcm8k.into(), true);
    h.run_until(800);
    assert!(h.sent.len() >= 40);
    for pair in h.sent.windows(2) {
        assert_eq!(pair[1].ts().wrapping_sub(pair[0].ts()), 960);
    }
    let mut decoder = crate::opus::OpusDecoder::new().unwrap();
    let mut decoded = Vec::new();
    for packet in &h.sent {
        let rtp = parse_rtp(&packet.bytes).unwrap();
        assert_eq!(rtp.header.payload_type, 111);
        assert!(
            (1..=160).contains(&rtp.payload.len()),
            "{}",
            rtp.payload.len()
        );
        let mut pcm = [0i16; crate::opus::MAX_PACKET_SAMPLES];
        assert_eq!(decoder.decode(rtp.payload, &mut pcm).unwrap(), 320);
        decoded.extend_from_slice(&pcm[..320]);
    }
    let tone = &decoded[320 * 4..320 * 18];
    let level = amplitude_at(tone, 1000.0);
    assert!(
        (8000.0..12000.0).contains(&level),
        "1 kHz amplitude {level:.0}"
    );
    assert!(amplitude_at(tone, 3000.0) < 500.0);
    // After the playback: silence, still Opus.
    assert!(
        frame_levels(&decoded[320 * 26..])
            .iter()
            .all(|&l| l < 100.0)
    );
}

#[test]
fn opus_40_ms_packets_play_in_20_ms_frames_and_a_lost_one_is_rebuilt_from_fec() {
    // A peer packing 40 ms per packet (ptime 40): 1920 timestamp units each.
    let mut encoder = crate::opus::OpusEncoder::new().unwrap();
    let packets: Vec<Vec<u8>> = (0..30u64)
        .map(|i| {
            let pcm: Vec<i16> = (0..640).map(|n| voiced16k(i * 640 + n)).collect();
            let mut payload = [0u8; 400];
            let len = encoder.encode(&pcm, &mut payload).unwrap();
            rtp(
                111,
                i as u16,
                (i * 1920) as u32,
                CALLER_SSRC,
                i == 0,
                &payload[..len],
            )
        })
        .collect();
    assert!(crate::opus::has_inband_fec(
        parse_rtp(&packets[11]).unwrap().payload
    ));
    let mut h = Harness::new(opus_config());
    for (i, packet) in packets.into_iter().enumerate() {
        if i != 10 {
            h.arrivals.push_back((i as u64 * 40, remote(), packet));
        }
    }
    h.run_until(1300);
    let stats = h.session.stats().jitter;
    assert_eq!((stats.lost, stats.fec_recovered), (1, 1), "{stats:?}");
    assert_eq!(stats.concealed_frames, 0);
    assert_eq!(stats.played_samples, 29 * 1920);
    let mut wide = Vec::new();
    h.session.drain_caller_audio(&mut wide);
    assert_eq!(wide.len(), 30 * 640);
    let levels = frame_levels(&wide);
    // The 40 ms rebuilt from FEC (frames 20 and 21) is voice, not a hole.
    assert!(levels[20] > 500.0 && levels[21] > 500.0, "{levels:?}");
    assert_eq!(h.session.media_ms(), 1200);
}

#[test]
fn opus_dtmf_at_a_48_khz_event_clock_counts_960_units_per_frame() {
    let mut config = opus_config();
    config.dtmf_payload_type = Some(DTMF_PT);
    config.dtmf_sender.clock_rate = 48_000;
    let mut h = Harness::new(config);
    h.session.send_dtmf(h.t0, "7").unwrap();
    h.run_until(400);
    let payloads = dtmf_payloads(&h.sent);
    assert_eq!(payloads.len(), 11, "{payloads:?}");
    assert_eq!(payloads[0], (7, false, 960));
    assert_eq!(payloads[7], (7, false, 8 * 960));
    assert!(payloads[8..].iter().all(|&p| p == (7, true, 8 * 960)));
    // The event's timestamp is its first frame's on the 48 kHz audio clock; audio after it
    // carries on 960 units per frame as if the event frames had been audio.
    let first = &h.sent[0];
    for (i, p) in h.sent.iter().enumerate() {
        let tick_ts = first.ts().wrapping_add(960 * i as u32);
        if pt(&p.bytes) == DTMF_PT {
            assert_eq!(p.ts(), first.ts(), "event packet {i}");
        } else {
            assert_eq!(p.ts(), tick_ts, "audio packet {i}");
        }
    }
}

#[test]
fn opus_reordered_packets_are_played_in_order_without_fec_or_plc() {
    let mut h = Harness::new(opus_config());
    let mut packets = opus_packets(40, true, voiced16k);
    // Packet 21 (at index 20 now) overtakes packet 20, which comes 12 ms late: within the
    // loss deadline (at least 20 ms), so nothing is concealed or rebuilt.
    packets.swap(20, 21);
    for (i, packet) in packets.into_iter().enumerate() {
        let at = match i {
            20 => 405,
            21 => 412,
            _ => i as u64 * 20,
        };
        h.arrivals.push_back((at, remote(), packet));
    }
    h.run_until(900);
    let stats = h.session.stats().jitter;
    assert_eq!(stats.reordered, 1, "{stats:?}");
    assert_eq!(
        (stats.lost, stats.fec_recovered, stats.concealed_frames),
        (0, 0, 0)
    );
    assert_eq!(stats.played_samples, 40 * 960);
}
