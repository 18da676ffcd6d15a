//! The sans-IO media session: one per call, driven with packets and the current time.
//!
//! Inbound: RTP → (audio payload type) [`JitterBuffer`] → G.711 decode → 8→16 kHz
//! [`FrameResampler`] → [`Vad`] → [`SpeechDetector`] (G.722 and Opus: decode to 16 kHz, which
//! the VAD takes as it is; a 16→8 kHz resampler makes the narrowband frame that recording, bridging
//! and the barge-in level checks use); the telephone-event payload type →
//! [`DtmfReceiver`]. Outbound: one RTP packet every 20 ms on a fixed schedule
//! (`start + n × 20 ms`, never drifting), carrying the next [`PlayoutQueue`] frame or silence
//! (silence is still sent so that symmetric RTP keeps NAT bindings open). Playback is 8 kHz
//! PCM; a G.722 call upsamples each frame to 16 kHz and encodes it (160 bytes per 20 ms, RTP
//! timestamp still += 160), an Opus call does the same with [`OpusEncoder`] (variable-size
//! packets, RTP timestamp += 960 on the 48 kHz clock). Caller speech lasting
//! `barge_in.min_speech_ms` while an interruptible item plays flushes it in the same step.
//! With [`SessionConfig::utterances`] on, each speech segment's 16 kHz audio is handed to the
//! call as a [`MediaEvent::Utterance`] (for speech-to-text) right after `SpeechStopped`.
//!
//! The session never reads the clock or touches sockets: call [`MediaSession::handle_rtp`] for
//! each datagram, [`MediaSession::handle_timeout`] when [`MediaSession::poll_timeout`] is due,
//! then drain [`MediaSession::poll_transmit`] and [`MediaSession::poll_event`].
//!
//! With [`SessionConfig::srtp`] set (SDES-keyed SRTP, RFC 3711), every outbound packet is
//! protected before it is queued for `poll_transmit`, and every inbound datagram is
//! authenticated, replay-checked and decrypted before it is parsed; one that fails is dropped
//! and counted in [`MediaStats::srtp_failures`].
//!
//! RTCP ([`crate::rtcp`]): every [`SessionConfig::rtcp_interval`] (randomised) the session
//! writes a compound report — SR when it sent RTP since the previous one, else RR, with a
//! report block about the peer's stream from the jitter buffer's counters, and our CNAME —
//! for [`MediaSession::poll_transmit_rtcp`], addressed to the peer's RTP port + 1 (no
//! `a=rtcp-mux` or `a=rtcp:` is negotiated). The peer's reports, arriving on our RTCP port
//! ([`MediaSession::handle_rtcp`]) or multiplexed on the RTP port, give the round-trip time and
//! its view of our stream ([`MediaStats::rtcp`]); [`MediaStats::mos`] rates the call. With
//! SRTP both directions are SRTCP.
//!
//! DTMF out ([`MediaSession::send_dtmf`], RFC 4733): while digits are queued, the paced sender
//! puts a telephone-event packet (or, between two digits, audio silence) in place of the next
//! audio frame; see [`DtmfSender`] for the packet pattern. Playback pauses meanwhile — no
//! queued audio is skipped — and resumes after the last digit's end packets, with a marker
//! bit and a timestamp that counted the frames the digits took. Event packets use the audio
//! stream's SSRC and sequence numbers and go through SRTP like the audio. When every queued
//! digit has gone out the call gets [`MediaEvent::DtmfSent`].
//!
//! Bridging ([`MediaSession::start_bridge`], see [`crate::bridge`]): the session's received
//! audio leaves as 20 ms frames ([`MediaSession::take_bridge_frame`]) and its outbound stream
//! carries another session's frames ([`MediaSession::push_bridge_frame`]) instead of its
//! playback queue, which is held until [`MediaSession::end_bridge`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bridge::{BridgeFrame, BridgeState, UnbridgeReason};
use crate::codec::Codec;
use crate::dtmf::{
    DtmfError, DtmfFrame, DtmfReceiver, DtmfSender, DtmfSenderConfig, TelephoneEvent,
};
use crate::error::MediaError;
use crate::g711::Law;
use crate::g722::G722Encoder;
use crate::jitter::{JitterBuffer, JitterConfig, JitterStats, PacketInfo};
use crate::opus::OpusEncoder;
use crate::packet::{PacketError, RTP_HEADER_LEN, parse_rtp, write_rtp_header};
use crate::playout::{FRAME_SAMPLES, PlayoutEvent, PlayoutQueue};
use crate::recorder::Recorder;
use crate::resample::FrameResampler;
use crate::rtcp::{
    DEFAULT_RTCP_INTERVAL, MAX_REPORT_LEN, ReceptionSnapshot, RtcpSession, RtcpStats,
    SenderSnapshot,
};
use crate::srtp::{MAX_AUTH_TAG_LEN, SrtpKeys, SrtpSession};
use crate::utterance::{AudioHistory, SAMPLES_PER_MS, UtteranceCollector, UtteranceLimits};
use crate::vad::{SpeechDetector, SpeechEvent, Vad, VadConfig};

/// Packet interval of the outbound stream.
pub const PTIME: Duration = Duration::from_millis(20);
/// If the driver falls further behind than this, missed ticks are skipped (the RTP timestamp
/// jumps accordingly) instead of being sent in a burst.
const MAX_CATCH_UP: Duration = Duration::from_millis(60);
/// Outbound packets the session can hold before the driver collects them.
const TX_SLOTS: usize = 4;
/// A 20 ms G.711 or G.722 packet; Opus packets are at most this long too.
const TX_PACKET_LEN: usize = RTP_HEADER_LEN + FRAME_SAMPLES;
/// Room for one outbound packet, SRTP authentication tag included.
const TX_SLOT_LEN: usize = TX_PACKET_LEN + MAX_AUTH_TAG_LEN;

/// Barge-in policy: caller speech interrupting an interruptible playback item.
///
/// Two steps, so that the agent falls silent at once without being cut off by every click:
/// a caller frame at least `hold_rms` loud *holds* the playback (silence goes out, nothing is
/// skipped); speech confirmed within `min_speech_ms + HOLD_GRACE_MS` of media time *flushes* it
/// (barge-in), otherwise it resumes where it stopped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BargeInConfig {
    /// Whether caller speech may interrupt playback at all.
    pub enabled: bool,
    /// How long the caller must have been speaking before playback is cut (default 200 ms):
    /// either a run of frames with speech probability at least `threshold`, or speech the
    /// detector has declared lasting this long.
    pub min_speech_ms: u32,
    /// Speech probability that counts a frame towards `min_speech_ms` (default 0.5).
    pub threshold: f32,
    /// RMS level of one 20 ms caller frame (linear, 16-bit scale) that holds interruptible
    /// playback while speech is confirmed (default 500, about −36 dBFS); 0 disables the hold.
    pub hold_rms: u16,
}

/// How long past `min_speech_ms` a hold waits for confirmed speech before playback resumes.
pub const HOLD_GRACE_MS: u32 = 300;
/// After a hold that was not speech, no new hold for this long (ms of caller audio).
const HOLD_REFRACTORY_MS: u64 = 1000;
/// A frame must be this many times (+12 dB) louder than the caller's background to hold.
const HOLD_ABOVE_NOISE: f64 = 4.0;
/// Holds that were not speech, in a row, after which holding stops until a real barge-in.
const MAX_FALSE_HOLDS: u32 = 3;

impl Default for BargeInConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_speech_ms: 200,
            threshold: 0.5,
            hold_rms: 500,
        }
    }
}

