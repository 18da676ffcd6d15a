//! Call recording on the media path: pairs, per outbound 20 ms tick, the caller's frame
//! (what the jitter buffer released: decoded, concealed, 8 kHz) with the agent's frame (what
//! went out on that tick, or silence) and hands them to the call in batches as
//! [`MediaEvent::Recorded`](crate::MediaEvent::Recorded). No file I/O, no locks: one
//! allocation per batch (every [`RECORD_BATCH_FRAMES`] ticks).
//!
//! Both channels run on the outbound tick clock, so they stay time-aligned: a tick with no
//! caller frame ready records caller silence (nothing received yet, or a stalled peer), and
//! caller frames released in a burst wait in a small ring (at most
//! [`CALLER_BACKLOG_FRAMES`]; older ones are dropped) for the following ticks.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::playout::FRAME_SAMPLES;
use crate::session::MediaEvent;

/// Ticks (20 ms each) in one [`MediaEvent::Recorded`](crate::MediaEvent::Recorded) batch.
pub const RECORD_BATCH_FRAMES: usize = 10;
/// Caller frames kept waiting for a tick before the oldest is dropped.
pub const CALLER_BACKLOG_FRAMES: usize = 10;

/// The per-session recording state (see the module docs).
pub(crate) struct Recorder {
    caller: VecDeque<[i16; FRAME_SAMPLES]>,
    /// Interleaved stereo (caller, agent) of the batch being filled.
    batch: Vec<i16>,
    /// Tick of the batch's first frame.
    batch_tick: u64,
    /// Caller frames dropped because the ring was full.
    pub(crate) dropped_caller_frames: u64,
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Self {
            caller: VecDeque::with_capacity(CALLER_BACKLOG_FRAMES),
            batch: Vec::with_capacity(2 * FRAME_SAMPLES * RECORD_BATCH_FRAMES),
            batch_tick: 0,
            dropped_caller_frames: 0,
        }
    }

    /// One 20 ms caller frame released by the jitter buffer.
    pub(crate) fn push_caller(&mut self, frame: &[i16; FRAME_SAMPLES]) {
        if self.caller.len() == CALLER_BACKLOG_FRAMES {
            self.caller.pop_front();
            self.dropped_caller_frames += 1;
        }
        self.caller.push_back(*frame);
    }

    /// Outbound tick `tick`: `agent` is the frame sent on it (`None`: nothing audible went
    /// out). Emits a batch when it is full, or early when ticks were skipped.
    pub(crate) fn on_tick(
        &mut self,
        tick: u64,
        agent: Option<&[i16; FRAME_SAMPLES]>,
        events: &mut VecDeque<MediaEvent>,
    ) {
        let frames = self.batch.len() / (2 * FRAME_SAMPLES);
        if frames > 0 && tick != self.batch_tick + frames as u64 {
            self.flush(events);
        }
        if self.batch.is_empty() {
            self.batch_tick = tick;
        }
        let caller = self.caller.pop_front();
        let at = self.batch.len();
        self.batch.resize(at + 2 * FRAME_SAMPLES, 0);
        let frame = &mut self.batch[at..];
        if let Some(caller) = &caller {
            for (pair, &sample) in frame.chunks_exact_mut(2).zip(caller) {
                pair[0] = sample;
            }
        }
        if let Some(agent) = agent {
            for (pair, &sample) in frame.chunks_exact_mut(2).zip(agent) {
                pair[1] = sample;
            }
        }
        if self.batch.len() == 2 * FRAME_SAMPLES * RECORD_BATCH_FRAMES {
            self.flush(events);
        }
    }

    /// Emits what the current batch holds, if anything.
    pub(crate) fn flush(&mut self, events: &mut VecDeque<MediaEvent>) {
        if self.batch.is_empty() {
            return;
        }
        events.push_back(MediaEvent::Recorded {
            start_ms: self.batch_tick * 20,
            audio: Arc::from(&self.batch[..]),
        });
        self.batch.clear();
    }
}
