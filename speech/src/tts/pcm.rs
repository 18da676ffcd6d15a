//! Turning a provider's raw audio bytes into samples at the call's rate, sans-IO: 16-bit
//! little-endian PCM split anywhere (odd byte counts are carried to the next piece), then
//! streaming sample-rate conversion with vaani-media's rubato-based [`FrameResampler`].

use vaani_media::resample::FrameResampler;

use crate::synthesizer::SpeechError;

/// Decodes 16-bit little-endian PCM that arrives in pieces of any length.
#[derive(Debug, Default)]
pub(crate) struct Pcm16Decoder {
    /// The first byte of a sample whose second byte has not arrived yet.
    carry: Option<u8>,
}

impl Pcm16Decoder {
    /// Appends the samples completed by `bytes` to `out`.
    pub(crate) fn push(&mut self, mut bytes: &[u8], out: &mut Vec<i16>) {
        if let Some(low) = self.carry.take() {
            match bytes.split_first() {
                Some((&high, rest)) => {
                    out.push(i16::from_le_bytes([low, high]));
                    bytes = rest;
                }
                None => {
                    self.carry = Some(low);
                    return;
                }
            }
        }
        let pairs = bytes.chunks_exact(2);
        self.carry = pairs.remainder().first().copied();
        out.extend(pairs.map(|pair| i16::from_le_bytes([pair[0], pair[1]])));
    }

    /// Ends the stream; returns whether half a sample was left over (and dropped).
    pub(crate) fn finish(&mut self) -> bool {
        self.carry.take().is_some()
    }
}

/// Converts a mono stream from one sample rate to another in 20 ms input frames, keeping
/// the filter state across pieces (no clicks at piece boundaries). The resampler's start-up
/// delay is dropped, and [`finish`](Self::finish) flushes the tail, so the output has
/// exactly `ceil(input * to / from)` samples, aligned with the input.
pub(crate) struct StreamResampler {
    resampler: FrameResampler,
    from_hz: u32,
    to_hz: u32,
    /// Input not yet making up a whole frame.
    pending: Vec<i16>,
    /// Start-up delay still to drop, in output samples.
    skip: usize,
    input_total: u64,
    output_total: u64,
}

impl std::fmt::Debug for StreamResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResampler")
            .field("from_hz", &self.from_hz)
            .field("to_hz", &self.to_hz)
            .field("input_total", &self.input_total)
            .field("output_total", &self.output_total)
            .finish()
    }
}

impl StreamResampler {
    /// A resampler from `from_hz` to `to_hz` (both non-zero and different).
    pub(crate) fn new(from_hz: u32, to_hz: u32) -> Result<Self, SpeechError> {
        let frame = (from_hz / 50).max(1) as usize;
        let resampler = FrameResampler::new(from_hz, to_hz, frame).map_err(|error| {
            SpeechError::BadAudio(format!(
                "cannot convert {from_hz} Hz audio to {to_hz} Hz: {error}"
            ))
        })?;
        Ok(StreamResampler {
            pending: Vec::with_capacity(resampler.input_frame_len()),
            skip: resampler.delay_samples(),
            resampler,
            from_hz,
            to_hz,
            input_total: 0,
            output_total: 0,
        })
    }

    /// Resamples `input`, appending the output that is ready to `out`.
    pub(crate) fn push(&mut self, input: &[i16], out: &mut Vec<i16>) {
        self.input_total += input.len() as u64;
        let frame = self.resampler.input_frame_len();
        let mut input = input;
        while !input.is_empty() {
            let take = (frame - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() == frame {
                self.process_pending(out, u64::MAX);
            }
        }
    }

    /// Ends the stream: flushes the buffered input and the filter tail into `out`.
    pub(crate) fn finish(&mut self, out: &mut Vec<i16>) {
        let expected = (self.input_total * u64::from(self.to_hz)).div_ceil(u64::from(self.from_hz));
        // The delay is under a few frames; the bound only guards against a resampler that
        // produced nothing.
        let mut rounds = 0;
        while self.output_total < expected && rounds < 64 {
            self.process_pending(out, expected);
            rounds += 1;
        }
    }

    /// Resamples the pending input (padded with silence to a whole frame), appending at most
    /// `limit - output_total` samples after the start-up delay.
    fn process_pending(&mut self, out: &mut Vec<i16>, limit: u64) {
        let produced = self.resampler.process(&self.pending);
        self.pending.clear();
        let skipped = self.skip.min(produced.len());
        self.skip -= skipped;
        let usable = &produced[skipped..];
        let room = usize::try_from(limit.saturating_sub(self.output_total)).unwrap_or(usize::MAX);
        let usable = &usable[..usable.len().min(room)];
        out.extend_from_slice(usable);
        self.output_total += usable.len() as u64;
    }
}

/// Raw 16-bit PCM bytes at a provider's rate in, samples at the call's rate out.
#[derive(Debug)]
pub(crate) struct PcmConverter {
    decoder: Pcm16Decoder,
    resampler: Option<StreamResampler>,
    decoded: Vec<i16>,
}

impl PcmConverter {
    /// A converter from `from_hz` to `to_hz` (resampling only when they differ).
    pub(crate) fn new(from_hz: u32, to_hz: u32) -> Result<Self, SpeechError> {
        let resampler = if from_hz == to_hz {
            None
        } else {
            Some(StreamResampler::new(from_hz, to_hz)?)
        };
        Ok(PcmConverter {
            decoder: Pcm16Decoder::default(),
            resampler,
            decoded: Vec::new(),
        })
    }