/// Per-call media parameters, mostly from the SDP offer/answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// The negotiated audio codec.
    pub codec: Codec,
    /// RTP payload type of the audio codec (0 for PCMU, 8 for PCMA, 9 for G.722, the
    /// negotiated dynamic one for Opus).
    pub payload_type: u8,
    /// Negotiated `telephone-event` payload type, if any (Twilio 101, Exotel/sipp 96). Also
    /// the payload type of the DTMF we send; without it [`MediaSession::send_dtmf`] fails.
    pub dtmf_payload_type: Option<u8>,
    /// Tone length, pause and volume of the DTMF we send (defaults: 160 ms, 60 ms, −10 dBm0).
    pub dtmf_sender: DtmfSenderConfig,
    /// Where to send RTP (from the SDP `c=`/`m=` lines). `None`: latch to the source of the
    /// first valid RTP packet (once).
    pub remote: Option<SocketAddr>,
    /// Our outbound SSRC.
    pub ssrc: u32,
    /// Networks RTP is accepted from (the trunk's media ranges); empty accepts any source.
    /// Packets from elsewhere are dropped and counted, and never latched to: a third party
    /// that guesses the port cannot inject or hijack audio.
    pub accept_from: Vec<ipnet::IpNet>,
    /// Report [`MediaEvent::RtpTimeout`] after this long without any RTP (default 30 s).
    pub rtp_timeout: Duration,
    /// Speech detection thresholds.
    pub vad: VadConfig,
    /// Barge-in policy.
    pub barge_in: BargeInConfig,
    /// Jitter buffer tuning.
    pub jitter: JitterConfig,
    /// How much decoded 16 kHz caller audio to keep for [`MediaSession::drain_caller_audio`]
    /// (0 = none; default 0).
    pub caller_audio_ms: u32,
    /// Deliver the caller's audio of each speech segment as [`MediaEvent::Utterance`]
    /// (default false).
    pub utterances: bool,
    /// Audio before the speech onset included in an utterance (default 300 ms; at most 5 s).
    pub utterance_preroll_ms: u32,
    /// Silence after the end of speech included in an utterance (default 300 ms; never more
    /// than the VAD hangover that ended the segment).
    pub utterance_tail_ms: u32,
    /// Longest utterance (default 30 000 ms; clamped to 100 ms..=600 s): longer speech is
    /// delivered in consecutive pieces of at most this length.
    pub max_utterance_ms: u32,
    /// SRTP keys from the SDES exchange (`RTP/SAVP`); `None` (default) sends and expects
    /// plain RTP.
    pub srtp: Option<SrtpKeys>,
    /// Record the call: both sides, time-aligned, as [`MediaEvent::Recorded`] batches
    /// (default false; see [`crate::recorder`]).
    pub record: bool,
    /// Mean time between our RTCP reports (randomised 0.5–1.5 ×; default 5 s); `None`
    /// sends none (the peer's reports are still read).
    pub rtcp_interval: Option<Duration>,
}

impl SessionConfig {
    /// A configuration for `codec` (a G.711 [`Law`] or a [`Codec`]) with its static payload
    /// type, no DTMF, no remote yet, a random SSRC and default timings.
    pub fn new(codec: impl Into<Codec>) -> Self {
        let codec = codec.into();
        Self {
            codec,
            payload_type: codec.static_payload_type(),
            dtmf_payload_type: None,
            dtmf_sender: DtmfSenderConfig::default(),
            remote: None,
            ssrc: rand::random(),
            accept_from: Vec::new(),
            rtp_timeout: Duration::from_secs(30),
            vad: VadConfig::default(),
            barge_in: BargeInConfig::default(),
            jitter: JitterConfig {
                clock_rate: codec.clock_rate(),
                ..JitterConfig::default()
            },
            caller_audio_ms: 0,
            utterances: false,
            utterance_preroll_ms: 300,
            utterance_tail_ms: 300,
            max_utterance_ms: 30_000,
            srtp: None,
            record: false,
            rtcp_interval: Some(DEFAULT_RTCP_INTERVAL),
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self::new(Law::Mu)
    }
}

/// What the session tells the call.
#[derive(Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// A DTMF key press (RFC 4733), at caller media time `media_ms`.
    Dtmf {
        /// `0`-`9`, `*`, `#`, `A`-`D`.
        digit: char,
        /// Caller media time when it was reported.
        media_ms: u32,
    },
    /// The caller started speaking at `media_ms` (caller media time).
    SpeechStarted {
        /// Media time of the speech onset.
        media_ms: u32,
    },
    /// The caller stopped speaking (after the hangover).
    SpeechStopped {
        /// Length of the speech segment.
        duration_ms: u32,
    },
    /// Playback of item `id` began.
    PlaybackStarted {
        /// Item id given at enqueue.
        id: u64,
    },
    /// Item `id` played to the end.
    PlaybackFinished {
        /// Item id given at enqueue.
        id: u64,
    },
    /// Item `id` was removed before the end (flush or barge-in).
    PlaybackStopped {
        /// Item id given at enqueue.
        id: u64,
        /// How much of it was sent.
        played_ms: u32,
    },
    /// Caller speech interrupted item `id`; it (and the other interruptible items) was flushed.
    /// Followed by `PlaybackStopped` for each flushed item.
    BargeIn {
        /// The item that was playing.
        id: u64,
        /// How much of it was sent.
        played_ms: u32,
    },
    /// No RTP arrived for `rtp_timeout`. Reported once per silence; re-armed when RTP resumes.
    RtpTimeout,
    /// Every digit queued with [`MediaSession::send_dtmf`] has been sent (the last end packet
    /// of the last digit went out). Reported once each time the DTMF queue runs empty; digits
    /// queued while others were still being sent are reported together.
    DtmfSent {
        /// The digits sent since the previous `DtmfSent`, in order (`A`-`D` upper case).
        digits: String,
    },
    /// The caller's audio of one speech segment (only with [`SessionConfig::utterances`]):
    /// from `utterance_preroll_ms` before the onset to at most `utterance_tail_ms` after the
    /// end of speech. Sent right after `SpeechStopped`; speech longer than `max_utterance_ms`
    /// comes in consecutive pieces (`end_ms` of one is `start_ms` of the next), all but the
    /// last while the caller is still talking. Utterances never overlap.
    ///
    /// Times are caller media time on the same timeline as `SpeechStarted` (the 16 kHz stream
    /// the VAD sees, which lags the RTP audio by the resampler's 10 ms).
    Utterance {
        /// Media time of the first sample.
        start_ms: u32,
        /// Media time just after the last sample; `audio.len() == (end_ms - start_ms) * 16`.
        end_ms: u32,
        /// 16 kHz mono PCM.
        audio: Arc<[i16]>,
    },
    /// The session was bridged to another one ([`MediaSession::start_bridge`]): from the next
    /// tick it sends the other leg's audio, and its playback queue is held.
    Bridged,
    /// The bridge ended ([`MediaSession::end_bridge`]); playback resumes where it stopped.
    /// Follows each `Bridged` exactly once.
    Unbridged {
        /// Who ended it.
        reason: UnbridgeReason,
    },
    /// Recorded audio (only with [`SessionConfig::record`]): consecutive outbound ticks from
    /// `start_ms` (session time: tick × 20 ms), 8 kHz stereo interleaved — caller (what the
    /// jitter buffer released) then agent (what was sent, silence when nothing audible went
    /// out). Normally 200 ms per batch; a gap in `start_ms` means ticks were skipped or a
    /// batch was dropped (the call fell behind) and should be filled with silence.
    Recorded {
        /// Session time of the first frame.
        start_ms: u64,
        /// Interleaved (caller, agent) 16-bit samples at 8 kHz.
        audio: Arc<[i16]>,
    },
}

