//! The vocoder half of hibari (its `dsp.py`): the network predicts a spectrum in five parts per
//! 12.5 ms frame; this turns it into a 24 kHz waveform. A band-limited pulse train from F0 is
//! filtered by the harmonic branch, shaped noise and a free-phase branch are added, and one
//! inverse STFT (n_fft 1200, hop 300, Hann) makes the audio:
//!
//! ```text
//! S = exp(lh) e^{i pi tanh(theta)} STFT(pulses(f0)) + exp(ln) Z + exp(lr) e^{i phi}
//! ```

use std::f32::consts::PI;
use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

/// Output sample rate of the model.
pub const SAMPLE_RATE: u32 = 24_000;
/// FFT size of the spectra.
pub(crate) const N_FFT: usize = 1200;
/// Samples per frame.
pub(crate) const HOP: usize = 300;
/// Frequency bins per frame.
pub(crate) const BINS: usize = N_FFT / 2 + 1;
/// Log-magnitudes are clamped here before `exp`.
const MAX_LOG_MAGNITUDE: f32 = 7.0;
/// Below this F0 (Hz) a sample is unvoiced.
const VOICING_THRESHOLD: f32 = 40.0;
/// Highest harmonic frequency in the pulse train (Hz).
const MAX_HARMONIC_HZ: f32 = 11_000.0;

/// The network's outputs for one utterance, each `[BINS][frames]` row-major, F0 per frame.
pub(crate) struct Spectra<'a> {
    pub frames: usize,
    pub harmonic_log_magnitude: &'a [f32],
    pub harmonic_phase: &'a [f32],
    pub noise_log_magnitude: &'a [f32],
    pub residual_log_magnitude: &'a [f32],
    pub residual_phase: &'a [f32],
    pub f0: &'a [f32],
}

/// Small deterministic generator of standard normal noise (xorshift64* and Box–Muller); the
/// noise only needs to be white, not cryptographic.
pub(crate) struct Noise {
    state: u64,
    spare: Option<f32>,
}

impl Noise {
    /// A generator with a fixed seed, so equal text gives equal audio.
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            state: seed ^ 0x9E37_79B9_7F4A_7C15 | 1,
            spare: None,
        }
    }

    fn next_unit(&mut self) -> f64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let bits = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        // (0, 1]: never zero, so the logarithm below is finite.
        (bits as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// One standard normal sample.
    pub(crate) fn standard_normal(&mut self) -> f32 {
        if let Some(spare) = self.spare.take() {
            return spare;
        }
        let radius = (-2.0 * self.next_unit().ln()).sqrt();
        let angle = 2.0 * std::f64::consts::PI * self.next_unit();
        self.spare = Some((radius * angle.sin()) as f32);
        (radius * angle.cos()) as f32
    }
}

/// FFT plans and windows, made once and shared.
pub(crate) struct Vocoder {
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    window: Vec<f32>,
    /// The window scaled so that a unit cosine's bin has magnitude 1.
    source_window: Vec<f32>,
}

fn clamped_exp(x: f32) -> f32 {
    x.min(MAX_LOG_MAGNITUDE).exp()
}

impl Vocoder {
    pub(crate) fn new() -> Self {
        let mut planner = RealFftPlanner::<f32>::new();
        let window: Vec<f32> = (0..N_FFT)
            .map(|n| 0.5 - 0.5 * (2.0 * PI * n as f32 / N_FFT as f32).cos())
            .collect();
        let source_window = window.iter().map(|w| w / (N_FFT as f32 / 4.0)).collect();
        Self {
            forward: planner.plan_fft_forward(N_FFT),
            inverse: planner.plan_fft_inverse(N_FFT),
            window,
            source_window,
        }
    }

