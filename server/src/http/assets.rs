//! The assets API: a tenant's audio prompts, which its plugin plays with `play-asset`.
//!
//! `PUT /api/v1/assets/{id}` takes a WAV file (`Content-Type: audio/wav`, at most 8 MiB and
//! [`MAX_ASSET_SECONDS`]): 16-bit integer or 32-bit float PCM, mono or stereo (mixed down), at
//! 8 to 48 kHz. It is converted once to what calls play, 8 kHz mono, and stored under the
//! name `id` (`[A-Za-z0-9._-]`, 1–128 characters, the names `play-asset` accepts).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use vaani_store::StoreError;

use super::HttpState;
use super::auth::Caller;
use super::error::{ApiError, internal};
use super::extract::{ApiBytes, ApiPath, ApiQuery};

/// Largest WAV upload.
pub(super) const MAX_ASSET_UPLOAD_BYTES: usize = 8 << 20;
/// Longest asset, seconds.
pub const MAX_ASSET_SECONDS: usize = 120;
/// Assets one tenant may keep (each up to about 2 MB of audio).
const MAX_ASSETS_PER_TENANT: usize = 200;
/// Longest asset name (as `play-asset` accepts).
const MAX_ASSET_ID_BYTES: usize = 128;

/// `?tenant=`: the tenant an operator acts for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TenantQuery {
    tenant: Option<String>,
}

fn asset_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "asset_not_found",
        format!("no asset {id:?}"),
    )
}

/// `400 invalid_asset_id` unless `id` is a name `play-asset` accepts.
fn check_asset_id(id: &str) -> Result<(), ApiError> {
    let valid = !id.is_empty()
        && id.len() <= MAX_ASSET_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_asset_id",
            format!("asset names are 1-{MAX_ASSET_ID_BYTES} characters of [A-Za-z0-9._-]"),
        ))
    }
}

/// The WAV `bytes` as 8 kHz mono samples; `422 invalid_audio` saying why when they are not
/// a WAV this server takes.
pub(super) fn decode_wav(bytes: &[u8]) -> Result<Vec<i16>, ApiError> {
    let invalid =
        |why: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_audio", why);
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes))
        .map_err(|error| invalid(format!("not a WAV file: {error}")))?;
    let spec = reader.spec();
    if !(1..=2).contains(&spec.channels) {
        return Err(invalid(format!(
            "{} channels; send mono or stereo",
            spec.channels
        )));
    }
    if !(8_000..=48_000).contains(&spec.sample_rate) {
        return Err(invalid(format!(
            "{} Hz; send 8000 to 48000 Hz",
            spec.sample_rate
        )));
    }
    let frames = reader.duration() as usize;
    if frames > MAX_ASSET_SECONDS * spec.sample_rate as usize {
        return Err(invalid(format!("longer than {MAX_ASSET_SECONDS} s")));
    }
    let samples: Vec<i16> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 16) => reader
            .into_samples::<i16>()
            .collect::<Result<_, _>>()
            .map_err(|error| invalid(format!("unreadable samples: {error}")))?,
        (hound::SampleFormat::Float, 32) => reader
            .into_samples::<f32>()
            .map(|s| s.map(|s| (s.clamp(-1.0, 1.0) * 32_767.0) as i16))
            .collect::<Result<_, _>>()
            .map_err(|error| invalid(format!("unreadable samples: {error}")))?,
        (format, bits) => {
            return Err(invalid(format!(
                "{bits}-bit {format:?} samples; send 16-bit integer or 32-bit float PCM"
            )));
        }
    };
    let mono: Vec<i16> = if spec.channels == 2 {
        samples
            .chunks_exact(2)
            .map(|pair| ((i32::from(pair[0]) + i32::from(pair[1])) / 2) as i16)
            .collect()
    } else {
        samples
    };
    if mono.is_empty() {
        return Err(invalid("the file holds no audio".to_owned()));
    }
    Ok(if spec.sample_rate == 8_000 {
        mono
    } else {
        vaani_media::resample::resample_buffer(&mono, spec.sample_rate, 8_000)
    })
}

/// Stores the WAV body as the tenant's asset `id`: `201` when new, `200` when it replaced
/// the asset of that name.
pub(super) async fn put_asset(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<TenantQuery>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<Response, ApiError> {
    let tenant = caller
        .existing_tenant_to_act_for(&state, query.tenant)
        .await?;
    check_asset_id(&id)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !matches!(
        content_type.as_str(),
        "audio/wav" | "audio/x-wav" | "audio/wave"
    ) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the asset as a WAV file with `Content-Type: audio/wav`",
        ));
    }
    let existed = state
        .store
        .get_asset(&tenant, &id)
        .await
        .map_err(internal)?
        .is_some();
    if !existed
        && state
            .store
            .list_assets(Some(&tenant))
            .await
            .map_err(internal)?
            .len()
            >= MAX_ASSETS_PER_TENANT
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_assets",
            format!("a tenant may keep at most {MAX_ASSETS_PER_TENANT} assets"),
        ));
    }
    let pcm8k = decode_wav(&body)?;
    let content_hash = format!("{:x}", Sha256::digest(&body));
    let asset = state
        .store
        .put_asset(&tenant, &id, &pcm8k, &content_hash, vaani_store::now_ms())
        .await
        .map_err(internal)?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(asset)).into_response())
}

/// The tenant's assets (the operator without `?tenant=`: every tenant's).
pub(super) async fn list_assets(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<TenantQuery>,
) -> Result<Response, ApiError> {
    let listed = caller.tenant_to_list(&state, query.tenant).await?;
    let assets = match listed.tenant_filter() {
        Some(tenant) => state.store.list_assets(tenant).await.map_err(internal)?,
        None => Vec::new(),
    };
    Ok(Json(json!({ "assets": assets })).into_response())
}

