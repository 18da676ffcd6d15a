//! A deterministic network simulator and a harness that measures the [`JitterBuffer`] with it
//! (media.md §1.6). Test and benchmark infrastructure: `media/tests/jitter_suite.rs` asserts
//! bounds per scenario and `cargo run -p vaani-media --release --example jitter_report` prints
//! the table.
//!
//! Sans-IO and seeded: a sender produces a 20 ms G.711 RTP stream (sequence number, timestamp,
//! SSRC, marker), a [`Profile`] turns it into arrival times (Bernoulli or Gilbert–Elliott loss,
//! uniform or Pareto jitter, reordering, duplication, a delay spike, sender clock drift, an SSRC
//! change, a timestamp jump, silence suppression), and [`run`] feeds the arrivals to a buffer on
//! a simulated clock, polling exactly when the buffer asks ([`JitterBuffer::poll_timeout`]) or a
//! packet arrives. No wall-clock time is involved; a 60 s call runs in milliseconds.
//!
//! Every payload carries the index of the frame it belongs to, so the harness knows which packet
//! each released frame came from and computes every metric itself — played twice, released out of
//! order, lost, late, added delay — alongside the buffer's own counters, which a test can then
//! check against each other.

use std::time::{Duration, Instant};

use crate::g711::Law;
use crate::jitter::{FrameKind, JitterBuffer, JitterConfig, JitterStats, PacketInfo};

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: u32 = 160;
const FRAME_US: f64 = 20_000.0;

/// SplitMix64: small, seeded and stable across crate versions (unlike `rand`'s `StdRng`).
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

/// Packet loss process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// No loss.
    None,
    /// Each packet lost independently with probability `p`.
    Bernoulli {
        /// Loss probability.
        p: f64,
    },
    /// Two-state Markov (Gilbert–Elliott) burst loss.
    GilbertElliott {
        /// P(good → bad) per packet.
        p_good_to_bad: f64,
        /// P(bad → good) per packet.
        p_bad_to_good: f64,
        /// Loss probability in the good state.
        loss_good: f64,
        /// Loss probability in the bad state.
        loss_bad: f64,
    },
}

/// One-way delay variation added to the base delay, per packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// Constant delay.
    None,
    /// Uniform in [0, max_ms).
    Uniform {
        /// Upper bound, ms.
        max_ms: f64,
    },
    /// Heavy tail: Pareto with scale `scale_ms` and shape `shape`, minus the scale (so the
    /// minimum is 0), capped at `cap_ms`.
    Pareto {
        /// Pareto scale x_m, ms.
        scale_ms: f64,
        /// Pareto shape α (smaller = heavier tail).
        shape: f64,
        /// Largest extra delay, ms.
        cap_ms: f64,
    },
}

/// Silence suppression (DTX): talk-spurts and silences of random lengths; no packets are sent
/// during a silence, the timestamp keeps running and the first packet of a talk-spurt carries the
/// marker bit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dtx {
    /// Talk-spurt length range, ms.
    pub talk_ms: (f64, f64),
    /// Silence length range, ms.
    pub silence_ms: (f64, f64),
}

