//! The caller → bot jitter buffer (media.md §1.5A): a media-time reorder buffer with an
//! adaptive loss deadline.
//!
//! * Packets are keyed by extended sequence number (16-bit wrap handled) and extended
//!   timestamp (32-bit wrap handled).
//! * In-order packets are released immediately, with no added delay.
//! * A gap holds later packets until the missing one arrives or its deadline passes; then the
//!   packet is declared lost, concealed (G.711 PLC: the last 20 ms repeated with a linear fade
//!   for at most 60 ms, then silence; Opus: the frame is recovered from the next packet's
//!   in-band FEC when that packet is already buffered and carries it, else the decoder's own
//!   PLC for at most 60 ms) and playout moves on. A packet arriving after that is
//!   counted late and dropped.
//! * The deadline is NetEQ-style: the expected arrival of the missing packet (from the fastest
//!   packet of the last ~2 s) plus a target delay = 95th percentile of the relative arrival delay
//!   (histogram with forget factor 0.983 per 20 ms), clamped to 20..=200 ms, starting at 40 ms,
//!   rising at once and falling slowly.
//! * Non-audio packets of the same stream (RFC 4733 events, comfort noise, unknown payload
//!   types) are inserted as placeholders so their sequence numbers are not mistaken for loss;
//!   a timestamp gap behind them (DTX, a DTMF event) is filled with silence, not concealment.
//!   So is the part of a loss gap that is much longer than the missing packets (a packet lost at
//!   the edge of a DTX silence): only the lost packets' own duration is concealed.
//! * An SSRC change or a jump in sequence number or timestamp that cannot belong to the current
//!   stream resets it.
//! * Any packetisation (10/20/30/40 ms, changing mid-call) works: durations come from the
//!   payload length and timestamps, never from packet counts.
//!
//! Output never stalls: every gap is resolved by its deadline (or at once when the buffer is
//! full), whatever the loss pattern. Sans-IO: time is passed in; no allocation per packet once
//! the slots have been used once.

use std::time::{Duration, Instant};

use crate::codec::Codec;
use crate::g711::Law;
use crate::g722::G722Decoder;
use crate::opus::{self, OpusDecoder};

/// Number of packets the buffer can hold ahead of the playout point.
pub const CAPACITY: usize = 64;
/// How many already-played sequence numbers are remembered for duplicate detection.
const HISTORY: u64 = 1024;
/// Longest single output frame; longer payloads are truncated.
pub const MAX_FRAME_SAMPLES: usize = 1920;
/// Samples of 20 ms at 8 kHz. Fill frames (concealment, silence) are emitted in chunks of at
/// most 20 ms; the concealment history holds 20 ms of up to 16 kHz audio (twice this).
const FILL_CHUNK: usize = 160;
/// Histogram bucket width for relative arrival delay.
const BUCKET_MS: f64 = 5.0;
const BUCKETS: usize = 81; // 0..=400 ms
const MIN_WINDOWS: usize = 8;
const MIN_WINDOW_S: f64 = 0.25; // 8 × 250 ms ≈ 2 s
/// After an SSRC change, packets of the previous SSRC are dropped (not switched back to) for
/// this long.
const SSRC_STRAGGLER_WINDOW: Duration = Duration::from_millis(500);

/// Tuning of the [`JitterBuffer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JitterConfig {
    /// RTP clock rate of the audio payload (8000 for G.711; [`JitterBuffer::with_codec`] sets
    /// it from the codec: 48000 for Opus).
    pub clock_rate: u32,
    /// Target delay before any statistics exist (default 40 ms).
    pub initial_delay_ms: u32,
    /// Lower clamp of the target delay (default 40 ms: a 20 ms floor lets a packet one tick
    /// late, or reordered by one packet time, go lost; see `docs/benchmarks.md`).
    pub min_delay_ms: u32,
    /// Upper clamp of the target delay (default 200 ms).
    pub max_delay_ms: u32,
    /// Quantile of the relative arrival delay used as target (default 0.95).
    pub quantile: f64,
    /// Histogram forget factor per 20 ms of audio (default 0.983).
    pub forget_factor: f64,
    /// How long packet-loss concealment repeats audio before falling back to silence
    /// (default 60 ms).
    pub plc_max_ms: u32,
    /// Largest timestamp distance from the playout point that still belongs to the stream;
    /// timestamp gaps up to this with contiguous sequence numbers (DTX, DTMF events) are filled
    /// with silence, larger jumps reset the stream (default 3000 ms).
    pub max_gap_ms: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            clock_rate: 8000,
            initial_delay_ms: 40,
            min_delay_ms: 40,
            max_delay_ms: 200,
            quantile: 0.95,
            forget_factor: 0.983,
            plc_max_ms: 60,
            max_gap_ms: 3000,
        }
    }
}

