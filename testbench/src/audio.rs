//! Audio fixtures and measurements for end-to-end tests.

use std::path::Path;

use vaani_media::g711::Law;

/// Seconds of caller audio in the fixture files (sipp loops them).
pub const CALLER_SECONDS: usize = 20;

/// Quiet line noise at 8 kHz (about -55 dBFS): what an open phone line sounds like.
///
/// It keeps RTP flowing like a real caller without triggering voice-activity detection.
pub fn line_noise(seconds: usize) -> Vec<i16> {
    let mut state: u32 = 0x1234_5678;
    (0..seconds * 8000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            ((state >> 16) as i16) / 512
        })
        .collect()
}

/// Writes `caller_8k.ulaw` and `caller_8k.alaw` (raw G.711, no header, as sipp 3.6.1 needs).
pub fn write_caller_files(dir: &Path) {
    let pcm = line_noise(CALLER_SECONDS);
    for (law, name) in [(Law::Mu, "caller_8k.ulaw"), (Law::A, "caller_8k.alaw")] {
        let mut encoded = vec![0u8; pcm.len()];
        law.encode(&pcm, &mut encoded);
        std::fs::write(dir.join(name), encoded).expect("write caller audio");
    }
}

/// Writes `name` (raw A-law, 8 kHz): `lead_s` seconds of silence, `text` spoken by espeak-ng,
/// then `tail_s` seconds of silence. Uses the espeak-ng and sox programs the set-up installs.
pub fn write_spoken_alaw(dir: &Path, name: &str, text: &str, lead_s: f32, tail_s: f32) {
    let wav = dir.join(format!("{name}.wav"));
    let status = std::process::Command::new("espeak-ng")
        .arg("-w")
        .arg(&wav)
        .arg(text)
        .status()
        .expect("run espeak-ng (installed by the set-up)");
    assert!(status.success(), "espeak-ng failed");
    let status = std::process::Command::new("sox")
        .arg(&wav)
        .args(["-r", "8000", "-c", "1", "-e", "a-law", "-t", "raw"])
        .arg(dir.join(name))
        .args(["pad", &lead_s.to_string(), &tail_s.to_string()])
        .status()
        .expect("run sox (installed by the set-up)");
    assert!(status.success(), "sox failed");
}

/// Writes `name` (raw G.711 in `law`, 8 kHz): `lead_s` seconds of silence, then each phrase
/// spoken by espeak-ng followed by its gap of silence in seconds. One file holds a caller's
/// whole side of a conversation, answers spaced for the agent's questions.
pub fn write_spoken_phrases(
    dir: &Path,
    name: &str,
    law: Law,
    lead_s: f32,
    phrases: &[(&str, f32)],
) {
    let encoding = match law {
        Law::A => "a-law",
        Law::Mu => "u-law",
    };
    let mut audio = Vec::new();
    for (i, (text, gap_s)) in phrases.iter().enumerate() {
        let wav = dir.join(format!("{name}.{i}.wav"));
        let raw = dir.join(format!("{name}.{i}.raw"));
        let status = std::process::Command::new("espeak-ng")
            .args(["-v", "en-us", "-w"])
            .arg(&wav)
            .arg(text)
            .status()
            .expect("run espeak-ng (installed by the set-up)");
        assert!(status.success(), "espeak-ng failed on {text:?}");
        let lead = if i == 0 { lead_s } else { 0.0 };
        let status = std::process::Command::new("sox")
            .arg(&wav)
            .args(["-r", "8000", "-c", "1", "-e", encoding, "-t", "raw"])
            .arg(&raw)
            .args(["pad", &lead.to_string(), &gap_s.to_string()])
            .status()
            .expect("run sox (installed by the set-up)");
        assert!(status.success(), "sox failed on {text:?}");
        audio.extend(std::fs::read(&raw).expect("read encoded phrase"));
    }
    std::fs::write(dir.join(name), audio).expect("write caller audio");
}

