//! Sample-rate conversion with rubato's FFT resampler.
//!
//! [`FrameResampler`] converts a stream of fixed-size frames (e.g. 20 ms of 8 kHz caller audio
//! into 16 kHz for VAD and speech-to-text); it is created once per call and does not allocate
//! per frame. [`resample_buffer`] converts a whole clip (e.g. text-to-speech output at 22050 Hz
//! to 8 kHz) with the resampler's start-up delay trimmed, so output sample `k` lines up with
//! input time `k / to_hz` and the length is `ceil(len * to / from)`.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use crate::error::MediaError;

/// Streaming fixed-ratio resampler for equal-size mono frames of 16-bit PCM.
///
/// Uses rubato's `Fft` with both chunk sizes fixed: every call consumes exactly
/// [`input_frame_len`](Self::input_frame_len) samples and produces exactly
/// [`output_frame_len`](Self::output_frame_len). The output lags the input by
/// [`delay_samples`](Self::delay_samples) output samples (10 ms for 8k→16k with 160-sample
/// frames).
pub struct FrameResampler {
    resampler: Fft<f32>,
    input: Vec<f32>,
    output: Vec<f32>,
    output_pcm: Vec<i16>,
    input_len: usize,
    output_len: usize,
}

impl std::fmt::Debug for FrameResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameResampler")
            .field("input_len", &self.input_len)
            .field("output_len", &self.output_len)
            .finish()
    }
}

impl FrameResampler {
    /// Creates a resampler from `from_hz` to `to_hz` for frames of `frame_len` input samples.
    /// The actual frame length may be rounded up so that the ratio is exact; read it back with
    /// [`input_frame_len`](Self::input_frame_len). For 8000→16000 with 160 it stays 160 → 320.
    pub fn new(from_hz: u32, to_hz: u32, frame_len: usize) -> Result<Self, MediaError> {
        let resampler = Fft::<f32>::new(
            from_hz as usize,
            to_hz as usize,
            frame_len,
            1,
            FixedSync::Both,
        )
        .map_err(|e| MediaError::Resampler(e.to_string()))?;
        let input_len = resampler.input_frames_next();
        let output_len = resampler.output_frames_next();
        Ok(Self {
            input: vec![0.0; resampler.input_frames_max().max(input_len)],
            output: vec![0.0; resampler.output_frames_max().max(output_len)],
            output_pcm: vec![0; output_len],
            resampler,
            input_len,
            output_len,
        })
    }

    /// The 20 ms narrowband → wideband resampler the inbound path uses: 160 samples at 8 kHz in,
    /// 320 samples at 16 kHz out.
    pub fn narrowband_to_wideband() -> Result<Self, MediaError> {
        Self::new(8000, 16000, 160)
    }

    /// Input samples consumed per call.
    pub fn input_frame_len(&self) -> usize {
        self.input_len
    }

    /// Output samples produced per call.
    pub fn output_frame_len(&self) -> usize {
        self.output_len
    }

    /// Delay of the output relative to the input, in output samples.
    pub fn delay_samples(&self) -> usize {
        self.resampler.output_delay()
    }

    /// Resamples one frame. `frame` shorter than [`input_frame_len`](Self::input_frame_len) is
    /// padded with silence; extra samples are ignored. Returns the output frame, valid until the
    /// next call. Allocation-free.
    pub fn process(&mut self, frame: &[i16]) -> &[i16] {
        let n = frame.len().min(self.input_len);
        for (dst, &src) in self.input.iter_mut().zip(&frame[..n]) {
            *dst = src as f32 / 32768.0;
        }
        for dst in &mut self.input[n..self.input_len] {
            *dst = 0.0;
        }
        let produced = match (
            InterleavedSlice::new(&self.input[..], 1, self.input_len),
            InterleavedSlice::new_mut(&mut self.output[..], 1, self.output_len),
        ) {
            (Ok(input), Ok(mut output)) => self
                .resampler
                .process_into_buffer(&input, &mut output, None)
                .map(|(_, written)| written)
                .unwrap_or(0),
            _ => 0,
        };
        for (dst, &src) in self.output_pcm.iter_mut().zip(&self.output[..produced]) {
            *dst = float_to_i16(src);
        }
        for dst in &mut self.output_pcm[produced..] {
            *dst = 0;
        }
        &self.output_pcm
    }

    /// Clears the resampler's history (e.g. after a stream reset).
    pub fn reset(&mut self) {
        self.resampler.reset();
    }
}

