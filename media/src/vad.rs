//! Voice activity detection: a per-frame speech probability ([`Vad`]) and a hysteresis state
//! machine on top of it ([`SpeechDetector`]) that turns probabilities into speech start/stop
//! events timed in media time (frames), never wall-clock time.
//!
//! Defaults follow media.md §2.3: earshot scores sit high on upsampled 8 kHz telephone audio,
//! so onset needs p ≥ 0.8 for 100 ms; offset is p < 0.5 for a 500 ms hangover.

/// A voice activity detector for 16 kHz mono PCM.
pub trait Vad: Send {
    /// Returns the probability (0..=1) that `pcm16k` (typically 20 ms = 320 samples) contains
    /// speech. Implementations may buffer internally and answer with their latest estimate.
    fn speech_probability(&mut self, pcm16k: &[i16]) -> f32;
}

/// Number of samples earshot scores at a time (16 ms at 16 kHz).
pub const EARSHOT_FRAME: usize = 256;

/// Input whose every sample is within ±this (−54 dBFS peak) is not speech: the detector scores
/// it 0 without running the network. Digital silence, a muted or idle line and the quiet
/// between a caller's sentences fall under it; the quietest speech peaks far above it.
pub const SILENCE_PEAK: i16 = 64;

/// The default detector: earshot (pure Rust neural VAD, weights compiled in, ~9 µs per 20 ms).
/// Buffers input into 256-sample frames; returns the mean score of the frames completed by this
/// call, or the previous score if none completed. Input under [`SILENCE_PEAK`] scores 0 at
/// once (the network is the largest cost of a call's media path, and half of a phone call is
/// the caller listening); the partial frame buffered before it is dropped.
pub struct EarshotVad {
    detector: Box<earshot::Detector>,
    pending: [i16; EARSHOT_FRAME],
    pending_len: usize,
    last: f32,
    gated: u64,
}

impl EarshotVad {
    /// Creates a detector (allocates ~8 KiB of state on the heap).
    pub fn new() -> Self {
        Self {
            detector: earshot::Detector::default_boxed(),
            pending: [0; EARSHOT_FRAME],
            pending_len: 0,
            last: 0.0,
            gated: 0,
        }
    }

    /// Calls answered 0 without running the network because the input was under
    /// [`SILENCE_PEAK`].
    pub fn gated_calls(&self) -> u64 {
        self.gated
    }
}

impl Default for EarshotVad {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for EarshotVad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EarshotVad")
            .field("last", &self.last)
            .finish()
    }
}

impl Vad for EarshotVad {
    fn speech_probability(&mut self, mut pcm16k: &[i16]) -> f32 {
        if pcm16k
            .iter()
            .all(|&s| (-SILENCE_PEAK..=SILENCE_PEAK).contains(&s))
        {
            self.gated += 1;
            self.pending_len = 0;
            self.last = 0.0;
            return 0.0;
        }
        let mut sum = 0.0f32;
        let mut count = 0u32;
        while !pcm16k.is_empty() {
            let take = (EARSHOT_FRAME - self.pending_len).min(pcm16k.len());
            self.pending[self.pending_len..self.pending_len + take]
                .copy_from_slice(&pcm16k[..take]);
            self.pending_len += take;
            pcm16k = &pcm16k[take..];
            if self.pending_len == EARSHOT_FRAME {
                let score = self.detector.predict_i16(&self.pending);
                if score >= 0.0 {
                    sum += score;
                    count += 1;
                }
                self.pending_len = 0;
            }
        }
        if count > 0 {
            self.last = (sum / count as f32).clamp(0.0, 1.0);
        }
        self.last
    }
}

/// A cheap energy detector (for tests and as a no-frills fallback): maps the frame's RMS level
/// linearly from `floor_dbfs` (probability 0) to `ceiling_dbfs` (probability 1).
#[derive(Debug, Clone)]
pub struct EnergyVad {
    /// Level (dBFS) at or below which the probability is 0.
    pub floor_dbfs: f32,
    /// Level (dBFS) at or above which the probability is 1.
    pub ceiling_dbfs: f32,
}

