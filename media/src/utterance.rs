//! Utterance capture for speech-to-text: a bounded history of recent 16 kHz caller audio
//! ([`AudioHistory`]) and the collector ([`UtteranceCollector`]) that cuts each speech segment
//! out of the caller's stream, with some audio before the onset (pre-roll) and some of the
//! silence that ended it (tail), in pieces of bounded length.
//!
//! All positions are absolute sample indices of the 16 kHz stream that feeds the VAD (sample
//! `k` is at media time `k / 16` ms, the timeline of [`SpeechEvent`]s).

use std::collections::VecDeque;
use std::sync::Arc;

use crate::session::MediaEvent;
use crate::vad::SpeechEvent;

/// Samples per millisecond at 16 kHz.
pub(crate) const SAMPLES_PER_MS: u64 = 16;
/// Samples of one 20 ms frame at 16 kHz.
const FRAME_SAMPLES_16K: u64 = 20 * SAMPLES_PER_MS;
/// Upper bound of the configurable pre-roll (it is kept in every session's history).
pub(crate) const MAX_PREROLL_MS: u32 = 5_000;
/// Bounds of the configurable utterance length (the collection buffer is sized by it).
pub(crate) const MIN_UTTERANCE_MS: u32 = 100;
/// See [`MIN_UTTERANCE_MS`].
pub(crate) const MAX_UTTERANCE_MS: u32 = 600_000;

/// A fixed-size ring of the most recent 16 kHz caller audio, addressed by absolute sample
/// index. Allocated once; writing never allocates.
pub(crate) struct AudioHistory {
    samples: Box<[i16]>,
    written: u64,
}

impl AudioHistory {
    /// A ring holding the last `capacity` samples (0: keeps nothing, only counts).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            samples: vec![0; capacity].into_boxed_slice(),
            written: 0,
        }
    }

    fn capacity(&self) -> u64 {
        self.samples.len() as u64
    }

    /// Appends audio, overwriting the oldest.
    pub(crate) fn push(&mut self, mut pcm: &[i16]) {
        let capacity = self.samples.len();
        if capacity == 0 {
            self.written += pcm.len() as u64;
            return;
        }
        if pcm.len() > capacity {
            let skip = pcm.len() - capacity;
            self.written += skip as u64;
            pcm = &pcm[skip..];
        }
        let start = (self.written % capacity as u64) as usize;
        let first = pcm.len().min(capacity - start);
        self.samples[start..start + first].copy_from_slice(&pcm[..first]);
        self.samples[..pcm.len() - first].copy_from_slice(&pcm[first..]);
        self.written += pcm.len() as u64;
    }

    /// Total samples written so far (the index of the next sample).
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Index of the oldest sample still held.
    pub(crate) fn oldest(&self) -> u64 {
        self.written.saturating_sub(self.capacity())
    }

    /// Appends samples `from..to` (clamped to what is held) to `out`; returns how many.
    pub(crate) fn copy_range(&self, from: u64, to: u64, out: &mut Vec<i16>) -> usize {
        let from = from.max(self.oldest());
        let to = to.min(self.written);
        if from >= to {
            return 0;
        }
        let capacity = self.capacity();
        let len = (to - from) as usize;
        let start = (from % capacity) as usize;
        let first = len.min(self.samples.len() - start);
        out.extend_from_slice(&self.samples[start..start + first]);
        out.extend_from_slice(&self.samples[..len - first]);
        len
    }
}

/// Utterance settings, already clamped to sane bounds (in samples).
#[derive(Debug, Clone, Copy)]
pub(crate) struct UtteranceLimits {
    preroll: u64,
    tail: u64,
    max: u64,
    capacity: usize,
}

impl UtteranceLimits {
    /// Limits from the session configuration; `hangover_ms` is the VAD's (the collection
    /// buffer must hold a piece plus a hangover's worth of silence without growing).
    pub(crate) fn new(preroll_ms: u32, tail_ms: u32, max_ms: u32, hangover_ms: u32) -> Self {
        let max_ms = max_ms.clamp(MIN_UTTERANCE_MS, MAX_UTTERANCE_MS);
        let hangover_ms = hangover_ms.min(MAX_UTTERANCE_MS);
        let max = max_ms as u64 * SAMPLES_PER_MS;
        Self {
            preroll: preroll_ms.min(MAX_PREROLL_MS) as u64 * SAMPLES_PER_MS,
            tail: tail_ms.min(MAX_UTTERANCE_MS) as u64 * SAMPLES_PER_MS,
            max,
            capacity: (max + hangover_ms as u64 * SAMPLES_PER_MS + 2 * FRAME_SAMPLES_16K) as usize,
        }
    }

    /// History the collector needs at onset: the pre-roll plus the run of frames the detector
    /// needs before it declares speech (`min_speech_ms`, in whole frames), plus a frame.
    pub(crate) fn history_samples(&self, min_speech_ms: u32) -> usize {
        let onset_frames = (min_speech_ms as u64).div_ceil(20).max(1);
        (self.preroll + (onset_frames + 1) * FRAME_SAMPLES_16K) as usize
    }
}

/// The utterance being collected.
struct Collecting {
    /// Speech onset (whole segment, not the current piece).
    onset: u64,
    /// Stream index of `audio[0]`.
    start: u64,
    /// Allocated once at onset; reused for the following pieces of the same segment.
    audio: Vec<i16>,
}