/// A network and sender condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Short name for the table.
    pub name: &'static str,
    /// Seed of every random choice.
    pub seed: u64,
    /// Length of the call (sender media time), ms.
    pub duration_ms: u64,
    /// Fixed one-way delay, ms.
    pub base_delay_ms: f64,
    /// Delay variation.
    pub jitter: Jitter,
    /// Loss process. The last 10 packets are never lost (a trailing loss has no later packet
    /// to reveal it and would only blur the counts).
    pub loss: Loss,
    /// Probability that a packet is held back by `reorder_ms` extra (reordering).
    pub reorder_p: f64,
    /// Extra delay of a reordered packet, ms.
    pub reorder_ms: f64,
    /// Probability that a packet arrives twice; the copy comes up to `duplicate_ms` later.
    pub duplicate_p: f64,
    /// Largest extra delay of a duplicate, ms.
    pub duplicate_ms: f64,
    /// Sender clock error in parts per million (+ = sender clock fast: packets come more often).
    pub drift_ppm: f64,
    /// Extra delay `(start_ms, length_ms, extra_ms)` for packets sent in that window.
    pub spike: Option<(f64, f64, f64)>,
    /// The sender switches to a new SSRC, sequence number and timestamp base at this media time.
    pub ssrc_change_at_ms: Option<u64>,
    /// The sender's timestamp jumps forward by `.1` units at media time `.0` (sequence continues).
    pub ts_jump: Option<(u64, u32)>,
    /// Silence suppression.
    pub dtx: Option<Dtx>,
    /// First sequence number (defaults near the wrap so every run crosses it).
    pub seq0: u16,
    /// First timestamp (defaults near the wrap so every run crosses it).
    pub ts0: u32,
}

impl Profile {
    /// A clean 60 s call: 30 ms constant delay, nothing else.
    pub fn clean(name: &'static str) -> Self {
        Self {
            name,
            seed: 0x5EED_0000 ^ name.len() as u64,
            duration_ms: 60_000,
            base_delay_ms: 30.0,
            jitter: Jitter::None,
            loss: Loss::None,
            reorder_p: 0.0,
            reorder_ms: 0.0,
            duplicate_p: 0.0,
            duplicate_ms: 0.0,
            drift_ppm: 0.0,
            spike: None,
            ssrc_change_at_ms: None,
            ts_jump: None,
            dtx: None,
            seq0: 65_000,
            ts0: u32::MAX - 80_000,
        }
    }
}

/// One packet as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentPacket {
    /// Index in send order: the packet's identity, carried in its payload.
    pub index: u32,
    /// Media frame number (20 ms units since the start, counting silences).
    pub frame: u32,
    /// RTP header fields.
    pub info: PacketInfo,
    /// True send time since the start, µs.
    pub send_us: u64,
}

/// One packet arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrivalEvent {
    /// Arrival time since the start, µs.
    pub at_us: u64,
    /// Which sent packet.
    pub index: u32,
}

/// The sender's stream and what the network made of it.
#[derive(Debug, Clone)]
pub struct Trace {
    /// All packets sent, in send order.
    pub sent: Vec<SentPacket>,
    /// Arrivals in time order (duplicates included).
    pub arrivals: Vec<ArrivalEvent>,
    /// Packets the network dropped.
    pub net_lost: u64,
    /// Index of the first packet after an SSRC change or timestamp jump.
    pub event_index: Option<u32>,
}