/// Counters of the jitter buffer (W3C webrtc-stats / RFC 3550 names where they exist).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JitterStats {
    /// Audio packets handed to the buffer, including duplicates and late ones.
    pub received: u64,
    /// Sequence numbers given up on (declared lost when their deadline passed). A packet that
    /// arrives after being declared lost stays counted here and is also counted `late`.
    pub lost: u64,
    /// Audio packets that arrived after their deadline (or too old to place) and were dropped.
    pub late: u64,
    /// Audio packets that arrived after a packet with a higher sequence number (in time or not).
    pub reordered: u64,
    /// Audio packets whose sequence number had already been received; dropped.
    pub duplicate: u64,
    /// Output frames (≤ 20 ms each) synthesised for lost packets, PLC or silent.
    pub concealed_frames: u64,
    /// Samples synthesised for lost packets.
    pub concealed_samples: u64,
    /// Of `concealed_samples`, those output as silence (PLC limit exceeded).
    pub silent_concealed_samples: u64,
    /// Samples of silence inserted for timestamp gaps that were not loss (DTX, DTMF events).
    pub gap_samples: u64,
    /// Audio samples released from received packets.
    pub played_samples: u64,
    /// Stream resets (SSRC change, sequence or timestamp jump).
    pub resets: u64,
    /// Buffered packets thrown away by a reset.
    pub discarded: u64,
    /// RFC 3550 §6.4.1 interarrival jitter, in timestamp units.
    pub interarrival_jitter: f64,
    /// Current loss deadline (target delay), in milliseconds.
    pub target_delay_ms: f64,
    /// Lost frames recovered from the next packet's in-band FEC (Opus LBRR) instead of being
    /// concealed. Each is also counted in `lost`.
    pub fec_recovered: u64,
    /// Of `concealed_frames`, those synthesised by the codec's own PLC (Opus).
    pub codec_plc_frames: u64,
    /// Audio packets whose payload the decoder rejected (concealed in their place).
    pub decode_errors: u64,
    /// RTP clock rate the timestamp-unit counters are in (8000, or 48000 for Opus).
    pub clock_rate: u32,
}

/// What happened to an inserted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored (or released at the next poll).
    Accepted,
    /// Stored as the first packet of a new stream (first packet, SSRC change or jump).
    Reset,
    /// Dropped: already received.
    Duplicate,
    /// Dropped: its deadline had passed or it is too old.
    Late,
}

/// The RTP header fields the buffer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInfo {
    /// RTP sequence number.
    pub sequence_number: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// RTP synchronisation source.
    pub ssrc: u32,
    /// RTP marker bit (talk-spurt start for audio).
    pub marker: bool,
}

/// What an output frame contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Decoded audio of a received packet.
    Received,
    /// Packet-loss concealment (faded repetition of recent audio).
    Concealed,
    /// Silence in place of lost audio, after the PLC limit.
    ConcealedSilence,
    /// Silence for a timestamp gap that is not loss (DTX, DTMF event on the same stream).
    Gap,
    /// A lost frame recovered from the next packet's in-band FEC (Opus).
    Recovered,
}

/// One frame of PCM released by the buffer, in media order: 8 kHz for G.711, 16 kHz for
/// G.722 and Opus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterFrame<'a> {
    /// Where the audio came from.
    pub kind: FrameKind,
    /// The samples (any length up to [`MAX_FRAME_SAMPLES`] 8 kHz timestamp units' worth).
    pub pcm: &'a [i16],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotKind {
    Empty,
    Audio,
    Placeholder,
}

#[derive(Debug)]
struct Slot {
    kind: SlotKind,
    ext_seq: u64,
    ext_ts: i64,
    payload: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FillKind {
    Lost,
    Gap,
}

#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    next_seq: u64,
    next_ts: i64,
    highest_seq: u64,
    ts_ref: i64,
    epoch: Instant,
    epoch_ts: i64,
    last_transit: Option<f64>,
}