/// Turns speech boundaries plus the caller's audio into [`MediaEvent::Utterance`]s.
pub(crate) struct UtteranceCollector {
    limits: UtteranceLimits,
    current: Option<Collecting>,
    /// End of the last emitted piece: utterances never overlap.
    last_end: u64,
}

impl UtteranceCollector {
    pub(crate) fn new(limits: UtteranceLimits) -> Self {
        Self {
            limits,
            current: None,
            last_end: 0,
        }
    }

    /// Handles one 20 ms frame that was just appended to `history` and scored by the speech
    /// detector (`event`: the boundary it crossed; `quiet_ms`: how long the current segment has
    /// been below the off threshold). Pushes finished utterances to `events`.
    pub(crate) fn on_frame(
        &mut self,
        history: &AudioHistory,
        frame: &[i16],
        event: Option<SpeechEvent>,
        quiet_ms: u32,
        events: &mut VecDeque<MediaEvent>,
    ) {
        let now = history.written();
        match event {
            Some(SpeechEvent::Started { media_ms }) => {
                let onset = media_ms as u64 * SAMPLES_PER_MS;
                let start = onset
                    .saturating_sub(self.limits.preroll)
                    .max(self.last_end)
                    .max(history.oldest())
                    .max(now.saturating_sub(self.limits.max));
                let mut audio = Vec::with_capacity(self.limits.capacity);
                history.copy_range(start, now, &mut audio);
                self.current = Some(Collecting {
                    onset,
                    start,
                    audio,
                });
            }
            Some(SpeechEvent::Stopped { duration_ms }) => {
                let Some(mut current) = self.current.take() else {
                    return;
                };
                current.audio.extend_from_slice(frame);
                let speech_end = current.onset + duration_ms as u64 * SAMPLES_PER_MS;
                let end = (speech_end + self.limits.tail)
                    .min(now)
                    .min(current.start + self.limits.max)
                    .max(current.start);
                let len = (end - current.start) as usize;
                current.audio.truncate(len);
                emit_piece(&mut self.last_end, current.start, &current.audio, events);
            }
            None => {
                let Some(current) = &mut self.current else {
                    return;
                };
                current.audio.extend_from_slice(frame);
                // Cut only while the caller is talking: during a pause the segment may end, and
                // its tail must stay with the speech before it.
                if quiet_ms == 0 {
                    let max = self.limits.max as usize;
                    let mut cut = 0;
                    while current.audio.len() - cut >= max {
                        let piece = &current.audio[cut..cut + max];
                        emit_piece(&mut self.last_end, current.start, piece, events);
                        current.start += self.limits.max;
                        cut += max;
                    }
                    if cut > 0 {
                        current.audio.drain(..cut);
                    }
                }
            }
        }
    }
}

/// Pushes `audio` (starting at stream index `start`) as an utterance, unless it is empty.
fn emit_piece(last_end: &mut u64, start: u64, audio: &[i16], events: &mut VecDeque<MediaEvent>) {
    if audio.is_empty() {
        return;
    }
    let end = start + audio.len() as u64;
    *last_end = end;
    events.push_back(MediaEvent::Utterance {
        start_ms: to_ms(start),
        end_ms: to_ms(end),
        audio: Arc::from(audio),
    });
}

fn to_ms(sample: u64) -> u32 {
    (sample / SAMPLES_PER_MS).min(u32::MAX as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_most_recent_samples_by_absolute_index() {
        let mut h = AudioHistory::new(10);
        h.push(&[1, 2, 3, 4, 5, 6]);
        h.push(&[7, 8, 9, 10, 11, 12]);
        assert_eq!((h.written(), h.oldest()), (12, 2));
        let mut out = Vec::new();
        assert_eq!(h.copy_range(0, 12, &mut out), 10);
        assert_eq!(out, (3..=12).collect::<Vec<i16>>());
        out.clear();
        assert_eq!(h.copy_range(9, 11, &mut out), 2);
        assert_eq!(out, vec![10, 11]);
        out.clear();
        // Longer than the ring: only the last 10 are kept.
        h.push(&(100..125).collect::<Vec<i16>>());
        assert_eq!(h.copy_range(0, u64::MAX, &mut out), 10);
        assert_eq!(out, (115..125).collect::<Vec<i16>>());
        assert_eq!(h.copy_range(40, 30, &mut out), 0);
        let mut empty = AudioHistory::new(0);
        empty.push(&[1, 2, 3]);
        assert_eq!((empty.written(), empty.copy_range(0, 3, &mut out)), (3, 0));
    }

    #[test]
    fn limits_are_clamped() {
        let l = UtteranceLimits::new(u32::MAX, u32::MAX, u32::MAX, 500);
        assert_eq!(l.preroll, MAX_PREROLL_MS as u64 * 16);
        assert_eq!(l.max, MAX_UTTERANCE_MS as u64 * 16);
        let l = UtteranceLimits::new(300, 300, 0, 500);
        assert_eq!(l.max, MIN_UTTERANCE_MS as u64 * 16);
        // 300 ms pre-roll + 100 ms onset run + one frame.
        assert_eq!(l.history_samples(100), 420 * 16);
        assert_eq!(l.history_samples(0), 340 * 16);
    }
}