#[inline]
fn float_to_i16(x: f32) -> i16 {
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Resamples a whole mono clip from `from_hz` to `to_hz` and returns exactly
/// `ceil(input.len() * to_hz / from_hz)` samples aligned with the input (rubato's output delay
/// is trimmed and no padding is left at either end). Returns a copy when the rates are equal
/// and an empty vector for an empty input or a zero rate. Allocates; not for the per-frame path.
pub fn resample_buffer(input: &[i16], from_hz: u32, to_hz: u32) -> Vec<i16> {
    if input.is_empty() || from_hz == 0 || to_hz == 0 {
        return Vec::new();
    }
    if from_hz == to_hz {
        return input.to_vec();
    }
    let Ok(mut resampler) =
        Fft::<f32>::new(from_hz as usize, to_hz as usize, 1024, 1, FixedSync::Both)
    else {
        return Vec::new();
    };
    let samples: Vec<f32> = input.iter().map(|&s| s as f32 / 32768.0).collect();
    let Ok(adapter) = InterleavedSlice::new(&samples[..], 1, samples.len()) else {
        return Vec::new();
    };
    match resampler.process_all(&adapter, samples.len(), None) {
        Ok(out) => out.take_data().into_iter().map(float_to_i16).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: u32, len: usize, amplitude: f64) -> Vec<i16> {
        (0..len)
            .map(|i| {
                (amplitude * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin())
                    as i16
            })
            .collect()
    }

    /// Estimated frequency from upward zero crossings over the middle part of a signal.
    fn zero_crossing_freq(signal: &[i16], rate: u32) -> f64 {
        let skip = signal.len() / 10;
        let part = &signal[skip..signal.len() - skip];
        let crossings: Vec<usize> = part
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] < 0 && w[1] >= 0)
            .map(|(i, _)| i)
            .collect();
        let first = *crossings.first().unwrap();
        let last = *crossings.last().unwrap();
        (crossings.len() - 1) as f64 * rate as f64 / (last - first) as f64
    }

    fn rms(signal: &[i16]) -> f64 {
        (signal.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / signal.len() as f64).sqrt()
    }

    #[test]
    fn frame_resampler_doubles_each_frame_and_keeps_the_tone() {
        let mut r = FrameResampler::narrowband_to_wideband().unwrap();
        assert_eq!(r.input_frame_len(), 160);
        assert_eq!(r.output_frame_len(), 320);
        let input = tone(440.0, 8000, 160 * 50, 10000.0);
        let mut out = Vec::new();
        for frame in input.chunks(160) {
            let o = r.process(frame);
            assert_eq!(o.len(), 320);
            out.extend_from_slice(o);
        }
        let f = zero_crossing_freq(&out, 16000);
        assert!((f - 440.0).abs() < 2.0, "frequency {f}");
        let steady = &out[out.len() / 4..];
        let level = rms(steady);
        assert!((level - 10000.0 / 2f64.sqrt()).abs() < 300.0, "rms {level}");
        // The delay is reported and the first output starts with it (near silence).
        let delay = r.delay_samples();
        assert!(delay > 0 && delay <= 320, "delay {delay}");
    }

    #[test]
    fn frame_resampler_pads_short_frames() {
        let mut r = FrameResampler::narrowband_to_wideband().unwrap();
        let o = r.process(&[1000; 10]);
        assert_eq!(o.len(), 320);
    }

    #[test]
    fn whole_buffer_22050_to_8000_has_exact_length_and_no_delay() {
        let input = tone(300.0, 22050, 22050, 12000.0);
        let out = resample_buffer(&input, 22050, 8000);
        assert_eq!(out.len(), 8000);
        let f = zero_crossing_freq(&out, 8000);
        assert!((f - 300.0).abs() < 1.5, "frequency {f}");
        // No leading delay: the sine starts at phase 0 and rises, so sample 5 (≈0.6 ms) is
        // clearly positive and matches the ideal value closely.
        let ideal =
            |k: usize| 12000.0 * (2.0 * std::f64::consts::PI * 300.0 * k as f64 / 8000.0).sin();
        for k in [20usize, 100, 4000, 7900] {
            let err = (out[k] as f64 - ideal(k)).abs();
            assert!(err < 600.0, "sample {k}: {} vs {}", out[k], ideal(k));
        }
    }

    #[test]
    fn whole_buffer_8000_to_16000_and_identity() {
        let input = tone(1000.0, 8000, 1234, 8000.0);
        let out = resample_buffer(&input, 8000, 16000);
        assert_eq!(out.len(), 2468);
        assert_eq!(resample_buffer(&input, 8000, 8000), input);
        assert!(resample_buffer(&[], 8000, 16000).is_empty());
        assert!(resample_buffer(&input, 0, 16000).is_empty());
        // 24 kHz → 8 kHz: odd length rounds up.
        let out = resample_buffer(&tone(500.0, 24000, 1001, 8000.0), 24000, 8000);
        assert_eq!(out.len(), 334);
    }
}