/// Generates the sender's stream and its arrivals under `profile`.
pub fn simulate(profile: &Profile) -> Trace {
    let mut rng = SimRng::new(profile.seed);
    let frames = (profile.duration_ms * 1000 / FRAME_US as u64) as u32;
    let frame_true_us = FRAME_US / (1.0 + profile.drift_ppm * 1e-6);

    // Sender.
    let mut sent = Vec::with_capacity(frames as usize);
    let mut ssrc = 0x5151_0001u32;
    let mut seq = profile.seq0;
    let mut ts_base = profile.ts0;
    let mut ts_origin_frame = 0u32;
    let mut talking = true;
    let mut state_left_ms = match profile.dtx {
        Some(d) => rng.range(d.talk_ms.0, d.talk_ms.1),
        None => f64::INFINITY,
    };
    let mut marker_next = true;
    let mut event_index = None;
    for frame in 0..frames {
        let media_ms = frame as u64 * 20;
        if profile.ssrc_change_at_ms.is_some_and(|t| t == media_ms) {
            ssrc = ssrc.wrapping_mul(2_654_435_761).wrapping_add(7);
            seq = rng.next_u64() as u16;
            ts_base = rng.next_u64() as u32;
            ts_origin_frame = frame;
            marker_next = true;
            event_index = Some(sent.len() as u32);
        }
        if let Some((at, jump)) = profile.ts_jump
            && at == media_ms
        {
            ts_base = ts_base.wrapping_add(jump);
            event_index = Some(sent.len() as u32);
        }
        if let Some(d) = profile.dtx {
            if state_left_ms <= 0.0 {
                talking = !talking;
                state_left_ms += if talking {
                    marker_next = true;
                    rng.range(d.talk_ms.0, d.talk_ms.1)
                } else {
                    rng.range(d.silence_ms.0, d.silence_ms.1)
                };
            }
            state_left_ms -= 20.0;
        }
        if !talking {
            continue;
        }
        let ts = ts_base.wrapping_add((frame - ts_origin_frame).wrapping_mul(FRAME_SAMPLES));
        sent.push(SentPacket {
            index: sent.len() as u32,
            frame,
            info: PacketInfo {
                sequence_number: seq,
                timestamp: ts,
                ssrc,
                marker: marker_next,
            },
            send_us: (frame as f64 * frame_true_us).round() as u64,
        });
        marker_next = false;
        seq = seq.wrapping_add(1);
    }

    // Network.
    let mut arrivals = Vec::with_capacity(sent.len() + sent.len() / 8);
    let mut net_lost = 0;
    let mut bad = false;
    let protected_tail = sent.len().saturating_sub(10);
    for (i, p) in sent.iter().enumerate() {
        let lost = match profile.loss {
            Loss::None => false,
            Loss::Bernoulli { p } => rng.chance(p),
            Loss::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_good,
                loss_bad,
            } => {
                bad = if bad {
                    !rng.chance(p_bad_to_good)
                } else {
                    rng.chance(p_good_to_bad)
                };
                rng.chance(if bad { loss_bad } else { loss_good })
            }
        };
        let extra_ms = match profile.jitter {
            Jitter::None => 0.0,
            Jitter::Uniform { max_ms } => rng.range(0.0, max_ms),
            Jitter::Pareto {
                scale_ms,
                shape,
                cap_ms,
            } => {
                let u = 1.0 - rng.unit(); // (0, 1]
                (scale_ms / u.powf(1.0 / shape) - scale_ms).min(cap_ms)
            }
        };
        let reorder_ms = if rng.chance(profile.reorder_p) {
            profile.reorder_ms
        } else {
            0.0
        };
        let duplicate = rng.chance(profile.duplicate_p);
        let duplicate_extra_ms = rng.range(0.0, profile.duplicate_ms);
        if lost && i < protected_tail {
            net_lost += 1;
            continue;
        }
        let send_ms = p.send_us as f64 / 1000.0;
        let spike_ms = match profile.spike {
            Some((start, len, extra)) if send_ms >= start && send_ms < start + len => extra,
            _ => 0.0,
        };
        let delay_ms = profile.base_delay_ms + extra_ms + reorder_ms + spike_ms;
        let at_us = p.send_us + (delay_ms * 1000.0).round() as u64;
        arrivals.push(ArrivalEvent {
            at_us,
            index: p.index,
        });
        if duplicate {
            arrivals.push(ArrivalEvent {
                at_us: at_us + (duplicate_extra_ms * 1000.0).round() as u64,
                index: p.index,
            });
        }
    }
    arrivals.sort_by_key(|a| a.at_us); // stable: equal times keep send order
    Trace {
        sent,
        arrivals,
        net_lost,
        event_index,
    }
}

/// Base-127 digits in µ-law bytes 0x80..=0xFE, which decode to distinct values.
const TAG_DIGITS: usize = 3;

