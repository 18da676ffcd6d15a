//! Call recording off the media path: the media session hands the call 200 ms batches of
//! time-aligned stereo audio (caller, agent; [`MediaEvent::Recorded`]), the call passes them
//! to a writer thread over a bounded channel (never waiting: a batch the writer cannot take is
//! dropped and becomes silence), and the writer appends them to a two-channel 8 kHz 16-bit
//! WAV file, `{recordings_dir}/{tenant}/{call}.wav`. The header is brought up to date every
//! second, so a file cut short by a crash still plays; at the end of the call the file is
//! finalised and stored with its duration.
//!
//! With an announcement configured, recording starts only once it has been played.
//!
//! Retention: [`spawn_retention_sweep`] deletes, every hour, each tenant's recordings older
//! than its `retention_days` (file, then row).
//!
//! [`MediaEvent::Recorded`]: vaani_media::MediaEvent::Recorded

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vaani_store::{Recording, Store};

use crate::registry::Registry;

/// Sample rate of recordings.
pub const RECORDING_RATE: u32 = 8000;
/// Batches (200 ms each) the writer may lag behind before batches are dropped.
const WRITER_QUEUE: usize = 64;
/// The header is rewritten after this many batches (1 s).
const FLUSH_EVERY: u32 = 5;
/// A gap in the batches longer than this is not filled with silence (clock jump).
const MAX_GAP_MS: u64 = 60_000;
/// How often expired recordings are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// One batch: session time of its first frame and interleaved (caller, agent) samples.
type Batch = (u64, Arc<[i16]>);

/// A call's recording in progress.
pub struct CallRecording {
    path: PathBuf,
    /// `None` until recording starts (after the announcement).
    sender: Option<mpsc::Sender<Batch>>,
    writer: Option<JoinHandle<Result<u64, String>>>,
    /// Batches dropped because the writer was behind.
    dropped: u64,
    /// The announcement playback whose end starts the recording.
    announcement: Option<u64>,
}

impl CallRecording {
    /// A recording of `call_id` under `dir/tenant_id/`; it starts with [`start`](Self::start).
    pub fn new(dir: &Path, tenant_id: &str, call_id: &str) -> Self {
        CallRecording {
            path: dir.join(tenant_id).join(format!("{call_id}.wav")),
            sender: None,
            writer: None,
            dropped: 0,
            announcement: None,
        }
    }

    /// Recording starts when playback `id` (the announcement) ends.
    pub fn start_after(&mut self, id: u64) {
        self.announcement = Some(id);
    }

    /// A playback ended (played out or stopped): starts recording if it was the announcement.
    pub fn playback_over(&mut self, id: u64) {
        if self.announcement == Some(id) {
            self.announcement = None;
            self.start();
        }
    }

    /// Starts writing: batches from now on go to the file. Does nothing if started.
    pub fn start(&mut self) {
        if self.sender.is_some() {
            return;
        }
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        let path = self.path.clone();
        self.writer = Some(tokio::task::spawn_blocking(move || write_wav(&path, rx)));
        self.sender = Some(tx);
    }

    /// A batch from the media session; ignored before [`start`](Self::start). Never waits.
    pub fn push(&mut self, start_ms: u64, audio: Arc<[i16]>) {
        if let Some(sender) = &self.sender
            && sender.try_send((start_ms, audio)).is_err()
        {
            self.dropped += 1;
        }
    }

    /// Ends the recording: waits for the writer to finalise the file and returns what to
    /// store (`None` if it never started, is empty or could not be written).
    pub async fn finish(mut self, tenant_id: &str, call_id: &str) -> Option<Recording> {
        self.sender = None;
        let writer = self.writer.take()?;
        if self.dropped > 0 {
            tracing::warn!(
                dropped = self.dropped,
                "recording: batches dropped (writer behind), written as silence"
            );
        }
        match writer.await {
            Ok(Ok(0)) => {
                let _ = tokio::fs::remove_file(&self.path).await;
                None
            }
            Ok(Ok(frames)) => Some(Recording {
                tenant_id: tenant_id.to_owned(),
                call_id: call_id.to_owned(),
                path: self.path.to_string_lossy().into_owned(),
                duration_ms: (frames * 1000 / u64::from(RECORDING_RATE)) as i64,
                created_at_ms: vaani_store::now_ms(),
            }),
            Ok(Err(error)) => {
                tracing::error!(path = %self.path.display(), "recording failed: {error}");
                None
            }
            Err(error) => {
                tracing::error!("recording writer panicked: {error}");
                None
            }
        }
    }
}

