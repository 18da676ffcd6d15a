//! Bridging two media sessions: the media half of a bridged transfer, where the caller (leg A)
//! and a human reached on a second call (leg B) talk to each other through vaani.
//!
//! While a [`MediaSession`](crate::MediaSession) is bridged
//! ([`start_bridge`](crate::MediaSession::start_bridge)):
//!
//! * **Its received audio leaves as frames.** Every 20 ms of 8 kHz PCM its jitter buffer
//!   releases — decoded received audio, concealment of lost packets (faded, at most
//!   `plc_max_ms`, then silence) and silence for timestamp gaps — becomes one frame for
//!   [`take_bridge_frame`](crate::MediaSession::take_bridge_frame), in media order, each
//!   exactly once. The frames of a packet longer than 20 ms (30–60 ms packetisation) are paced
//!   one per tick of the session, as if each had come in a packet of its own. Nothing is
//!   produced while the peer sends nothing (hold, a dead line).
//! * **Its outbound stream carries the other leg's frames** given to
//!   [`push_bridge_frame`](crate::MediaSession::push_bridge_frame), one per 20 ms tick,
//!   encoded with its own G.711 law and protected with its own SRTP keys: the two legs may use
//!   different laws and either may be secured. A tick with no frame sends silence — never a
//!   repeat of an older frame. A session holds at most [`BRIDGE_IN_FRAMES`] frames (the one
//!   due next and one more); pushing into a full one drops the oldest, so a frame goes out on
//!   the first tick after it was pushed or on the one after that: **at most one tick of delay
//!   beyond the jitter buffer**, at the cost of dropping audio that arrives in a burst of more
//!   than two frames (after a network stall). Dropped frames and silent ticks are counted in
//!   [`MediaStats`](crate::MediaStats) (`bridge_frames_dropped`, `bridge_underruns`).
//! * **Its playback queue is held, not lost**: items queued before or during the bridge stay
//!   queued, exactly where they stopped, and play on after
//!   [`end_bridge`](crate::MediaSession::end_bridge). Caller speech cannot barge in on them
//!   meanwhile (a barge-in hold in progress is released without counting), nor can the
//!   speech segment still going on when the bridge ends (it was said to the other leg); the
//!   next one can.
//! * **Everything else goes on**: VAD, speech events, utterances, received DTMF, the RTP
//!   timeout, DTMF sending (digits replace the bridged audio while they go out, as they replace
//!   playback), hold ([`set_direction`](crate::MediaSession::set_direction): frames keep being
//!   consumed on schedule while nothing is sent, so sending resumes with current audio).
//!
//! Starting and ending a bridge are reported as
//! [`MediaEvent::Bridged`](crate::MediaEvent::Bridged) and
//! [`MediaEvent::Unbridged`](crate::MediaEvent::Unbridged) with an [`UnbridgeReason`].
//!
//! Sans-IO drivers on one thread move frames with
//! [`forward_bridge_frames`](crate::MediaSession::forward_bridge_frames) after each step of
//! either session; the [engine](crate::engine) does it with a bounded channel per direction, so
//! the two legs may live on different shards (see
//! [`SessionHandle::bridge`](crate::SessionHandle::bridge)).
//!
//! No allocation per frame: a session allocates its two frame rings once, when the bridge
//! starts; the engine's channels are fixed-size arrays allocated when the bridge is made.
//!
//! # Cost
//!
//! Measured with `cargo bench -p vaani-media --bench bridge` (release build, the 2-vCPU Xeon VM
//! of `reference/media.md`, shared with other builds, so ±10 %), per 20 ms of one bridged
//! pair: both legs receive one packet and run their whole inbound path (jitter buffer, G.711
//! decode, 8→16 kHz resampling, VAD), frames cross both ways, and each leg encodes and sends
//! one packet (PCMU on one leg, PCMA on the other):
//!
//! | per 20 ms, both legs | µs | one core |
//! |---|---:|---:|
//! | bridged, [`EnergyVad`](crate::EnergyVad) | 5.7–6.2 | 0.03 % |
//! | the same two sessions not bridged (each playing its empty queue) | 5.8–6.7 | 0.03 % |
//! | bridged, SRTP (AES-CM-128, HMAC-SHA1-80) on both legs | 7.6–8.3 | 0.04 % |
//! | bridged, [`EarshotVad`](crate::EarshotVad) (the server's VAD) | 23 | 0.12 % |
//! | engine only: both frames through their shard-to-shard channels | 0.12 | 0.0006 % |
//!
//! The bridge's own work — four 320-byte frame copies per pair instead of two playout
//! frames — is below the noise of the pair measurement: bridging costs no more than playing
//! silence. The VAD (kept running on both legs) dominates.