impl std::fmt::Debug for MediaEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dtmf { digit, media_ms } => f
                .debug_struct("Dtmf")
                .field("digit", digit)
                .field("media_ms", media_ms)
                .finish(),
            Self::SpeechStarted { media_ms } => f
                .debug_struct("SpeechStarted")
                .field("media_ms", media_ms)
                .finish(),
            Self::SpeechStopped { duration_ms } => f
                .debug_struct("SpeechStopped")
                .field("duration_ms", duration_ms)
                .finish(),
            Self::PlaybackStarted { id } => {
                f.debug_struct("PlaybackStarted").field("id", id).finish()
            }
            Self::PlaybackFinished { id } => {
                f.debug_struct("PlaybackFinished").field("id", id).finish()
            }
            Self::PlaybackStopped { id, played_ms } => f
                .debug_struct("PlaybackStopped")
                .field("id", id)
                .field("played_ms", played_ms)
                .finish(),
            Self::BargeIn { id, played_ms } => f
                .debug_struct("BargeIn")
                .field("id", id)
                .field("played_ms", played_ms)
                .finish(),
            Self::RtpTimeout => f.write_str("RtpTimeout"),
            Self::DtmfSent { digits } => {
                f.debug_struct("DtmfSent").field("digits", digits).finish()
            }
            // The samples themselves would flood any log.
            Self::Utterance {
                start_ms,
                end_ms,
                audio,
            } => f
                .debug_struct("Utterance")
                .field("start_ms", start_ms)
                .field("end_ms", end_ms)
                .field("samples", &audio.len())
                .finish(),
            Self::Recorded { start_ms, audio } => f
                .debug_struct("Recorded")
                .field("start_ms", start_ms)
                .field("samples", &audio.len())
                .finish(),
            Self::Bridged => f.write_str("Bridged"),
            Self::Unbridged { reason } => {
                f.debug_struct("Unbridged").field("reason", reason).finish()
            }
        }
    }
}

/// Counters of one session.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MediaStats {
    /// RTP packets produced for sending.
    pub packets_sent: u64,
    /// Bytes of those packets (headers included).
    pub bytes_sent: u64,
    /// Valid RTP packets received (any payload type).
    pub packets_received: u64,
    /// Bytes of those packets.
    pub bytes_received: u64,
    /// Datagrams that were not valid RTP.
    pub invalid_packets: u64,
    /// RTCP packets that arrived on the RTP port (read like those on the RTCP port).
    pub rtcp_packets: u64,
    /// RTP packets with a payload type that is neither audio nor telephone-event (ignored).
    pub unknown_payload_packets: u64,
    /// Packets dropped because they came from outside the peer's media networks.
    pub foreign_packets: u64,
    /// Jitter buffer counters of the caller's audio.
    pub jitter: JitterStats,
    /// DTMF digits reported.
    pub dtmf_digits: u64,
    /// DTMF digits sent (their last end packet produced).
    pub dtmf_digits_sent: u64,
    /// Barge-ins.
    pub barge_ins: u64,
    /// Holds of playback on loud caller audio that turned out not to be speech.
    pub barge_in_holds_released: u64,
    /// Outbound ticks skipped because the driver fell behind.
    pub skipped_ticks: u64,
    /// Outbound packets overwritten because the driver did not collect them.
    pub transmit_overflows: u64,
    /// Events dropped by the driver because the call did not keep up (engine only).
    pub events_dropped: u64,
    /// Caller media time processed (ms).
    pub caller_media_ms: u64,
    /// SRTP packets dropped: inbound ones that failed authentication or were replays (or
    /// too short for their tag), and outbound ones that could not be protected.
    pub srtp_failures: u64,
    /// While bridged: 20 ms frames of this leg's received audio handed over for the other leg.
    pub bridge_frames_out: u64,
    /// While bridged: frames of the other leg's audio consumed by the outbound stream (sent,
    /// or due while on hold or sending DTMF).
    pub bridge_frames_in: u64,
    /// While bridged: outbound ticks with no frame of the other leg (silence went out).
    pub bridge_underruns: u64,
    /// While bridged: frames dropped to keep the bridge delay bounded (a burst of more than
    /// the rings hold, or a stalled other side).
    pub bridge_frames_dropped: u64,
    /// RTCP: reports sent and received, round-trip time, the peer's view of our stream.
    pub rtcp: RtcpStats,
    /// Outbound frames the encoder failed on (not sent).
    pub encode_errors: u64,
}

impl MediaStats {
    /// Fraction (0–1) of the caller's audio packets lost: declared lost by the jitter buffer
    /// (late arrivals included) over those expected. `None` before any arrived.
    pub fn inbound_loss(&self) -> Option<f64> {
        let j = &self.jitter;
        let on_time = j.received.saturating_sub(j.duplicate + j.late);
        let expected = on_time + j.lost;
        (expected > 0).then(|| j.lost as f64 / expected as f64)
    }

    /// One-way mouth-to-ear delay estimate, ms: half the mean RTCP round-trip time (0 when none
    /// was measured) plus the jitter buffer's delay plus one 20 ms packet.
    pub fn one_way_delay_ms(&self) -> f64 {
        self.rtcp.rtt_mean_ms.unwrap_or(0.0) / 2.0 + self.jitter.target_delay_ms + 20.0
    }

    /// E-model MOS estimate of the caller's audio (ITU-T G.107, G.711 constants; see
    /// [`crate::rtcp`]) from [`inbound_loss`](Self::inbound_loss) and
    /// [`one_way_delay_ms`](Self::one_way_delay_ms). `None` before any audio arrived.
    pub fn mos(&self) -> Option<f64> {
        let loss = self.inbound_loss()?;
        Some(crate::rtcp::g711_mos(self.one_way_delay_ms(), loss))
    }
}

/// The caller's audio path after the jitter buffer.
struct Inbound {
    resampler: FrameResampler,
    vad: Box<dyn Vad>,
    detector: SpeechDetector,
    /// Consecutive caller audio (ms) with speech probability at or above the barge-in
    /// threshold: barge-in does not wait for the detector's slower onset.
    voiced_ms: u32,
    /// Media time at which loud caller audio held the playback, while speech is confirmed.
    held_since_ms: Option<u64>,
    /// No hold before this media time (after a hold that was not speech).
    no_hold_before_ms: u64,
    /// Holds in a row that were not speech.
    false_holds: u32,
    /// The caller's background level (frame RMS), 0 before the first frame.
    noise_rms: f64,
    /// The speech segment going on when a bridge ended (talk to the other leg) does not
    /// barge in; cleared when it ends.
    bridged_speech: bool,
    pending: [i16; FRAME_SAMPLES],
    pending_len: usize,
    media_ms: u64,
    /// Recent 16 kHz audio: the pre-roll of utterances and [`MediaSession::drain_caller_audio`].
    history: AudioHistory,
    /// `caller_audio_ms` in samples: how far back `drain_caller_audio` reaches.
    drain_window: u64,
    /// History index up to which `drain_caller_audio` has delivered.
    drained: u64,
    utterances: Option<UtteranceCollector>,
    /// Call recording, when on.
    recorder: Option<Recorder>,
    /// G.722 and Opus calls: the 16 kHz frame being collected and its 16→8 kHz resampler.
    wideband: Option<Box<WidebandInbound>>,
}

/// The 16 kHz side of a G.722 or Opus call's inbound path.
struct WidebandInbound {
    pending: [i16; 2 * FRAME_SAMPLES],
    downsampler: FrameResampler,
}

/// The outbound encoder: G.711 straight from the 8 kHz frame, G.722 or Opus after upsampling.
enum Encoder {
    G711(Law),
    G722(Box<WidebandOutbound>),
    Opus(Box<OpusOutbound>),
}

/// The 16 kHz side of an Opus call's outbound path: 8 kHz frames → 16 kHz → Opus.
struct OpusOutbound {
    upsampler: FrameResampler,
    encoder: OpusEncoder,
}

/// The 16 kHz side of a G.722 call's outbound path: 8 kHz frames → 16 kHz → G.722.
struct WidebandOutbound {
    upsampler: FrameResampler,
    encoder: G722Encoder,
}