fn payload_for(index: u32, payload: &mut [u8; FRAME_SAMPLES as usize]) {
    payload.fill(0xFF);
    let mut rest = index;
    for byte in payload.iter_mut().take(TAG_DIGITS) {
        *byte = 0x80 + (rest % 127) as u8;
        rest /= 127;
    }
    // Some non-silent audio after the tag, so concealment has something to repeat.
    for (i, byte) in payload.iter_mut().enumerate().skip(TAG_DIGITS) {
        *byte = Law::Mu.encode_sample(((i as i32 % 40 - 20) * 500) as i16);
    }
}

fn index_of(pcm: &[i16], table: &[i16; 127]) -> Option<u32> {
    if pcm.len() < TAG_DIGITS {
        return None;
    }
    let mut index = 0u32;
    for &sample in pcm[..TAG_DIGITS].iter().rev() {
        let digit = table.iter().position(|&v| v == sample)? as u32;
        index = index * 127 + digit;
    }
    Some(index)
}

/// What [`run`] measured. "Harness" values are computed from the trace and the released frames;
/// `stats` holds the buffer's own counters.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Scenario name.
    pub name: &'static str,
    /// Packets sent.
    pub sent: u64,
    /// Packets the network dropped.
    pub net_lost: u64,
    /// Packet arrivals, duplicates included.
    pub arrivals: u64,
    /// Sent packets never released as audio (network loss + late + discarded).
    pub lost: u64,
    /// Packets that arrived (first copy) but were never released.
    pub late: u64,
    /// First arrivals of a packet with a lower sequence number than one already arrived
    /// (same SSRC).
    pub reordered: u64,
    /// Arrivals of a packet that had already arrived.
    pub duplicated: u64,
    /// Packets released more than once (must be 0).
    pub played_twice: u64,
    /// Released packets that came out behind a later-sent packet of the same SSRC (must be 0).
    pub out_of_order: u64,
    /// RFC 3550 §6.4.1 interarrival jitter at the end, ms (first arrivals only).
    pub jitter_ms: f64,
    /// Added delay (release time − arrival time) of released packets: mean, ms.
    pub added_mean_ms: f64,
    /// ... 95th percentile, ms.
    pub added_p95_ms: f64,
    /// ... maximum, ms.
    pub added_max_ms: f64,
    /// Mean added delay of packets sent in the first 10 s, ms.
    pub added_first_10s_ms: f64,
    /// Mean added delay of packets sent in the last 10 s, ms.
    pub added_last_10s_ms: f64,
    /// Concealed samples / (released audio + concealed samples), from the frames.
    pub concealment_ratio: f64,
    /// Concealed samples, from the frames.
    pub concealed_samples: u64,
    /// Silence samples for non-loss gaps (DTX), from the frames.
    pub gap_samples: u64,
    /// Total output samples (all kinds).
    pub output_samples: u64,
    /// After an SSRC change or timestamp jump: packets from the event on that were sent before
    /// the first one released (0 = recovered at once).
    pub recovery_packets: Option<u64>,
    /// Times the buffer asked to be polled at a moment that had passed but released nothing.
    pub stalls: u64,
    /// Packets still buffered long after the last arrival (must be 0).
    pub left_buffered: u64,
    /// The buffer's counters at the end.
    pub stats: JitterStats,
}

/// Runs `profile` through a fresh [`JitterBuffer`] with `config`.
pub fn run(profile: &Profile, config: JitterConfig) -> Metrics {
    let trace = simulate(profile);
    run_trace(profile.name, &trace, config)
}