use crate::playout::FRAME_SAMPLES;

/// One 20 ms frame of 8 kHz 16-bit mono PCM.
pub type BridgeFrame = [i16; FRAME_SAMPLES];

/// Frames of a bridged session's received audio held for
/// [`take_bridge_frame`](crate::MediaSession::take_bridge_frame) (room for a 60 ms packet
/// and a burst behind it); past this the oldest is dropped (the other leg could not have
/// sent it in time anyway).
pub const BRIDGE_OUT_FRAMES: usize = 6;

/// Frames of the other leg held for a bridged session's outbound stream: the one due at the
/// next tick and one more. This is the delay bound: one tick.
pub const BRIDGE_IN_FRAMES: usize = 2;

/// Why a bridge ended ([`MediaEvent::Unbridged`](crate::MediaEvent::Unbridged)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnbridgeReason {
    /// This session's side asked: `unbridge`, or a new `bridge` replaced this one.
    Requested,
    /// The other session's side asked (its `unbridge`, or it was bridged elsewhere).
    PeerUnbridged,
    /// The other session was closed (or never opened).
    PeerClosed,
}

/// A fixed ring of frames, each with the tick from which it may be taken; pushing into a
/// full ring drops the oldest.
#[derive(Debug)]
pub(crate) struct FrameRing<const N: usize> {
    frames: [BridgeFrame; N],
    ready: [u64; N],
    head: usize,
    len: usize,
}

impl<const N: usize> FrameRing<N> {
    pub(crate) fn new() -> Self {
        Self {
            frames: [[0; FRAME_SAMPLES]; N],
            ready: [0; N],
            head: 0,
            len: 0,
        }
    }

    /// Appends `frame`; returns true when the oldest frame had to be dropped for it.
    pub(crate) fn push(&mut self, frame: &BridgeFrame) -> bool {
        self.push_ready_at(frame, 0)
    }

    /// Appends `frame`, to be taken by [`pop_ready`](Self::pop_ready) from tick `ready` on;
    /// returns true when the oldest frame had to be dropped for it.
    pub(crate) fn push_ready_at(&mut self, frame: &BridgeFrame, ready: u64) -> bool {
        let dropped = self.len == N;
        if dropped {
            self.head = (self.head + 1) % N;
            self.len -= 1;
        }
        let tail = (self.head + self.len) % N;
        self.frames[tail] = *frame;
        self.ready[tail] = ready;
        self.len += 1;
        dropped
    }

    /// Removes the oldest frame if it may be taken at tick `now` (frames stay in order: a
    /// later one never overtakes it).
    pub(crate) fn pop_ready(&mut self, now: u64) -> Option<BridgeFrame> {
        if self.len == 0 || self.ready[self.head] > now {
            return None;
        }
        let mut frame = [0; FRAME_SAMPLES];
        self.pop_into(&mut frame);
        Some(frame)
    }

