//! Start-up and wiring: configuration to running SIP, media, plugins, store and HTTP.
//!
//! Threads: SIP, HTTP and call routing run on the control runtime; calls (and so plugins) on a
//! runtime of their own; media on the media engine's shard threads. A busy plugin can therefore
//! neither delay SIP retransmissions nor the 20 ms media ticks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::mpsc;
use tracing::Instrument;
use vaani_config::Config;
use vaani_media::{EngineConfig, MediaEngine, SessionConfig};
use vaani_sandbox::{HostConfig, KvStore, LoadedPlugin, PluginHost, PluginLimits};
use vaani_sip::sdp::{AudioCodec, NegotiatedMedia};
use vaani_sip::{CallKey, SipCommand, SipDriver, SipDriverConfig, SipEvent};
use vaani_speech::stt::{OpenAiSttConfig, OpenAiTranscriber, SarvamSttConfig, SarvamTranscriber};
use vaani_speech::tts::{
    DeepgramSynthesizer, DeepgramTtsConfig, ElevenLabsConfig, ElevenLabsSynthesizer,
    OpenAiSynthesizer, OpenAiTtsConfig, SarvamSynthesizer, SarvamTtsConfig,
};
use vaani_speech::{
    EspeakConfig, EspeakSynthesizer, HibariConfig, HibariSynthesizer, Synthesizer, Transcriber,
    WhisperConfig, WhisperTranscriber,
};
use vaani_store::Store;

use crate::call::{CallSignal, run_call};
use crate::egress::Egress;
use crate::generation::LlmService;
use crate::http::{HttpState, router};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::registry_loader::RegistryLoader;
use crate::turns::TurnSettings;

/// A tenant as calls need it: its loaded plugin, limits and settings.
pub struct TenantRuntime {
    pub id: String,
    /// The trunk the tenant's numbers belong to and its outbound calls go through.
    pub trunk: String,
    /// The tenant's numbers, in configured order (the first is the default caller id).
    pub numbers: Vec<String>,
    /// The tenant's plugin; `None` when none is configured (calls get the fallback).
    pub plugin: Option<Arc<LoadedPlugin>>,
    pub limits: PluginLimits,
    pub kv: Arc<dyn KvStore>,
    pub fallback_text: String,
    pub plugin_config_json: String,
    pub ring_ms: u32,
    pub silence_timeout: Option<Duration>,
    /// Longest a call may last, and the warning spoken before that end.
    pub max_call_duration: Option<Duration>,
    pub duration_warning: Duration,
    pub duration_warning_text: String,
    /// When a caller's turn is over.
    pub turns: TurnSettings,
    /// The tenant's language model (`[tenants.llm]`), for `llm.generate` and summaries.
    pub llm: Option<Arc<LlmService>>,
    /// The tenant's HTTP egress (`[tenants.http]`), for `http.fetch`.
    pub egress: Option<Arc<Egress>>,
    /// Where the plugin may transfer callers (`[tenants.transfer_targets]`: name → URI).
    pub transfer_targets: std::collections::BTreeMap<String, String>,
    /// Call recording (`[tenants.recording]`).
    pub recording: vaani_config::RecordingConfig,
    /// The tenant's own per-number call rate and concurrent-call limit.
    pub call_limits: crate::limits::TenantCallLimits,
}

impl TenantRuntime {
    /// The URI of a transfer target the plugin named; `None` when it is not the tenant's.
    pub fn transfer_target(&self, target: &str) -> Option<&str> {
        vaani_config::resolve_transfer_target(&self.transfer_targets, target)
    }
}

