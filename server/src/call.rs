//! One call, end to end: admission, answer, the plugin conversation, and the stored record.
//!
//! Each call is one task that owns its plugin instance and talks to its media session (in a
//! media shard) and to the SIP driver through channels. Nothing here runs on the media path:
//! audio keeps flowing while the plugin thinks, text is synthesized or the store is written.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tracing::Instrument;
use vaani_media::{MediaEvent, SessionHandle};
use vaani_sandbox::{Action, CallerContext, Direction, EndReason, Event, LogLevel, PluginInstance};
use vaani_sip::{CallEndReason, CallKey, IncomingCall, SipCommand};
use vaani_speech::{SpeechRequest, SynthesizedAudio};
use vaani_store::{CallDirection, CallOutcome, CallStatus, NewCall, NewTranscriptLine, Speaker};

use crate::app::{AppState, TenantRuntime};
use crate::routing::{dialled_number, number_candidates, trunk_for_source};

/// What the SIP side tells a call after the INVITE.
#[derive(Debug)]
pub enum CallSignal {
    /// The ACK for our 200 arrived.
    Confirmed,
    /// The caller cancelled before we answered (the SIP core already answered 487).
    Cancelled,
    /// The dialog ended.
    Ended(CallEndReason),
}

/// Longest wait for queued playback to finish after the plugin hangs up.
const HANGUP_DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// Why a call is refused before it exists.
struct Rejection {
    status: u16,
    reason: &'static str,
    detail: String,
}

/// Admission result: where the call goes.
struct Admitted {
    tenant: Arc<TenantRuntime>,
    caller: String,
    dialled: String,
}

fn admit(state: &AppState, incoming: &IncomingCall) -> Result<Admitted, Rejection> {
    let source = incoming.source.ip();
    let Some(trunk) = trunk_for_source(&state.trunks, source) else {
        return Err(Rejection {
            status: 403,
            reason: "Forbidden",
            detail: format!("source {source} is not in any trunk's allowed networks"),
        });
    };
    let Some(dialled) = dialled_number(
        incoming.request_uri_user.as_deref(),
        incoming.to_user.as_deref(),
    ) else {
        return Err(Rejection {
            status: 404,
            reason: "Not Found",
            detail: "no dialled number in the Request-URI or To".to_string(),
        });
    };
    let route = number_candidates(&dialled)
        .into_iter()
        .find_map(|candidate| {
            state
                .numbers
                .get(&candidate)
                .map(|r| (candidate, r.clone()))
        });
    let Some((dialled, route)) = route else {
        return Err(Rejection {
            status: 404,
            reason: "Not Found",
            detail: format!("number {} is not configured", mask_number(&dialled)),
        });
    };
    if route.trunk_id != trunk.id {
        return Err(Rejection {
            status: 403,
            reason: "Forbidden",
            detail: format!(
                "number belongs to trunk {} but the call came from trunk {}",
                route.trunk_id, trunk.id
            ),
        });
    }
    let Some(tenant) = state.tenants.get(&route.tenant_id).cloned() else {
        return Err(Rejection {
            status: 480,
            reason: "Temporarily Unavailable",
            detail: format!("tenant {} is not running", route.tenant_id),
        });
    };
    let caller = incoming
        .from_user
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "anonymous".to_string());
    Ok(Admitted {
        tenant,
        caller,
        dialled,
    })
}

/// Masks all but the last four digits of a phone number for logs.
pub fn mask_number(number: &str) -> String {
    let digits = number.chars().count();
    if digits <= 4 {
        return "*".repeat(digits);
    }
    number
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i + 4 < digits && c.is_ascii_digit() {
                '*'
            } else {
                c
            }
        })
        .collect()
}

fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs one inbound call from its INVITE to its stored record.
pub async fn run_call(
    state: Arc<AppState>,
    key: CallKey,
    incoming: IncomingCall,
    signals: mpsc::Receiver<CallSignal>,
) {
    let admitted = match admit(&state, &incoming) {
        Ok(admitted) => admitted,
        Err(rejection) => {
            tracing::info!(
                status = rejection.status,
                source = %incoming.source,
                "INVITE refused: {}",
                rejection.detail
            );
            state
                .metrics
                .sip_rejections_total
                .with_label_values(&[&rejection.status.to_string()])
                .inc();
            state
                .sip_command(SipCommand::Reject {
                    key,
                    status: rejection.status,
                    reason: rejection.reason.to_string(),
                })
                .await;
            return;
        }
    };
    state.metrics.active_calls.inc();
    let mut call = Call::new(state.clone(), key, incoming, admitted, signals);
    let span = tracing::info_span!("call", call_id = %call.call_id, tenant_id = %call.tenant.id);
    call.run().instrument(span).await;
    state.metrics.active_calls.dec();
}

/// A text-to-speech job for the call's speech worker.
struct SpeechJob {
    playback: u64,
    text: String,
    voice: Option<String>,
    language: Option<String>,
    interruptible: bool,
}

/// A finished text-to-speech job.
struct SpeechDone {
    playback: u64,
    interruptible: bool,
    audio: Result<SynthesizedAudio, vaani_speech::SpeechError>,
}

/// Playback ids used for host-generated speech (the fallback), far above plugin ids.
const HOST_PLAYBACK_BASE: u64 = 1 << 62;

struct Call {
    state: Arc<AppState>,
    key: CallKey,
    incoming: IncomingCall,
    tenant: Arc<TenantRuntime>,
    caller: String,
    dialled: String,
    call_id: String,
    started_unix_ms: i64,
    answered_at: Option<Instant>,
    signals: mpsc::Receiver<CallSignal>,
    plugin: Option<PluginInstance>,
    media: Option<SessionHandle>,
    speech_jobs: Option<mpsc::Sender<SpeechJob>>,
    speech_done: Option<mpsc::Receiver<SpeechDone>>,
    /// Playbacks queued for speech or audio that have not finished or been stopped.
    pending_playbacks: HashSet<u64>,
    /// Playbacks the plugin stopped before their audio was ready.
    cancelled_playbacks: HashSet<u64>,
    /// Events raised by the host while applying actions, delivered after the current one.
    queued_events: VecDeque<Event>,
    timers: HashMap<u64, (Instant, String)>,
    hangup_after_playback: Option<Instant>,
    caller_speaking: bool,
    last_activity: Instant,
    memory_json: Option<String>,
    caller_name: Option<String>,
    plugin_error: Option<String>,
    next_host_playback: u64,
}

/// How a call ended, for the record.
struct Ending {
    status: CallStatus,
    reason: &'static str,
    plugin_reason: EndReason,
    send_bye: bool,
}

impl Call {
    fn new(
        state: Arc<AppState>,
        key: CallKey,
        incoming: IncomingCall,
        admitted: Admitted,
        signals: mpsc::Receiver<CallSignal>,
    ) -> Self {
        Self {
            state,
            key,
            incoming,
            tenant: admitted.tenant,
            caller: admitted.caller,
            dialled: admitted.dialled,
            call_id: vaani_store::new_id(),
            started_unix_ms: now_unix_ms(),
            answered_at: None,
            signals,
            plugin: None,
            media: None,
            speech_jobs: None,
            speech_done: None,
            pending_playbacks: HashSet::new(),
            cancelled_playbacks: HashSet::new(),
            queued_events: VecDeque::new(),
            timers: HashMap::new(),
            hangup_after_playback: None,
            caller_speaking: false,
            last_activity: Instant::now(),
            memory_json: None,
            caller_name: None,
            plugin_error: None,
            next_host_playback: HOST_PLAYBACK_BASE,
        }
    }

    fn tenant_id(&self) -> &str {
        &self.tenant.id
    }

