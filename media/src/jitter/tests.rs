use super::*;
use crate::g711::ULAW_TO_LINEAR;
use rand::{Rng, SeedableRng, rngs::StdRng};

const SSRC: u32 = 0x1234_5678;

/// One packet to deliver: arrival time (ms after t0), header, payload length (0 = placeholder).
#[derive(Debug, Clone, Copy)]
struct Arrival {
    at_ms: u64,
    seq: u16,
    ts: u32,
    ssrc: u32,
    samples: usize,
}

/// A released frame as the tests see it.
#[derive(Debug, Clone, PartialEq)]
struct Out {
    at_ms: u64,
    kind: FrameKind,
    len: usize,
    first: i16,
    last: i16,
}

/// Payload byte that identifies a packet: decodes to a distinct negative value per seq % 120.
fn tag_byte(seq: u16) -> u8 {
    (seq % 120) as u8
}

fn tag_value(seq: u16) -> i16 {
    ULAW_TO_LINEAR[tag_byte(seq) as usize]
}

struct Sim {
    jb: JitterBuffer,
    t0: Instant,
    out: Vec<Out>,
}

impl Sim {
    fn new() -> Self {
        Self::with_config(JitterConfig::default())
    }

    fn with_config(config: JitterConfig) -> Self {
        Self {
            jb: JitterBuffer::new(config, Law::Mu),
            t0: Instant::now(),
            out: Vec::new(),
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn deliver(&mut self, a: Arrival) -> InsertOutcome {
        let info = PacketInfo {
            sequence_number: a.seq,
            timestamp: a.ts,
            ssrc: a.ssrc,
            marker: false,
        };
        let now = self.at(a.at_ms);
        if a.samples == 0 {
            self.jb.insert_placeholder(now, info)
        } else {
            let payload = vec![tag_byte(a.seq); a.samples];
            self.jb.insert_audio(now, info, &payload)
        }
    }

    fn drain(&mut self, at_ms: u64) {
        let now = self.at(at_ms);
        while let Some(frame) = self.jb.poll_frame(now) {
            self.out.push(Out {
                at_ms,
                kind: frame.kind,
                len: frame.pcm.len(),
                first: frame.pcm.first().copied().unwrap_or(0),
                last: frame.pcm.last().copied().unwrap_or(0),
            });
        }
    }

    /// Delivers `arrivals` (any order) in time order, polling every `step_ms` and right after
    /// each insert, until `end_ms`.
    fn run(&mut self, mut arrivals: Vec<Arrival>, step_ms: u64, end_ms: u64) {
        arrivals.sort_by_key(|a| a.at_ms);
        let mut next = 0;
        let mut t = 0;
        while t <= end_ms {
            while next < arrivals.len() && arrivals[next].at_ms <= t {
                let mut a = arrivals[next];
                a.at_ms = t;
                self.deliver(a);
                self.drain(t);
                next += 1;
            }
            self.drain(t);
            t += step_ms;
        }
    }

    fn kinds(&self) -> Vec<FrameKind> {
        self.out.iter().map(|o| o.kind).collect()
    }

    fn total_samples(&self) -> usize {
        self.out.iter().map(|o| o.len).sum()
    }
}

/// Packets every `ptime_ms` starting at seq0/ts0, arriving on time (+ base delay).
fn stream(count: usize, seq0: u16, ts0: u32, ptime_ms: u64) -> Vec<Arrival> {
    let samples = (ptime_ms * 8) as usize;
    (0..count)
        .map(|i| Arrival {
            at_ms: i as u64 * ptime_ms,
            seq: seq0.wrapping_add(i as u16),
            ts: ts0.wrapping_add((i * samples) as u32),
            ssrc: SSRC,
            samples,
        })
        .collect()
}

fn received(n: usize) -> Vec<FrameKind> {
    vec![FrameKind::Received; n]
}

#[test]
fn in_order_packets_are_released_immediately() {
    let mut sim = Sim::new();
    for a in stream(50, 100, 1000, 20) {
        sim.deliver(a);
        let before = sim.out.len();
        sim.drain(a.at_ms);
        assert_eq!(
            sim.out.len(),
            before + 1,
            "packet {} not released at once",
            a.seq
        );
        let last = sim.out.last().unwrap();
        assert_eq!(last.kind, FrameKind::Received);
        assert_eq!(last.len, 160);
        assert_eq!(last.first, tag_value(a.seq));
    }
    let s = sim.jb.stats();
    assert_eq!(s.received, 50);
    assert_eq!(s.played_samples, 50 * 160);
    assert_eq!(
        (s.lost, s.late, s.reordered, s.duplicate, s.resets),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(s.concealed_frames, 0);
    assert!(
        s.interarrival_jitter < 0.01,
        "jitter {}",
        s.interarrival_jitter
    );
    assert_eq!(
        s.target_delay_ms,
        f64::from(JitterConfig::default().min_delay_ms),
        "no jitter: the target sits on its floor"
    );
    assert_eq!(sim.jb.poll_timeout(), None);
}

#[test]
fn single_loss_is_concealed_after_the_deadline() {
    let mut sim = Sim::new();
    let arrivals: Vec<_> = stream(30, 0, 0, 20)
        .into_iter()
        .filter(|a| a.seq != 10)
        .collect();
    sim.run(arrivals, 1, 700);
    let mut expected = received(10);
    expected.push(FrameKind::Concealed);
    expected.extend(received(19));
    assert_eq!(sim.kinds(), expected);
    // Packet 11 arrived at 220 ms and was held until the gap's deadline: no longer than the
    // initial 40 ms target after packet 10's expected arrival at 200 ms.
    let released_11 = sim.out[11].at_ms;
    assert_eq!(sim.out[11].first, tag_value(11));
    assert!(
        (220..=240).contains(&released_11),
        "released at {released_11}"
    );
    // The concealment repeats packet 9's audio, faded.
    assert_eq!(sim.out[10].first, tag_value(9));
    assert!(sim.out[10].last.abs() < tag_value(9).abs());
    let s = sim.jb.stats();
    assert_eq!(s.received, 29);
    assert_eq!((s.lost, s.late, s.reordered, s.duplicate), (1, 0, 0, 0));
    assert_eq!(
        (
            s.concealed_frames,
            s.concealed_samples,
            s.silent_concealed_samples
        ),
        (1, 160, 0)
    );
    assert_eq!(sim.total_samples(), 30 * 160);
}

#[test]
fn burst_loss_conceals_60_ms_then_silence() {
    let mut sim = Sim::new();
    let arrivals: Vec<_> = stream(40, 0, 0, 20)
        .into_iter()
        .filter(|a| !(10..20).contains(&a.seq))
        .collect();
    sim.run(arrivals, 5, 1200);
    let mut expected = received(10);
    expected.extend(vec![FrameKind::Concealed; 3]);
    expected.extend(vec![FrameKind::ConcealedSilence; 7]);
    expected.extend(received(20));
    assert_eq!(sim.kinds(), expected);
    for o in &sim.out[13..20] {
        assert_eq!((o.first, o.last), (0, 0));
    }
    // The fade reaches (almost) zero at the end of the 60 ms.
    assert!(sim.out[12].last.abs() <= tag_value(9).abs() / 100);
    let s = sim.jb.stats();
    assert_eq!(s.lost, 10);
    assert_eq!(s.concealed_frames, 10);
    assert_eq!(s.concealed_samples, 1600);
    assert_eq!(s.silent_concealed_samples, 7 * 160);
    assert_eq!((s.late, s.reordered, s.duplicate), (0, 0, 0));
    assert_eq!(sim.total_samples(), 40 * 160);
}

#[test]
fn reordered_packets_are_put_back_in_order() {
    let mut sim = Sim::new();
    let mut arrivals = stream(30, 0, 0, 20);
    arrivals[6].at_ms = 100; // 6 overtakes 5
    arrivals[5].at_ms = 105;
    sim.run(arrivals, 1, 700);
    assert_eq!(sim.kinds(), received(30));
    let order: Vec<i16> = sim.out.iter().map(|o| o.first).collect();
    let expected: Vec<i16> = (0..30).map(tag_value).collect();
    assert_eq!(order, expected);
    // 6 waited for 5 and was released together with it.
    assert_eq!(sim.out[5].at_ms, 105);
    assert_eq!(sim.out[6].at_ms, 105);
    let s = sim.jb.stats();
    assert_eq!(
        (s.received, s.lost, s.late, s.reordered, s.duplicate),
        (30, 0, 0, 1, 0)
    );
}

#[test]
fn duplicates_are_dropped_and_counted() {
    let mut sim = Sim::new();
    let mut arrivals = stream(30, 0, 0, 20);
    // A copy of 7 long after it was played.
    let mut dup7 = arrivals[7];
    dup7.at_ms = 150;
    // 11 is 25 ms late (within its deadline); 12 arrives twice while it waits for 11.
    arrivals[11].at_ms = 245;
    let mut dup12 = arrivals[12];
    dup12.at_ms = 241;
    arrivals.push(dup7);
    arrivals.push(dup12);
    sim.run(arrivals, 1, 700);
    assert_eq!(sim.kinds(), received(30));
    let s = sim.jb.stats();
    assert_eq!(
        (s.received, s.lost, s.late, s.reordered, s.duplicate),
        (32, 0, 0, 1, 2)
    );
}

#[test]
fn late_packet_after_its_deadline_is_dropped() {
    let mut sim = Sim::new();
    let mut arrivals = stream(30, 0, 0, 20);
    arrivals[10].at_ms = 500; // 300 ms late
    sim.run(arrivals, 1, 800);
    let mut expected = received(10);
    expected.push(FrameKind::Concealed);
    expected.extend(received(19));
    assert_eq!(sim.kinds(), expected);
    let s = sim.jb.stats();
    assert_eq!(
        (s.received, s.lost, s.late, s.reordered, s.duplicate),
        (30, 1, 1, 1, 0)
    );
    assert_eq!(sim.total_samples(), 30 * 160);
}

#[test]
fn sequence_wrap_at_65535() {
    let mut sim = Sim::new();
    let mut arrivals: Vec<_> = stream(20, 65530, 0, 20)
        .into_iter()
        .filter(|a| a.seq != 65535)
        .collect();
    // Swap 0 and 1 (indices 5 and 6 after removing 65535).
    assert_eq!((arrivals[5].seq, arrivals[6].seq), (0, 1));
    arrivals[6].at_ms = arrivals[5].at_ms;
    arrivals[5].at_ms += 3;
    sim.run(arrivals, 1, 600);
    let mut expected = received(5);
    expected.push(FrameKind::Concealed);
    expected.extend(received(14));
    assert_eq!(sim.kinds(), expected);
    assert_eq!(sim.out[6].first, tag_value(0));
    assert_eq!(sim.out[7].first, tag_value(1));
    let s = sim.jb.stats();
    assert_eq!(
        (
            s.received,
            s.lost,
            s.late,
            s.reordered,
            s.duplicate,
            s.resets
        ),
        (19, 1, 0, 1, 0, 0)
    );
}

#[test]
fn timestamp_wrap_is_not_a_jump() {
    let mut sim = Sim::new();
    sim.run(stream(20, 7, u32::MAX - 800, 20), 5, 500);
    assert_eq!(sim.kinds(), received(20));
    let s = sim.jb.stats();
    assert_eq!((s.resets, s.lost, s.gap_samples), (0, 0, 0));
}

#[test]
fn ssrc_change_resets_and_output_continues() {
    let mut sim = Sim::new();
    let mut arrivals = stream(20, 500, 9000, 20);
    let second: Vec<_> = stream(20, 40000, 123_456, 20)
        .into_iter()
        .map(|mut a| {
            a.ssrc = 0xBEEF;
            a.at_ms += 400;
            a
        })
        .collect();
    arrivals.extend(second);
    // A straggler of the old stream just after the switch must not switch back.
    let mut straggler = arrivals[19];
    straggler.at_ms = 405;
    arrivals.push(straggler);
    sim.run(arrivals, 1, 1000);
    assert_eq!(sim.kinds(), received(40));
    assert_eq!(sim.jb.ssrc(), Some(0xBEEF));
    // The new stream's first packet is released as soon as it arrives.
    assert_eq!(sim.out[20].at_ms, 400);
    let s = sim.jb.stats();
    assert_eq!(
        (s.received, s.resets, s.lost, s.late, s.discarded),
        (41, 1, 0, 1, 0)
    );
}

#[test]
fn any_packetisation_is_timed_by_timestamp() {
    for ptime in [10u64, 20, 30, 40] {
        let mut sim = Sim::new();
        let arrivals: Vec<_> = stream(40, 0, 0, ptime)
            .into_iter()
            .filter(|a| a.seq != 20)
            .collect();
        sim.run(arrivals, 1, 40 * ptime + 400);
        let samples = (ptime * 8) as usize;
        let s = sim.jb.stats();
        assert_eq!(s.lost, 1, "ptime {ptime}");
        assert_eq!(s.concealed_samples, samples as u64, "ptime {ptime}");
        assert_eq!(
            s.concealed_frames,
            samples.div_ceil(160) as u64,
            "ptime {ptime}"
        );
        assert_eq!(sim.total_samples(), 40 * samples, "ptime {ptime}");
    }
    // Packetisation changing mid-call without signalling: 20 → 40 → 10 ms.
    let mut arrivals = stream(10, 0, 0, 20);
    let mut t = 200;
    let mut ts = 1600u32;
    for i in 0..10u16 {
        arrivals.push(Arrival {
            at_ms: t,
            seq: 10 + i,
            ts,
            ssrc: SSRC,
            samples: 320,
        });
        t += 40;
        ts += 320;
    }
    for i in 0..10u16 {
        arrivals.push(Arrival {
            at_ms: t,
            seq: 20 + i,
            ts,
            ssrc: SSRC,
            samples: 80,
        });
        t += 10;
        ts += 80;
    }
    let mut sim = Sim::new();
    sim.run(arrivals, 1, 1000);
    assert_eq!(sim.kinds(), received(30));
    assert_eq!(sim.total_samples(), 1600 + 3200 + 800);
    assert_eq!(sim.jb.stats().lost, 0);
}

#[test]
fn same_stream_events_are_placeholders_and_their_time_is_silence() {
    let mut sim = Sim::new();
    let mut arrivals = stream(10, 0, 0, 20);
    // An RFC 4733 event on the voice stream: 8 packets at the event's start timestamp.
    for i in 0..8u16 {
        arrivals.push(Arrival {
            at_ms: 200 + 20 * i as u64,
            seq: 10 + i,
            ts: 1600,
            ssrc: SSRC,
            samples: 0,
        });
    }
    // Voice resumes after the 160 ms event.
    for i in 0..10u16 {
        arrivals.push(Arrival {
            at_ms: 360 + 20 * i as u64,
            seq: 18 + i,
            ts: 1600 + 1280 + 160 * i as u32,
            ssrc: SSRC,
            samples: 160,
        });
    }
    // Filler packets from another SSRC (sipp's PT 97) are ignored outright.
    let mut other = arrivals[3];
    other.ssrc = 0x0102_0305;
    other.samples = 0;
    other.at_ms = 250;
    arrivals.push(other);
    sim.run(arrivals, 1, 800);
    let mut expected = received(10);
    expected.extend(vec![FrameKind::Gap; 8]);
    expected.extend(received(10));
    assert_eq!(sim.kinds(), expected);
    let s = sim.jb.stats();
    assert_eq!(
        (
            s.received,
            s.lost,
            s.resets,
            s.gap_samples,
            s.concealed_frames
        ),
        (20, 0, 0, 1280, 0)
    );
}

#[test]
fn big_timestamp_jump_resets_without_filling() {
    let mut sim = Sim::new();
    let mut arrivals = stream(10, 0, 0, 20);
    arrivals.extend(stream(10, 10, 80_000 + 1600, 20).into_iter().map(|mut a| {
        a.at_ms += 200;
        a
    }));
    sim.run(arrivals, 5, 600);
    assert_eq!(sim.kinds(), received(20));
    let s = sim.jb.stats();
    assert_eq!((s.resets, s.gap_samples, s.lost), (1, 0, 0));
}

#[test]
fn forward_sequence_jump_beyond_capacity_resets() {
    let mut sim = Sim::new();
    let mut arrivals = stream(10, 0, 0, 20);
    arrivals.extend(
        stream(10, 10 + CAPACITY as u16 + 5, 1600, 20)
            .into_iter()
            .map(|mut a| {
                a.at_ms += 200;
                a
            }),
    );
    sim.run(arrivals, 5, 600);
    assert_eq!(sim.kinds(), received(20));
    assert_eq!(sim.jb.stats().resets, 1);
}

#[test]
fn target_delay_rises_fast_and_falls_slowly() {
    // On a 20 ms floor, so that the estimate's fall is visible below the default floor.
    let mut sim = Sim::with_config(JitterConfig {
        min_delay_ms: 20,
        ..JitterConfig::default()
    });
    let mut rng = StdRng::seed_from_u64(1);
    // 5 s steady, 3 s with 0..100 ms jitter, then 12 s steady again.
    let mut arrivals = Vec::new();
    for i in 0..1000u64 {
        let jitter = if (250..400).contains(&i) {
            rng.random_range(0..100)
        } else {
            0
        };
        arrivals.push(Arrival {
            at_ms: 20 * i + jitter,
            seq: i as u16,
            ts: (160 * i) as u32,
            ssrc: SSRC,
            samples: 160,
        });
    }
    arrivals.sort_by_key(|a| a.at_ms);
    let mut targets = Vec::new();
    let mut next = 0;
    for t in 0..=20_400u64 {
        while next < arrivals.len() && arrivals[next].at_ms <= t {
            sim.deliver(arrivals[next]);
            next += 1;
        }
        sim.drain(t);
        if t % 100 == 0 {
            targets.push((t, sim.jb.stats().target_delay_ms));
        }
    }
    let at = |ms: u64| targets.iter().find(|(t, _)| *t == ms).unwrap().1;
    assert!(at(4900) < 21.0, "steady state {}", at(4900));
    assert!(at(6000) > 80.0, "after 1 s of jitter {}", at(6000));
    assert!(
        at(8500) > 60.0,
        "0.5 s after the jitter stopped {}",
        at(8500)
    );
    assert!(
        at(20_000) < 30.0,
        "12 s after the jitter stopped {}",
        at(20_000)
    );
    assert!(targets.iter().all(|(_, d)| (20.0..=200.0).contains(d)));
    let s = sim.jb.stats();
    assert_eq!(
        s.lost, s.late,
        "only jitter, so every loss is a late arrival"
    );
    assert!(s.late < 20, "late {}", s.late);
    assert!(s.interarrival_jitter > 0.0);
}

/// Randomised network: bursty loss, heavy-tailed jitter, duplicates. Output must keep flowing,
/// every timestamp must be covered exactly once, and the counters must add up.
#[test]
fn never_stalls_under_random_loss_jitter_and_duplication() {
    for seed in 0..4u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut arrivals = Vec::new();
        let mut bad = false;
        let count = 3000u64;
        let seq0: u16 = rng.random();
        let ts0: u32 = rng.random();
        let mut sent_unique = 0u64;
        for i in 0..count {
            bad = if bad {
                !rng.random_bool(0.3)
            } else {
                rng.random_bool(0.02)
            };
            let loss = if bad { 0.8 } else { 0.01 };
            if rng.random_bool(loss) {
                continue;
            }
            let jitter = if rng.random_bool(0.01) {
                rng.random_range(100..400)
            } else if rng.random_bool(0.3) {
                rng.random_range(0..80)
            } else {
                rng.random_range(0..5)
            };
            let a = Arrival {
                at_ms: 20 * i + 20 + jitter,
                seq: seq0.wrapping_add(i as u16),
                ts: ts0.wrapping_add((160 * i) as u32),
                ssrc: SSRC,
                samples: 160,
            };
            sent_unique += 1;
            arrivals.push(a);
            if rng.random_bool(0.01) {
                let mut d = a;
                d.at_ms += rng.random_range(0..200);
                arrivals.push(d);
            }
        }
        let total_arrivals = arrivals.len() as u64;
        arrivals.sort_by_key(|a| a.at_ms);
        let mut sim = Sim::new();
        let mut next = 0;
        let end = 20 * count + 1000;
        let mut t = 0;
        let mut max_hold = 0u64;
        let mut pending: Vec<(u16, u64)> = Vec::new(); // (seq, arrival) of accepted packets
        while t <= end {
            while next < arrivals.len() && arrivals[next].at_ms <= t {
                let a = arrivals[next];
                if matches!(
                    sim.deliver(a),
                    InsertOutcome::Accepted | InsertOutcome::Reset
                ) {
                    pending.push((a.seq, t));
                }
                next += 1;
            }
            let before = sim.out.len();
            sim.drain(t);
            for o in &sim.out[before..] {
                if o.kind == FrameKind::Received {
                    let pos = pending
                        .iter()
                        .position(|(s, _)| tag_value(*s) == o.first)
                        .unwrap();
                    let (_, arrived) = pending.remove(pos);
                    max_hold = max_hold.max(t - arrived);
                }
            }
            t += 5;
        }
        let s = sim.jb.stats();
        assert!(
            pending.is_empty(),
            "seed {seed}: packets left in the buffer"
        );
        assert!(
            max_hold <= 205,
            "seed {seed}: a packet was held {max_hold} ms"
        );
        assert_eq!(s.received, total_arrivals, "seed {seed}");
        let played = sim
            .kinds()
            .iter()
            .filter(|k| **k == FrameKind::Received)
            .count() as u64;
        assert_eq!(
            played + s.duplicate + s.late,
            s.received,
            "seed {seed}: {s:?}"
        );
        assert!(played <= sent_unique, "seed {seed}");
        assert_eq!(s.resets, 0, "seed {seed}");
        // Every 20 ms of the sender's timeline is covered exactly once, up to the last packet
        // that was played.
        let last_played_seq_offset = (played + s.lost) as usize;
        assert_eq!(
            sim.total_samples(),
            last_played_seq_offset * 160,
            "seed {seed}"
        );
        assert_eq!(s.concealed_samples, s.lost * 160, "seed {seed}");
        // Concealment is bounded: never more than 60 ms of audible PLC in a row.
        let mut run = 0;
        for o in &sim.out {
            if o.kind == FrameKind::Concealed {
                run += o.len;
                assert!(run <= 480, "seed {seed}: PLC ran {run} samples");
            } else {
                run = 0;
            }
        }
        assert!(
            s.late * 100 <= s.received * 3,
            "seed {seed}: late {} of {}",
            s.late,
            s.received
        );
    }
}

#[test]
fn poll_timeout_reports_the_gap_deadline() {
    let mut sim = Sim::new();
    for a in stream(5, 0, 0, 20) {
        sim.deliver(a);
        sim.drain(a.at_ms);
    }
    assert_eq!(sim.jb.poll_timeout(), None);
    // Skip seq 5; seq 6 arrives at 120 ms.
    sim.deliver(Arrival {
        at_ms: 120,
        seq: 6,
        ts: 960,
        ssrc: SSRC,
        samples: 160,
    });
    sim.drain(120);
    let deadline = sim.jb.poll_timeout().expect("waiting on a gap");
    let ms = deadline.duration_since(sim.t0).as_millis() as u64;
    assert!((120..=140).contains(&ms), "deadline at {ms} ms");
    assert!(
        sim.jb
            .poll_frame(deadline - Duration::from_millis(1))
            .is_none()
    );
    assert_eq!(
        sim.jb.poll_frame(deadline).map(|f| f.kind),
        Some(FrameKind::Concealed)
    );
}

/// Found by the network-simulator suite (`tests/jitter_suite.rs`, "DTX + loss 5%"): a packet
/// lost at the edge of a silence-suppression gap made the whole silence count as concealment.
#[test]
fn loss_at_a_dtx_edge_conceals_only_the_lost_packet() {
    let mut sim = Sim::new();
    // 10 packets, 1 s of silence (no packets, timestamp runs on), then a talk-spurt whose first
    // packet (seq 10) is lost.
    let mut arrivals = stream(10, 0, 0, 20);
    arrivals.extend(
        stream(10, 10, 1600 + 8000, 20)
            .into_iter()
            .filter(|a| a.seq != 10)
            .map(|mut a| {
                a.at_ms += 1200;
                a
            }),
    );
    sim.run(arrivals, 5, 2000);
    let s = sim.jb.stats();
    assert_eq!(s.lost, 1);
    assert_eq!(
        s.concealed_samples, 160,
        "only the lost packet is concealed"
    );
    assert_eq!(s.gap_samples, 8000, "the silence is a gap");
    assert_eq!(sim.total_samples(), 20 * 160 + 8000, "media time is kept");
    assert_eq!(
        sim.kinds()
            .iter()
            .filter(|k| **k == FrameKind::Received)
            .count(),
        19
    );
}