impl Default for EnergyVad {
    fn default() -> Self {
        Self {
            floor_dbfs: -50.0,
            ceiling_dbfs: -30.0,
        }
    }
}

impl Vad for EnergyVad {
    fn speech_probability(&mut self, pcm16k: &[i16]) -> f32 {
        if pcm16k.is_empty() {
            return 0.0;
        }
        let energy: f64 = pcm16k.iter().map(|&s| (s as f64) * (s as f64)).sum();
        let rms = (energy / pcm16k.len() as f64).sqrt();
        let dbfs = if rms < 1.0 {
            -100.0
        } else {
            20.0 * (rms / 32768.0).log10()
        } as f32;
        let span = (self.ceiling_dbfs - self.floor_dbfs).max(f32::EPSILON);
        ((dbfs - self.floor_dbfs) / span).clamp(0.0, 1.0)
    }
}

/// Thresholds and timings of the [`SpeechDetector`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// Probability at or above which a frame counts towards speech onset (default 0.8,
    /// calibrated for 8 kHz phone audio upsampled to 16 kHz).
    pub threshold_on: f32,
    /// Probability below which a frame counts towards the end of speech (default 0.5).
    pub threshold_off: f32,
    /// Continuous time at or above `threshold_on` before speech is declared (default 100 ms).
    pub min_speech_ms: u32,
    /// Continuous time below `threshold_off` before speech is declared over (default 500 ms).
    pub hangover_ms: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            threshold_on: 0.8,
            threshold_off: 0.5,
            min_speech_ms: 100,
            hangover_ms: 500,
        }
    }
}

/// A speech boundary found by the [`SpeechDetector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeechEvent {
    /// Speech began at `media_ms` (the start of the qualifying run, in caller media time).
    Started {
        /// Media time of the first frame of the run that reached `min_speech_ms`.
        media_ms: u32,
    },
    /// Speech ended; `duration_ms` is from its start to the first frame of the hangover.
    Stopped {
        /// Length of the speech segment (hangover excluded).
        duration_ms: u32,
    },
}

#[derive(Debug, Clone, Copy)]
enum DetectorState {
    Silence {
        run_start_ms: u32,
        run_ms: u32,
    },
    Speech {
        start_ms: u32,
        quiet_start_ms: u32,
        quiet_ms: u32,
    },
}

/// Hysteresis state machine over per-frame speech probabilities.
#[derive(Debug, Clone)]
pub struct SpeechDetector {
    config: VadConfig,
    media_ms: u32,
    state: DetectorState,
}

impl SpeechDetector {
    /// Creates a detector in the silent state at media time 0.
    pub fn new(config: VadConfig) -> Self {
        Self {
            config,
            media_ms: 0,
            state: DetectorState::Silence {
                run_start_ms: 0,
                run_ms: 0,
            },
        }
    }

    /// Feeds the probability of the next `frame_ms` of audio; returns an event when a boundary
    /// is crossed. Media time advances by `frame_ms`.
    pub fn push(&mut self, probability: f32, frame_ms: u32) -> Option<SpeechEvent> {
        let frame_start = self.media_ms;
        self.media_ms = self.media_ms.wrapping_add(frame_ms);
        match &mut self.state {
            DetectorState::Silence {
                run_start_ms,
                run_ms,
            } => {
                if probability >= self.config.threshold_on {
                    if *run_ms == 0 {
                        *run_start_ms = frame_start;
                    }
                    *run_ms += frame_ms;
                    if *run_ms >= self.config.min_speech_ms {
                        let start = *run_start_ms;
                        self.state = DetectorState::Speech {
                            start_ms: start,
                            quiet_start_ms: 0,
                            quiet_ms: 0,
                        };
                        return Some(SpeechEvent::Started { media_ms: start });
                    }
                } else {
                    *run_ms = 0;
                }
                None
            }
            DetectorState::Speech {
                start_ms,
                quiet_start_ms,
                quiet_ms,
            } => {
                if probability < self.config.threshold_off {
                    if *quiet_ms == 0 {
                        *quiet_start_ms = frame_start;
                    }
                    *quiet_ms += frame_ms;
                    if *quiet_ms >= self.config.hangover_ms {
                        let duration_ms = quiet_start_ms.wrapping_sub(*start_ms);
                        self.state = DetectorState::Silence {
                            run_start_ms: 0,
                            run_ms: 0,
                        };
                        return Some(SpeechEvent::Stopped { duration_ms });
                    }
                } else {
                    *quiet_ms = 0;
                }
                None
            }
        }
    }