/// Everything calls share.
pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub media: MediaEngine,
    pub media_public_ip: IpAddr,
    pub plugins: PluginHost,
    /// Tenants, numbers and trunks as a swappable snapshot; calls keep the one they took.
    pub registry: Arc<Registry>,
    pub tts: Arc<dyn Synthesizer>,
    /// Speech-to-text, when `[speech] stt_engine` configures one.
    pub stt: Option<Arc<dyn Transcriber>>,
    pub codecs: Vec<AudioCodec>,
    pub sip: mpsc::Sender<SipCommand>,
    /// Calls-per-second and concurrency limits of the trunks we place calls through.
    pub outbound_limiters: crate::outbound::Limiters,
    /// Per-source and per-number INVITE rates and each tenant's calls up.
    pub call_limits: crate::limits::CallLimits,
    /// Calls whose INVITE the driver has yet to confirm, by request id.
    pub pending_dials: Mutex<HashMap<u64, crate::call::OutboundStart>>,
    /// Second legs of bridged transfers whose INVITE the driver has yet to confirm, by request
    /// id: where their signals go.
    pub pending_legs: Mutex<HashMap<u64, mpsc::Sender<CallSignal>>>,
    /// Second legs of bridged transfers, by their key: where their signals go. Kept apart from
    /// the calls (a leg is not a call of its own); its call removes it when done with it.
    pub legs: Mutex<HashMap<CallKey, mpsc::Sender<CallSignal>>>,
    /// The next request id for [`SipCommand::PlaceCall`].
    pub next_dial: std::sync::atomic::AtomicU64,
}

impl AppState {
    /// Sends a command to the SIP driver; a stopped driver is logged, not fatal for the call.
    pub async fn sip_command(&self, command: SipCommand) {
        self.sip_command_sent(command).await;
    }

    /// [`sip_command`](Self::sip_command), saying whether the driver took the command.
    pub async fn sip_command_sent(&self, command: SipCommand) -> bool {
        let sent = self.sip.send(command).await.is_ok();
        if !sent {
            tracing::error!("SIP driver stopped: command dropped");
        }
        sent
    }

    /// The media session settings for a negotiated offer.
    pub fn session_config(&self, negotiated: &NegotiatedMedia) -> SessionConfig {
        let mut session = crate::call_media::session_config(&self.config, negotiated);
        session.utterances = self.stt.is_some();
        session
    }

    /// A fresh voice-activity detector for one call.
    pub fn new_vad(&self) -> Box<dyn vaani_media::Vad> {
        crate::call_media::new_vad()
    }
}

/// Installs the log subscriber: `RUST_LOG` filter (default `info`), one line per event, as
/// `[log] format` says: a flat JSON object carrying the fields of the enclosing spans
/// ([`crate::logging::FlatJson`]), or plain text.
pub fn init_tracing(format: vaani_config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(false);
    let _ = match format {
        vaani_config::LogFormat::Text => builder.try_init(),
        vaani_config::LogFormat::Json => builder
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(crate::logging::FlatJson)
            .try_init(),
    };
}

/// Runs the server until interrupted.
pub fn serve(config: Config) -> Result<()> {
    let control = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vaani-control")
        .enable_all()
        .build()
        .context("starting the control runtime")?;
    let calls = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vaani-calls")
        .enable_all()
        .build()
        .context("starting the call runtime")?;
    let call_handle = calls.handle().clone();
    let result = control.block_on(run(config, call_handle));
    // `run` returns once every call has ended (drain, then BYE); what is left on this runtime
    // (a refusal being sent, a call stuck past its hang-up grace) gets a last moment.
    calls.shutdown_timeout(Duration::from_secs(2));
    result
}