/// Relative-arrival-delay statistics → target delay (NetEQ DelayManager, simplified).
#[derive(Debug, Clone)]
struct DelayEstimator {
    histogram: [f64; BUCKETS],
    updates: u64,
    target_ms: f64,
    window_mins: [f64; MIN_WINDOWS],
    window_index: Option<i64>,
}

impl DelayEstimator {
    fn new(initial_ms: f64) -> Self {
        Self {
            histogram: [0.0; BUCKETS],
            updates: 0,
            target_ms: initial_ms,
            window_mins: [f64::INFINITY; MIN_WINDOWS],
            window_index: None,
        }
    }

    /// Forget the arrival-time reference (new stream), keep the network statistics.
    fn restart_window(&mut self) {
        self.window_mins = [f64::INFINITY; MIN_WINDOWS];
        self.window_index = None;
    }

    fn min_delay(&self) -> f64 {
        self.window_mins
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
    }

    /// `arrival_s`: arrival time since the stream epoch; `delay_s`: arrival minus media time.
    fn update(&mut self, arrival_s: f64, delay_s: f64, packet_ms: f64, config: &JitterConfig) {
        let index = (arrival_s / MIN_WINDOW_S).floor() as i64;
        match self.window_index {
            Some(current) if index > current => {
                let steps = (index - current).min(MIN_WINDOWS as i64);
                for k in 1..=steps {
                    self.window_mins[((current + k).rem_euclid(MIN_WINDOWS as i64)) as usize] =
                        f64::INFINITY;
                }
                self.window_index = Some(index);
            }
            None => self.window_index = Some(index),
            _ => {}
        }
        let slot = index.rem_euclid(MIN_WINDOWS as i64) as usize;
        self.window_mins[slot] = self.window_mins[slot].min(delay_s);
        let relative_ms = ((delay_s - self.min_delay()) * 1000.0).max(0.0);

        let scale = (packet_ms / 20.0).clamp(0.25, 4.0);
        let mut forget = config.forget_factor.powf(scale);
        // Start-up: converge fast (NetEQ start_forget_weight = 2).
        forget = forget.min(1.0 - 2.0 / (self.updates as f64 + 2.0));
        self.updates += 1;
        for h in &mut self.histogram {
            *h *= forget;
        }
        let bucket = ((relative_ms / BUCKET_MS) as usize).min(BUCKETS - 1);
        self.histogram[bucket] += 1.0 - forget;

        let total: f64 = self.histogram.iter().sum();
        let mut cumulative = 0.0;
        let mut quantile_ms = (BUCKETS as f64) * BUCKET_MS;
        for (i, h) in self.histogram.iter().enumerate() {
            cumulative += h;
            if cumulative >= config.quantile * total {
                quantile_ms = (i as f64 + 1.0) * BUCKET_MS;
                break;
            }
        }
        let quantile_ms = quantile_ms.clamp(config.min_delay_ms as f64, config.max_delay_ms as f64);
        if quantile_ms >= self.target_ms {
            self.target_ms = quantile_ms; // fast rise
        } else {
            // Slow fall: time constant ≈ 1 s of packets.
            self.target_ms += (quantile_ms - self.target_ms) * (0.02 * scale);
        }
        self.target_ms = self
            .target_ms
            .clamp(config.min_delay_ms as f64, config.max_delay_ms as f64);
    }
}

/// Reorder buffer with adaptive loss deadline and concealment; see the module docs.
#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    decoder: Decoder,
    /// Rate of the decoded audio (8000 for G.711, 16000 for G.722 and Opus).
    sample_rate: u32,
    slots: Vec<Slot>,
    buffered: usize,
    stream: Option<Stream>,
    history: [u64; (HISTORY / 64) as usize],
    delay: DelayEstimator,
    stats: JitterStats,
    pcm: Vec<i16>,
    fill: Option<(FillKind, usize)>,
    loss_run_samples: usize,
    /// The last 20 ms of received audio (the first `sample_rate / 50` samples are used).
    recent: [i16; 2 * FILL_CHUNK],
    recent_len: usize,
    last_frame_samples: usize,
    previous_ssrc: Option<(u32, Instant)>,
}