    /// Whether the detector is currently in a speech segment.
    pub fn is_speaking(&self) -> bool {
        matches!(self.state, DetectorState::Speech { .. })
    }

    /// How long the current speech segment has lasted (0 when silent).
    pub fn speech_ms(&self) -> u32 {
        match self.state {
            DetectorState::Speech { start_ms, .. } => self.media_ms.wrapping_sub(start_ms),
            DetectorState::Silence { .. } => 0,
        }
    }

    /// How long the current speech segment has been below `threshold_off` (the hangover run
    /// so far; 0 while the caller is talking or when silent).
    pub fn quiet_ms(&self) -> u32 {
        match self.state {
            DetectorState::Speech { quiet_ms, .. } => quiet_ms,
            DetectorState::Silence { .. } => 0,
        }
    }

    /// Media time consumed so far.
    pub fn media_ms(&self) -> u32 {
        self.media_ms
    }

    /// The configuration in use.
    pub fn config(&self) -> &VadConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(detector: &mut SpeechDetector, probs: &[f32]) -> Vec<(u32, SpeechEvent)> {
        let mut events = Vec::new();
        for &p in probs {
            if let Some(e) = detector.push(p, 20) {
                events.push((detector.media_ms(), e));
            }
        }
        events
    }

    #[test]
    fn onset_needs_min_speech_above_on_threshold() {
        let mut d = SpeechDetector::new(VadConfig::default());
        // 4 frames (80 ms) above 0.8 then a dip to 0.7 (not ≥ on): no onset.
        let mut probs = vec![0.1; 5];
        probs.extend([0.9, 0.95, 0.85, 0.9, 0.7]);
        // 0.79 never counts, whatever the length.
        probs.extend([0.79; 20]);
        assert!(run(&mut d, &probs).is_empty());
        assert!(!d.is_speaking());
        // Now 5 frames at 0.9: onset on the 5th frame, start = the first of the run.
        let start = d.media_ms();
        let events = run(&mut d, &[0.9; 5]);
        assert_eq!(
            events,
            vec![(start + 100, SpeechEvent::Started { media_ms: start })]
        );
        assert!(d.is_speaking());
        assert_eq!(d.speech_ms(), 100);
    }

    #[test]
    fn offset_needs_hangover_below_off_threshold() {
        let mut d = SpeechDetector::new(VadConfig::default());
        assert_eq!(run(&mut d, &[0.9; 5]).len(), 1);
        // 1 s of speech at 0.6 (between the thresholds) keeps speaking.
        assert!(run(&mut d, &[0.6; 50]).is_empty());
        // 480 ms below 0.5, then back up: still speaking.
        let mut probs = vec![0.2; 24];
        probs.push(0.55);
        assert!(run(&mut d, &probs).is_empty());
        assert!(d.is_speaking());
        assert_eq!(d.quiet_ms(), 0, "speech resumed");
        assert_eq!(run(&mut d, &[0.3; 3]), vec![]);
        assert_eq!(d.quiet_ms(), 60);
        assert!(run(&mut d, &[0.9]).is_empty());
        assert_eq!(d.quiet_ms(), 0);
        // Speech so far: 100 + 1000 + 480 + 20 + 60 + 20 = 1680 ms. Then 500 ms of quiet ends it, and
        // the duration excludes the hangover.
        let events = run(&mut d, &[0.3; 25]);
        assert_eq!(
            events,
            vec![(2180, SpeechEvent::Stopped { duration_ms: 1680 })]
        );
        assert!(!d.is_speaking());
        assert_eq!((d.speech_ms(), d.quiet_ms()), (0, 0));
        // A second segment starts again with the same rules.
        let events = run(&mut d, &[0.85; 5]);
        assert_eq!(
            events,
            vec![(2280, SpeechEvent::Started { media_ms: 2180 })]
        );
    }