async fn run(config: Config, calls: tokio::runtime::Handle) -> Result<()> {
    let metrics = Arc::new(Metrics::new().context("registering metrics")?);
    let node_id = crate::node::node_id(config.store.node_id.as_deref());
    let store = Store::connect(&config.store.url)
        .await
        .with_context(|| {
            format!(
                "opening the store at {}",
                vaani_store::redact_url(&config.store.url)
            )
        })?
        .with_node_id(node_id.clone());
    // Only this node's calls: other nodes sharing the database may have calls up now.
    let recovered = store
        .mark_unfinished_calls_failed(now_unix_ms())
        .await
        .context("recovering calls left open by an earlier run")?;
    tracing::info!(%node_id, recovered, "node started");
    if recovered > 0 {
        tracing::warn!(
            %node_id,
            recovered,
            "marked calls left open by an earlier run of this node as failed"
        );
    }
    seed_store(&store, &config).await?;

    let plugins = PluginHost::new(HostConfig {
        max_instances: config.sandbox.max_instances,
        ..HostConfig::default()
    })
    .context("starting the plugin host")?;
    let compiler =
        crate::plugin_compile::PluginCompiler::current_exe(compile_limits(&config.sandbox))
            .context("finding this executable to compile plugins with")?;
    // The database decides who takes which calls with which plugin (registry_loader.rs).
    let routing = Arc::new(
        RegistryLoader::new(
            config.clone(),
            store.clone(),
            plugins.clone(),
            Some(compiler.clone()),
        )
        .map_err(anyhow::Error::msg)?,
    );
    routing.load(true).await?;

    let media = MediaEngine::start(EngineConfig {
        bind_ip: config.media.bind_ip,
        port_range: (config.media.rtp_ports.start, config.media.rtp_ports.end),
        shards: config.media.effective_shards(),
    })
    .context("starting the media engine")?;
    metrics
        .register_media_engine(media.clone())
        .context("registering the media engine's metrics")?;

    let tts = load_synthesizer(&config)?;

    let stt = load_transcriber(&config)?;

    let sip_tls = sip_tls_config(&config)?;
    let sip_config = SipDriverConfig {
        listen_udp: Some(config.sip.listen_udp),
        listen_tcp: config.sip.listen_tcp,
        listen_tls: config.sip.listen_tls,
        tls: sip_tls,
        endpoint: vaani_sip::EndpointConfig {
            contact_host: config.sip.public_address.clone(),
            contact_port: 0,
            contact_port_tls: 0,
            user_agent: config.sip.user_agent.clone(),
            t1: Duration::from_millis(config.sip.t1_ms),
            ..vaani_sip::EndpointConfig::default()
        },
    };
    let SipDriver {
        local_udp,
        local_tcp,
        local_tls,
        commands,
        mut events,
    } = SipDriver::start(sip_config).await.context("starting SIP")?;
    tracing::info!(?local_udp, ?local_tcp, ?local_tls, "SIP listening");

    let call_limits =
        crate::limits::CallLimits::new(&config.sip, metrics.tenant_active_calls.clone());
    let state = Arc::new(AppState {
        registry: routing.registry(),
        codecs: crate::call_media::codec_preference(&config),
        media_public_ip: config.media.public_ip,
        config,
        store: store.clone(),
        metrics: metrics.clone(),
        media,
        plugins,
        tts,
        stt,
        sip: commands,
        outbound_limiters: Default::default(),
        call_limits,
        pending_dials: Default::default(),
        pending_legs: Default::default(),
        legs: Default::default(),
        next_dial: std::sync::atomic::AtomicU64::new(1),
    });
    let (dial_tx, mut dial_rx) = mpsc::channel::<crate::outbound::DialRequest>(64);
    let _retention = crate::recording::spawn_retention_sweep(store.clone(), state.registry.clone());

    let http_state = Arc::new(HttpState {
        store,
        metrics,
        operator_key: state.config.http.operator_key.clone(),
        ready: Default::default(),
        dialer: Some(dial_tx),
        plugin_uploads: Some(crate::http::PluginUploads::new(
            compiler,
            state.plugins.clone(),
        )),
        webhooks: state.config.webhooks,
        routing: Some(routing),
        api_limits: crate::limits::ApiRateLimiter::from_config(&state.config.http),
    });
    let listener = tokio::net::TcpListener::bind(state.config.http.listen)
        .await
        .with_context(|| format!("binding HTTP on {}", state.config.http.listen))?;
    tracing::info!(addr = %state.config.http.listen, "HTTP listening");
    let http = tokio::spawn({
        // The peer's address reaches the handlers: requests without a valid key are
        // rate-limited by it.
        let app = router(http_state.clone())
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        async move { axum::serve(listener, app).await }
    });
    http_state.ready.store(true, Ordering::Release);
    // Webhook deliveries go on through the drain (calls ending then write call.ended).
    let (stop_webhooks, webhooks_stopped) = tokio::sync::watch::channel(false);
    let webhooks = tokio::spawn(
        Arc::new(
            crate::webhooks::Dispatcher::new(http_state.store.clone(), state.config.webhooks)
                .context("starting webhook delivery")?,
        )
        .run(webhooks_stopped),
    );

    let active: ActiveCalls = Arc::default();
    let mut http = http;
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else {
                    anyhow::bail!("SIP driver stopped");
                };
                route_sip_event(&state, &active, &calls, Admission::Open, event);
            }
            Some(request) = dial_rx.recv() => {
                calls.spawn(crate::outbound::dial(state.clone(), request));
            }
            result = &mut http => {
                anyhow::bail!("HTTP server stopped: {result:?}");
            }
            () = &mut shutdown => break,
        }
    }

    // Drain: refuse new calls (INVITE 503 with Retry-After, API dials 503 `draining`) while the
    // calls in progress go on, until they have all ended or the grace is over. A second stop
    // request ends the wait early.
    http_state.ready.store(false, Ordering::Release);
    let grace_secs = state.config.sip.shutdown_grace_secs;
    let draining = Admission::Draining {
        retry_after_secs: grace_secs.max(1),
    };
    tracing::info!(
        calls = calls_in_progress(&state, &active),
        grace_secs,
        "draining: refusing new calls, waiting for calls in progress"
    );
    let mut drain = Drain {
        state: &state,
        active: &active,
        calls: &calls,
        events: &mut events,
        dials: &mut dial_rx,
    };
    let grace_end = tokio::time::Instant::now() + Duration::from_secs(u64::from(grace_secs));
    let mut stop_again = std::pin::pin!(shutdown_signal());
    let drained = drain
        .serve_until(grace_end, draining, Some(stop_again.as_mut()))
        .await;

    // Then end the calls still up with a BYE (end reason `host_shutdown`) and give them a
    // moment to finish.
    if !drained {
        let senders: Vec<_> = active
            .lock()
            .map(|map| map.values().cloned().collect())
            .unwrap_or_default();
        tracing::info!(
            calls = senders.len(),
            "stopping: hanging up the calls still in progress"
        );
        for sender in senders {
            let _ = sender.try_send(CallSignal::Shutdown);
        }
        let hangup_end = tokio::time::Instant::now() + HANGUP_GRACE;
        if !drain.serve_until(hangup_end, draining, None).await {
            tracing::warn!(
                calls = calls_in_progress(&state, &active),
                "stopping with calls that did not finish"
            );
        }
    }
    // Let the driver send the last responses and BYEs, and webhook deliveries in flight end
    // (any cut short are delivered after the next start: the outbox keeps them).
    let _ = stop_webhooks.send(true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), webhooks).await;
    Ok(())
}