/// Writes `name` (raw G.711 in `law`, 8 kHz) like [`write_spoken_phrases`], but spoken by the
/// embedded hibari voice (vaani-speech's `HibariSynthesizer`) instead of espeak-ng: a natural
/// voice that whisper tiny.en hears with far fewer errors (0% word errors on phone-agent
/// sentences where espeak-ng gives about 20-30%). The voice comes from
/// `scripts/fetch-models.sh` (`data/models/hibari`, `data/models/onnxruntime`); it is loaded
/// once per test process.
pub fn write_hibari_phrases(
    dir: &Path,
    name: &str,
    law: Law,
    lead_s: f32,
    phrases: &[(&str, f32)],
) {
    static VOICE: std::sync::OnceLock<vaani_speech::HibariSynthesizer> = std::sync::OnceLock::new();
    let voice = VOICE.get_or_init(|| {
        let config =
            vaani_speech::HibariConfig::in_models_dir(crate::repo_root().join("data/models"));
        vaani_speech::HibariSynthesizer::load(config)
            .unwrap_or_else(|e| panic!("loading the hibari voice: {e}"))
    });
    let silence = |seconds: f32| vec![0i16; (seconds.max(0.0) * 8000.0) as usize];
    let mut pcm = silence(lead_s);
    for (text, gap_s) in phrases {
        let request = vaani_speech::SpeechRequest {
            text: text.to_string(),
            voice: None,
            language: None,
            sample_rate: 8000,
        };
        let speech = voice
            .synthesize_blocking(&request)
            .unwrap_or_else(|e| panic!("hibari could not say {text:?}: {e}"));
        pcm.extend_from_slice(&speech.samples);
        pcm.extend(silence(*gap_s));
    }
    let mut encoded = vec![0u8; pcm.len()];
    law.encode(&pcm, &mut encoded);
    std::fs::write(dir.join(name), encoded).expect("write caller audio");
}

/// Root-mean-square level of linear PCM (0 for none).
pub fn pcm_rms(pcm: &[i16]) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len() as f64).sqrt()
}

/// Root-mean-square level of one G.711 payload after decoding.
pub fn payload_rms(law: Law, payload: &[u8]) -> f64 {
    if payload.is_empty() {
        return 0.0;
    }
    let sum: f64 = payload
        .iter()
        .map(|&b| {
            let s = f64::from(law.decode_sample(b));
            s * s
        })
        .sum();
    (sum / payload.len() as f64).sqrt()
}

/// Level above which a 20 ms frame counts as speech in these tests (espeak-ng speaks far louder).
pub const SPEECH_RMS: f64 = 500.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_noise_is_quiet_but_not_silent() {
        let noise = line_noise(1);
        let mut encoded = vec![0u8; noise.len()];
        Law::Mu.encode(&noise, &mut encoded);
        let rms = payload_rms(Law::Mu, &encoded);
        assert!(rms > 5.0 && rms < SPEECH_RMS / 5.0, "rms {rms}");
    }

    #[test]
    fn hibari_phrases_are_speech_separated_by_silence() {
        let dir = std::env::temp_dir().join(format!("vaani-hibari-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        write_hibari_phrases(
            &dir,
            "caller.alaw",
            Law::A,
            0.5,
            &[("Yes, please.", 1.0), ("Tomorrow at ten.", 0.5)],
        );
        let audio = std::fs::read(dir.join("caller.alaw")).expect("read caller audio");
        std::fs::remove_dir_all(&dir).ok();
        // 0.5 + 1.0 + 0.5 s of silence plus two short phrases.
        assert!(
            (8000 * 3..8000 * 7).contains(&audio.len()),
            "{} bytes",
            audio.len()
        );
        let frames: Vec<f64> = audio.chunks(160).map(|f| payload_rms(Law::A, f)).collect();
        assert!(
            frames[..20].iter().all(|&rms| rms < 10.0),
            "the lead-in is not silent"
        );
        let speech = frames.iter().filter(|&&rms| rms > SPEECH_RMS).count();
        assert!(speech >= 40, "only {speech} loud 20 ms frames");
    }
}