impl JitterBuffer {
    /// Creates an empty buffer decoding G.711 with `law`.
    pub fn new(config: JitterConfig, law: Law) -> Self {
        Self::with_codec(config, Codec::G711(law))
    }

    /// Creates an empty buffer decoding `codec`. Timestamps, delays and the sample counters
    /// of [`JitterStats`] are in RTP timestamp units (`config.clock_rate` is replaced by the
    /// codec's clock: 8 kHz, 48 kHz for Opus); the released PCM is at the codec's rate
    /// ([`Codec::sample_rate`]).
    ///
    /// Panics only if libopus cannot allocate an Opus decoder (out of memory).
    pub fn with_codec(mut config: JitterConfig, codec: Codec) -> Self {
        config.clock_rate = codec.clock_rate();
        let slots = (0..CAPACITY)
            .map(|_| Slot {
                kind: SlotKind::Empty,
                ext_seq: 0,
                ext_ts: 0,
                payload: Vec::new(),
            })
            .collect();
        Self {
            delay: DelayEstimator::new(config.initial_delay_ms as f64),
            config,
            decoder: match codec {
                Codec::G711(law) => Decoder::G711(law),
                Codec::G722 => Decoder::G722(Box::default()),
                Codec::Opus => Decoder::Opus(Box::new(
                    OpusDecoder::new().expect("libopus creates a 16 kHz mono decoder"),
                )),
            },
            sample_rate: codec.sample_rate(),
            slots,
            buffered: 0,
            stream: None,
            history: [0; (HISTORY / 64) as usize],
            stats: JitterStats {
                target_delay_ms: config.initial_delay_ms as f64,
                clock_rate: config.clock_rate,
                ..JitterStats::default()
            },
            pcm: vec![0; 2 * MAX_FRAME_SAMPLES],
            fill: None,
            loss_run_samples: 0,
            recent: [0; 2 * FILL_CHUNK],
            recent_len: 0,
            last_frame_samples: codec.frame_units() as usize,
            previous_ssrc: None,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> JitterStats {
        let mut stats = self.stats;
        stats.target_delay_ms = self.delay.target_ms;
        stats
    }

    /// SSRC of the stream being played, once a packet has arrived.
    pub fn ssrc(&self) -> Option<u32> {
        self.stream.map(|s| s.ssrc)
    }

    /// RFC 3550 extended highest sequence number received of the current stream (cycles << 16
    /// | highest sequence number, counted from its first packet), once a packet has arrived.
    pub fn extended_highest_sequence(&self) -> Option<u32> {
        self.stream.map(|s| s.highest_seq as u32)
    }

    /// Number of packets held waiting for a gap to resolve.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Inserts a received audio packet (payload = G.711, G.722 or Opus bytes).
    pub fn insert_audio(
        &mut self,
        now: Instant,
        info: PacketInfo,
        payload: &[u8],
    ) -> InsertOutcome {
        self.insert(now, info, Some(payload))
    }

    /// Inserts a non-audio packet of the same RTP stream (RFC 4733 event, comfort noise,
    /// unknown payload type) so that its sequence number is not taken for a loss. A placeholder
    /// with another SSRC than the current stream is ignored (returns `Late`); it never resets.
    pub fn insert_placeholder(&mut self, now: Instant, info: PacketInfo) -> InsertOutcome {
        match self.stream {
            Some(s) if s.ssrc == info.ssrc => self.insert(now, info, None),
            _ => InsertOutcome::Late,
        }
    }

    fn insert(&mut self, now: Instant, info: PacketInfo, payload: Option<&[u8]>) -> InsertOutcome {
        let is_audio = payload.is_some();
        if is_audio {
            self.stats.received += 1;
        }
        let Some(stream) = self.stream else {
            self.start_stream(now, info);
            self.store(
                info,
                payload,
                (1u64 << 32) | info.sequence_number as u64,
                ts_base(info.timestamp),
            );
            self.update_arrival_stats(now, ts_base(info.timestamp), payload);
            return InsertOutcome::Reset;
        };
        if stream.ssrc != info.ssrc {
            if let Some((old, switched_at)) = self.previous_ssrc
                && old == info.ssrc
                && now < switched_at + SSRC_STRAGGLER_WINDOW
            {
                // A straggler of the stream we just left: do not switch back.
                if is_audio {
                    self.stats.late += 1;
                }
                return InsertOutcome::Late;
            }
            self.previous_ssrc = Some((stream.ssrc, now));
            return self.reset_and_store(now, info, payload);
        }
        let ext_seq = extend_seq(info.sequence_number, stream.highest_seq);
        let ext_ts = extend_ts(info.timestamp, stream.ts_ref);
        let seq_delta = ext_seq as i64 - stream.next_seq as i64;
        let ts_delta = ext_ts - stream.next_ts;
        let max_gap = self.samples(self.config.max_gap_ms) as i64;
        let seq_jump = seq_delta >= CAPACITY as i64 || seq_delta < -(HISTORY as i64);
        let ts_jump = is_audio && seq_delta >= 0 && (ts_delta > max_gap || ts_delta < -max_gap);
        if seq_jump || ts_jump {
            return self.reset_and_store(now, info, payload);
        }
        if seq_delta < 0 {
            // Behind the playout point: a duplicate of something played, or too late.
            if is_audio {
                if self.history_get(ext_seq) {
                    self.stats.duplicate += 1;
                    return InsertOutcome::Duplicate;
                }
                self.stats.late += 1;
                self.stats.reordered += 1;
                self.update_arrival_stats(now, ext_ts, payload);
            }
            return InsertOutcome::Late;
        }
        let slot = &self.slots[(ext_seq % CAPACITY as u64) as usize];
        if slot.kind != SlotKind::Empty && slot.ext_seq == ext_seq {
            if is_audio {
                self.stats.duplicate += 1;
            }
            return InsertOutcome::Duplicate;
        }
        if is_audio && ext_seq < stream.highest_seq {
            self.stats.reordered += 1;
        }
        self.store(info, payload, ext_seq, ext_ts);
        self.update_arrival_stats(now, ext_ts, payload);
        InsertOutcome::Accepted
    }

    fn start_stream(&mut self, now: Instant, info: PacketInfo) {
        let ext_seq = (1u64 << 32) | info.sequence_number as u64;
        let ext_ts = ts_base(info.timestamp);
        self.stream = Some(Stream {
            ssrc: info.ssrc,
            next_seq: ext_seq,
            next_ts: ext_ts,
            highest_seq: ext_seq,
            ts_ref: ext_ts,
            epoch: now,
            epoch_ts: ext_ts,
            last_transit: None,
        });
        self.history = [0; (HISTORY / 64) as usize];
        self.delay.restart_window();
    }

    fn reset_and_store(
        &mut self,
        now: Instant,
        info: PacketInfo,
        payload: Option<&[u8]>,
    ) -> InsertOutcome {
        self.stats.resets += 1;
        self.stats.discarded += self.buffered as u64;
        for slot in &mut self.slots {
            slot.kind = SlotKind::Empty;
        }
        self.buffered = 0;
        self.fill = None;
        self.start_stream(now, info);
        let ext_ts = ts_base(info.timestamp);
        self.store(
            info,
            payload,
            (1u64 << 32) | info.sequence_number as u64,
            ext_ts,
        );
        self.update_arrival_stats(now, ext_ts, payload);
        InsertOutcome::Reset
    }

    fn store(&mut self, _info: PacketInfo, payload: Option<&[u8]>, ext_seq: u64, ext_ts: i64) {
        let slot = &mut self.slots[(ext_seq % CAPACITY as u64) as usize];
        slot.ext_seq = ext_seq;
        slot.ext_ts = ext_ts;
        slot.payload.clear();
        match payload {
            Some(bytes) => {
                slot.kind = SlotKind::Audio;
                let n = bytes.len().min(MAX_FRAME_SAMPLES);
                slot.payload.extend_from_slice(&bytes[..n]);
            }
            None => slot.kind = SlotKind::Placeholder,
        }
        self.buffered += 1;
        if let Some(stream) = &mut self.stream
            && ext_seq > stream.highest_seq
        {
            stream.highest_seq = ext_seq;
            stream.ts_ref = ext_ts;
        }
    }

    fn update_arrival_stats(&mut self, now: Instant, ext_ts: i64, payload: Option<&[u8]>) {
        let Some(payload) = payload else { return };
        let units = self.payload_units(payload);
        let Some(stream) = &mut self.stream else {
            return;
        };
        let rate = self.config.clock_rate.max(1) as f64;
        let arrival_s = now.saturating_duration_since(stream.epoch).as_secs_f64();
        let media_s = (ext_ts - stream.epoch_ts) as f64 / rate;
        // RFC 3550 interarrival jitter, in timestamp units.
        let transit = arrival_s * rate - (ext_ts - stream.epoch_ts) as f64;
        if let Some(last) = stream.last_transit {
            let d = (transit - last).abs();
            self.stats.interarrival_jitter += (d - self.stats.interarrival_jitter) / 16.0;
        }
        stream.last_transit = Some(transit);
        let packet_ms = if units == 0 {
            20.0
        } else {
            units as f64 * 1000.0 / rate
        };
        self.delay
            .update(arrival_s, arrival_s - media_s, packet_ms, &self.config);
    }

    /// Timestamp units in `ms` milliseconds.
    fn samples(&self, ms: u32) -> usize {
        (ms as u64 * self.config.clock_rate as u64 / 1000) as usize
    }

    /// Decoded samples for `units` timestamp units.
    fn units_to_samples(&self, units: usize) -> usize {
        (units as u64 * self.sample_rate as u64 / self.config.clock_rate.max(1) as u64) as usize
    }

    /// Timestamp units for `samples` decoded samples.
    fn samples_to_units(&self, samples: usize) -> usize {
        (samples as u64 * self.config.clock_rate as u64 / self.sample_rate.max(1) as u64) as usize
    }

    /// Duration of an audio payload in timestamp units (0 when unknown): one byte per unit
    /// for G.711 and G.722 (64 kbit/s), the TOC's duration for Opus.
    fn payload_units(&self, payload: &[u8]) -> usize {
        match self.decoder {
            Decoder::G711(_) | Decoder::G722(_) => payload.len(),
            Decoder::Opus(_) => opus::packet_duration_units(payload).map_or(0, |u| u as usize),
        }
    }

    /// When the current gap will be given up on, if the buffer is waiting on one.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let stream = self.stream?;
        if self.fill.is_some() {
            return Some(stream.epoch);
        }
        if self.buffered == 0 {
            return None;
        }
        let next = &self.slots[(stream.next_seq % CAPACITY as u64) as usize];
        if next.kind != SlotKind::Empty && next.ext_seq == stream.next_seq {
            return Some(stream.epoch);
        }
        Some(self.gap_deadline(&stream))
    }

    fn gap_deadline(&self, stream: &Stream) -> Instant {
        let rate = self.config.clock_rate.max(1) as f64;
        let min_delay = self.delay.min_delay();
        let min_delay = if min_delay.is_finite() {
            min_delay
        } else {
            0.0
        };
        let media_s = (stream.next_ts - stream.epoch_ts) as f64 / rate;
        let deadline_s = media_s + min_delay + self.delay.target_ms / 1000.0;
        if deadline_s <= 0.0 {
            stream.epoch
        } else {
            stream.epoch + Duration::from_secs_f64(deadline_s.min(1.0e6))
        }
    }

    /// Releases the next frame if one is due at `now`: in-order audio at once, concealment for
    /// a gap whose deadline has passed, silence for a non-loss timestamp gap. Call repeatedly
    /// until it returns `None`.
    pub fn poll_frame(&mut self, now: Instant) -> Option<JitterFrame<'_>> {
        loop {
            if let Some((kind, remaining)) = self.fill {
                let n = remaining.min(self.samples(20));
                let frame_kind = self.synthesise(kind, n);
                self.fill = if remaining > n {
                    Some((kind, remaining - n))
                } else {
                    None
                };
                let len = self.units_to_samples(n);
                return Some(JitterFrame {
                    kind: frame_kind,
                    pcm: &self.pcm[..len],
                });
            }
            let mut stream = self.stream?;
            let index = (stream.next_seq % CAPACITY as u64) as usize;
            let slot = &self.slots[index];
            if slot.kind != SlotKind::Empty && slot.ext_seq == stream.next_seq {
                let gap = slot.ext_ts - stream.next_ts;
                if gap > 0 {
                    // Contiguous sequence but later timestamp: DTX or an event on this stream.
                    stream.next_ts = slot.ext_ts;
                    self.stream = Some(stream);
                    self.stats.gap_samples += gap as u64;
                    self.fill = Some((FillKind::Gap, gap as usize));
                    continue;
                }
                let kind = slot.kind;
                let ext_ts = slot.ext_ts;
                self.slots[index].kind = SlotKind::Empty;
                self.buffered -= 1;
                self.history_set(stream.next_seq, true);
                stream.next_seq += 1;
                if kind == SlotKind::Placeholder {
                    stream.next_ts = stream.next_ts.max(ext_ts);
                    self.stream = Some(stream);
                    continue;
                }
                let payload = &self.slots[index].payload;
                let decoded = match &mut self.decoder {
                    Decoder::G711(law) => Some(law.decode(payload, &mut self.pcm)),
                    Decoder::G722(decoder) => Some(decoder.decode(payload, &mut self.pcm)),
                    Decoder::Opus(decoder) => decoder
                        .decode(payload, &mut self.pcm[..opus::MAX_PACKET_SAMPLES])
                        .ok(),
                };
                let Some(decoded) = decoded else {
                    // A payload the decoder rejects: conceal one packet's worth in its place.
                    self.stats.decode_errors += 1;
                    let units = self.last_frame_samples;
                    stream.next_ts = stream.next_ts.max(ext_ts + units as i64);
                    self.stream = Some(stream);
                    self.fill = Some((FillKind::Lost, units));
                    continue;
                };
                let n = self.samples_to_units(decoded);
                stream.next_ts = stream.next_ts.max(ext_ts + n as i64);
                self.stream = Some(stream);
                self.remember(decoded);
                self.loss_run_samples = 0;
                if n > 0 {
                    self.last_frame_samples = n;
                }
                self.stats.played_samples += n as u64;
                return Some(JitterFrame {
                    kind: FrameKind::Received,
                    pcm: &self.pcm[..decoded],
                });
            }
            if self.buffered == 0 || now < self.gap_deadline(&stream) {
                return None;
            }
            // Give up on the missing packet: find the first buffered one to size the gap.
            let mut first = None;
            for seq in stream.next_seq + 1..stream.next_seq + CAPACITY as u64 {
                let s = &self.slots[(seq % CAPACITY as u64) as usize];
                if s.kind != SlotKind::Empty && s.ext_seq == seq {
                    first = Some((seq, s.ext_ts));
                    break;
                }
            }
            let Some((first_seq, first_ts)) = first else {
                // Inconsistent count; cannot happen, but never stall on it.
                self.buffered = 0;
                return None;
            };
            let missing = (first_seq - stream.next_seq) as i64;
            let span = first_ts - stream.next_ts;
            let packet = self.last_frame_samples as i64;
            let per_packet = if span <= 0 {
                0
            } else if span > self.samples(self.config.max_gap_ms) as i64 {
                packet
            } else if span / missing > 2 * packet {
                // Far more media time than the missing packets can hold: they were lost at the
                // edge of a silence (DTX). Conceal one packet's worth each and leave the rest to
                // the gap fill, so silence is not counted (or synthesised) as loss.
                packet
            } else {
                span / missing
            };
            self.stats.lost += 1;
            self.history_set(stream.next_seq, false);
            stream.next_seq += 1;
            stream.next_ts += per_packet;
            self.stream = Some(stream);
            if per_packet > 0 {
                if let Some(n) = self.recover_with_fec(stream.next_seq, per_packet as usize) {
                    self.remember(n);
                    self.loss_run_samples = 0;
                    return Some(JitterFrame {
                        kind: FrameKind::Recovered,
                        pcm: &self.pcm[..n],
                    });
                }
                self.fill = Some((FillKind::Lost, per_packet as usize));
            }
        }
    }