/// How long the calls still up when the drain ends get to hang up and store their records.
const HANGUP_GRACE: Duration = Duration::from_secs(10);

/// Whether an INVITE may become a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Admission {
    /// Taking calls.
    Open,
    /// Stopping: INVITEs get `503 Service Unavailable` with this `Retry-After` (seconds).
    Draining { retry_after_secs: u32 },
}

/// What the server serves while it stops: SIP events (so calls in progress go on, and their
/// BYEs and responses flow) and dial requests (refused).
struct Drain<'a> {
    state: &'a Arc<AppState>,
    active: &'a ActiveCalls,
    calls: &'a tokio::runtime::Handle,
    events: &'a mut mpsc::Receiver<SipEvent>,
    dials: &'a mut mpsc::Receiver<crate::outbound::DialRequest>,
}

impl Drain<'_> {
    /// Serves until no call is left (`true`), `until` passes or `stop` resolves (`false`).
    async fn serve_until(
        &mut self,
        until: tokio::time::Instant,
        admission: Admission,
        mut stop: Option<std::pin::Pin<&mut (dyn std::future::Future<Output = ()> + Send)>>,
    ) -> bool {
        loop {
            if calls_in_progress(self.state, self.active) == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= until {
                return false;
            }
            let stop_requested = async {
                match stop.as_mut() {
                    Some(stop) => stop.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(event) = self.events.recv() => {
                    route_sip_event(self.state, self.active, self.calls, admission, event);
                }
                Some(request) = self.dials.recv() => {
                    let _ = request.reply.send(Err(crate::outbound::DialError::Draining));
                }
                () = stop_requested => {
                    tracing::info!("second stop request: not waiting for calls any longer");
                    return false;
                }
                // Calls end on their own task: look again at the active map now and then.
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    }
}

/// How many calls are in progress: calls with a task, and calls we placed whose INVITE the
/// driver has yet to confirm (they get a task then).
fn calls_in_progress(state: &AppState, active: &ActiveCalls) -> usize {
    let pending = state.pending_dials.lock().map(|map| map.len()).unwrap_or(0);
    active.lock().map(|map| map.len()).unwrap_or(0) + pending
}

/// Signal senders of the calls in progress, by SIP call key.
type ActiveCalls = Arc<Mutex<HashMap<CallKey, mpsc::Sender<CallSignal>>>>;

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("stop requested");
}

/// Removes a call from the active map when its task ends, even by panic.
struct ActiveEntry {
    active: ActiveCalls,
    key: CallKey,
}

impl Drop for ActiveEntry {
    fn drop(&mut self) {
        if let Ok(mut map) = self.active.lock() {
            map.remove(&self.key);
        }
    }
}

fn route_sip_event(
    state: &Arc<AppState>,
    active: &ActiveCalls,
    calls: &tokio::runtime::Handle,
    admission: Admission,
    event: SipEvent,
) {
    let (key, signal) = match event {
        SipEvent::IncomingCall(incoming) => {
            let key = incoming.key;
            if let Admission::Draining { retry_after_secs } = admission {
                let state = state.clone();
                let span = tracing::info_span!(
                    "call",
                    sip_call_id = %incoming.call_id,
                    tenant_id = tracing::field::Empty
                );
                calls.spawn(
                    async move {
                        tracing::info!(
                            status = 503,
                            source = %incoming.source,
                            "INVITE refused: draining"
                        );
                        state.metrics.call_refused(None, "draining");
                        crate::call::refuse_with(
                            &state,
                            key,
                            503,
                            "Service Unavailable",
                            vec![("Retry-After", retry_after_secs.to_string())],
                        )
                        .await;
                    }
                    .instrument(span),
                );
                return;
            }
            let (tx, rx) = mpsc::channel(8);
            if let Ok(mut map) = active.lock() {
                map.insert(key, tx);
            }
            let state = state.clone();
            let active = active.clone();
            // `tenant_id` is recorded once admission maps the dialled number to a tenant.
            let span = tracing::info_span!(
                "call",
                sip_call_id = %incoming.call_id,
                tenant_id = tracing::field::Empty
            );
            calls.spawn(
                async move {
                    let _entry = ActiveEntry { active, key };
                    run_call(state, key, incoming, rx).await;
                }
                .instrument(span),
            );
            return;
        }
        SipEvent::CallConfirmed { key } => (key, CallSignal::Confirmed),
        SipEvent::CallCancelled { key } => (key, CallSignal::Cancelled),
        SipEvent::CallEnded { key, reason } => (key, CallSignal::Ended(reason)),
        SipEvent::MediaChanged { key, media } => (key, CallSignal::MediaChanged(media)),
        SipEvent::Dtmf { key, digit } => (key, CallSignal::Dtmf(digit)),
        SipEvent::TransferAccepted { key } => (key, CallSignal::TransferAccepted),
        SipEvent::TransferFailed {
            key,
            status,
            reason,
        } => (key, CallSignal::TransferFailed { status, reason }),
        SipEvent::OutboundStarted { request_id, key } => {
            let leg = state
                .pending_legs
                .lock()
                .ok()
                .and_then(|mut pending| pending.remove(&request_id));
            if let Some(leg) = leg {
                if leg.try_send(CallSignal::LegStarted(key)).is_ok() {
                    if let Ok(mut map) = state.legs.lock() {
                        map.insert(key, leg);
                    }
                } else {
                    // The call that wanted this leg is gone: drop the leg at once.
                    let state = state.clone();
                    calls.spawn(async move {
                        state.sip_command(SipCommand::Hangup { key }).await;
                    });
                }
                return;
            }
            let start = state
                .pending_dials
                .lock()
                .ok()
                .and_then(|mut pending| pending.remove(&request_id));
            let Some(start) = start else {
                tracing::warn!(request_id, "INVITE sent for an unknown dial request");
                return;
            };
            let (tx, rx) = mpsc::channel(8);
            if let Ok(mut map) = active.lock() {
                map.insert(key, tx);
            }
            let state = state.clone();
            let active = active.clone();
            calls.spawn(async move {
                let _entry = ActiveEntry { active, key };
                crate::call::run_outbound_call(state, key, start, rx).await;
            });
            return;
        }
        SipEvent::OutboundRejected { request_id, error } => {
            let leg = state
                .pending_legs
                .lock()
                .ok()
                .and_then(|mut pending| pending.remove(&request_id));
            if let Some(leg) = leg {
                let _ = leg.try_send(CallSignal::LegRejected(error));
                return;
            }
            let start = state
                .pending_dials
                .lock()
                .ok()
                .and_then(|mut pending| pending.remove(&request_id));
            if let Some(start) = start {
                tracing::warn!(call_id = %start.call_id, "call could not be placed: {error}");
                let state = state.clone();
                calls.spawn(async move {
                    state.outbound_limiters.finish(&start.trunk.id);
                    let outcome = vaani_store::CallOutcome {
                        status: vaani_store::CallStatus::Failed,
                        ended_at_ms: crate::call::now_unix_ms(),
                        end_reason: "sip_rejected".to_string(),
                        media_stats: None,
                        error: Some(error),
                    };
                    if let Err(error) = state
                        .store
                        .finish_call(&start.tenant.id, &start.call_id, &outcome)
                        .await
                    {
                        tracing::warn!("could not store the failed call: {error}");
                    }
                });
            }
            return;
        }
        SipEvent::OutboundProgress { key, status, .. } => {
            (key, CallSignal::OutboundProgress(status))
        }
        SipEvent::OutboundAnswered { key, media } => (key, CallSignal::OutboundAnswered(media)),
        SipEvent::OutboundFailed {
            key,
            status,
            reason,
            ..
        } => (key, CallSignal::OutboundFailed { status, reason }),
    };
    let leg = state
        .legs
        .lock()
        .ok()
        .and_then(|map| map.get(&key).cloned());
    if let Some(leg) = leg {
        match leg.try_send(signal) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(signal)) => {
                // The call that wanted this leg is gone: forget the leg and end it unless it
                // already ended.
                if let Ok(mut map) = state.legs.lock() {
                    map.remove(&key);
                }
                if !matches!(
                    signal,
                    CallSignal::Ended(_) | CallSignal::OutboundFailed { .. }
                ) {
                    let state = state.clone();
                    calls.spawn(async move {
                        state.sip_command(SipCommand::Hangup { key }).await;
                    });
                }
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("leg signal dropped: call task busy");
            }
        }
        return;
    }
    let sender = active.lock().ok().and_then(|map| map.get(&key).cloned());
    if let Some(sender) = sender
        && sender.try_send(signal).is_err()
    {
        tracing::warn!("call signal dropped: call task busy or gone");
    }
}

fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The SIP TLS listener's certificate and key (`[sip] tls_cert`, `tls_key`), when `listen_tls`
/// is set. An unreadable or invalid file fails start-up with an error naming it.
fn sip_tls_config(config: &Config) -> Result<Option<Arc<rustls::ServerConfig>>> {
    if config.sip.listen_tls.is_none() {
        return Ok(None);
    }
    let (Some(cert), Some(key)) = (&config.sip.tls_cert, &config.sip.tls_key) else {
        anyhow::bail!("sip.listen_tls is set but sip.tls_cert or sip.tls_key is not");
    };
    let tls = vaani_sip::tls::load_server_config(cert, key)
        .context("loading the SIP TLS certificate and key")?;
    Ok(Some(tls))
}

/// Loads the configured speech-to-text engine (once; all calls share it).
fn load_transcriber(config: &Config) -> Result<Option<Arc<dyn Transcriber>>> {
    let speech = &config.speech;
    match (speech.stt_engine.as_str(), &speech.stt_model) {
        ("whisper", Some(model)) => {
            let transcriber = WhisperTranscriber::load(WhisperConfig::new(model))
                .with_context(|| format!("speech.stt_model: loading {}", model.display()))?;
            tracing::info!(model = %model.display(), "speech-to-text: whisper");
            Ok(Some(Arc::new(transcriber)))
        }
        ("openai", _) => {
            let mut engine = OpenAiSttConfig::new(speech_api_key("stt", &speech.stt_api_key_env)?);
            if let Some(url) = &speech.stt_base_url {
                engine.base_url = url.clone();
            }
            engine.language = speech.stt_language.clone();
            let transcriber =
                OpenAiTranscriber::new(engine).context("speech.stt_engine: openai")?;
            tracing::info!(url = transcriber.url(), "speech-to-text: openai");
            Ok(Some(Arc::new(transcriber)))
        }
        ("sarvam", _) => {
            let mut engine = SarvamSttConfig::new(speech_api_key("stt", &speech.stt_api_key_env)?);
            if let Some(url) = &speech.stt_base_url {
                engine.base_url = url.clone();
            }
            if let Some(language) = &speech.stt_language {
                engine.language_code = language.clone();
            }
            let transcriber =
                SarvamTranscriber::new(engine).context("speech.stt_engine: sarvam")?;
            tracing::info!(url = transcriber.url(), "speech-to-text: sarvam");
            Ok(Some(Arc::new(transcriber)))
        }
        ("deepgram", _) => {
            // Deepgram streams; calls transcribe one utterance at a time, so each utterance
            // gets a stream of its own (the finals joined).
            use vaani_speech::StreamingUtteranceTranscriber;
            use vaani_speech::stt::{DeepgramSttConfig, DeepgramTranscriber};
            let mut engine =
                DeepgramSttConfig::new(speech_api_key("stt", &speech.stt_api_key_env)?);
            if let Some(url) = &speech.stt_base_url {
                engine.base_url = url.clone();
            }
            if let Some(language) = &speech.stt_language {
                engine.language = language.clone();
            }
            // Only the finals make the transcript: no interim results or speech-start events.
            engine.interim_results = false;
            engine.vad_events = false;
            let url = engine.base_url.clone();
            let streaming =
                DeepgramTranscriber::new(engine).context("speech.stt_engine: deepgram")?;
            let transcriber =
                StreamingUtteranceTranscriber::new(streaming).language(speech.stt_language.clone());
            tracing::info!(%url, "speech-to-text: deepgram (one stream per utterance)");
            Ok(Some(Arc::new(transcriber)))
        }
        _ => {
            tracing::info!("speech-to-text: off");
            Ok(None)
        }
    }
}