impl Inbound {
    /// Feeds decoded caller audio (`pcm`: what the jitter buffer released for one packet;
    /// 8 kHz, or 16 kHz for G.722 and Opus); runs resampling, VAD and barge-in per 20 ms. While bridged each 20 ms frame is
    /// also handed to `bridge`, and nothing barges in.
    fn push(
        &mut self,
        mut pcm: &[i16],
        playout: &mut PlayoutQueue,
        events: &mut VecDeque<MediaEvent>,
        barge_in: BargeInConfig,
        stats: &mut MediaStats,
        mut bridge: Option<&mut BridgeState>,
    ) {
        // Frames this packet completed before the current one.
        let mut frames_before = 0;
        let frame_len = match self.wideband {
            Some(_) => 2 * FRAME_SAMPLES,
            None => FRAME_SAMPLES,
        };
        while !pcm.is_empty() {
            let collecting: &mut [i16] = match &mut self.wideband {
                Some(wideband) => &mut wideband.pending,
                None => &mut self.pending,
            };
            let take = (frame_len - self.pending_len).min(pcm.len());
            collecting[self.pending_len..self.pending_len + take].copy_from_slice(&pcm[..take]);
            self.pending_len += take;
            pcm = &pcm[take..];
            if self.pending_len < frame_len {
                break;
            }
            self.pending_len = 0;
            if let Some(wideband) = &mut self.wideband {
                let narrow = wideband.downsampler.process(&wideband.pending);
                self.pending.copy_from_slice(narrow);
            }
            if let Some(recorder) = &mut self.recorder {
                recorder.push_caller(&self.pending);
            }
            if let Some(bridge) = bridge.as_deref_mut() {
                let ready = bridge.release_tick + frames_before;
                if bridge.received.push_ready_at(&self.pending, ready) {
                    stats.bridge_frames_dropped += 1;
                }
            }
            frames_before += 1;
            let wide: &[i16] = match &self.wideband {
                Some(wideband) => &wideband.pending,
                None => self.resampler.process(&self.pending),
            };
            self.history.push(wide);
            let probability = self.vad.speech_probability(wide);
            self.media_ms += 20;
            stats.caller_media_ms = self.media_ms;
            if probability >= barge_in.threshold {
                self.voiced_ms = self.voiced_ms.saturating_add(20);
            } else {
                self.voiced_ms = 0;
            }
            let boundary = self.detector.push(probability, 20);
            match boundary {
                Some(SpeechEvent::Started { media_ms }) => {
                    events.push_back(MediaEvent::SpeechStarted { media_ms });
                }
                Some(SpeechEvent::Stopped { duration_ms }) => {
                    events.push_back(MediaEvent::SpeechStopped { duration_ms });
                }
                None => {}
            }
            if let Some(collector) = &mut self.utterances {
                let quiet_ms = self.detector.quiet_ms();
                collector.on_frame(&self.history, wide, boundary, quiet_ms, events);
            }
            if self.bridged_speech && !self.detector.is_speaking() {
                self.bridged_speech = false;
            }
            if barge_in.enabled && bridge.is_none() && !self.bridged_speech {
                self.barge_in(barge_in, playout, events, stats);
            }
            if self.held_since_ms.is_none() {
                self.track_noise();
            }
        }
    }

    /// Holds, cuts or resumes interruptible playback after one caller frame (in `pending`).
    fn barge_in(
        &mut self,
        barge_in: BargeInConfig,
        playout: &mut PlayoutQueue,
        events: &mut VecDeque<MediaEvent>,
        stats: &mut MediaStats,
    ) {
        let Some(playing) = playout.now_playing().filter(|p| p.interruptible) else {
            if self.held_since_ms.take().is_some() {
                playout.release();
            }
            return;
        };
        let detected =
            self.detector.is_speaking() && self.detector.speech_ms() >= barge_in.min_speech_ms;
        let voiced = self.voiced_ms > 0 && self.voiced_ms >= barge_in.min_speech_ms;
        if detected || voiced {
            events.push_back(MediaEvent::BargeIn {
                id: playing.id,
                played_ms: playing.played_ms,
            });
            stats.barge_ins += 1;
            playout.flush_interruptible();
            playout.release();
            self.held_since_ms = None;
            self.false_holds = 0;
            forward_playout_events(playout, events);
            return;
        }
        // The playout ends a hold by itself when no caller frames come (silence suppression).
        if self.held_since_ms.is_some() && !playout.is_held() {
            self.hold_ended(stats);
        }
        let rms = frame_rms(&self.pending);
        match self.held_since_ms {
            None if barge_in.hold_rms > 0
                && self.false_holds < MAX_FALSE_HOLDS
                && self.media_ms >= self.no_hold_before_ms
                && rms >= f64::from(barge_in.hold_rms)
                && rms >= HOLD_ABOVE_NOISE * self.noise_rms =>
            {
                let grace_ms = barge_in.min_speech_ms + HOLD_GRACE_MS;
                playout.hold(grace_ms / 20 + 5);
                self.held_since_ms = Some(self.media_ms);
            }
            Some(since)
                if self.media_ms - since >= u64::from(barge_in.min_speech_ms + HOLD_GRACE_MS) =>
            {
                // Not speech after all (a click, a cough): the agent goes on.
                playout.release();
                self.hold_ended(stats);
            }
            _ => {}
        }
    }

    /// A hold ended without a barge-in.
    fn hold_ended(&mut self, stats: &mut MediaStats) {
        self.held_since_ms = None;
        self.no_hold_before_ms = self.media_ms + HOLD_REFRACTORY_MS;
        self.false_holds += 1;
        stats.barge_in_holds_released += 1;
    }

    /// Tracks the caller's background level from frames that are not much louder than it.
    fn track_noise(&mut self) {
        let rms = frame_rms(&self.pending);
        if self.noise_rms == 0.0 {
            self.noise_rms = rms.max(1.0);
        } else if rms < HOLD_ABOVE_NOISE * self.noise_rms {
            self.noise_rms = 0.95 * self.noise_rms + 0.05 * rms.max(1.0);
        } else {
            // A louder line: follow it slowly.
            self.noise_rms = 0.995 * self.noise_rms + 0.005 * rms;
        }
    }
}

/// Root-mean-square level of one frame.
fn frame_rms(pcm: &[i16]) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    let sum: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / pcm.len() as f64).sqrt()
}

fn forward_playout_events(playout: &mut PlayoutQueue, events: &mut VecDeque<MediaEvent>) {
    while let Some(e) = playout.poll_event() {
        events.push_back(match e {
            PlayoutEvent::Started { id } => MediaEvent::PlaybackStarted { id },
            PlayoutEvent::Finished { id } => MediaEvent::PlaybackFinished { id },
            PlayoutEvent::Stopped { id, played_ms } => {
                MediaEvent::PlaybackStopped { id, played_ms }
            }
        });
    }
}

/// One call's media state machine. See the module docs.
pub struct MediaSession {
    config: SessionConfig,
    start: Instant,
    ticks: u64,
    sequence_number: u16,
    timestamp: u32,
    previous_frame_had_audio: bool,
    remote: Option<SocketAddr>,
    latched: bool,
    jitter: JitterBuffer,
    dtmf: Option<DtmfReceiver>,
    /// Outgoing DTMF, when a telephone-event payload type was negotiated.
    dtmf_sender: Option<DtmfSender>,
    /// Queued digits do not start before this outbound tick (the one due at `send_dtmf` time).
    dtmf_from_tick: u64,
    inbound: Inbound,
    playout: PlayoutQueue,
    events: VecDeque<MediaEvent>,
    frame: [i16; FRAME_SAMPLES],
    /// Encodes the outbound frames.
    encoder: Encoder,
    /// RTP timestamp units per outbound 20 ms frame (160, or 960 for Opus).
    frame_units: u32,
    tx: [[u8; TX_SLOT_LEN]; TX_SLOTS],
    /// Length of the packet in each slot (longer than `TX_PACKET_LEN` with SRTP).
    tx_len: [usize; TX_SLOTS],
    tx_head: usize,
    tx_count: usize,
    last_rtp: Instant,
    /// The SDP direction lets us send (not held by the peer, RFC 3264 §8.4).
    sending: bool,
    /// The peer sends to us: an RTP silence means trouble only then.
    receiving: bool,
    timeout_reported: bool,
    /// SRTP contexts when the call is secured.
    srtp: Option<SrtpSession>,
    /// Frame rings while bridged to another session.
    bridge: Option<Box<BridgeState>>,
    stats: MediaStats,
    /// RTCP state: reports due, the peer's last SR, figures from its reports.
    rtcp: RtcpSession,
    /// Whether we send reports (`rtcp_interval` set).
    rtcp_enabled: bool,
    /// Our latest report (SRTCP-protected when secured), until the driver collects it.
    rtcp_tx: [u8; MAX_REPORT_LEN],
    /// Length of the report in `rtcp_tx`; 0 when there is none to send.
    rtcp_tx_len: usize,
}