    /// Recovers the lost frame of `units` timestamp units before sequence number `next_seq`
    /// from that packet's in-band FEC into `self.pcm`, if the packet is buffered, is Opus and
    /// carries FEC; returns the samples written.
    fn recover_with_fec(&mut self, next_seq: u64, units: usize) -> Option<usize> {
        let n = self.units_to_samples(units);
        let Decoder::Opus(decoder) = &mut self.decoder else {
            return None;
        };
        let slot = &self.slots[(next_seq % CAPACITY as u64) as usize];
        if slot.kind != SlotKind::Audio
            || slot.ext_seq != next_seq
            || n > opus::MAX_PACKET_SAMPLES
            || !opus::has_inband_fec(&slot.payload)
        {
            return None;
        }
        let recovered = decoder.decode_fec(&slot.payload, &mut self.pcm[..n]).ok()?;
        self.stats.fec_recovered += 1;
        Some(recovered)
    }

    /// Writes `units` timestamp units of fill into `self.pcm` and returns their kind.
    fn synthesise(&mut self, kind: FillKind, units: usize) -> FrameKind {
        let n = self.units_to_samples(units);
        let cap = self.sample_rate as usize / 50;
        match kind {
            FillKind::Gap => {
                self.pcm[..n].fill(0);
                FrameKind::Gap
            }
            FillKind::Lost => {
                let plc_max = self.config.plc_max_ms as usize * self.sample_rate as usize / 1000;
                let start = self.loss_run_samples;
                let (audible, silent) = match &mut self.decoder {
                    Decoder::Opus(decoder) => {
                        // The codec's PLC continues the signal and fades it itself.
                        let audible_len = plc_max.saturating_sub(start).min(n);
                        if audible_len > 0 {
                            let len = opus::round_up_to_granule(audible_len).min(self.pcm.len());
                            if decoder.conceal(&mut self.pcm[..len]).is_ok() {
                                self.stats.codec_plc_frames += 1;
                            } else {
                                self.pcm[..audible_len].fill(0);
                            }
                        }
                        self.pcm[audible_len..n].fill(0);
                        (audible_len > 0, n - audible_len)
                    }
                    Decoder::G711(_) | Decoder::G722(_) => {
                        let mut audible = false;
                        for i in 0..n {
                            let k = start + i;
                            let sample = if k < plc_max && self.recent_len > 0 {
                                let source =
                                    self.recent[cap - self.recent_len + k % self.recent_len];
                                let gain = 1.0 - k as f32 / plc_max as f32;
                                (source as f32 * gain) as i16
                            } else {
                                0
                            };
                            audible |= k < plc_max && self.recent_len > 0;
                            self.pcm[i] = sample;
                        }
                        let silent = if start >= plc_max || self.recent_len == 0 {
                            n
                        } else {
                            (start + n).saturating_sub(plc_max)
                        };
                        (audible, silent)
                    }
                };
                self.loss_run_samples += n;
                self.stats.concealed_frames += 1;
                self.stats.concealed_samples += units as u64;
                self.stats.silent_concealed_samples += self.samples_to_units(silent) as u64;
                if audible {
                    FrameKind::Concealed
                } else {
                    FrameKind::ConcealedSilence
                }
            }
        }
    }