    #[test]
    fn custom_thresholds_and_frame_sizes() {
        let mut d = SpeechDetector::new(VadConfig {
            threshold_on: 0.5,
            threshold_off: 0.3,
            min_speech_ms: 30,
            hangover_ms: 30,
        });
        assert_eq!(d.push(0.5, 10), None);
        assert_eq!(d.push(0.5, 10), None);
        assert_eq!(d.push(0.5, 10), Some(SpeechEvent::Started { media_ms: 0 }));
        assert_eq!(d.push(0.29, 10), None);
        assert_eq!(d.push(0.29, 10), None);
        assert_eq!(
            d.push(0.29, 10),
            Some(SpeechEvent::Stopped { duration_ms: 30 })
        );
    }

    #[test]
    fn energy_vad_maps_level_to_probability() {
        let mut v = EnergyVad::default();
        assert_eq!(v.speech_probability(&[0; 320]), 0.0);
        assert_eq!(v.speech_probability(&[]), 0.0);
        // Full-scale square wave: 0 dBFS.
        let loud: Vec<i16> = (0..320)
            .map(|i| if i % 2 == 0 { 32000 } else { -32000 })
            .collect();
        assert_eq!(v.speech_probability(&loud), 1.0);
        // -40 dBFS ≈ rms 328 → halfway between -50 and -30.
        let mid = vec![328i16; 320];
        let p = v.speech_probability(&mid);
        assert!((p - 0.5).abs() < 0.02, "p = {p}");
    }

    #[test]
    fn earshot_scores_silence_low_and_buffers_partial_frames() {
        let mut v = EarshotVad::new();
        let mut last = 1.0;
        for _ in 0..50 {
            last = v.speech_probability(&[0; 320]);
        }
        assert!(last < 0.5, "silence scored {last}");
        // A short chunk that completes no 256-sample frame returns the previous score.
        let mut v = EarshotVad::new();
        let quiet_noise: Vec<i16> = (0..320)
            .map(|i| if i % 2 == 0 { 200 } else { -200 })
            .collect();
        assert_eq!(v.speech_probability(&quiet_noise[..100]), 0.0);
        assert_eq!(v.pending_len, 100);
        v.speech_probability(&quiet_noise[..200]);
        assert_eq!(v.pending_len, 44);
        assert_eq!(v.gated_calls(), 0);
    }

    #[test]
    fn earshot_gates_input_under_the_silence_peak() {
        let mut v = EarshotVad::new();
        let noise: Vec<i16> = (0..320).map(|i| ((i * 37) % 129) as i16 - 64).collect();
        assert_eq!(v.speech_probability(&noise), 0.0);
        assert_eq!(v.speech_probability(&[0; 320]), 0.0);
        assert_eq!(v.gated_calls(), 2);
        // One sample above the peak and the network runs (and buffers what it was given).
        let mut loud = noise.clone();
        loud[10] = SILENCE_PEAK + 1;
        v.speech_probability(&loud[..100]);
        assert_eq!(v.gated_calls(), 2);
        assert_eq!(v.pending_len, 100);
        // Silence after it drops the partial frame.
        v.speech_probability(&[0; 320]);
        assert_eq!(v.pending_len, 0);
        assert_eq!(v.gated_calls(), 3);
    }
}