impl std::fmt::Debug for MediaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSession")
            .field("ssrc", &self.config.ssrc)
            .field("remote", &self.remote)
            .field("ticks", &self.ticks)
            .finish_non_exhaustive()
    }
}

impl MediaSession {
    /// Creates a session whose outbound clock starts at `now` (first packet due at `now`).
    pub fn new(config: SessionConfig, vad: Box<dyn Vad>, now: Instant) -> Self {
        let resampler = FrameResampler::narrowband_to_wideband()
            .expect("the 8 kHz → 16 kHz FFT resampler is always constructible");
        let drain_window = config.caller_audio_ms as u64 * SAMPLES_PER_MS;
        let utterance_limits = config.utterances.then(|| {
            UtteranceLimits::new(
                config.utterance_preroll_ms,
                config.utterance_tail_ms,
                config.max_utterance_ms,
                config.vad.hangover_ms,
            )
        });
        let history_samples = utterance_limits
            .map_or(0, |l| l.history_samples(config.vad.min_speech_ms))
            .max(drain_window as usize);
        Self {
            start: now,
            ticks: 0,
            sequence_number: rand::random(),
            timestamp: rand::random(),
            previous_frame_had_audio: false,
            remote: config.remote,
            latched: false,
            jitter: JitterBuffer::with_codec(config.jitter, config.codec),
            dtmf: config.dtmf_payload_type.map(DtmfReceiver::new),
            dtmf_sender: config
                .dtmf_payload_type
                .map(|_| DtmfSender::new(config.dtmf_sender)),
            dtmf_from_tick: 0,
            inbound: Inbound {
                resampler,
                vad,
                detector: SpeechDetector::new(config.vad),
                voiced_ms: 0,
                held_since_ms: None,
                no_hold_before_ms: 0,
                false_holds: 0,
                noise_rms: 0.0,
                bridged_speech: false,
                pending: [0; FRAME_SAMPLES],
                pending_len: 0,
                media_ms: 0,
                history: AudioHistory::new(history_samples),
                drain_window,
                drained: 0,
                utterances: utterance_limits.map(UtteranceCollector::new),
                recorder: config.record.then(Recorder::new),
                wideband: config.codec.is_wideband().then(|| {
                    Box::new(WidebandInbound {
                        pending: [0; 2 * FRAME_SAMPLES],
                        downsampler: FrameResampler::new(16000, 8000, 2 * FRAME_SAMPLES)
                            .expect("the 16 kHz → 8 kHz FFT resampler is always constructible"),
                    })
                }),
            },
            playout: PlayoutQueue::new(),
            events: VecDeque::with_capacity(16),
            frame: [0; FRAME_SAMPLES],
            encoder: match config.codec {
                Codec::G711(law) => Encoder::G711(law),
                Codec::G722 => Encoder::G722(Box::new(WidebandOutbound {
                    upsampler: FrameResampler::narrowband_to_wideband()
                        .expect("the 8 kHz → 16 kHz FFT resampler is always constructible"),
                    encoder: G722Encoder::new(),
                })),
                Codec::Opus => Encoder::Opus(Box::new(OpusOutbound {
                    upsampler: FrameResampler::narrowband_to_wideband()
                        .expect("the 8 kHz → 16 kHz FFT resampler is always constructible"),
                    encoder: OpusEncoder::new().expect("libopus creates a 16 kHz VoIP encoder"),
                })),
            },
            frame_units: config.codec.frame_units(),
            tx: [[0; TX_SLOT_LEN]; TX_SLOTS],
            tx_len: [0; TX_SLOTS],
            tx_head: 0,
            tx_count: 0,
            last_rtp: now,
            sending: true,
            receiving: true,
            timeout_reported: false,
            srtp: config.srtp.as_ref().map(SrtpSession::new),
            bridge: None,
            stats: MediaStats::default(),
            rtcp: RtcpSession::new(
                config.ssrc,
                now,
                config.rtcp_interval.unwrap_or(DEFAULT_RTCP_INTERVAL),
            ),
            rtcp_enabled: config.rtcp_interval.is_some(),
            rtcp_tx: [0; MAX_REPORT_LEN],
            rtcp_tx_len: 0,
            config,
        }
    }

    /// The configuration the session was created with.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Where RTP is being sent (from SDP, or latched).
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// Changes the destination (re-INVITE). `None` re-enables latching to the next RTP source.
    pub fn set_remote(&mut self, remote: Option<SocketAddr>) {
        self.config.remote = remote;
        self.remote = remote;
        self.latched = false;
    }

    /// Applies the SDP direction after a re-offer: a call on hold sends no RTP (its playout
    /// still advances, so audio is not delayed by the hold), and a peer that sends nothing is
    /// not timed out for it. The timeout restarts at `now` when the peer resumes.
    ///
    /// DTMF waits out a hold: queued digits (and the audio queued behind them) stay queued and
    /// go out when sending resumes. A digit whose tone the hold interrupted is finished with
    /// its three end packets (original timestamp, the duration sent so far) so that the peer
    /// reports it exactly once.
    pub fn set_direction(&mut self, now: Instant, sending: bool, receiving: bool) {
        if receiving && !self.receiving {
            self.last_rtp = now;
            self.timeout_reported = false;
        }
        self.sending = sending;
        self.receiving = receiving;
    }

    /// Replaces the SRTP keys (a re-INVITE that changed the `a=crypto` lines), or turns SRTP
    /// off with `None`. Both directions start afresh (new replay windows and rollover
    /// counters), from the next packet on.
    pub fn set_srtp(&mut self, keys: Option<SrtpKeys>) {
        if keys == self.config.srtp {
            // The same keys (a re-offer that only changed direction or refreshed the session):
            // the rollover counter and replay window must carry on.
            return;
        }
        self.srtp = keys.as_ref().map(SrtpSession::new);
        self.config.srtp = keys;
    }

    /// Caller media time processed so far, in milliseconds.
    pub fn media_ms(&self) -> u32 {
        self.inbound.media_ms.min(u32::MAX as u64) as u32
    }

    /// Handles one received datagram from `source`. Never panics, whatever the bytes.
    pub fn handle_rtp(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) {
        if !self.config.accept_from.is_empty() {
            let ip = source.ip().to_canonical();
            if !self.config.accept_from.iter().any(|net| net.contains(&ip)) {
                self.stats.foreign_packets += 1;
                return;
            }
        }
        if self.srtp.is_some() {
            self.handle_srtp(now, source, datagram);
        } else {
            self.handle_plain_rtp(now, source, datagram, datagram.len());
        }
    }