/// The configured text-to-speech engine; cloud engines read their API key now.
fn load_synthesizer(config: &Config) -> Result<Arc<dyn Synthesizer>> {
    let speech = &config.speech;
    let key = || speech_api_key("tts", &speech.tts_api_key_env);
    let engine: Arc<dyn Synthesizer> = match speech.tts_engine.as_str() {
        "hibari" => {
            let dir = speech
                .models_dir
                .as_ref()
                .context("speech.models_dir is required for tts_engine \"hibari\"")?;
            Arc::new(
                HibariSynthesizer::load(HibariConfig::in_models_dir(dir)).with_context(|| {
                    format!("speech.models_dir: loading hibari from {}", dir.display())
                })?,
            )
        }
        "elevenlabs" => {
            let mut engine = ElevenLabsConfig::new(key()?);
            if let Some(url) = &speech.tts_base_url {
                engine.base_url = url.clone();
            }
            if let Some(voice) = &speech.tts_voice {
                engine.voice_id = voice.clone();
            }
            Arc::new(ElevenLabsSynthesizer::new(engine).context("speech.tts_engine: elevenlabs")?)
        }
        "openai" => {
            let mut engine = OpenAiTtsConfig::new(key()?);
            if let Some(url) = &speech.tts_base_url {
                engine.base_url = url.clone();
            }
            if let Some(voice) = &speech.tts_voice {
                engine.voice = voice.clone();
            }
            Arc::new(OpenAiSynthesizer::new(engine).context("speech.tts_engine: openai")?)
        }
        "deepgram" => {
            let mut engine = DeepgramTtsConfig::new(key()?);
            if let Some(url) = &speech.tts_base_url {
                engine.base_url = url.clone();
            }
            if let Some(voice) = &speech.tts_voice {
                engine.model = voice.clone();
            }
            Arc::new(DeepgramSynthesizer::new(engine).context("speech.tts_engine: deepgram")?)
        }
        "sarvam" => {
            let mut engine = SarvamTtsConfig::new(key()?);
            if let Some(url) = &speech.tts_base_url {
                engine.base_url = url.clone();
            }
            if let Some(voice) = &speech.tts_voice {
                engine.speaker = voice.clone();
            }
            Arc::new(SarvamSynthesizer::new(engine).context("speech.tts_engine: sarvam")?)
        }
        _ => Arc::new(
            EspeakSynthesizer::new(EspeakConfig {
                program: speech.espeak_path.clone().into(),
                default_voice: speech.default_voice.clone(),
                rate_wpm: speech.rate_wpm,
                ..EspeakConfig::default()
            })
            .context("starting text-to-speech")?,
        ),
    };
    tracing::info!(engine = engine.name(), "text-to-speech");
    Ok(engine)
}