    /// Moves the oldest frame into `out`, ready or not; false (and `out` untouched) when
    /// empty.
    pub(crate) fn pop_into(&mut self, out: &mut BridgeFrame) -> bool {
        if self.len == 0 {
            return false;
        }
        *out = self.frames[self.head];
        self.head = (self.head + 1) % N;
        self.len -= 1;
        true
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// A bridged session's frames: its received audio on the way out, the other leg's on the way
/// in.
#[derive(Debug)]
pub(crate) struct BridgeState {
    /// Received frames, paced by the session's own ticks: the k-th 20 ms frame of one packet
    /// (a 40 or 60 ms packet has several) may be taken k ticks after the packet was released,
    /// when it would have been had it come in a packet of its own.
    pub(crate) received: FrameRing<BRIDGE_OUT_FRAMES>,
    pub(crate) to_send: FrameRing<BRIDGE_IN_FRAMES>,
    /// The session's tick count when the jitter buffer released the audio being framed.
    pub(crate) release_tick: u64,
}

impl BridgeState {
    pub(crate) fn new() -> Self {
        Self {
            received: FrameRing::new(),
            to_send: FrameRing::new(),
            release_tick: 0,
        }
    }
}

/// Test frames that can be recognised after two G.711 conversions.
#[cfg(test)]
pub(crate) mod test_signal {
    use crate::playout::FRAME_SAMPLES;

    const TAG_LEVEL: i16 = 8000;

    /// A frame whose first 8 samples carry `id` in their signs (±8000) and whose rest is a
    /// 1 kHz square wave of amplitude `tone` (which tells directions and sources apart).
    pub(crate) fn tagged_frame(id: u8, tone: i16) -> [i16; FRAME_SAMPLES] {
        let mut frame = [0; FRAME_SAMPLES];
        for (k, sample) in frame.iter_mut().enumerate() {
            *sample = if k < 8 {
                if (id >> k) & 1 == 1 {
                    TAG_LEVEL
                } else {
                    -TAG_LEVEL
                }
            } else if (k / 4) % 2 == 0 {
                tone
            } else {
                -tone
            };
        }
        frame
    }

    /// What one received 20 ms frame sounds like.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Heard {
        /// Digital silence (within G.711's smallest step).
        Silence,
        /// Tagged frame `id` of the expected tone, every sample within two G.711 roundings.
        Frame(u8),
        /// Anything else (concealment, another tone, playback).
        Other,
    }

    /// Recognises a decoded frame as silence or as the tagged frame of `tone`.
    pub(crate) fn hear(pcm: &[i16], tone: i16) -> Heard {
        if pcm.iter().all(|s| s.unsigned_abs() < 64) {
            return Heard::Silence;
        }
        let id = (0..8).fold(0u8, |id, k| id | (u8::from(pcm[k] > 0) << k));
        let reference = tagged_frame(id, tone);
        // µ-law and A-law each round within 1/32 of the magnitude (plus the smallest step).
        let close = pcm
            .iter()
            .zip(&reference)
            .all(|(&x, &r)| (i32::from(x) - i32::from(r)).abs() <= i32::from(r).abs() / 16 + 16);
        if close {
            Heard::Frame(id)
        } else {
            Heard::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(v: i16) -> BridgeFrame {
        [v; FRAME_SAMPLES]
    }

    #[test]
    fn ring_keeps_the_newest_frames_in_order() {
        let mut ring = FrameRing::<2>::new();
        assert_eq!(ring.pop_ready(0), None);
        assert!(!ring.push(&frame(1)));
        assert!(!ring.push(&frame(2)));
        assert!(ring.push(&frame(3)), "full: the oldest goes");
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.pop_ready(0), Some(frame(2)));
        assert!(!ring.push(&frame(4)));
        let mut out = frame(0);
        assert!(ring.pop_into(&mut out));
        assert_eq!(out, frame(3));
        assert_eq!(ring.pop_ready(0), Some(frame(4)));
        assert!(!ring.pop_into(&mut out));
        assert_eq!(out, frame(3), "an empty ring leaves the output alone");
        assert_eq!(ring.len(), 0);
    }

    #[test]
    fn frames_are_taken_from_their_tick_and_in_order() {
        let mut ring = FrameRing::<4>::new();
        ring.push_ready_at(&frame(1), 5);
        ring.push_ready_at(&frame(2), 6);
        ring.push_ready_at(&frame(3), 5);
        assert_eq!(ring.pop_ready(4), None);
        assert_eq!(ring.pop_ready(5), Some(frame(1)));
        assert_eq!(ring.pop_ready(5), None, "frame 3 waits behind frame 2");
        assert_eq!(ring.pop_ready(6), Some(frame(2)));
        assert_eq!(ring.pop_ready(6), Some(frame(3)));
    }
}