    /// Unprotects one SRTP datagram, then handles the RTP inside.
    fn handle_srtp(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) {
        // The header is in the clear: RTCP and non-RTP are recognised as without SRTP. The
        // padding count is encrypted, so it cannot be checked yet.
        match parse_rtp(datagram) {
            Ok(_) | Err(PacketError::BadPadding { .. }) => {}
            Err(PacketError::Rtcp(_)) => {
                self.stats.rtcp_packets += 1;
                self.handle_secured_rtcp(now, datagram);
                return;
            }
            Err(_) => {
                self.stats.invalid_packets += 1;
                return;
            }
        }
        let Some(srtp) = &mut self.srtp else {
            return;
        };
        match srtp.unprotect(datagram) {
            Ok(plain) => self.handle_plain_rtp(now, source, &plain, datagram.len()),
            Err(error) => {
                self.stats.srtp_failures += 1;
                tracing::trace!(%source, %error, "SRTP packet dropped");
            }
        }
    }

    /// Handles one plain RTP datagram that was `wire_len` bytes on the wire.
    fn handle_plain_rtp(
        &mut self,
        now: Instant,
        source: SocketAddr,
        datagram: &[u8],
        wire_len: usize,
    ) {
        let packet = match parse_rtp(datagram) {
            Ok(p) => p,
            Err(PacketError::Rtcp(_)) => {
                // Only plain RTCP gets here: with SRTP it was recognised before unprotecting.
                self.stats.rtcp_packets += 1;
                let _ = self.rtcp.handle_compound(now, datagram);
                return;
            }
            Err(_) => {
                self.stats.invalid_packets += 1;
                return;
            }
        };
        self.stats.packets_received += 1;
        self.stats.bytes_received += wire_len as u64;
        self.last_rtp = now;
        self.timeout_reported = false;
        let header = &packet.header;
        let info = PacketInfo {
            sequence_number: header.sequence_number,
            timestamp: header.timestamp,
            ssrc: header.ssrc,
            marker: header.marker,
        };
        let payload_type = header.payload_type;
        if payload_type == self.config.payload_type {
            self.latch(source);
            self.jitter.insert_audio(now, info, packet.payload);
        } else if self.config.dtmf_payload_type == Some(payload_type) {
            self.latch(source);
            if let Some(dtmf) = &mut self.dtmf {
                let digits = dtmf.handle_packet(
                    now,
                    payload_type,
                    info.ssrc,
                    info.timestamp,
                    packet.payload,
                );
                for digit in digits.into_iter().flatten() {
                    self.stats.dtmf_digits += 1;
                    self.events.push_back(MediaEvent::Dtmf {
                        digit: digit.digit,
                        media_ms: self.media_ms(),
                    });
                }
            }
            self.jitter.insert_placeholder(now, info);
        } else {
            self.stats.unknown_payload_packets += 1;
            self.jitter.insert_placeholder(now, info);
        }
        self.drain_jitter(now);
    }

    /// Handles one datagram that arrived on our RTCP port (RTP port + 1) from `source`: a
    /// compound RTCP packet (SRTCP on a secured call). Never panics, whatever the bytes;
    /// unusable ones are counted in [`RtcpStats::invalid`]. `now` should be the arrival time
    /// as closely as the driver knows it: it is `A` of the round-trip time.
    pub fn handle_rtcp(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) {
        if !self.config.accept_from.is_empty() {
            let ip = source.ip().to_canonical();
            if !self.config.accept_from.iter().any(|net| net.contains(&ip)) {
                self.stats.foreign_packets += 1;
                return;
            }
        }
        if self.srtp.is_some() {
            self.handle_secured_rtcp(now, datagram);
        } else {
            let _ = self.rtcp.handle_compound(now, datagram);
        }
    }

    /// Unprotects one SRTCP datagram, then reads the RTCP inside.
    fn handle_secured_rtcp(&mut self, now: Instant, datagram: &[u8]) {
        let Some(srtp) = &mut self.srtp else {
            return;
        };
        match srtp.unprotect_rtcp(datagram) {
            Ok(plain) => {
                let _ = self.rtcp.handle_compound(now, &plain);
            }
            Err(error) => {
                self.rtcp.on_invalid();
                tracing::trace!(%error, "SRTCP packet dropped");
            }
        }
    }

    /// Places the session clock on the wall clock for the NTP timestamps of our sender
    /// reports: `now` is `wall`. Without it they count from the Unix epoch at session start
    /// (round-trip times are right either way).
    pub fn set_wall_clock(&mut self, now: Instant, wall: std::time::SystemTime) {
        self.rtcp.set_wall_clock(now, wall);
    }

    /// Writes our RTCP report if one is due (see the module docs).
    fn send_rtcp_if_due(&mut self, now: Instant) {
        if !self.rtcp_enabled || now < self.rtcp.poll_timeout() {
            return;
        }
        let jitter = self.jitter.stats();
        let reception = match (self.jitter.ssrc(), self.jitter.extended_highest_sequence()) {
            (Some(ssrc), Some(extended_highest_sequence)) => Some(ReceptionSnapshot {
                ssrc,
                extended_highest_sequence,
                received: jitter
                    .received
                    .saturating_sub(jitter.duplicate + jitter.late),
                lost: jitter.lost,
                jitter: jitter.interarrival_jitter,
            }),
            _ => None,
        };
        // Our RTP timestamp at `now`: the next frame's, less the samples until it is due.
        let ahead = self.next_send().saturating_duration_since(now);
        let ahead_samples = (ahead.as_micros() * FRAME_SAMPLES as u128 / PTIME.as_micros()) as u32;
        let sender = SenderSnapshot {
            rtp_time: self.timestamp.wrapping_sub(ahead_samples),
            packet_count: self.stats.packets_sent,
        };
        if self.remote.is_none() {
            // Nobody to report to yet: try again an interval later.
            self.rtcp.postpone(now);
            return;
        }
        let len = match self
            .rtcp
            .write_report(now, reception, sender, &mut self.rtcp_tx)
        {
            Ok(len) => len,
            Err(error) => {
                tracing::warn!(%error, "RTCP report not written");
                self.rtcp.postpone(now);
                return;
            }
        };
        self.rtcp_tx_len = len;
        if let Some(srtp) = &mut self.srtp {
            match srtp.protect_rtcp(&self.rtcp_tx[..len]) {
                Ok(protected) if protected.len() <= MAX_REPORT_LEN => {
                    self.rtcp_tx[..protected.len()].copy_from_slice(&protected);
                    self.rtcp_tx_len = protected.len();
                }
                Ok(_) => self.rtcp_tx_len = 0,
                Err(error) => {
                    self.rtcp_tx_len = 0;
                    self.stats.srtp_failures += 1;
                    tracing::warn!(%error, "SRTCP protect failed; report not sent");
                }
            }
        }
    }

    /// Our next RTCP report and where to send it (the peer's RTP address, port + 1), once;
    /// the bytes are valid until the next call that takes `&mut self`.
    pub fn poll_transmit_rtcp(&mut self) -> Option<(SocketAddr, &[u8])> {
        if self.rtcp_tx_len == 0 {
            return None;
        }
        let len = std::mem::take(&mut self.rtcp_tx_len);
        let mut to = self.remote?;
        to.set_port(to.port().checked_add(1)?);
        Some((to, &self.rtcp_tx[..len]))
    }

    fn latch(&mut self, source: SocketAddr) {
        if self.config.remote.is_none() && !self.latched {
            self.remote = Some(source);
            self.latched = true;
        }
    }

    fn drain_jitter(&mut self, now: Instant) {
        let Self {
            jitter,
            inbound,
            playout,
            events,
            config,
            stats,
            bridge,
            ticks,
            ..
        } = self;
        if let Some(bridge) = bridge {
            bridge.release_tick = *ticks;
        }
        while let Some(frame) = jitter.poll_frame(now) {
            inbound.push(
                frame.pcm,
                playout,
                events,
                config.barge_in,
                stats,
                bridge.as_deref_mut(),
            );
        }
    }

