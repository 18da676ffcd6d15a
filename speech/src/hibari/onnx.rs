//! The two ONNX models through ONNX Runtime (`ort`, loaded at run time from the
//! libonnxruntime.so that `scripts/fetch-models.sh` extracts from PyPI's onnxruntime wheel):
//! the acoustic model (phoneme ids → spectra) and the out-of-vocabulary net (letters →
//! phonemes).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;
use serde::Deserialize;

use super::HibariError;

/// The process-wide ONNX Runtime environment, created from the first library path given.
fn environment(library: &Path) -> Result<Environment, HibariError> {
    static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();
    let result = ENVIRONMENT.get_or_init(|| {
        let builder = ort::init_from(library).map_err(|e| e.to_string())?;
        builder
            .with_name("vaani-hibari")
            .build()
            .map_err(|e| e.to_string())
    });
    result.clone().map_err(|detail| HibariError::Runtime {
        path: library.to_path_buf(),
        detail,
    })
}

/// Open a model with one intra-op and one inter-op thread (the server runs many at once).
pub(crate) fn open_session(library: &Path, model: &Path) -> Result<Session, HibariError> {
    if !library.is_file() {
        return Err(HibariError::RuntimeMissing {
            path: library.to_path_buf(),
        });
    }
    if !model.is_file() {
        return Err(HibariError::ModelMissing {
            path: model.to_path_buf(),
        });
    }
    let env = environment(library)?;
    let failed = |detail: String| HibariError::Model {
        path: model.to_path_buf(),
        detail,
    };
    Session::builder(&env)
        .map_err(|e| failed(e.to_string()))?
        .with_intra_threads(1)
        .map_err(|e| failed(e.to_string()))?
        .with_inter_threads(1)
        .map_err(|e| failed(e.to_string()))?
        .with_intra_op_spinning(false)
        .map_err(|e| failed(e.to_string()))?
        .commit_from_file(model)
        .map_err(|e| failed(e.to_string()))
}

/// What the acoustic model returns for one phoneme sequence: five `[601][frames]` spectra and
/// F0 per frame.
pub(crate) struct AcousticOutput {
    pub frames: usize,
    pub harmonic_log_magnitude: Vec<f32>,
    pub harmonic_phase: Vec<f32>,
    pub noise_log_magnitude: Vec<f32>,
    pub residual_log_magnitude: Vec<f32>,
    pub residual_phase: Vec<f32>,
    pub f0: Vec<f32>,
}

/// Run the acoustic model on phoneme ids (with the 0 pads) at `speed` (1.0 as trained).
pub(crate) fn run_acoustic(
    session: &mut Session,
    ids: Vec<i64>,
    speed: f32,
    bins: usize,
) -> Result<AcousticOutput, String> {
    let length = ids.len();
    let ids = Tensor::from_array(([1usize, length], ids)).map_err(|e| e.to_string())?;
    let speed = Tensor::from_array(([1usize], vec![speed])).map_err(|e| e.to_string())?;
    let outputs = session
        .run(ort::inputs!["ids" => ids, "speed" => speed])
        .map_err(|e| e.to_string())?;
    let take = |name: &str| -> Result<(Vec<i64>, Vec<f32>), String> {
        let value = outputs
            .get(name)
            .ok_or_else(|| format!("the model has no output `{name}`"))?;
        let (shape, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| format!("output `{name}`: {e}"))?;
        Ok((shape.iter().copied().collect(), data.to_vec()))
    };
    let (f0_shape, f0) = take("f0")?;
    let frames = f0_shape.last().copied().unwrap_or(0).max(0) as usize;
    let mut spectra = Vec::with_capacity(5);
    for name in ["lh", "theta", "ln", "lr", "phi"] {
        let (shape, data) = take(name)?;
        if data.len() != bins * frames || shape.len() != 3 {
            return Err(format!(
                "output `{name}` has shape {shape:?}, expected [1, {bins}, {frames}]"
            ));
        }
        spectra.push(data);
    }
    let mut spectra = spectra.into_iter();
    let mut next = || spectra.next().unwrap_or_default();
    Ok(AcousticOutput {
        frames,
        harmonic_log_magnitude: next(),
        harmonic_phase: next(),
        noise_log_magnitude: next(),
        residual_log_magnitude: next(),
        residual_phase: next(),
        f0,
    })
}

/// `oov.json`: the OOV net's alphabets.
#[derive(Deserialize)]
pub(crate) struct OovMeta {
    #[serde(rename = "in")]
    input: Vec<String>,
    #[serde(rename = "out")]
    output: Vec<String>,
    maxlen: usize,
}

/// The out-of-vocabulary net: a small character transformer trained on espeak-ng's readings,
/// so unknown words sound the way Kokoro's reference pipeline reads them. CTC-style output.
pub(crate) struct OovModel {
    session: Mutex<Session>,
    input_ids: HashMap<char, i64>,
    output_chars: Vec<String>,
    max_len: usize,
    path: PathBuf,
}

impl OovModel {
    pub(crate) fn new(session: Session, meta: OovMeta, path: PathBuf) -> Self {
        let input_ids = meta
            .input
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Some((c, i as i64 + 1)),
                    _ => None,
                }
            })
            .collect();
        Self {
            session: Mutex::new(session),
            input_ids,
            output_chars: meta.output,
            max_len: meta.maxlen,
            path,
        }
    }

    /// Phonemes for `word`, or `None` when it has no letter the net knows or inference fails.
    pub(crate) fn guess(&self, word: &str) -> Option<String> {
        let ids: Vec<i64> = word
            .chars()
            .filter_map(|c| self.input_ids.get(&c).copied())
            .take(self.max_len)
            .collect();
        if ids.is_empty() {
            return None;
        }
        let length = ids.len();
        let result = (|| -> Result<Vec<i64>, String> {
            let input = Tensor::from_array(([1usize, length], ids)).map_err(|e| e.to_string())?;
            let mut session = self
                .session
                .lock()
                .map_err(|_| "OOV session lock poisoned".to_string())?;
            let outputs = session
                .run(ort::inputs!["chars" => input])
                .map_err(|e| e.to_string())?;
            let value = outputs.get("ids").ok_or("no output `ids`")?;
            let (_, data) = value
                .try_extract_tensor::<i64>()
                .map_err(|e| e.to_string())?;
            Ok(data.to_vec())
        })();
        let out = match result {
            Ok(out) => out,
            Err(detail) => {
                tracing::warn!(model = %self.path.display(), %detail, word, "hibari OOV net failed");
                return None;
            }
        };
        let mut phonemes = String::new();
        let mut previous = 0;
        for id in out {
            if id != previous && id != 0 {
                let index = usize::try_from(id - 1).ok();
                if let Some(symbol) = index.and_then(|i| self.output_chars.get(i)) {
                    phonemes.push_str(symbol);
                }
            }
            previous = id;
        }
        Some(phonemes)
    }
}