/// The API key of a cloud speech engine, from the variable `speech.<kind>_api_key_env`
/// names; an unset variable fails start with the variable's name.
fn speech_api_key(kind: &str, variable: &Option<String>) -> Result<String> {
    let variable = variable
        .as_deref()
        .with_context(|| format!("speech.{kind}_api_key_env is required for a cloud engine"))?;
    match std::env::var(variable) {
        Ok(key) if !key.trim().is_empty() => Ok(key),
        _ => anyhow::bail!(
            "speech.{kind}_api_key_env: environment variable {variable} is not set (it must hold the API key)"
        ),
    }
}

async fn seed_store(store: &Store, config: &Config) -> Result<()> {
    for trunk in &config.trunks {
        store
            .upsert_trunk(&vaani_store::Trunk {
                id: trunk.id.clone(),
                name: trunk.name.clone(),
                allowed_cidrs: trunk.allowed_cidrs.iter().map(|c| c.to_string()).collect(),
            })
            .await
            .with_context(|| format!("storing trunk {}", trunk.id))?;
    }
    // Config tenants are a seed: a missing tenant is inserted, an existing one only gets its
    // name refreshed (its status and settings belong to the API).
    for tenant in &config.tenants {
        store
            .upsert_tenant(&vaani_store::Tenant {
                id: tenant.id.clone(),
                name: tenant.name.clone(),
                status: vaani_store::TenantStatus::Active,
                created_at_ms: now_unix_ms(),
            })
            .await
            .with_context(|| format!("storing tenant {}", tenant.id))?;
        for number in &tenant.numbers {
            match store
                .assign_phone_number(&tenant.id, number, Some(&tenant.trunk))
                .await
            {
                Ok(_) => {}
                // The database never moves a number between tenants (the API could not either):
                // the owner releases it first.
                Err(vaani_store::StoreError::Conflict { .. }) => anyhow::bail!(
                    "tenants.{}: number {} belongs to another tenant in the database; release it \
                     there (DELETE /api/v1/numbers/{{number}}) or remove it from this tenant",
                    tenant.id,
                    crate::call::mask_number(number)
                ),
                Err(error) => {
                    return Err(error)
                        .with_context(|| format!("storing number of tenant {}", tenant.id));
                }
            }
        }
    }
    Ok(())
}

/// The limits of each plugin upload's compile child, from `[sandbox]`.
fn compile_limits(sandbox: &vaani_config::SandboxConfig) -> crate::plugin_compile::CompileLimits {
    crate::plugin_compile::CompileLimits {
        cpu_seconds: sandbox.compile_cpu_secs,
        data_bytes: sandbox.compile_memory_mib << 20,
        wall_timeout: Duration::from_secs(sandbox.compile_timeout_secs),
        ..crate::plugin_compile::CompileLimits::default()
    }
}