    /// Keeps the last 20 ms of received audio (`n` samples just decoded) for concealment.
    fn remember(&mut self, n: usize) {
        let cap = self.sample_rate as usize / 50;
        let recent = &mut self.recent[..cap];
        if n >= cap {
            recent.copy_from_slice(&self.pcm[n - cap..n]);
            self.recent_len = cap;
        } else if n > 0 {
            recent.copy_within(n.., 0);
            recent[cap - n..].copy_from_slice(&self.pcm[..n]);
            self.recent_len = (self.recent_len + n).min(cap);
        }
    }

    fn history_set(&mut self, ext_seq: u64, received: bool) {
        let bit = ext_seq % HISTORY;
        let word = &mut self.history[(bit / 64) as usize];
        if received {
            *word |= 1 << (bit % 64);
        } else {
            *word &= !(1 << (bit % 64));
        }
    }

    fn history_get(&self, ext_seq: u64) -> bool {
        let bit = ext_seq % HISTORY;
        self.history[(bit / 64) as usize] & (1 << (bit % 64)) != 0
    }
}

/// The payload decoder of a [`JitterBuffer`].
#[derive(Debug)]
enum Decoder {
    G711(Law),
    G722(Box<G722Decoder>),
    Opus(Box<OpusDecoder>),
}

fn ts_base(ts: u32) -> i64 {
    (1i64 << 40) + ts as i64
}

fn extend_seq(seq: u16, reference: u64) -> u64 {
    let delta = seq.wrapping_sub(reference as u16) as i16 as i64;
    (reference as i64 + delta).max(0) as u64
}

fn extend_ts(ts: u32, reference: i64) -> i64 {
    let delta = ts.wrapping_sub(reference as u32) as i32 as i64;
    reference + delta
}

#[cfg(test)]
mod tests;