/// One asset's description; `404 asset_not_found`.
pub(super) async fn get_asset(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<TenantQuery>,
) -> Result<Response, ApiError> {
    let tenant = asset_tenant(&caller, query.tenant, &id)?;
    match state
        .store
        .get_asset(&tenant, &id)
        .await
        .map_err(internal)?
    {
        Some(asset) => Ok(Json(asset).into_response()),
        None => Err(asset_not_found(&id)),
    }
}

/// The asset's audio as played, a WAV file (8 kHz mono 16-bit); `404 asset_not_found`.
pub(super) async fn get_asset_audio(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<TenantQuery>,
) -> Result<Response, ApiError> {
    let tenant = asset_tenant(&caller, query.tenant, &id)?;
    let pcm8k = state
        .store
        .asset_audio(&tenant, &id)
        .await
        .map_err(internal)?
        .ok_or_else(|| asset_not_found(&id))?;
    let mut wav = std::io::Cursor::new(Vec::with_capacity(44 + pcm8k.len() * 2));
    {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::new(&mut wav, spec).map_err(internal)?;
        for sample in &pcm8k {
            writer.write_sample(*sample).map_err(internal)?;
        }
        writer.finalize().map_err(internal)?;
    }
    Ok(([(header::CONTENT_TYPE, "audio/wav")], wav.into_inner()).into_response())
}

/// Deletes an asset: `204`; `404 asset_not_found`.
pub(super) async fn delete_asset(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<TenantQuery>,
) -> Result<Response, ApiError> {
    let tenant = asset_tenant(&caller, query.tenant, &id)?;
    match state.store.delete_asset(&tenant, &id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(StoreError::NotFound { .. }) => Err(asset_not_found(&id)),
        Err(error) => Err(internal(error)),
    }
}

/// The tenant whose asset `id` a request names: [`Caller::tenant_to_act_for`], except that a
/// tenant key naming another tenant is answered as if the asset did not exist.
fn asset_tenant(caller: &Caller, named: Option<String>, id: &str) -> Result<String, ApiError> {
    caller
        .tenant_to_act_for(named)
        .map_err(|error| match caller.scope {
            vaani_store::Scope::Tenant(_) => asset_not_found(id),
            vaani_store::Scope::Operator => error,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(spec: hound::WavSpec, frames: usize, sample: impl Fn(usize) -> f32) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        {
            let mut writer = hound::WavWriter::new(&mut out, spec).unwrap();
            for i in 0..frames {
                for _ in 0..spec.channels {
                    match spec.sample_format {
                        hound::SampleFormat::Int if spec.bits_per_sample == 8 => {
                            writer.write_sample((sample(i) * 127.0) as i8).unwrap()
                        }
                        hound::SampleFormat::Int => {
                            writer.write_sample((sample(i) * 32_767.0) as i16).unwrap()
                        }
                        hound::SampleFormat::Float => writer.write_sample(sample(i)).unwrap(),
                    }
                }
            }
            writer.finalize().unwrap();
        }
        out.into_inner()
    }

    fn spec(channels: u16, rate: u32, format: hound::SampleFormat, bits: u16) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: format,
        }
    }

    #[test]
    fn wavs_become_8_khz_mono() {
        let tone = |rate: f32| {
            move |i: usize| (i as f32 * 440.0 * std::f32::consts::TAU / rate).sin() * 0.5
        };
        let int = hound::SampleFormat::Int;
        let float = hound::SampleFormat::Float;
        // One second at 8 kHz mono stays as it is.
        let pcm = decode_wav(&wav(spec(1, 8_000, int, 16), 8_000, tone(8_000.0))).unwrap();
        assert_eq!(pcm.len(), 8_000);
        // Stereo 16 kHz and float 48 kHz become one second at 8 kHz.
        for bytes in [
            wav(spec(2, 16_000, int, 16), 16_000, tone(16_000.0)),
            wav(spec(1, 48_000, float, 32), 48_000, tone(48_000.0)),
        ] {
            let pcm = decode_wav(&bytes).unwrap();
            assert!((7_900..=8_100).contains(&pcm.len()), "{}", pcm.len());
            let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap();
            assert!(
                (14_000..=18_000).contains(&peak),
                "the level is kept: {peak}"
            );
        }
    }

    #[test]
    fn other_audio_is_refused_saying_why() {
        let int = hound::SampleFormat::Int;
        let refused = |bytes: Vec<u8>| decode_wav(&bytes).unwrap_err().code().to_owned();
        assert_eq!(refused(b"RIFF not really".to_vec()), "invalid_audio");
        assert_eq!(
            refused(wav(spec(3, 8_000, int, 16), 80, |_| 0.1)),
            "invalid_audio"
        );
        assert_eq!(
            refused(wav(spec(1, 4_000, int, 16), 80, |_| 0.1)),
            "invalid_audio"
        );
        assert_eq!(
            refused(wav(spec(1, 8_000, int, 8), 80, |_| 0.1)),
            "invalid_audio"
        );
        assert_eq!(
            refused(wav(spec(1, 8_000, int, 16), 0, |_| 0.1)),
            "invalid_audio"
        );
        let too_long = wav(
            spec(1, 8_000, int, 16),
            8_000 * (MAX_ASSET_SECONDS + 1),
            |_| 0.0,
        );
        assert_eq!(refused(too_long), "invalid_audio");
    }

    #[test]
    fn asset_names_are_what_play_asset_accepts() {
        for good in ["greeting", "menu-v2.hi", "A_1"] {
            assert!(check_asset_id(good).is_ok(), "{good}");
        }
        for bad in ["", "with space", "../etc", &"x".repeat(129)] {
            assert!(check_asset_id(bad).is_err(), "{bad}");
        }
    }
}