    async fn run(&mut self) {
        let external_id = self
            .incoming
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("X-Twilio-CallSid"))
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| self.incoming.call_id.clone());
        let new_call = NewCall {
            id: self.call_id.clone(),
            tenant_id: self.tenant.id.clone(),
            external_id: Some(external_id),
            direction: CallDirection::Inbound,
            caller: self.caller.clone(),
            dialled: self.dialled.clone(),
            status: CallStatus::Ringing,
            started_at_ms: self.started_unix_ms,
            plugin_name: self.tenant.plugin.as_ref().map(|p| p.info.name.clone()),
            plugin_version: self.tenant.plugin.as_ref().map(|p| p.info.version.clone()),
        };
        if let Err(error) = self.state.store.insert_call(&new_call).await {
            tracing::error!(call_id = %self.call_id, "could not store the call: {error}");
            self.reject(503, "Service Unavailable").await;
            return;
        }
        tracing::info!(
            call_id = %self.call_id,
            tenant_id = %self.tenant.id,
            caller = %mask_number(&self.caller),
            "incoming call"
        );

        let ending = match self.answer().await {
            Ok(()) => self.converse().await,
            Err(ending) => ending,
        };
        self.finish(ending).await;
    }

    async fn reject(&mut self, status: u16, reason: &str) {
        self.state
            .metrics
            .sip_rejections_total
            .with_label_values(&[&status.to_string()])
            .inc();
        self.state
            .sip_command(SipCommand::Reject {
                key: self.key,
                status,
                reason: reason.to_string(),
            })
            .await;
    }

    /// Negotiates media, rings, instantiates the plugin and sends the 200 OK.
    async fn answer(&mut self) -> Result<(), Ending> {
        let refused = |reason: &'static str| Ending {
            status: CallStatus::Rejected,
            reason,
            plugin_reason: EndReason::HostShutdown,
            send_bye: false,
        };
        let Some(offer) = self.incoming.sdp.clone() else {
            self.reject(488, "Not Acceptable Here").await;
            return Err(refused("no_sdp_offer"));
        };
        let lease = match self.state.media.allocate_port() {
            Ok(lease) => lease,
            Err(error) => {
                tracing::warn!(call_id = %self.call_id, "no RTP port: {error}");
                self.reject(503, "Service Unavailable").await;
                return Err(refused("no_rtp_port"));
            }
        };
        let (negotiated, answer_sdp) = match vaani_sip::sdp::answer_offer(
            &offer,
            &self.state.codecs,
            self.state.media_public_ip,
            lease.port(),
            rand_session_id(),
        ) {
            Ok(answer) => answer,
            Err(error) => {
                tracing::info!(call_id = %self.call_id, "SDP offer refused: {error}");
                self.reject(488, "Not Acceptable Here").await;
                return Err(refused("sdp_not_acceptable"));
            }
        };

        self.state
            .sip_command(SipCommand::Provisional {
                key: self.key,
                status: 180,
            })
            .await;
        if self.tenant.ring_ms > 0 {
            let ring_until = Instant::now() + Duration::from_millis(u64::from(self.tenant.ring_ms));
            loop {
                tokio::select! {
                    _ = sleep_until(ring_until) => break,
                    signal = self.signals.recv() => match signal {
                        Some(CallSignal::Cancelled) | None => {
                            return Err(Ending { status: CallStatus::Cancelled, reason: "caller_cancelled", plugin_reason: EndReason::CallerHangup, send_bye: false });
                        }
                        Some(CallSignal::Ended(_)) => {
                            return Err(Ending { status: CallStatus::Cancelled, reason: "caller_cancelled", plugin_reason: EndReason::CallerHangup, send_bye: false });
                        }
                        Some(CallSignal::Confirmed) => {}
                    }
                }
            }
        }

        let instance = match &self.tenant.plugin {
            Some(plugin) => Some(
                self.state
                    .plugins
                    .instantiate(plugin, self.tenant.limits.clone(), self.tenant.kv.clone())
                    .await,
            ),
            None => None,
        };
        match instance {
            None => self.plugin_error = Some("no plugin configured".to_string()),
            Some(Ok(instance)) => self.plugin = Some(instance),
            Some(Err(failure)) => {
                tracing::error!(call_id = %self.call_id, "plugin could not start: {}", failure.message);
                self.plugin_error = Some(format!("instantiate: {}", failure.message));
                self.state
                    .metrics
                    .plugin_failures_total
                    .with_label_values(&["instantiate"])
                    .inc();
            }
        }

        let session_config = self.state.session_config(&negotiated);
        tracing::debug!(?negotiated, ?session_config, "media negotiated");
        let session =
            match self
                .state
                .media
                .open_session(lease, session_config, self.state.new_vad())
            {
                Ok(session) => session,
                Err(error) => {
                    tracing::error!(call_id = %self.call_id, "media session failed: {error}");
                    self.reject(503, "Service Unavailable").await;
                    return Err(Ending {
                        status: CallStatus::Failed,
                        reason: "media_failed",
                        plugin_reason: EndReason::HostShutdown,
                        send_bye: false,
                    });
                }
            };
        self.media = Some(session);
        self.state
            .sip_command(SipCommand::Accept {
                key: self.key,
                sdp: answer_sdp,
            })
            .await;
        self.answered_at = Some(Instant::now());
        if let Err(error) = self
            .state
            .store
            .mark_answered(self.tenant_id(), &self.call_id, now_unix_ms())
            .await
        {
            tracing::warn!(call_id = %self.call_id, "could not mark the call answered: {error}");
        }
        self.start_speech_worker();
        Ok(())
    }

    fn start_speech_worker(&mut self) {
        let (jobs_tx, mut jobs_rx) = mpsc::channel::<SpeechJob>(64);
        let (done_tx, done_rx) = mpsc::channel::<SpeechDone>(64);
        let tts = self.state.tts.clone();
        tokio::spawn(async move {
            // One job at a time keeps the caller hearing sentences in the order they were said.
            while let Some(job) = jobs_rx.recv().await {
                let audio = tts
                    .synthesize(SpeechRequest {
                        text: job.text,
                        voice: job.voice,
                        language: job.language,
                        sample_rate: 8000,
                    })
                    .await;
                let done = SpeechDone {
                    playback: job.playback,
                    interruptible: job.interruptible,
                    audio,
                };
                if done_tx.send(done).await.is_err() {
                    break;
                }
            }
        });
        self.speech_jobs = Some(jobs_tx);
        self.speech_done = Some(done_rx);
    }

    fn media_ms(&self) -> u32 {
        self.answered_at
            .map(|t| t.elapsed().as_millis().min(u128::from(u32::MAX)) as u32)
            .unwrap_or(0)
    }

    /// The conversation: plugin events in, actions out, until someone hangs up.
    async fn converse(&mut self) -> Ending {
        let context = CallerContext {
            call_id: self.call_id.clone(),
            tenant_id: self.tenant.id.clone(),
            direction: Direction::Inbound,
            caller: self.caller.clone(),
            dialled: self.dialled.clone(),
            caller_name: None,
            memory_json: None,
            previous_calls: 0,
            config_json: self.tenant.plugin_config_json.clone(),
            started_at_unix_ms: self.started_unix_ms.max(0) as u64,
        };
        let context = self.with_caller_profile(context).await;
        if self.plugin.is_some() {
            self.deliver(Event::CallStarted(context)).await;
        } else {
            self.start_fallback().await;
        }

        loop {
            self.drain_queued_events().await;
            if let Some(ending) = self.hangup_if_drained() {
                return ending;
            }
            let next_timer = self.timers.values().map(|(at, _)| *at).min();
            let silence_deadline = self.silence_deadline();
            let wake_at = [next_timer, silence_deadline, self.hangup_after_playback]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let Some(media) = self.media.as_mut() else {
                return self.ended(
                    CallStatus::Failed,
                    "media_missing",
                    EndReason::HostShutdown,
                    true,
                );
            };
            let speech_done = self.speech_done.as_mut();
            tokio::select! {
                signal = self.signals.recv() => match signal {
                    Some(CallSignal::Confirmed) => {
                        tracing::debug!(call_id = %self.call_id, "ACK received");
                    }
                    Some(CallSignal::Cancelled) => {
                        return self.ended(CallStatus::Cancelled, "caller_cancelled", EndReason::CallerHangup, false);
                    }
                    Some(CallSignal::Ended(reason)) => {
                        return match reason {
                            CallEndReason::AckTimeout => self.ended(CallStatus::Failed, "no_ack", EndReason::NoAck, false),
                            _ => self.ended(CallStatus::Completed, "caller_hangup", EndReason::CallerHangup, false),
                        };
                    }
                    None => return self.ended(CallStatus::Failed, "host_shutdown", EndReason::HostShutdown, true),
                },
                event = media.next_event() => match event {
                    Some(event) => {
                        if let Some(ending) = self.on_media_event(event).await {
                            return ending;
                        }
                    }
                    None => return self.ended(CallStatus::Failed, "media_stopped", EndReason::HostShutdown, true),
                },
                done = async {
                    match speech_done {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Some(done) = done {
                        self.on_speech_done(done).await;
                    }
                },
                _ = sleep_until(wake_at) => {
                    self.on_wake().await;
                    if self.hangup_after_playback.is_some_and(|deadline| Instant::now() >= deadline) {
                        return self.ended(CallStatus::Completed, "plugin_hangup", EndReason::PluginHangup, true);
                    }
                }
            }
        }
    }

    async fn with_caller_profile(&mut self, mut context: CallerContext) -> CallerContext {
        match self
            .state
            .store
            .get_caller(self.tenant_id(), &self.caller)
            .await
        {
            Ok(Some(profile)) => {
                context.caller_name = profile.name.clone();
                context.memory_json = profile.memory_json.clone();
                context.previous_calls = profile.call_count.max(0) as u32;
                self.caller_name = profile.name;
                self.memory_json = profile.memory_json;
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(call_id = %self.call_id, "caller profile unavailable: {error}");
            }
        }
        context
    }

    fn silence_deadline(&self) -> Option<Instant> {
        let timeout = self.tenant.silence_timeout?;
        if self.plugin.is_none()
            || self.caller_speaking
            || !self.pending_playbacks.is_empty()
            || self.hangup_after_playback.is_some()
        {
            return None;
        }
        Some(self.last_activity + timeout)
    }

    async fn on_wake(&mut self) {
        let now = Instant::now();
        let mut fired: Vec<(u64, String)> = self
            .timers
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(id, (_, tag))| (*id, tag.clone()))
            .collect();
        fired.sort_by_key(|(id, _)| *id);
        for (id, tag) in fired {
            self.timers.remove(&id);
            self.queued_events.push_back(Event::TimerFired(tag));
        }
        if let (Some(deadline), Some(timeout)) =
            (self.silence_deadline(), self.tenant.silence_timeout)
            && deadline <= now
        {
            self.last_activity = now;
            self.queued_events
                .push_back(Event::SilenceTimeout(timeout.as_millis() as u32));
        }
    }

    async fn drain_queued_events(&mut self) {
        while let Some(event) = self.queued_events.pop_front() {
            self.deliver(event).await;
        }
    }

    fn hangup_if_drained(&mut self) -> Option<Ending> {
        if self.hangup_after_playback.is_some() && self.pending_playbacks.is_empty() {
            return Some(self.ended(
                CallStatus::Completed,
                "plugin_hangup",
                EndReason::PluginHangup,
                true,
            ));
        }
        None
    }

    fn ended(
        &self,
        status: CallStatus,
        reason: &'static str,
        plugin_reason: EndReason,
        send_bye: bool,
    ) -> Ending {
        Ending {
            status,
            reason,
            plugin_reason,
            send_bye,
        }
    }

    async fn on_media_event(&mut self, event: MediaEvent) -> Option<Ending> {
        match event {
            MediaEvent::Dtmf { digit, media_ms } => {
                self.last_activity = Instant::now();
                tracing::info!(call_id = %self.call_id, %digit, "DTMF");
                if let Err(error) = self
                    .state
                    .store
                    .append_dtmf(self.tenant_id(), &self.call_id, digit)
                    .await
                {
                    tracing::warn!(call_id = %self.call_id, "could not store DTMF: {error}");
                }
                self.record_event(media_ms, "dtmf", &digit.to_string())
                    .await;
                self.queued_events.push_back(Event::Dtmf(digit));
            }
            MediaEvent::SpeechStarted { media_ms } => {
                self.caller_speaking = true;
                self.last_activity = Instant::now();
                self.record_event(media_ms, "speech.started", "").await;
                self.queued_events
                    .push_back(Event::SpeechStarted { media_ms });
            }
            MediaEvent::SpeechStopped { duration_ms } => {
                self.caller_speaking = false;
                self.last_activity = Instant::now();
                let at = self.media_ms();
                self.record_event(at, "speech.stopped", &format!("{duration_ms} ms"))
                    .await;
                self.queued_events
                    .push_back(Event::SpeechStopped { duration_ms });
            }
            MediaEvent::PlaybackStarted { .. } => {}
            MediaEvent::PlaybackFinished { id } => {
                self.last_activity = Instant::now();
                if self.pending_playbacks.remove(&id) && id < HOST_PLAYBACK_BASE {
                    self.queued_events.push_back(Event::PlaybackFinished(id));
                }
            }
            MediaEvent::PlaybackStopped { id, .. } => {
                self.pending_playbacks.remove(&id);
            }
            MediaEvent::BargeIn { id, played_ms } => {
                tracing::debug!(call_id = %self.call_id, id, played_ms, "barge-in");
                let at = self.media_ms();
                self.record_event(at, "playback.barge_in", &format!("after {played_ms} ms"))
                    .await;
                if self.pending_playbacks.remove(&id) && id < HOST_PLAYBACK_BASE {
                    self.queued_events.push_back(Event::BargeIn(id));
                }
            }
            MediaEvent::RtpTimeout => {
                tracing::info!(call_id = %self.call_id, "no RTP from the caller: ending the call");
                return Some(self.ended(
                    CallStatus::Completed,
                    "media_timeout",
                    EndReason::MediaTimeout,
                    true,
                ));
            }
        }
        None
    }

    async fn on_speech_done(&mut self, done: SpeechDone) {
        if self.cancelled_playbacks.remove(&done.playback)
            || !self.pending_playbacks.contains(&done.playback)
        {
            return;
        }
        match done.audio {
            Ok(audio) => {
                if let Some(media) = &self.media
                    && let Err(error) =
                        media.enqueue(done.playback, audio.samples.clone(), done.interruptible)
                {
                    tracing::warn!(call_id = %self.call_id, "could not queue audio: {error}");
                    self.finish_playback_now(done.playback);
                }
            }
            Err(error) => {
                tracing::warn!(call_id = %self.call_id, "text-to-speech failed: {error}");
                let at = self.media_ms();
                self.record_event(at, "tts.error", &error.to_string()).await;
                self.finish_playback_now(done.playback);
            }
        }
    }

    /// Treats a playback that cannot be played as finished, so plugin flows keep going.
    fn finish_playback_now(&mut self, id: u64) {
        if self.pending_playbacks.remove(&id) && id < HOST_PLAYBACK_BASE {
            self.queued_events.push_back(Event::PlaybackFinished(id));
        }
    }

    /// Sends one event to the plugin and applies its actions; a failure starts the fallback.
    async fn deliver(&mut self, event: Event) {
        let Some(plugin) = self.plugin.as_mut() else {
            return;
        };
        let started = std::time::Instant::now();
        let result = plugin.handle(event).await;
        self.state
            .metrics
            .plugin_event_seconds
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(actions) => {
                for action in actions {
                    self.apply(action).await;
                }
            }
            Err(failure) => {
                let kind = format!("{:?}", failure.kind).to_lowercase();
                tracing::warn!(call_id = %self.call_id, kind = %kind, "plugin failed: {}", failure.message);
                self.state
                    .metrics
                    .plugin_failures_total
                    .with_label_values(&[&kind])
                    .inc();
                self.plugin = None;
                self.plugin_error = Some(format!("{kind}: {}", failure.message));
                let at = self.media_ms();
                self.record_event(
                    at,
                    "plugin.failure",
                    &format!("{kind}: {}", failure.message),
                )
                .await;
                self.start_fallback().await;
            }
        }
    }

    /// The tenant's fallback: stop what was playing, apologise, hang up.
    async fn start_fallback(&mut self) {
        if let Some(media) = &self.media {
            let _ = media.flush(None);
        }
        self.cancelled_playbacks
            .extend(self.pending_playbacks.drain());
        self.timers.clear();
        self.queued_events.clear();
        let id = self.next_host_playback;
        self.next_host_playback += 1;
        let text = self.tenant.fallback_text.clone();
        self.queue_speech(id, text, None, None, false).await;
        self.hangup_after_playback = Some(Instant::now() + HANGUP_DRAIN_LIMIT);
    }

    async fn queue_speech(
        &mut self,
        playback: u64,
        text: String,
        voice: Option<String>,
        language: Option<String>,
        interruptible: bool,
    ) {
        let Some(jobs) = &self.speech_jobs else {
            return;
        };
        self.pending_playbacks.insert(playback);
        let at = self.media_ms();
        let line = NewTranscriptLine {
            speaker: Speaker::Agent,
            text: text.clone(),
            start_ms: i64::from(at),
            end_ms: i64::from(at),
            confidence: None,
        };
        if let Err(error) = self
            .state
            .store
            .add_transcript_line(self.tenant_id(), &self.call_id, &line)
            .await
        {
            tracing::warn!(call_id = %self.call_id, "could not store a transcript line: {error}");
        }
        let job = SpeechJob {
            playback,
            text,
            voice,
            language,
            interruptible,
        };
        if jobs.try_send(job).is_err() {
            tracing::warn!(call_id = %self.call_id, "speech queue full: dropping a say");
            self.finish_playback_now(playback);
        }
    }

    async fn apply(&mut self, action: Action) {
        match action {
            Action::Say {
                id,
                text,
                voice,
                language,
                interruptible,
            } => {
                self.queue_speech(id, text, voice, language, interruptible)
                    .await;
            }
            Action::PlayAsset { id, asset_id, .. } => {
                let at = self.media_ms();
                self.record_event(
                    at,
                    "plugin.unsupported",
                    &format!("play-asset {asset_id}: assets are not available yet"),
                )
                .await;
                self.pending_playbacks.insert(id);
                self.finish_playback_now(id);
            }
            Action::StopPlayback(id) => {
                if let Some(media) = &self.media {
                    let _ = media.flush(id);
                }
                match id {
                    Some(id) => {
                        if self.pending_playbacks.remove(&id) {
                            self.cancelled_playbacks.insert(id);
                        }
                    }
                    None => {
                        let all: Vec<u64> = self.pending_playbacks.drain().collect();
                        self.cancelled_playbacks.extend(all);
                    }
                }
            }
            Action::Hangup { reason } => {
                tracing::info!(call_id = %self.call_id, reason = reason.as_deref().unwrap_or(""), "plugin hangs up");
                self.hangup_after_playback = Some(Instant::now() + HANGUP_DRAIN_LIMIT);
            }
            Action::SetMemory(memory) => self.memory_json = Some(memory),
            Action::SetCallerName(name) => self.caller_name = Some(name),
            Action::Extraction { schema_id, data } => {
                if let Err(error) = self
                    .state
                    .store
                    .add_extraction(self.tenant_id(), &self.call_id, &schema_id, &data)
                    .await
                {
                    tracing::error!(call_id = %self.call_id, "could not store an extraction: {error}");
                }
            }
            Action::Log { level, message } => {
                let level_name = match level {
                    LogLevel::Trace => "trace",
                    LogLevel::Debug => "debug",
                    LogLevel::Info => "info",
                    LogLevel::Warn => "warn",
                    LogLevel::Error => "error",
                };
                tracing::info!(call_id = %self.call_id, plugin_level = level_name, "plugin: {message}");
                let at = self.media_ms();
                self.record_event(at, "plugin.log", &format!("[{level_name}] {message}"))
                    .await;
            }
            Action::SetTimer { id, after_ms, tag } => {
                let at = Instant::now() + Duration::from_millis(u64::from(after_ms));
                self.timers.insert(id, (at, tag));
            }
            Action::CancelTimer(id) => {
                self.timers.remove(&id);
            }
        }
    }

    async fn record_event(&mut self, at_ms: u32, kind: &str, detail: &str) {
        if let Err(error) = self
            .state
            .store
            .add_call_event(
                self.tenant_id(),
                &self.call_id,
                i64::from(at_ms),
                kind,
                detail,
            )
            .await
        {
            tracing::warn!(call_id = %self.call_id, "could not store a call event: {error}");
        }
    }

    /// Tells the plugin, hangs up if needed, closes media and writes the call record.
    async fn finish(&mut self, ending: Ending) {
        if self.answered_at.is_some() && self.plugin.is_some() {
            // Only data-saving actions matter once the call is over.
            if let Some(plugin) = self.plugin.as_mut() {
                match plugin.handle(Event::CallEnded(ending.plugin_reason)).await {
                    Ok(actions) => {
                        for action in actions {
                            match action {
                                Action::SetMemory(_)
                                | Action::SetCallerName(_)
                                | Action::Extraction { .. }
                                | Action::Log { .. } => self.apply(action).await,
                                _ => {}
                            }
                        }
                    }
                    Err(failure) => {
                        self.plugin_error
                            .get_or_insert_with(|| format!("call-ended: {}", failure.message));
                    }
                }
            }
        }
        self.plugin = None;
        if ending.send_bye {
            self.state
                .sip_command(SipCommand::Hangup { key: self.key })
                .await;
        }
        let media_stats = self.media.take().map(|session| {
            let stats = session.stats();
            self.state
                .metrics
                .rtp_packets_received
                .inc_by(stats.packets_received);
            self.state
                .metrics
                .rtp_packets_sent
                .inc_by(stats.packets_sent);
            self.state
                .metrics
                .rtp_packets_lost
                .inc_by(stats.jitter.lost);
            let value = crate::call_media::media_stats_json(&stats);
            session.close();
            value
        });
        let outcome = CallOutcome {
            status: ending.status,
            ended_at_ms: now_unix_ms(),
            end_reason: ending.reason.to_string(),
            media_stats,
            error: self.plugin_error.clone(),
        };
        if let Err(error) = self
            .state
            .store
            .finish_call(self.tenant_id(), &self.call_id, &outcome)
            .await
        {
            tracing::error!(call_id = %self.call_id, "could not store the call's end: {error}");
        }
        if self.answered_at.is_some()
            && let Err(error) = self
                .state
                .store
                .record_caller_call(
                    self.tenant_id(),
                    &self.caller,
                    self.started_unix_ms,
                    self.caller_name.as_deref(),
                    self.memory_json.as_deref(),
                )
                .await
        {
            tracing::warn!(call_id = %self.call_id, "could not update the caller profile: {error}");
        }
        self.state
            .metrics
            .calls_total
            .with_label_values(&[ending.status.as_str()])
            .inc();
        tracing::info!(call_id = %self.call_id, status = ending.status.as_str(), reason = ending.reason, "call ended");
    }
}

fn rand_session_id() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0 >> 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_all_but_the_last_four_digits() {
        assert_eq!(mask_number("+918000000001"), "+*******0001");
        assert_eq!(mask_number("1234"), "****");
        assert_eq!(mask_number("anonymous"), "anonymous");
    }
}