/// Runs a prepared `trace` through a fresh [`JitterBuffer`] with `config`.
pub fn run_trace(name: &'static str, trace: &Trace, config: JitterConfig) -> Metrics {
    let mut jb = JitterBuffer::new(config, Law::Mu);
    let t0 = Instant::now();
    let at = |us: u64| t0 + Duration::from_micros(us);
    // Rounded up, so that polling at the reported time is never a hair early.
    let since = |t: Instant| t.saturating_duration_since(t0).as_nanos().div_ceil(1000) as u64;

    let mut table = [0i16; 127];
    for (d, v) in table.iter_mut().enumerate() {
        *v = Law::Mu.decode_sample(0x80 + d as u8);
    }

    let n = trace.sent.len();
    let mut first_arrival: Vec<Option<u64>> = vec![None; n];
    let mut released_at: Vec<Option<u64>> = vec![None; n];
    let mut played_twice = 0;
    let mut out_of_order = 0;
    let mut concealed_samples = 0u64;
    let mut gap_samples = 0u64;
    let mut audio_samples = 0u64;
    let mut output_samples = 0u64;
    let mut last_released: Option<(u32, u32)> = None; // (ssrc, index)
    let mut stalls = 0;

    let mut duplicated = 0;
    let mut reordered = 0;
    let mut highest: Option<(u32, u32)> = None; // (ssrc, index)
    let mut jitter = 0.0f64;
    let mut last_transit: Option<(u32, f64)> = None;

    let mut payload = [0u8; FRAME_SAMPLES as usize];
    let mut drain = |jb: &mut JitterBuffer, now_us: u64| -> u64 {
        let mut produced = 0;
        while let Some(frame) = jb.poll_frame(at(now_us)) {
            let len = frame.pcm.len() as u64;
            output_samples += len;
            produced += len;
            match frame.kind {
                FrameKind::Received => {
                    audio_samples += len;
                    let Some(index) = index_of(frame.pcm, &table).filter(|&i| (i as usize) < n)
                    else {
                        continue;
                    };
                    let slot = &mut released_at[index as usize];
                    if slot.is_some() {
                        played_twice += 1;
                    } else {
                        *slot = Some(now_us);
                    }
                    let ssrc = trace.sent[index as usize].info.ssrc;
                    if let Some((s, i)) = last_released
                        && s == ssrc
                        && index <= i
                    {
                        out_of_order += 1;
                    }
                    last_released = Some((ssrc, index));
                }
                FrameKind::Concealed | FrameKind::ConcealedSilence | FrameKind::Recovered => {
                    concealed_samples += len
                }
                FrameKind::Gap => gap_samples += len,
            }
        }
        produced
    };

    let mut now_us = 0u64;
    let mut next = 0;
    let mut force_arrival = false;
    loop {
        let arrival = trace.arrivals.get(next).copied();
        let timeout = jb.poll_timeout().map(since);
        match (arrival, timeout) {
            (None, None) => break,
            (Some(a), t) if force_arrival || t.is_none_or(|t| a.at_us < t) => {
                force_arrival = false;
                now_us = now_us.max(a.at_us);
                next += 1;
                let p = trace.sent[a.index as usize];
                let i = a.index as usize;
                if first_arrival[i].is_some() {
                    duplicated += 1;
                } else {
                    first_arrival[i] = Some(now_us);
                    match highest {
                        Some((s, h)) if s == p.info.ssrc && a.index < h => reordered += 1,
                        Some((s, h)) if s == p.info.ssrc && a.index <= h => {}
                        _ => highest = Some((p.info.ssrc, a.index)),
                    }
                    // RFC 3550 §6.4.1 in timestamp units, per SSRC.
                    let transit = now_us as f64 * 8000.0 / 1e6 - p.info.timestamp as f64;
                    if let Some((s, last)) = last_transit
                        && s == p.info.ssrc
                    {
                        let mut d = transit - last;
                        // Timestamp wrap: bring the difference back near zero.
                        d -= (d / 4_294_967_296.0).round() * 4_294_967_296.0;
                        jitter += (d.abs() - jitter) / 16.0;
                    }
                    last_transit = Some((p.info.ssrc, transit));
                }
                payload_for(a.index, &mut payload);
                jb.insert_audio(at(now_us), p.info, &payload);
                drain(&mut jb, now_us);
            }
            (_, Some(t)) => {
                let was_buffered = jb.buffered();
                now_us = now_us.max(t);
                if drain(&mut jb, now_us) == 0 && jb.buffered() == was_buffered {
                    // The buffer asked for a poll that did nothing: step past it.
                    stalls += 1;
                    if next >= trace.arrivals.len() {
                        break;
                    }
                    force_arrival = true;
                }
            }
            (Some(_), None) => unreachable!("an arrival with no timeout pending is always taken"),
        }
    }
    // Long after the end: everything must have been resolved.
    now_us += 10_000_000;
    drain(&mut jb, now_us);
    let left_buffered = jb.buffered() as u64;

    let mut added = Vec::with_capacity(n);
    let mut first_10s = (0.0, 0u64);
    let mut last_10s = (0.0, 0u64);
    let end_us = trace.sent.last().map_or(0, |p| p.send_us);
    let mut lost = 0;
    let mut late = 0;
    for (i, p) in trace.sent.iter().enumerate() {
        match (first_arrival[i], released_at[i]) {
            (Some(a), Some(r)) => {
                let ms = r.saturating_sub(a) as f64 / 1000.0;
                added.push(ms);
                if p.send_us < 10_000_000 {
                    first_10s.0 += ms;
                    first_10s.1 += 1;
                }
                if p.send_us + 10_000_000 > end_us {
                    last_10s.0 += ms;
                    last_10s.1 += 1;
                }
            }
            (Some(_), None) => {
                late += 1;
                lost += 1;
            }
            (None, _) => lost += 1,
        }
    }
    added.sort_by(f64::total_cmp);
    let mean = |(sum, count): (f64, u64)| if count == 0 { 0.0 } else { sum / count as f64 };
    let added_mean_ms = mean((added.iter().sum(), added.len() as u64));
    let added_p95_ms = if added.is_empty() {
        0.0
    } else {
        added[((added.len() as f64 * 0.95).ceil() as usize).clamp(1, added.len()) - 1]
    };
    let recovery_packets = trace.event_index.map(|e| {
        (e as usize..n)
            .position(|i| released_at[i].is_some())
            .unwrap_or(n - e as usize) as u64
    });
    let concealable = audio_samples + concealed_samples;

    Metrics {
        name,
        sent: n as u64,
        net_lost: trace.net_lost,
        arrivals: trace.arrivals.len() as u64,
        lost,
        late,
        reordered,
        duplicated,
        played_twice,
        out_of_order,
        jitter_ms: jitter / 8.0,
        added_mean_ms,
        added_p95_ms,
        added_max_ms: added.last().copied().unwrap_or(0.0),
        added_first_10s_ms: mean(first_10s),
        added_last_10s_ms: mean(last_10s),
        concealment_ratio: if concealable == 0 {
            0.0
        } else {
            concealed_samples as f64 / concealable as f64
        },
        concealed_samples,
        gap_samples,
        output_samples,
        recovery_packets,
        stalls,
        left_buffered,
        stats: jb.stats(),
    }
}