    /// The samples that `bytes` completed, at the output rate (possibly none yet).
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<i16> {
        match &mut self.resampler {
            None => {
                let mut out = Vec::with_capacity(bytes.len() / 2 + 1);
                self.decoder.push(bytes, &mut out);
                out
            }
            Some(resampler) => {
                self.decoded.clear();
                self.decoder.push(bytes, &mut self.decoded);
                let mut out = Vec::new();
                resampler.push(&self.decoded, &mut out);
                out
            }
        }
    }

    /// Ends the stream: the last samples, and whether half a sample was left over.
    pub(crate) fn finish(&mut self) -> (Vec<i16>, bool) {
        let odd_byte = self.decoder.finish();
        let mut out = Vec::new();
        if let Some(resampler) = &mut self.resampler {
            resampler.finish(&mut out);
        }
        (out, odd_byte)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: u32, len: usize, amplitude: f64) -> Vec<i16> {
        (0..len)
            .map(|i| {
                (amplitude * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    fn to_bytes(samples: &[i16]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    #[test]
    fn decoder_carries_odd_bytes_across_pieces() {
        let samples: Vec<i16> = vec![0x0102, -2, 32767, -32768, 12345, 0, -1];
        let bytes = to_bytes(&samples);
        for sizes in [&[1usize][..], &[3, 1, 5], &[2], &[7, 7], &[13, 1]] {
            let mut decoder = Pcm16Decoder::default();
            let mut out = Vec::new();
            let mut offset = 0;
            let mut turn = 0;
            while offset < bytes.len() {
                let end = (offset + sizes[turn % sizes.len()]).min(bytes.len());
                decoder.push(&bytes[offset..end], &mut out);
                offset = end;
                turn += 1;
            }
            assert_eq!(out, samples, "piece sizes {sizes:?}");
            assert!(!decoder.finish());
        }
        let mut decoder = Pcm16Decoder::default();
        let mut out = Vec::new();
        decoder.push(&[1, 0, 7], &mut out);
        decoder.push(&[], &mut out);
        assert_eq!(out, vec![1]);
        assert!(decoder.finish(), "half a sample left over");
    }

    #[test]
    fn streaming_24k_to_8k_matches_the_whole_clip_length_and_keeps_the_tone() {
        let input = tone(400.0, 24000, 24000, 12000.0);
        let bytes = to_bytes(&input);
        let mut converter = PcmConverter::new(24000, 8000).expect("converter");
        let mut out = Vec::new();
        // Odd-sized pieces, like a network would deliver them.
        for piece in bytes.chunks(1001) {
            out.extend(converter.push(piece));
        }
        let (tail, odd) = converter.finish();
        assert!(!odd);
        out.extend(tail);
        assert_eq!(out.len(), 8000);
        // 400 Hz at 8 kHz: 20 samples per period; count upward zero crossings in the middle.
        let middle = &out[1000..7000];
        let crossings = middle.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
        assert!((298..=302).contains(&crossings), "{crossings} crossings");
        let peak = middle.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        assert!((11000..13000).contains(&peak), "peak {peak}");
        // No start-up delay: the sine starts at phase 0 and rises.
        let ideal =
            |k: usize| 12000.0 * (2.0 * std::f64::consts::PI * 400.0 * k as f64 / 8000.0).sin();
        for k in [5usize, 13, 100] {
            let error = (f64::from(out[k]) - ideal(k)).abs();
            assert!(error < 800.0, "sample {k}: {} vs {}", out[k], ideal(k));
        }
    }

    #[test]
    fn output_is_released_per_frame_before_the_end() {
        let mut converter = PcmConverter::new(16000, 8000).expect("converter");
        // 10 ms: not a whole 20 ms frame yet.
        assert!(converter.push(&to_bytes(&vec![100; 160])).is_empty());
        // Another 30 ms completes two frames.
        let out = converter.push(&to_bytes(&vec![100; 480]));
        assert!(!out.is_empty() && out.len() <= 320, "{}", out.len());
        let (tail, _) = converter.finish();
        assert_eq!(out.len() + tail.len(), 320);
    }

    #[test]
    fn same_rate_passes_through_and_short_streams_flush() {
        let mut converter = PcmConverter::new(8000, 8000).expect("converter");
        assert_eq!(converter.push(&[1, 0, 2]), vec![1]);
        assert_eq!(converter.push(&[0]), vec![2]);
        assert_eq!(converter.finish(), (Vec::new(), false));

        // Fewer samples than one frame still come out at the end.
        let mut converter = PcmConverter::new(22050, 8000).expect("converter");
        assert!(converter.push(&to_bytes(&[500; 100])).is_empty());
        let (tail, _) = converter.finish();
        assert_eq!(tail.len(), 37); // ceil(100 * 8000 / 22050)
    }
}