    /// Waveform (-1..1 floats at [`SAMPLE_RATE`], `frames * HOP` samples) from the spectra.
    pub(crate) fn synthesize(&self, spectra: &Spectra<'_>, noise: &mut Noise) -> Vec<f32> {
        let frames = spectra.frames;
        if frames == 0 {
            return Vec::new();
        }
        let source = pulses(&spectra.f0[..frames]);
        let mut source_spectrum = self.stft(&source, frames);
        // Combine the three branches, bin-major like the network's outputs.
        for bin in 0..BINS {
            for frame in 0..frames {
                let at = bin * frames + frame;
                let spectrum_at = frame * BINS + bin;
                let phase = PI * spectra.harmonic_phase[at].tanh();
                let harmonic =
                    Complex32::from_polar(clamped_exp(spectra.harmonic_log_magnitude[at]), phase)
                        * source_spectrum[spectrum_at];
                let noise_gain = clamped_exp(spectra.noise_log_magnitude[at]);
                let noise_value = Complex32::new(
                    noise.standard_normal() * noise_gain,
                    noise.standard_normal() * noise_gain,
                );
                let residual = Complex32::from_polar(
                    clamped_exp(spectra.residual_log_magnitude[at]),
                    spectra.residual_phase[at],
                );
                source_spectrum[spectrum_at] = harmonic + noise_value + residual;
            }
        }
        self.overlap_add(&mut source_spectrum, frames)
    }

    /// STFT (centred, reflect padding, Hann) of `signal`; the first `frames` frames,
    /// frame-major (`frames * BINS`).
    fn stft(&self, signal: &[f32], frames: usize) -> Vec<Complex32> {
        let half = N_FFT / 2;
        let n = signal.len();
        let padded_at = |i: usize| -> f32 {
            // numpy "reflect": the edge sample is not repeated.
            let index = i as isize - half as isize;
            let reflected = if index < 0 {
                (-index) as usize
            } else if index as usize >= n {
                2 * (n - 1) - index as usize
            } else {
                index as usize
            };
            signal
                .get(reflected.min(n.saturating_sub(1)))
                .copied()
                .unwrap_or(0.0)
        };
        let mut spectrum = vec![Complex32::new(0.0, 0.0); frames * BINS];
        let mut frame_in = self.forward.make_input_vec();
        let mut frame_out = self.forward.make_output_vec();
        let mut scratch = self.forward.make_scratch_vec();
        for frame in 0..frames {
            let start = frame * HOP;
            for (k, slot) in frame_in.iter_mut().enumerate() {
                *slot = padded_at(start + k) * self.source_window[k];
            }
            if self
                .forward
                .process_with_scratch(&mut frame_in, &mut frame_out, &mut scratch)
                .is_ok()
            {
                spectrum[frame * BINS..(frame + 1) * BINS].copy_from_slice(&frame_out);
            }
        }
        spectrum
    }

    /// Inverse STFT matching torch.istft(center=True, length=frames*HOP): inverse FFT per
    /// frame, window, overlap-add, divide by the summed squared window.
    fn overlap_add(&self, spectrum: &mut [Complex32], frames: usize) -> Vec<f32> {
        let total = (frames - 1) * HOP + N_FFT;
        let mut output = vec![0.0f32; total];
        let mut norm = vec![0.0f32; total];
        let mut frame_out = self.inverse.make_output_vec();
        let mut scratch = self.inverse.make_scratch_vec();
        let scale = 1.0 / N_FFT as f32;
        for frame in 0..frames {
            let bins = &mut spectrum[frame * BINS..(frame + 1) * BINS];
            // A real signal's DC and Nyquist bins are real (numpy's irfft ignores the rest).
            bins[0].im = 0.0;
            bins[BINS - 1].im = 0.0;
            if self
                .inverse
                .process_with_scratch(bins, &mut frame_out, &mut scratch)
                .is_err()
            {
                continue;
            }
            let start = frame * HOP;
            for k in 0..N_FFT {
                let w = self.window[k];
                output[start + k] += frame_out[k] * scale * w;
                norm[start + k] += w * w;
            }
        }
        let half = N_FFT / 2;
        output[half..half + frames * HOP]
            .iter()
            .zip(&norm[half..half + frames * HOP])
            .map(|(y, w)| y / w.max(1e-11))
            .collect()
    }
}