/// The standard scenarios, 60 s each, in table order.
pub fn scenarios() -> Vec<Profile> {
    let base = Profile::clean;
    vec![
        base("clean"),
        Profile {
            loss: Loss::Bernoulli { p: 0.05 },
            seed: 11,
            ..base("loss 5% random")
        },
        Profile {
            loss: Loss::GilbertElliott {
                p_good_to_bad: 0.01,
                p_bad_to_good: 0.25,
                loss_good: 0.0,
                loss_bad: 0.8,
            },
            seed: 12,
            ..base("loss bursty (GE)")
        },
        Profile {
            jitter: Jitter::Uniform { max_ms: 40.0 },
            seed: 13,
            ..base("jitter 40ms uniform")
        },
        Profile {
            jitter: Jitter::Pareto {
                scale_ms: 10.0,
                shape: 2.5,
                cap_ms: 400.0,
            },
            seed: 14,
            ..base("jitter pareto")
        },
        Profile {
            reorder_p: 0.10,
            reorder_ms: 25.0,
            jitter: Jitter::Uniform { max_ms: 2.0 },
            seed: 25,
            ..base("reorder 10% by 25ms")
        },
        Profile {
            reorder_p: 0.01,
            reorder_ms: 25.0,
            jitter: Jitter::Uniform { max_ms: 2.0 },
            seed: 26,
            ..base("reorder 1% by 25ms")
        },
        Profile {
            reorder_p: 0.05,
            reorder_ms: 30.0,
            jitter: Jitter::Uniform { max_ms: 2.0 },
            seed: 15,
            ..base("reorder 5% by 30ms")
        },
        Profile {
            duplicate_p: 0.05,
            duplicate_ms: 60.0,
            jitter: Jitter::Uniform { max_ms: 5.0 },
            seed: 16,
            ..base("duplicate 5%")
        },
        Profile {
            drift_ppm: 100.0,
            jitter: Jitter::Uniform { max_ms: 10.0 },
            seed: 17,
            ..base("drift +100ppm")
        },
        Profile {
            drift_ppm: -100.0,
            jitter: Jitter::Uniform { max_ms: 10.0 },
            seed: 18,
            ..base("drift -100ppm")
        },
        Profile {
            spike: Some((20_000.0, 1_000.0, 200.0)),
            jitter: Jitter::Uniform { max_ms: 10.0 },
            seed: 19,
            ..base("delay spike 200ms/1s")
        },
        Profile {
            ssrc_change_at_ms: Some(30_000),
            jitter: Jitter::Uniform { max_ms: 10.0 },
            seed: 20,
            ..base("SSRC change")
        },
        Profile {
            ts_jump: Some((30_000, 8000 * 3600)),
            jitter: Jitter::Uniform { max_ms: 10.0 },
            seed: 21,
            ..base("timestamp jump +1h")
        },
        Profile {
            dtx: Some(Dtx {
                talk_ms: (400.0, 3000.0),
                silence_ms: (200.0, 2000.0),
            }),
            jitter: Jitter::Uniform { max_ms: 20.0 },
            seed: 22,
            ..base("silence suppression")
        },
        Profile {
            dtx: Some(Dtx {
                talk_ms: (400.0, 3000.0),
                silence_ms: (200.0, 2000.0),
            }),
            loss: Loss::Bernoulli { p: 0.05 },
            jitter: Jitter::Uniform { max_ms: 20.0 },
            seed: 23,
            ..base("DTX + loss 5%")
        },
        Profile {
            loss: Loss::GilbertElliott {
                p_good_to_bad: 0.02,
                p_bad_to_good: 0.3,
                loss_good: 0.005,
                loss_bad: 0.6,
            },
            jitter: Jitter::Pareto {
                scale_ms: 10.0,
                shape: 2.0,
                cap_ms: 300.0,
            },
            reorder_p: 0.02,
            reorder_ms: 40.0,
            duplicate_p: 0.02,
            duplicate_ms: 50.0,
            drift_ppm: 50.0,
            seed: 24,
            ..base("bad mobile (all)")
        },
    ]
}