    /// Advances time: releases jitter-buffered audio whose deadline passed, reports DTMF
    /// events that never ended and RTP timeouts, and produces every outbound packet due by
    /// `now` (on the fixed 20 ms schedule).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drain_jitter(now);
        if let Some(dtmf) = &mut self.dtmf
            && let Some(digit) = dtmf.handle_timeout(now)
        {
            self.stats.dtmf_digits += 1;
            self.events.push_back(MediaEvent::Dtmf {
                digit: digit.digit,
                media_ms: self.inbound.media_ms.min(u32::MAX as u64) as u32,
            });
        }
        if self.receiving
            && !self.timeout_reported
            && now >= self.last_rtp + self.config.rtp_timeout
        {
            self.timeout_reported = true;
            self.events.push_back(MediaEvent::RtpTimeout);
        }
        while self.next_send() <= now {
            if now.duration_since(self.next_send()) > MAX_CATCH_UP {
                let due = (now.duration_since(self.start).as_nanos() / PTIME.as_nanos()) as u64;
                let skipped = due.saturating_sub(self.ticks);
                self.stats.skipped_ticks += skipped;
                self.timestamp = self
                    .timestamp
                    .wrapping_add((skipped as u32).wrapping_mul(self.frame_units));
                self.ticks = due;
            }
            self.send_frame();
            self.ticks += 1;
        }
        self.send_rtcp_if_due(now);
    }

    fn next_send(&self) -> Instant {
        self.start + PTIME * (self.ticks.min(u32::MAX as u64) as u32)
    }

    fn send_frame(&mut self) {
        let can_send = self.remote.is_some() && self.sending;
        // While bridged, the other leg's next frame is due on every tick, whether it goes out
        // or not (DTMF, hold), so that what goes out is never older than one tick.
        let bridged = match &mut self.bridge {
            Some(bridge) => {
                let had_frame = bridge.to_send.pop_into(&mut self.frame);
                if had_frame {
                    self.stats.bridge_frames_in += 1;
                } else {
                    self.stats.bridge_underruns += 1;
                    self.frame.fill(0);
                }
                Some(had_frame)
            }
            None => None,
        };
        let dtmf = match &mut self.dtmf_sender {
            Some(sender) if self.ticks >= self.dtmf_from_tick => {
                if can_send {
                    sender.next_frame(self.timestamp)
                } else if sender.is_busy() {
                    // On hold or no peer yet: digits (and the audio behind them) wait.
                    sender.interrupt();
                    DtmfFrame::Silence
                } else {
                    DtmfFrame::Audio
                }
            }
            _ => DtmfFrame::Audio,
        };
        // Whether `frame` is audio that went out (for the recording).
        let mut audible = false;
        match dtmf {
            DtmfFrame::Audio => {
                let had_audio = match bridged {
                    Some(had_frame) => had_frame,
                    None => {
                        let had_audio = self.playout.next_frame(&mut self.frame);
                        forward_playout_events(&mut self.playout, &mut self.events);
                        had_audio
                    }
                };
                let marker = had_audio && !self.previous_frame_had_audio;
                self.previous_frame_had_audio = had_audio;
                if can_send {
                    self.transmit_audio(marker);
                }
                audible = can_send && had_audio;
            }
            DtmfFrame::Silence => {
                // Playback does not advance; it resumes after the digits as a new talk spurt.
                self.previous_frame_had_audio = false;
                if can_send {
                    self.frame.fill(0);
                    self.transmit_audio(false);
                }
            }
            DtmfFrame::Event(event) => {
                self.previous_frame_had_audio = false;
                let payload_type = self.config.dtmf_payload_type.unwrap_or_default();
                let slot = self.tx_slot();
                let buf = &mut self.tx[slot];
                let header_len = write_rtp_header(
                    buf,
                    event.marker,
                    payload_type,
                    self.sequence_number,
                    event.timestamp,
                    self.config.ssrc,
                );
                let len = header_len + TelephoneEvent::PAYLOAD_LEN;
                buf[header_len..len].copy_from_slice(&event.payload());
                self.commit_tx(slot, len);
            }
        }
        if let Some(recorder) = &mut self.inbound.recorder {
            recorder.on_tick(self.ticks, audible.then_some(&self.frame), &mut self.events);
        }
        if let Some(sender) = &mut self.dtmf_sender {
            // Per digit, not per report: the engine frees queue room from this count.
            self.stats.dtmf_digits_sent = sender.digits_sent();
            if let Some(digits) = sender.poll_sent() {
                self.events.push_back(MediaEvent::DtmfSent { digits });
            }
        }
        self.timestamp = self.timestamp.wrapping_add(self.frame_units);
    }

    /// Queues the current `frame` as a G.711, G.722 or Opus packet.
    fn transmit_audio(&mut self, marker: bool) {
        let slot = self.tx_slot();
        let buf = &mut self.tx[slot];
        let header_len = write_rtp_header(
            buf,
            marker,
            self.config.payload_type,
            self.sequence_number,
            self.timestamp,
            self.config.ssrc,
        );
        let payload = &mut buf[header_len..TX_PACKET_LEN];
        let payload_len = match &mut self.encoder {
            Encoder::G711(law) => {
                law.encode(&self.frame, payload);
                payload.len()
            }
            Encoder::G722(wideband) => {
                let wide = wideband.upsampler.process(&self.frame);
                wideband.encoder.encode(wide, payload);
                payload.len()
            }
            Encoder::Opus(opus) => {
                let wide = opus.upsampler.process(&self.frame);
                match opus.encoder.encode(wide, payload) {
                    Ok(len) => len,
                    Err(error) => {
                        // Not reachable with a 20 ms frame and a 160-byte buffer; never panic.
                        self.stats.encode_errors += 1;
                        tracing::warn!(%error, "Opus encode failed; packet not sent");
                        return;
                    }
                }
            }
        };
        self.commit_tx(slot, header_len + payload_len);
    }

    /// The transmit slot for the next packet; when the driver left every slot uncollected the
    /// oldest packet is overwritten (and counted).
    fn tx_slot(&mut self) -> usize {
        if self.tx_count == TX_SLOTS {
            self.tx_head = (self.tx_head + 1) % TX_SLOTS;
            self.tx_count -= 1;
            self.stats.transmit_overflows += 1;
        }
        (self.tx_head + self.tx_count) % TX_SLOTS
    }

    /// Queues the `len`-byte RTP packet written in `slot` for `poll_transmit`, SRTP-protected
    /// when the call is secured. Consumes one sequence number even if protection fails.
    fn commit_tx(&mut self, slot: usize, len: usize) {
        let buf = &mut self.tx[slot];
        let plain_len = len;
        let mut len = len;
        let mut queued = true;
        if let Some(srtp) = &mut self.srtp {
            match srtp.protect(&buf[..len]) {
                Ok(protected) if protected.len() <= TX_SLOT_LEN => {
                    len = protected.len();
                    buf[..len].copy_from_slice(&protected);
                }
                Ok(_) => queued = false,
                Err(error) => {
                    queued = false;
                    tracing::warn!(%error, "SRTP protect failed; packet not sent");
                }
            }
        }
        self.sequence_number = self.sequence_number.wrapping_add(1);
        if queued {
            self.rtcp
                .on_rtp_sent(plain_len.saturating_sub(RTP_HEADER_LEN));
            self.tx_len[slot] = len;
            self.tx_count += 1;
            self.stats.packets_sent += 1;
            self.stats.bytes_sent += len as u64;
        } else {
            self.stats.srtp_failures += 1;
        }
    }

    /// The earliest time [`handle_timeout`](Self::handle_timeout) must be called.
    pub fn poll_timeout(&self) -> Instant {
        let mut next = self.next_send();
        if let Some(t) = self.jitter.poll_timeout() {
            next = next.min(t);
        }
        if let Some(t) = self.dtmf.as_ref().and_then(|d| d.poll_timeout()) {
            next = next.min(t);
        }
        if self.receiving && !self.timeout_reported {
            next = next.min(self.last_rtp + self.config.rtp_timeout);
        }
        if self.rtcp_enabled {
            next = next.min(self.rtcp.poll_timeout());
        }
        next
    }

    /// Next packet to send: destination and bytes (valid until the next call that takes
    /// `&mut self`). Packets are produced only once a remote address is known.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, &[u8])> {
        let remote = self.remote?;
        if self.tx_count == 0 {
            return None;
        }
        let slot = self.tx_head;
        self.tx_head = (self.tx_head + 1) % TX_SLOTS;
        self.tx_count -= 1;
        Some((remote, &self.tx[slot][..self.tx_len[slot]]))
    }

    /// Next event for the call, oldest first.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// Queues PCM (8 kHz, 16-bit mono) to play after whatever is queued.
    pub fn enqueue(&mut self, id: u64, pcm8k: Arc<[i16]>, interruptible: bool) {
        self.playout.enqueue(id, pcm8k, interruptible);
    }

    /// Queues DTMF `digits` (`0`-`9`, `*`, `#`, `A`-`D`; lower case accepted) to send as RFC
    /// 4733 telephone-events after any digits already queued. The first one starts at the
    /// first outbound frame due at or after `now`; audio playback pauses until the last one
    /// has been sent, then [`MediaEvent::DtmfSent`] reports them. While the call is on hold
    /// (see [`set_direction`](Self::set_direction)) or has no peer address yet the digits
    /// wait. An empty string is accepted and does nothing.
    ///
    /// Errors (nothing queued): [`DtmfError::NotNegotiated`] without a telephone-event payload
    /// type, [`DtmfError::InvalidDigit`], and [`DtmfError::QueueFull`] past
    /// [`MAX_QUEUED_DIGITS`](crate::dtmf::MAX_QUEUED_DIGITS) digits pending — all as
    /// [`MediaError::Dtmf`].
    pub fn send_dtmf(&mut self, now: Instant, digits: &str) -> Result<(), MediaError> {
        let Some(sender) = &mut self.dtmf_sender else {
            return Err(DtmfError::NotNegotiated.into());
        };
        let was_busy = sender.is_busy();
        sender.queue(digits)?;
        if !was_busy && sender.is_busy() {
            let since = now.saturating_duration_since(self.start);
            self.dtmf_from_tick = since.as_nanos().div_ceil(PTIME.as_nanos()) as u64;
        }
        Ok(())
    }

    /// DTMF digits queued by [`send_dtmf`](Self::send_dtmf) and not yet completely sent.
    pub fn dtmf_pending(&self) -> usize {
        self.dtmf_sender.as_ref().map_or(0, DtmfSender::pending)
    }

    /// Removes item `id`, or everything queued when `None`; each removed item is reported with
    /// [`MediaEvent::PlaybackStopped`]. Takes effect from the next outbound packet.
    pub fn flush(&mut self, id: Option<u64>) {
        self.playout.flush(id);
        forward_playout_events(&mut self.playout, &mut self.events);
    }

    /// Counters so far.
    pub fn stats(&self) -> MediaStats {
        let mut stats = self.stats;
        stats.jitter = self.jitter.stats();
        stats.rtcp = self.rtcp.stats();
        stats
    }

    /// Moves the 16 kHz caller audio received since the previous call (at most the last
    /// `caller_audio_ms`, older audio is skipped) into `out`; returns the number of samples.
    pub fn drain_caller_audio(&mut self, out: &mut Vec<i16>) -> usize {
        let inbound = &mut self.inbound;
        let written = inbound.history.written();
        let from = inbound
            .drained
            .max(written.saturating_sub(inbound.drain_window));
        inbound.drained = written;
        inbound.history.copy_range(from, written, out)
    }

    /// Bridges this session to another one (see [`crate::bridge`]): from now on every 20 ms
    /// of received audio the jitter buffer releases is kept for
    /// [`take_bridge_frame`](Self::take_bridge_frame), and each outbound tick sends the next
    /// frame given to [`push_bridge_frame`](Self::push_bridge_frame) (silence when there is
    /// none) instead of the playback queue, which is held where it is. Reports
    /// [`MediaEvent::Bridged`]. Does nothing if already bridged.
    ///
    /// A barge-in hold of the playback in progress is released (not counted as a false hold),
    /// and caller speech does not barge in while bridged.
    pub fn start_bridge(&mut self) {
        if self.bridge.is_some() {
            return;
        }
        self.bridge = Some(Box::new(BridgeState::new()));
        if self.inbound.held_since_ms.take().is_some() {
            self.playout.release();
        }
        // The other leg's audio starts a talk spurt.
        self.previous_frame_had_audio = false;
        self.events.push_back(MediaEvent::Bridged);
    }

    /// Ends the bridge: frames not yet sent or taken are dropped, and playback resumes from
    /// the next tick exactly where it stopped. Caller speech still going on (said to the other
    /// leg) does not barge in on it; the next speech segment can. Reports
    /// [`MediaEvent::Unbridged`] with `reason`. Does nothing if not bridged.
    pub fn end_bridge(&mut self, reason: UnbridgeReason) {
        if self.bridge.take().is_none() {
            return;
        }
        // What the caller was saying to the other leg is no barge-in on the agent: only
        // speech after the bridge (a new segment, or a voiced run begun after it) is.
        self.inbound.bridged_speech = self.inbound.detector.is_speaking();
        self.inbound.voiced_ms = 0;
        self.previous_frame_had_audio = false;
        self.events.push_back(MediaEvent::Unbridged { reason });
    }

    /// Whether the session is bridged.
    pub fn is_bridged(&self) -> bool {
        self.bridge.is_some()
    }

    /// The oldest 20 ms frame (8 kHz) of received audio not yet taken, while bridged: what the
    /// jitter buffer released, concealment and gap silence included, each frame once and in
    /// media order. The frames of a packet longer than 20 ms come one per tick of this
    /// session, as if each had come in a packet of its own. At most
    /// [`BRIDGE_OUT_FRAMES`](crate::bridge::BRIDGE_OUT_FRAMES) are kept (older ones are
    /// dropped and counted). `None` when there is none yet or not bridged.
    pub fn take_bridge_frame(&mut self) -> Option<BridgeFrame> {
        let frame = self.bridge.as_mut()?.received.pop_ready(self.ticks)?;
        self.stats.bridge_frames_out += 1;
        Some(frame)
    }

    /// Gives the session the other leg's next 20 ms frame (8 kHz) to send, while bridged
    /// (ignored otherwise). It holds at most
    /// [`BRIDGE_IN_FRAMES`](crate::bridge::BRIDGE_IN_FRAMES): the oldest is dropped (and
    /// counted) for a newer one, so a frame goes out at the latest on the second tick after
    /// it was pushed.
    pub fn push_bridge_frame(&mut self, frame: &BridgeFrame) {
        if let Some(bridge) = &mut self.bridge
            && bridge.to_send.push(frame)
        {
            self.stats.bridge_frames_dropped += 1;
        }
    }

    /// Moves every frame this session has for the bridge ([`take_bridge_frame`]) to `other`
    /// ([`push_bridge_frame`]); returns how many. For drivers that run both legs on one
    /// thread: call it for each direction after every `handle_rtp` / `handle_timeout` of
    /// either session.
    ///
    /// [`take_bridge_frame`]: Self::take_bridge_frame
    /// [`push_bridge_frame`]: Self::push_bridge_frame
    pub fn forward_bridge_frames(&mut self, other: &mut MediaSession) -> usize {
        let mut moved = 0;
        while let Some(frame) = self.take_bridge_frame() {
            other.push_bridge_frame(&frame);
            moved += 1;
        }
        moved
    }
}

#[cfg(test)]
mod bridge_tests;
#[cfg(test)]
mod rtcp_tests;
#[cfg(test)]
mod tests;