/// The writer thread: appends batches to a stereo WAV file, filling gaps between batches with
/// silence; returns the number of sample frames written.
fn write_wav(path: &Path, mut batches: mpsc::Receiver<Batch>) -> Result<u64, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: RECORDING_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = hound::WavWriter::create(path, spec)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    let io = |e: hound::Error| format!("writing {}: {e}", path.display());
    // Session time up to which audio has been written.
    let mut written_to_ms: Option<u64> = None;
    let mut frames: u64 = 0;
    let mut since_flush = 0;
    while let Some((start_ms, audio)) = batches.blocking_recv() {
        if let Some(end) = written_to_ms {
            if start_ms < end {
                continue; // Never rewrite time already written.
            }
            let gap_ms = start_ms - end;
            if gap_ms > 0 && gap_ms <= MAX_GAP_MS {
                let silent_frames = gap_ms * u64::from(RECORDING_RATE) / 1000;
                for _ in 0..silent_frames * 2 {
                    wav.write_sample(0i16).map_err(io)?;
                }
                frames += silent_frames;
            }
        }
        for &sample in audio.iter() {
            wav.write_sample(sample).map_err(io)?;
        }
        let batch_frames = audio.len() as u64 / 2;
        frames += batch_frames;
        written_to_ms = Some(start_ms + batch_frames * 1000 / u64::from(RECORDING_RATE));
        since_flush += 1;
        if since_flush >= FLUSH_EVERY {
            since_flush = 0;
            wav.flush().map_err(io)?;
        }
    }
    wav.finalize().map_err(io)?;
    Ok(frames)
}

/// Deletes the recordings of `tenants` (id, retention in days) finished before their
/// retention, as of `now_ms`: the file first, then the row. Returns how many went.
pub async fn sweep_expired(store: &Store, tenants: &[(String, u32)], now_ms: i64) -> usize {
    let mut deleted = 0;
    for (tenant_id, days) in tenants {
        let before = now_ms - i64::from(*days) * 86_400_000;
        let expired = match store.recordings_before(tenant_id, before, 1000).await {
            Ok(expired) => expired,
            Err(error) => {
                tracing::warn!(tenant = %tenant_id, "recording retention: {error}");
                continue;
            }
        };
        for recording in expired {
            match tokio::fs::remove_file(&recording.path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(path = %recording.path, "could not delete a recording: {error}");
                    continue;
                }
            }
            match store.delete_recording(tenant_id, &recording.call_id).await {
                Ok(_) => deleted += 1,
                Err(error) => tracing::warn!("could not forget a recording: {error}"),
            }
        }
    }
    deleted
}