/// Band-limited pulse train at [`SAMPLE_RATE`] from per-frame F0 (linearly interpolated):
/// every harmonic below 11 kHz at unit amplitude, in closed form
/// sum_{h<=H} cos(h t) = sin((H+1/2) t) / (2 sin(t/2)) - 1/2. Unvoiced samples are 0.
pub(crate) fn pulses(f0: &[f32]) -> Vec<f32> {
    let frames = f0.len();
    let mut out = Vec::with_capacity(frames * HOP);
    let edge = |i: isize| f0[i.clamp(0, frames as isize - 1) as usize];
    let mut phase = 0.0f64;
    for k in 0..frames {
        for j in 0..HOP {
            // Sample j of frame k lies at k + (j + 0.5) / HOP - 0.5 (align_corners=False).
            let position = (j as f32 + 0.5) / HOP as f32 - 0.5;
            let (a, b, u) = if j < HOP / 2 {
                (edge(k as isize - 1), edge(k as isize), position + 1.0)
            } else {
                (edge(k as isize), edge(k as isize + 1), position)
            };
            let f = a * (1.0 - u) + b * u;
            let voiced = f > VOICING_THRESHOLD;
            let f = f.max(VOICING_THRESHOLD);
            phase += f64::from(f) / f64::from(SAMPLE_RATE);
            phase = phase.fract();
            let t = (phase * 2.0 * std::f64::consts::PI) as f32;
            if !voiced {
                out.push(0.0);
                continue;
            }
            let harmonics = (MAX_HARMONIC_HZ / f).floor() + 0.5;
            let s = 2.0 * (t * 0.5).sin();
            let value = if s.abs() <= 2e-3 {
                harmonics
            } else {
                (harmonics * t).sin() / s
            };
            out.push(value - 0.5);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulse_train_is_a_sum_of_harmonics_and_silent_when_unvoiced() {
        let unvoiced = pulses(&[0.0; 4]);
        assert_eq!(unvoiced.len(), 4 * HOP);
        assert!(unvoiced.iter().all(|&x| x == 0.0));
        // Constant 200 Hz: sample i has phase 2 pi (i + 1) 200 / 24000 and 55 harmonics.
        let voiced = pulses(&[200.0; 4]);
        let mut checked = 0;
        for (i, &value) in voiced.iter().enumerate() {
            let t = 2.0 * std::f64::consts::PI * ((i + 1) as f64 * 200.0 / 24_000.0).fract();
            if (t / 2.0).sin().abs() < 0.05 {
                continue; // near a pulse: the closed form is evaluated in its limit
            }
            let direct: f64 = (1..=55).map(|h| (h as f64 * t).cos()).sum();
            assert!(
                (f64::from(value) - direct).abs() < 0.05,
                "sample {i}: {value} vs {direct}"
            );
            checked += 1;
        }
        assert!(checked > 1000);
    }

    #[test]
    fn stft_then_overlap_add_reconstructs_the_signal() {
        let frames = 10;
        let signal: Vec<f32> = (0..frames * HOP)
            .map(|i| (i as f32 * 0.05).sin() * 0.5 + ((i * 7919) % 13) as f32 / 130.0)
            .collect();
        let vocoder = Vocoder::new();
        // The source window is the Hann window / (N_FFT / 4): undo that scale.
        let mut spectrum: Vec<Complex32> = vocoder
            .stft(&signal, frames)
            .into_iter()
            .map(|c| c * (N_FFT as f32 / 4.0))
            .collect();
        let rebuilt = vocoder.overlap_add(&mut spectrum, frames);
        assert_eq!(rebuilt.len(), signal.len());
        for (i, (a, b)) in signal.iter().zip(&rebuilt).enumerate() {
            assert!((a - b).abs() < 1e-4, "sample {i}: {a} vs {b}");
        }
    }

    #[test]
    fn silent_spectra_give_silence() {
        let frames = 6;
        let size = BINS * frames;
        let silent = vec![-60.0f32; size];
        let zeros = vec![0.0f32; size];
        let f0 = vec![120.0f32; frames];
        let spectra = Spectra {
            frames,
            harmonic_log_magnitude: &silent,
            harmonic_phase: &zeros,
            noise_log_magnitude: &silent,
            residual_log_magnitude: &silent,
            residual_phase: &zeros,
            f0: &f0,
        };
        let audio = Vocoder::new().synthesize(&spectra, &mut Noise::new(0));
        assert_eq!(audio.len(), frames * HOP);
        assert!(audio.iter().all(|x| x.abs() < 1e-6));
    }

    #[test]
    fn noise_is_standard_normal() {
        let mut noise = Noise::new(7);
        let samples: Vec<f32> = (0..20_000).map(|_| noise.standard_normal()).collect();
        let mean = samples.iter().sum::<f32>() / samples.len() as f32;
        let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / samples.len() as f32;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
    }
}