/// The default buffer configuration the scenarios are measured with.
pub fn default_config() -> JitterConfig {
    JitterConfig::default()
}

/// A Markdown table of `metrics`.
pub fn table(metrics: &[Metrics]) -> String {
    let mut out = String::new();
    out.push_str(
        "| scenario | sent | net lost | lost | late | reord | dup | jitter ms | added mean ms | added p95 ms | added max ms | conceal % | gap s | target ms | resets | recovery |\n",
    );
    out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for m in metrics {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.0} | {} | {} |\n",
            m.name,
            m.sent,
            m.net_lost,
            m.lost,
            m.late,
            m.reordered,
            m.duplicated,
            m.jitter_ms,
            m.added_mean_ms,
            m.added_p95_ms,
            m.added_max_ms,
            m.concealment_ratio * 100.0,
            m.gap_samples as f64 / 8000.0,
            m.stats.target_delay_ms,
            m.stats.resets,
            m.recovery_packets
                .map_or_else(|| "-".to_string(), |r| format!("{r} pkt")),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_stream_is_contiguous_and_wraps() {
        let trace = simulate(&Profile::clean("t"));
        assert_eq!(trace.sent.len(), 3000);
        assert_eq!(trace.arrivals.len(), 3000);
        for w in trace.sent.windows(2) {
            assert_eq!(
                w[1].info.sequence_number,
                w[0].info.sequence_number.wrapping_add(1)
            );
            assert_eq!(w[1].info.timestamp, w[0].info.timestamp.wrapping_add(160));
            assert_eq!(w[1].send_us - w[0].send_us, 20_000);
        }
        assert!(trace.sent[0].info.marker);
        assert!(trace.sent[1..].iter().all(|p| !p.info.marker));
        assert!(
            trace
                .arrivals
                .iter()
                .all(|a| a.at_us == trace.sent[a.index as usize].send_us + 30_000)
        );
    }

    #[test]
    fn loss_rates_match_their_parameters() {
        let mut p = Profile::clean("t");
        p.duration_ms = 600_000;
        p.loss = Loss::Bernoulli { p: 0.05 };
        let rate = simulate(&p).net_lost as f64 / 30_000.0;
        assert!((0.045..0.055).contains(&rate), "{rate}");
        // Gilbert–Elliott: stationary P(bad) = p_gb / (p_gb + p_bg) = 0.01 / 0.26.
        p.loss = Loss::GilbertElliott {
            p_good_to_bad: 0.01,
            p_bad_to_good: 0.25,
            loss_good: 0.0,
            loss_bad: 1.0,
        };
        let rate = simulate(&p).net_lost as f64 / 30_000.0;
        assert!((0.03..0.047).contains(&rate), "{rate}");
    }

    #[test]
    fn drift_dtx_and_stream_changes_shape_the_sender() {
        let mut p = Profile::clean("t");
        p.drift_ppm = 100.0;
        let trace = simulate(&p);
        let last = trace.sent.last().unwrap().send_us as f64;
        assert!((last - 2999.0 * 20_000.0 / 1.0001).abs() < 1.0);

        let mut p = Profile::clean("t");
        p.dtx = Some(Dtx {
            talk_ms: (400.0, 1000.0),
            silence_ms: (200.0, 1000.0),
        });
        let trace = simulate(&p);
        assert!(trace.sent.len() < 2800);
        for w in trace.sent.windows(2) {
            let frames = w[1].frame - w[0].frame;
            assert_eq!(
                w[1].info.marker,
                frames > 1,
                "marker on talk-spurt starts only"
            );
            assert_eq!(
                w[1].info.timestamp.wrapping_sub(w[0].info.timestamp),
                frames * 160
            );
        }

        let mut p = Profile::clean("t");
        p.ssrc_change_at_ms = Some(30_000);
        let trace = simulate(&p);
        let e = trace.event_index.unwrap() as usize;
        assert_eq!(e, 1500);
        assert_ne!(trace.sent[e].info.ssrc, trace.sent[e - 1].info.ssrc);
        assert!(trace.sent[e].info.marker);
    }

    #[test]
    fn payload_tags_round_trip() {
        let mut table = [0i16; 127];
        for (d, v) in table.iter_mut().enumerate() {
            *v = Law::Mu.decode_sample(0x80 + d as u8);
        }
        let mut payload = [0u8; FRAME_SAMPLES as usize];
        let mut pcm = [0i16; FRAME_SAMPLES as usize];
        for index in [0, 1, 126, 127, 5000, 127 * 127 * 127 - 1] {
            payload_for(index, &mut payload);
            Law::Mu.decode(&payload, &mut pcm);
            assert_eq!(index_of(&pcm, &table), Some(index));
        }
    }
}