/// Runs [`sweep_expired`] at start and then every hour, for every tenant of the registry's
/// current snapshot (also those that stopped recording: what they recorded still expires).
pub fn spawn_retention_sweep(store: Store, registry: Arc<Registry>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            interval.tick().await;
            let tenants: Vec<(String, u32)> = registry
                .snapshot()
                .tenants
                .values()
                .map(|tenant| (tenant.id.clone(), tenant.recording.retention_days))
                .collect();
            let deleted = sweep_expired(&store, &tenants, vaani_store::now_ms()).await;
            if deleted > 0 {
                tracing::info!(deleted, "expired recordings deleted");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(start_ms: u64, caller: i16, agent: i16) -> Arc<[i16]> {
        let _ = start_ms;
        (0..1600).flat_map(|_| [caller, agent]).collect()
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("vaani-recording-{name}-{}", vaani_store::new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn batches_become_a_stereo_wav_with_gaps_filled_and_nothing_before_start() {
        let dir = temp_dir("write");
        let mut recording = CallRecording::new(&dir, "echo", "call-1");
        recording.push(0, batch(0, 1, 1)); // before start: not recorded
        recording.start();
        recording.push(200, batch(200, 100, -100));
        recording.push(400, batch(400, 200, -200));
        // 200 ms missing (a dropped batch), then one more.
        recording.push(800, batch(800, 300, -300));
        let stored = recording.finish("echo", "call-1").await.unwrap();
        assert_eq!(stored.duration_ms, 800);
        assert_eq!(stored.tenant_id, "echo");
        let path = dir.join("echo").join("call-1.wav");
        assert_eq!(stored.path, path.to_string_lossy());

        let mut reader = hound::WavReader::open(&path).unwrap();
        let spec = reader.spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 8000, 16)
        );
        let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(samples.len(), 4 * 1600 * 2);
        assert_eq!(&samples[..2], &[100, -100]);
        assert_eq!(&samples[1600 * 2..1600 * 2 + 2], &[200, -200]);
        assert!(samples[3200 * 2..4800 * 2].iter().all(|&s| s == 0));
        assert_eq!(&samples[4800 * 2..4800 * 2 + 2], &[300, -300]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_recording_that_never_started_stores_nothing() {
        let dir = temp_dir("unstarted");
        let mut recording = CallRecording::new(&dir, "echo", "call-2");
        recording.push(0, batch(0, 1, 1));
        assert!(recording.finish("echo", "call-2").await.is_none());
        let mut started = CallRecording::new(&dir, "echo", "call-3");
        started.start();
        assert!(started.finish("echo", "call-3").await.is_none());
        assert!(!dir.join("echo").join("call-3.wav").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn the_sweep_deletes_expired_recordings_of_each_tenant_only() {
        use vaani_store::{CallDirection, CallStatus, NewCall, Scope, Tenant, TenantStatus};
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let dir = temp_dir("sweep");
        let day = 86_400_000;
        let mut files = Vec::new();
        for (tenant, created) in [("a", 0), ("a", 9 * day), ("b", 0)] {
            store
                .upsert_tenant(&Tenant {
                    id: tenant.to_owned(),
                    name: tenant.to_owned(),
                    status: TenantStatus::Active,
                    created_at_ms: 0,
                })
                .await
                .unwrap();
            let call_id = vaani_store::new_id();
            store
                .insert_call(&NewCall {
                    id: call_id.clone(),
                    tenant_id: tenant.to_owned(),
                    external_id: None,
                    direction: CallDirection::Inbound,
                    caller: "+919800000001".to_owned(),
                    dialled: "+918000000099".to_owned(),
                    status: CallStatus::Ringing,
                    started_at_ms: 0,
                    plugin_name: None,
                    plugin_version: None,
                })
                .await
                .unwrap();
            let path = dir.join(format!("{call_id}.wav"));
            std::fs::write(&path, b"wav").unwrap();
            store
                .set_recording(&Recording {
                    tenant_id: tenant.to_owned(),
                    call_id: call_id.clone(),
                    path: path.to_string_lossy().into_owned(),
                    duration_ms: 1000,
                    created_at_ms: created,
                })
                .await
                .unwrap();
            files.push((call_id, path));
        }
        // Day 10: tenant a keeps 7 days, tenant b 30.
        let tenants = vec![("a".to_owned(), 7), ("b".to_owned(), 30)];
        assert_eq!(sweep_expired(&store, &tenants, 10 * day).await, 1);
        assert!(!files[0].1.exists());
        assert!(files[1].1.exists() && files[2].1.exists());
        let gone = store
            .recording_for_call(&Scope::Operator, &files[0].0)
            .await
            .unwrap();
        assert!(gone.is_none());
        assert_eq!(sweep_expired(&store, &tenants, 10 * day).await, 0);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
