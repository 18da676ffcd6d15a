//! One call, end to end: admission, answer, the plugin conversation, and the stored record.
//!
//! Each call is one task that owns its plugin instance and talks to its media session (in a
//! media shard) and to the SIP driver through channels. Nothing here runs on the media path:
//! audio keeps flowing while the plugin thinks, text is synthesized or the store is written.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tracing::Instrument;
use vaani_config::TrunkConfig;
use vaani_media::{MediaEvent, PortLease, SessionHandle};
use vaani_sandbox::{
    Action, CallerContext, Direction, EndReason, Event, ExpectedInput, GenerationOutcome, LogLevel,
    PastCall, PastExtraction, PluginInstance, TransferFailure, TransferMode,
};
use vaani_sip::{
    CallEndReason, CallKey, IncomingCall, NegotiatedMedia, OutboundFailure, SipCommand, Transport,
};
use vaani_speech::{
    SpeechRequest, SynthesizedAudio, Transcript, TranscriptionError, TranscriptionRequest,
};
use vaani_store::{CallDirection, CallOutcome, CallStatus, NewCall, NewTranscriptLine, Speaker};

use crate::app::{AppState, TenantRuntime};
use crate::call_meter::CallMeter;
use crate::conversation::{Conversation, ConversationUpdate};
use crate::generation::GenerationUpdate;
use crate::routing::{dialled_number, number_candidates};
use crate::turns::{Expecting, Turn, TurnPart, TurnTaker};

/// What the SIP side and the server tell a call after the INVITE.
#[derive(Debug)]
pub enum CallSignal {
    /// The ACK for our 200 arrived.
    Confirmed,
    /// The caller cancelled before we answered (the SIP core already answered 487).
    Cancelled,
    /// The dialog ended.
    Ended(CallEndReason),
    /// A re-INVITE or UPDATE changed the media (hold, resume, new address).
    MediaChanged(NegotiatedMedia),
    /// A key sent as SIP INFO.
    Dtmf(char),
    /// A call we placed is ringing or in early media.
    OutboundProgress(u16),
    /// A call we placed was answered with this media.
    OutboundAnswered(NegotiatedMedia),
    /// A call we placed was not answered.
    OutboundFailed {
        /// The final SIP status.
        status: u16,
        /// What it means.
        reason: OutboundFailure,
    },
    /// The trunk accepted our REFER and is calling the transfer target.
    TransferAccepted,
    /// Our transfer did not happen; the call goes on.
    TransferFailed {
        /// The SIP status that ended it, if any.
        status: Option<u16>,
        /// What happened.
        reason: String,
    },
    /// The second leg of a bridged transfer: the driver sent its INVITE as this call.
    LegStarted(CallKey),
    /// The second leg of a bridged transfer could not be placed; nothing was sent.
    LegRejected(String),
    /// The server is stopping: end the call now.
    Shutdown,
}

/// A blind transfer the plugin asked for, from the request to its outcome.
#[derive(Debug)]
struct PendingTransfer {
    /// The target as the plugin named it (reported back on failure).
    target: String,
    /// The URI from the tenant's transfer targets.
    uri: String,
    /// The REFER goes out once the playback queued before it has finished, or at this instant.
    refer_at: Instant,
    /// Whether the REFER was sent.
    referred: bool,
}

/// Applies a re-offer to the running media session: where RTP goes, and whether we send and
/// expect it (a call on hold sends nothing and is not timed out for the peer's silence).
fn apply_media_change(media: &SessionHandle, negotiated: &NegotiatedMedia) {
    use vaani_sip::MediaDirection;
    let sending = negotiated.remote_rtp.is_some()
        && matches!(
            negotiated.direction,
            MediaDirection::SendRecv | MediaDirection::SendOnly
        );
    let receiving = matches!(
        negotiated.direction,
        MediaDirection::SendRecv | MediaDirection::RecvOnly
    );
    tracing::info!(
        remote = ?negotiated.remote_rtp,
        direction = ?negotiated.direction,
        "media changed by the peer"
    );
    let applied = match negotiated.remote_rtp {
        Some(remote) => media.set_remote(Some(remote)),
        None => Ok(()),
    }
    .and_then(|()| media.set_direction(sending, receiving))
    // Unchanged keys are a no-op in the session; SDES rekeys with new a=crypto lines.
    .and_then(|()| media.set_srtp(negotiated.srtp.as_ref().map(crate::call_media::srtp_keys)));
    if let Err(error) = applied {
        tracing::warn!("could not apply the media change: {error}");
    }
}

/// Longest wait for queued playback to finish after the plugin hangs up.
const HANGUP_DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// Longest announcement played as early media before an unanswered call is refused.
const EARLY_ANNOUNCEMENT_LIMIT: Duration = Duration::from_secs(30);

/// Playback ids used for host-generated speech (the fallback), far above plugin ids.
const HOST_PLAYBACK_BASE: u64 = 1 << 62;
/// How many earlier calls of the caller a plugin sees at call start.
const RECENT_CALLS: u32 = 5;
/// Longest wait for the LLM's summary of a finished call.
const SUMMARY_LIMIT: Duration = Duration::from_secs(15);

/// Why a call is refused before it exists.
struct Rejection {
    status: u16,
    reason: &'static str,
    /// Why, as the `reason` label of `vaani_call_refusals_total`.
    cause: &'static str,
    detail: String,
    /// Further response headers (a 401's challenges, a 503's `Retry-After`).
    headers: Vec<(&'static str, String)>,
    /// Whether to log this refusal at `info` (a flood's repeats go to `debug`).
    log: bool,
    /// The tenant the dialled number belongs to, once known.
    tenant: Option<String>,
}

impl Rejection {
    fn new(status: u16, reason: &'static str, cause: &'static str, detail: String) -> Self {
        Self {
            status,
            reason,
            cause,
            detail,
            headers: Vec::new(),
            log: true,
            tenant: None,
        }
    }

    /// The same refusal, counted for `tenant`.
    fn for_tenant(mut self, tenant: &str) -> Self {
        self.tenant = Some(tenant.to_owned());
        self
    }

    /// The refusal of an INVITE over one of the [`crate::limits`].
    fn over_limit(refusal: crate::limits::CallRefusal, detail: String) -> Self {
        use crate::limits::CallRefusal;
        match refusal {
            CallRefusal::SourceRate(refused) | CallRefusal::NumberRate(refused) => Self {
                headers: vec![("Retry-After", refused.retry_after_secs().to_string())],
                log: refused.first,
                ..Self::new(503, "Service Unavailable", refusal.reason(), detail)
            },
            CallRefusal::TenantBusy { .. } => Self::new(486, "Busy Here", refusal.reason(), detail),
        }
    }
}

/// Admission result: where the call goes.
struct Admitted {
    tenant: Arc<TenantRuntime>,
    /// The trunk the call came through.
    trunk: Option<TrunkConfig>,
    caller: String,
    dialled: String,
    /// The call's place in its tenant's concurrent calls, held for the call's life.
    slot: crate::limits::CallSlot,
}

/// Whether an address can only be reached inside some private network (RFC 1918, CGNAT
/// 100.64/10, link-local, IPv6 unique-local and link-local).
fn is_private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_link_local()
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xC0) == 64)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// The SDP names a private address while the peer signals from a public one: it is behind a
/// NAT that did not rewrite its SDP.
fn behind_nat(sdp_ip: IpAddr, signalling_ip: IpAddr) -> bool {
    let signalling = signalling_ip.to_canonical();
    is_private(sdp_ip) && !is_private(signalling) && !signalling.is_loopback()
}

/// Most INVITE headers handed to a plugin, and the longest value; a network peer writes them.
const MAX_PLUGIN_HEADERS: usize = 32;
const MAX_PLUGIN_HEADER_VALUE: usize = 1024;

/// The provider's id for the call: the trunk's external-id header when the INVITE has it,
/// else the SIP Call-ID.
fn external_id(trunk: Option<&TrunkConfig>, incoming: &IncomingCall) -> String {
    trunk
        .and_then(|t| t.external_id_header.as_deref())
        .and_then(|wanted| {
            incoming
                .headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
        })
        .map(|(_, value)| value.chars().take(MAX_PLUGIN_HEADER_VALUE).collect())
        .filter(|value: &String| !value.trim().is_empty())
        .unwrap_or_else(|| incoming.call_id.clone())
}

/// The INVITE headers the trunk lets through to the plugin, bounded in number and size.
fn plugin_headers(trunk: Option<&TrunkConfig>, incoming: &IncomingCall) -> Vec<(String, String)> {
    let Some(trunk) = trunk else {
        return Vec::new();
    };
    incoming
        .headers
        .iter()
        .filter(|(name, _)| trunk.passes_to_plugin(name))
        .take(MAX_PLUGIN_HEADERS)
        .map(|(name, value)| {
            (
                name.clone(),
                value.chars().take(MAX_PLUGIN_HEADER_VALUE).collect(),
            )
        })
        .collect()
}

/// Routes the INVITE by its dialled number, then checks that the number's trunk allows the
/// source address (several trunks of one provider share its addresses).
fn admit(state: &AppState, incoming: &IncomingCall) -> Result<Admitted, Rejection> {
    // One snapshot for the whole admission; the call then keeps the tenant it picked.
    let registry = state.registry.snapshot();
    let source = incoming.source.ip();
    let limits = &state.call_limits;
    let now = std::time::Instant::now();
    limits.check_source(source, now).map_err(|refusal| {
        Rejection::over_limit(
            refusal,
            format!("source {source} is over its INVITEs per second"),
        )
    })?;
    let known_source = registry.trunks.iter().any(|t| t.allows(source));
    let forbidden = |detail: String| Rejection::new(403, "Forbidden", "forbidden_source", detail);
    let dialled = dialled_number(
        incoming.request_uri_user.as_deref(),
        incoming.to_user.as_deref(),
    );
    let route = dialled.as_deref().and_then(|dialled| {
        number_candidates(dialled)
            .into_iter()
            .find_map(|candidate| {
                registry
                    .numbers
                    .get(&candidate)
                    .map(|r| (candidate, r.clone()))
            })
    });
    if let Some((_, route)) = &route {
        tracing::Span::current().record("tenant_id", route.tenant_id.as_str());
    }
    let Some((dialled, route)) = route else {
        if !known_source {
            return Err(forbidden(format!(
                "source {source} is not in any trunk's allowed networks"
            )));
        }
        return Err(Rejection::new(
            404,
            "Not Found",
            "unknown_number",
            format!(
                "number {} is not configured",
                mask_number(dialled.as_deref().unwrap_or("(none)"))
            ),
        ));
    };
    let trunk_allows = registry
        .trunks
        .iter()
        .any(|t| t.id == route.trunk_id && t.allows(source));
    let for_tenant = |rejection: Rejection| rejection.for_tenant(&route.tenant_id);
    if !trunk_allows {
        return Err(for_tenant(forbidden(format!(
            "source {source} is not in the allowed networks of trunk {}",
            route.trunk_id
        ))));
    }
    let Some(tenant) = registry.tenant(&route.tenant_id) else {
        return Err(for_tenant(Rejection::new(
            480,
            "Temporarily Unavailable",
            "tenant_unavailable",
            format!("tenant {} is not running", route.tenant_id),
        )));
    };
    if let Some(gate) = registry.auth_gates.get(&route.trunk_id) {
        let now = now_unix_ms().max(0) as u64 / 1000;
        if let Err(failure) = gate.verify(&incoming.headers, "INVITE", now) {
            return Err(for_tenant(Rejection {
                headers: gate.challenges(now),
                ..Rejection::new(
                    401,
                    "Unauthorized",
                    "unauthorized",
                    format!("trunk {}: {failure}", route.trunk_id),
                )
            }));
        }
    }
    // After the digest check (a challenged INVITE is not a call yet), the tenant's calls up
    // before the number's rate (a busy tenant does not use up the number's calls).
    let slot = limits
        .try_occupy(&tenant.id, tenant.call_limits.max_concurrent_calls)
        .map_err(|refusal| {
            for_tenant(Rejection::over_limit(
                refusal,
                format!("tenant {} has its maximum of calls up", tenant.id),
            ))
        })?;
    limits
        .check_number(
            &dialled,
            tenant.call_limits.calls_per_minute_per_number,
            now,
        )
        .map_err(|refusal| {
            for_tenant(Rejection::over_limit(
                refusal,
                format!(
                    "number {} is over its calls per minute",
                    mask_number(&dialled)
                ),
            ))
        })?;
    let caller = incoming
        .from_user
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "anonymous".to_string());
    let trunk = state
        .config
        .trunks
        .iter()
        .find(|t| t.id == route.trunk_id)
        .cloned();
    Ok(Admitted {
        tenant,
        trunk,
        caller,
        dialled,
        slot,
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

/// `text` (a transfer target, a SIP URI, a message naming one) with every phone number in it
/// masked as [`mask_number`] does: each run of more than four digits keeps its last four
/// (short runs, such as the parts of an IP address or a port, stay as they are).
pub fn mask_numbers_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.len() > 4 {
            out.push_str(&mask_number(digits));
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

pub(crate) fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Refuses an INVITE with a final status and counts it.
async fn refuse(state: &AppState, key: CallKey, status: u16, reason: &str) {
    refuse_with(state, key, status, reason, Vec::new()).await;
}

/// [`refuse`] with further response headers.
pub(crate) async fn refuse_with(
    state: &AppState,
    key: CallKey,
    status: u16,
    reason: &str,
    headers: Vec<(&'static str, String)>,
) {
    state
        .metrics
        .sip_rejections_total
        .with_label_values(&[&status.to_string()])
        .inc();
    state
        .sip_command(SipCommand::Reject {
            key,
            status,
            reason: reason.to_string(),
            headers,
        })
        .await;
}

/// Keeps the active-calls gauge right even if a call task panics.
struct ActiveCallGauge(prometheus::IntGauge);

impl ActiveCallGauge {
    fn new(gauge: &prometheus::IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for ActiveCallGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
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
            if rejection.log {
                tracing::info!(
                    status = rejection.status,
                    cause = rejection.cause,
                    source = %incoming.source,
                    "INVITE refused: {}",
                    rejection.detail
                );
            } else {
                tracing::debug!(
                    status = rejection.status,
                    cause = rejection.cause,
                    source = %incoming.source,
                    "INVITE refused again: {}",
                    rejection.detail
                );
            }
            state
                .metrics
                .call_refused(rejection.tenant.as_deref(), rejection.cause);
            refuse_with(
                &state,
                key,
                rejection.status,
                rejection.reason,
                rejection.headers,
            )
            .await;
            return;
        }
    };
    let _gauge = ActiveCallGauge::new(&state.metrics.active_calls);
    let mut call = Call::new(state.clone(), key, incoming, admitted, signals);
    let span = tracing::info_span!("call", call_id = %call.call_id, tenant_id = %call.tenant.id);
    call.run().instrument(span).await;
}

/// What the task of a call we placed starts from (see [`crate::outbound`]).
pub struct OutboundStart {
    /// The call's id, already stored (status `ringing`).
    pub call_id: String,
    /// The tenant whose plugin talks.
    pub tenant: Arc<TenantRuntime>,
    /// The trunk the call goes through.
    pub trunk: TrunkConfig,
    /// Our caller id.
    pub from: String,
    /// The number called.
    pub to: String,
    /// The RTP port our offer named.
    pub lease: PortLease,
    /// The trunk's address.
    pub destination: std::net::SocketAddr,
    /// The transport to it.
    pub transport: Transport,
    /// The call's place in its tenant's calls up, taken when the call was placed.
    pub slot: crate::limits::CallSlot,
}

/// Runs one call we placed: waits for the answer, then converses exactly like an inbound call.
pub async fn run_outbound_call(
    state: Arc<AppState>,
    key: CallKey,
    start: OutboundStart,
    signals: mpsc::Receiver<CallSignal>,
) {
    let _gauge = ActiveCallGauge::new(&state.metrics.active_calls);
    let trunk_id = start.trunk.id.clone();
    let incoming = IncomingCall {
        key,
        source: start.destination,
        transport: start.transport,
        request_uri_user: Some(start.to.clone()),
        from_user: Some(start.from.clone()),
        from_display: None,
        to_user: Some(start.to.clone()),
        call_id: String::new(),
        sdp: None,
        headers: Vec::new(),
    };
    let admitted = Admitted {
        tenant: start.tenant,
        trunk: Some(start.trunk),
        // The person on the line is the one called: their memory is what the plugin gets.
        caller: start.to,
        dialled: start.from,
        slot: start.slot,
    };
    let mut call = Call::new(state.clone(), key, incoming, admitted, signals);
    call.call_id = start.call_id;
    call.direction = Direction::Outbound;
    let span = tracing::info_span!("call", call_id = %call.call_id, tenant_id = %call.tenant.id);
    async {
        tracing::info!(to = %mask_number(&call.caller), "placing call");
        let ending = match call.await_answer(start.lease).await {
            Ok(()) => call.converse().await,
            Err(ending) => ending,
        };
        call.finish(ending).await;
    }
    .instrument(span)
    .await;
    state.outbound_limiters.finish(&trunk_id);
}

/// A text-to-speech job, queued in the order the plugin said things.
struct SpeechJob {
    playback: u64,
    source: SpeechSource,
}

/// Where a queued playback's audio comes from.
enum SpeechSource {
    /// Text for the text-to-speech engine.
    Text {
        text: String,
        voice: Option<String>,
        language: Option<String>,
    },
    /// One of the tenant's audio assets, by name (`play-asset`).
    Asset(String),
}

/// A finished text-to-speech job (or asset load).
struct SpeechDone {
    playback: u64,
    audio: Result<SynthesizedAudio, PlaybackAudioError>,
    /// Time the engine took.
    synthesis: Duration,
    /// Whether the audio came from the text-to-speech engine (metered as a reply).
    spoken: bool,
}

/// Why a queued playback has no audio.
#[derive(Debug, thiserror::Error)]
enum PlaybackAudioError {
    /// Text-to-speech failed.
    #[error(transparent)]
    Speech(#[from] vaani_speech::SpeechError),
    /// The tenant has no asset of that name.
    #[error("the tenant has no asset named {0:?}")]
    MissingAsset(String),
    /// The asset could not be read.
    #[error("reading asset {asset:?}: {detail}")]
    AssetStore { asset: String, detail: String },
}

/// Caller audio of one utterance waiting for speech-to-text.
struct PendingUtterance {
    start_ms: u32,
    end_ms: u32,
    audio: Arc<[i16]>,
}

/// A finished speech-to-text job.
struct TranscriptDone {
    start_ms: u32,
    end_ms: u32,
    result: Result<Transcript, TranscriptionError>,
}

/// How a call ended, for the record.
struct Ending {
    status: CallStatus,
    reason: &'static str,
    plugin_reason: EndReason,
    send_bye: bool,
}

impl Ending {
    fn new(status: CallStatus, reason: &'static str, plugin_reason: EndReason) -> Self {
        Self {
            status,
            reason,
            plugin_reason,
            send_bye: false,
        }
    }

    /// The same ending, with vaani sending the BYE.
    fn with_bye(mut self) -> Self {
        self.send_bye = true;
        self
    }

    fn cancelled() -> Self {
        Self::new(
            CallStatus::Cancelled,
            "caller_cancelled",
            EndReason::CallerHangup,
        )
    }

    fn refused(reason: &'static str) -> Self {
        Self::new(CallStatus::Rejected, reason, EndReason::HostShutdown)
    }
}

struct Call {
    state: Arc<AppState>,
    key: CallKey,
    incoming: IncomingCall,
    tenant: Arc<TenantRuntime>,
    trunk: Option<TrunkConfig>,
    /// Inbound, or placed by us (then `caller` is the person called and `dialled` our caller id).
    direction: Direction,
    caller: String,
    dialled: String,
    /// The call's place in its tenant's calls up (concurrent limit, per-tenant gauge).
    _slot: crate::limits::CallSlot,
    call_id: String,
    started_unix_ms: i64,
    answered_at: Option<Instant>,
    signals: mpsc::Receiver<CallSignal>,
    plugin: Option<PluginInstance>,
    media: Option<SessionHandle>,
    /// Speech waiting for text-to-speech, in order; one job is synthesized at a time.
    speech_queue: VecDeque<SpeechJob>,
    /// The job being synthesized, so that a stop or barge-in can abort it.
    speech_in_flight: Option<(u64, JoinHandle<()>)>,
    speech_done_tx: mpsc::Sender<SpeechDone>,
    speech_done_rx: mpsc::Receiver<SpeechDone>,
    /// Utterances waiting for speech-to-text, in order; one is transcribed at a time.
    utterance_queue: VecDeque<PendingUtterance>,
    transcription_in_flight: Option<JoinHandle<()>>,
    transcript_tx: mpsc::Sender<TranscriptDone>,
    transcript_rx: mpsc::Receiver<TranscriptDone>,
    /// Playbacks not yet finished or stopped (queued, synthesizing or playing), with whether
    /// caller speech may interrupt them.
    pending_playbacks: HashMap<u64, bool>,
    /// Events raised by the host while applying actions, delivered after the current one.
    queued_events: VecDeque<Event>,
    timers: HashMap<u64, (Instant, String)>,
    hangup_after_playback: Option<Instant>,
    /// When the tenant's maximum call duration ends the call, and whether the warning was said.
    max_duration_at: Option<Instant>,
    duration_warned: bool,
    caller_speaking: bool,
    last_activity: Instant,
    memory_json: Option<String>,
    caller_name: Option<String>,
    previous_calls: u32,
    plugin_error: Option<String>,
    next_host_playback: u64,
    /// Per-turn latency and the cost ledger.
    meter: CallMeter,
    /// Joins transcripts into the caller's turns and times their end.
    turns: TurnTaker,
    /// The plugin's LLM generations and HTTP fetches.
    conversation: Conversation,
    /// What was said, in order (speaker, text), for the end-of-call summary.
    said: Vec<(String, String)>,
    /// The summary and sentiment the plugin set.
    summary: Option<(String, Option<String>)>,
    /// The blind transfer under way, if any.
    transfer: Option<PendingTransfer>,
    /// The second leg of a bridged transfer, if any.
    leg: Option<crate::bridge::Leg>,
    /// The dialog is confirmed (our 200 was ACKed, or the call we placed was answered): only
    /// then can a REFER go out.
    dialog_confirmed: bool,
    /// The call's recording, when the tenant records calls (from the answer on).
    recording: Option<crate::recording::CallRecording>,
}

impl Call {
    fn new(
        state: Arc<AppState>,
        key: CallKey,
        incoming: IncomingCall,
        admitted: Admitted,
        signals: mpsc::Receiver<CallSignal>,
    ) -> Self {
        let (speech_done_tx, speech_done_rx) = mpsc::channel(2);
        let (transcript_tx, transcript_rx) = mpsc::channel(2);
        let meter = CallMeter::new(
            state.metrics.clone(),
            state.config.pricing.clone(),
            state.stt.is_some(),
        );
        let turns = TurnTaker::new(admitted.tenant.turns);
        let conversation =
            Conversation::new(admitted.tenant.llm.clone(), admitted.tenant.egress.clone());
        Self {
            state,
            key,
            incoming,
            tenant: admitted.tenant,
            trunk: admitted.trunk,
            direction: Direction::Inbound,
            caller: admitted.caller,
            dialled: admitted.dialled,
            _slot: admitted.slot,
            call_id: vaani_store::new_id(),
            started_unix_ms: now_unix_ms(),
            answered_at: None,
            signals,
            plugin: None,
            media: None,
            speech_queue: VecDeque::new(),
            speech_in_flight: None,
            speech_done_tx,
            speech_done_rx,
            utterance_queue: VecDeque::new(),
            transcription_in_flight: None,
            transcript_tx,
            transcript_rx,
            pending_playbacks: HashMap::new(),
            queued_events: VecDeque::new(),
            timers: HashMap::new(),
            hangup_after_playback: None,
            max_duration_at: None,
            duration_warned: false,
            caller_speaking: false,
            last_activity: Instant::now(),
            memory_json: None,
            caller_name: None,
            previous_calls: 0,
            plugin_error: None,
            next_host_playback: HOST_PLAYBACK_BASE,
            meter,
            turns,
            conversation,
            said: Vec::new(),
            summary: None,
            transfer: None,
            leg: None,
            dialog_confirmed: false,
            recording: None,
        }
    }

    fn tenant_id(&self) -> &str {
        &self.tenant.id
    }

    /// The codec preference for this call: its trunk's, else the server's.
    fn codecs(&self) -> Vec<vaani_sip::AudioCodec> {
        match self.trunk.as_ref().and_then(|t| t.codecs.as_deref()) {
            Some(codecs) => crate::call_media::codec_list(codecs),
            None => self.state.codecs.clone(),
        }
    }

    async fn run(&mut self) {
        let external_id = external_id(self.trunk.as_ref(), &self.incoming);
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
            tracing::error!("could not store the call: {error}");
            refuse(&self.state, self.key, 503, "Service Unavailable").await;
            return;
        }
        tracing::info!(caller = %mask_number(&self.caller), "incoming call");

        let ending = match self.answer().await {
            Ok(()) => self.converse().await,
            Err(ending) => ending,
        };
        self.finish(ending).await;
    }

    /// Negotiates media, loads the caller's profile, rings, instantiates the plugin and sends
    /// the 200 OK.
    async fn answer(&mut self) -> Result<(), Ending> {
        let Some(offer) = self.incoming.sdp.clone() else {
            refuse(&self.state, self.key, 488, "Not Acceptable Here").await;
            return Err(Ending::refused("no_sdp_offer"));
        };
        let lease = match self.state.media.allocate_port() {
            Ok(lease) => lease,
            Err(error) => {
                tracing::warn!("no RTP port: {error}");
                refuse(&self.state, self.key, 503, "Service Unavailable").await;
                return Err(Ending::refused("no_rtp_port"));
            }
        };
        let srtp = self
            .trunk
            .as_ref()
            .map(|t| crate::call_media::srtp_mode(t.srtp))
            .unwrap_or_default();
        let sdp_session = match vaani_sip::SdpSession::answer_initial_with_srtp(
            &offer,
            &self.codecs(),
            self.state.media_public_ip,
            lease.port(),
            rand_session_id(),
            srtp,
        ) {
            Ok(session) => session,
            Err(error) => {
                tracing::info!("SDP offer refused: {error}");
                refuse(&self.state, self.key, 488, "Not Acceptable Here").await;
                return Err(Ending::refused("sdp_not_acceptable"));
            }
        };

        self.state
            .sip_command(SipCommand::Provisional {
                key: self.key,
                status: 180,
            })
            .await;
        // The caller's memory is loaded before answering, while the line rings.
        self.load_caller_profile().await;
        let ring_until = Instant::now() + Duration::from_millis(u64::from(self.tenant.ring_ms));
        while Instant::now() < ring_until {
            tokio::select! {
                _ = sleep_until(ring_until) => break,
                signal = self.signals.recv() => self.signal_before_answer(signal).await?,
            }
        }

        self.start_plugin().await;
        if self.plugin.is_none() {
            return Err(self.announce_unanswered(lease, sdp_session).await);
        }

        let negotiated = sdp_session.negotiated().clone();
        if let Err(error) = self.open_media(lease, &negotiated) {
            refuse(&self.state, self.key, 503, "Service Unavailable").await;
            return Err(error);
        }
        // A CANCEL may have arrived while the plugin and media were starting.
        while let Ok(signal) = self.signals.try_recv() {
            self.signal_before_answer(Some(signal)).await?;
        }
        self.state
            .sip_command(SipCommand::Accept {
                key: self.key,
                sdp: Box::new(sdp_session),
            })
            .await;
        self.mark_answered().await;
        Ok(())
    }

    /// A call we placed: loads the callee's profile while it rings, then starts the plugin and
    /// the media when it is answered; a failure ends it with the matching status.
    async fn await_answer(&mut self, lease: PortLease) -> Result<(), Ending> {
        self.load_caller_profile().await;
        loop {
            match self.signals.recv().await {
                Some(CallSignal::OutboundProgress(status)) => {
                    tracing::debug!(status, "call progress");
                }
                Some(CallSignal::OutboundAnswered(negotiated)) => {
                    // The SIP core ACKed the 2xx: the dialog is confirmed.
                    self.dialog_confirmed = true;
                    self.start_plugin().await;
                    if let Err(ending) = self.open_media(lease, &negotiated) {
                        return Err(ending.with_bye());
                    }
                    self.mark_answered().await;
                    return Ok(());
                }
                Some(CallSignal::OutboundFailed { status, reason }) => {
                    tracing::info!(status, ?reason, "call not answered");
                    let call_status = match reason {
                        OutboundFailure::Busy => CallStatus::Busy,
                        OutboundFailure::NoAnswer => CallStatus::NoAnswer,
                        OutboundFailure::Cancelled => CallStatus::Cancelled,
                        OutboundFailure::Rejected => CallStatus::Rejected,
                        OutboundFailure::Failed => CallStatus::Failed,
                    };
                    return Err(Ending::new(
                        call_status,
                        reason.as_str(),
                        EndReason::HostShutdown,
                    ));
                }
                Some(CallSignal::Shutdown) | None => {
                    // Hanging up a ringing call we placed cancels it.
                    self.state
                        .sip_command(SipCommand::Hangup { key: self.key })
                        .await;
                    return Err(Ending::new(
                        CallStatus::Cancelled,
                        "host_shutdown",
                        EndReason::HostShutdown,
                    ));
                }
                Some(_) => {}
            }
        }
    }

    /// The call is up: its clocks start and the store knows.
    async fn mark_answered(&mut self) {
        let answered_at = Instant::now();
        self.answered_at = Some(answered_at);
        self.max_duration_at = self.tenant.max_call_duration.map(|max| answered_at + max);
        if self.tenant.recording.enabled {
            let dir = &self.state.config.store.recordings_dir;
            let mut recording =
                crate::recording::CallRecording::new(dir, &self.tenant.id, &self.call_id);
            if self.tenant.recording.announcement.is_none() {
                recording.start();
            }
            self.recording = Some(recording);
        }
        if let Err(error) = self
            .state
            .store
            .mark_answered(self.tenant_id(), &self.call_id, now_unix_ms())
            .await
        {
            tracing::warn!("could not mark the call answered: {error}");
        }
    }

    /// Starts the tenant's plugin instance; a failure is recorded and the call will get the
    /// fallback.
    async fn start_plugin(&mut self) {
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
                tracing::error!("plugin could not start: {}", failure.message);
                self.plugin_error = Some(format!("instantiate: {}", failure.message));
                self.state
                    .metrics
                    .plugin_failed(&self.tenant.id, "instantiate");
            }
        }
    }

    /// The plugin could not start: rather than answer only to apologise, the caller hears the
    /// tenant's fallback as early media (`183` with SDP) and the call is refused with `480`,
    /// never answered, so nothing is billed.
    async fn announce_unanswered(
        &mut self,
        lease: PortLease,
        sdp_session: vaani_sip::SdpSession,
    ) -> Ending {
        let negotiated = sdp_session.negotiated().clone();
        if let Err(ending) = self.open_media(lease, &negotiated) {
            refuse(&self.state, self.key, 503, "Service Unavailable").await;
            return ending;
        }
        tracing::info!(
            error = self.plugin_error.as_deref().unwrap_or(""),
            "plugin unavailable: announcing the fallback as early media"
        );
        self.state
            .sip_command(SipCommand::EarlyMedia {
                key: self.key,
                sdp: Box::new(sdp_session),
            })
            .await;
        let id = self.next_host_playback;
        self.next_host_playback += 1;
        let text = self.tenant.fallback_text.clone();
        self.queue_speech(id, text, None, None, false).await;
        let deadline = Instant::now() + EARLY_ANNOUNCEMENT_LIMIT;
        while !self.pending_playbacks.is_empty() && Instant::now() < deadline {
            let Some(media) = self.media.as_mut() else {
                break;
            };
            tokio::select! {
                Some(done) = self.speech_done_rx.recv() => self.on_speech_done(done).await,
                event = media.next_event() => match event {
                    Some(event) => {
                        // Only playback progress matters here; nothing ends an unanswered call
                        // but the caller (below) or the deadline.
                        let _ = self.on_media_event(event).await;
                    }
                    None => break,
                },
                signal = self.signals.recv() => {
                    if let Err(ending) = self.signal_before_answer(signal).await {
                        return ending;
                    }
                }
                _ = sleep_until(deadline) => break,
            }
        }
        refuse(&self.state, self.key, 480, "Temporarily Unavailable").await;
        Ending::new(
            CallStatus::Failed,
            "plugin_unavailable",
            EndReason::HostShutdown,
        )
    }

    /// Opens the media session for what offer/answer agreed.
    fn open_media(&mut self, lease: PortLease, negotiated: &NegotiatedMedia) -> Result<(), Ending> {
        let mut session_config = self.state.session_config(negotiated);
        if let Some(trunk) = &self.trunk {
            session_config.accept_from = trunk.media_cidrs.clone();
        }
        session_config.record = self.tenant.recording.enabled;
        if let Some(remote) = negotiated.remote_rtp
            && behind_nat(remote.ip(), self.incoming.source.ip())
        {
            // A private address in the SDP of a peer that signals from a public one is its NAT
            // talking: send where its RTP comes from instead (symmetric RTP, latched once).
            tracing::info!(%remote, "private SDP address from a public peer; latching to its RTP");
            session_config.remote = None;
        }
        tracing::debug!(?negotiated, ?session_config, "media negotiated");
        let vad = self.state.new_vad();
        let session = match self.state.media.open_session(lease, session_config, vad) {
            Ok(session) => session,
            Err(error) => {
                tracing::error!("media session failed: {error}");
                return Err(Ending::new(
                    CallStatus::Failed,
                    "media_failed",
                    EndReason::HostShutdown,
                ));
            }
        };
        self.media = Some(session);
        Ok(())
    }

    /// A signal that arrives before the 200 OK: CANCEL or shutdown ends the attempt.
    async fn signal_before_answer(&mut self, signal: Option<CallSignal>) -> Result<(), Ending> {
        if matches!(signal, Some(CallSignal::Confirmed)) {
            self.dialog_confirmed = true;
        }
        match signal {
            Some(CallSignal::Confirmed)
            | Some(CallSignal::MediaChanged(_))
            | Some(CallSignal::Dtmf(_))
            | Some(CallSignal::OutboundProgress(_))
            | Some(CallSignal::OutboundAnswered(_))
            | Some(CallSignal::OutboundFailed { .. })
            | Some(CallSignal::TransferAccepted)
            | Some(CallSignal::TransferFailed { .. })
            | Some(CallSignal::LegStarted(_))
            | Some(CallSignal::LegRejected(_)) => Ok(()),
            Some(CallSignal::Cancelled) | Some(CallSignal::Ended(_)) => Err(Ending::cancelled()),
            Some(CallSignal::Shutdown) | None => {
                refuse(&self.state, self.key, 503, "Service Unavailable").await;
                Err(Ending::new(
                    CallStatus::Failed,
                    "host_shutdown",
                    EndReason::HostShutdown,
                ))
            }
        }
    }

    async fn load_caller_profile(&mut self) {
        match self
            .state
            .store
            .get_caller(self.tenant_id(), &self.caller)
            .await
        {
            Ok(Some(profile)) => {
                self.caller_name = profile.name;
                self.memory_json = profile.memory_json;
                self.previous_calls = u32::try_from(profile.call_count).unwrap_or(0);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!("caller profile unavailable: {error}"),
        }
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
            direction: self.direction,
            caller: self.caller.clone(),
            dialled: self.dialled.clone(),
            caller_name: self.caller_name.clone(),
            memory_json: self.memory_json.clone(),
            previous_calls: self.previous_calls,
            config_json: self.tenant.plugin_config_json.clone(),
            started_at_unix_ms: self.started_unix_ms.max(0) as u64,
            recent_calls: self.recent_calls().await,
            llm_available: self.conversation.llm_available(),
            external_id: Some(external_id(self.trunk.as_ref(), &self.incoming)),
            sip_headers: plugin_headers(self.trunk.as_ref(), &self.incoming),
        };
        if let Some(text) = self.tenant.recording.announcement.clone()
            && let Some(recording) = self.recording.as_mut()
        {
            // Said before anything else; recording starts when it has been played.
            let id = self.next_host_playback;
            self.next_host_playback += 1;
            recording.start_after(id);
            self.queue_speech(id, text, None, None, false).await;
        }
        if self.plugin.is_some() {
            self.deliver(Event::CallStarted(context)).await;
        } else {
            self.start_fallback().await;
        }

        loop {
            if let Some(turn) = self.turns.poll(std::time::Instant::now()) {
                self.queued_events.push_back(turn_event(turn));
            }
            while let Some(event) = self.queued_events.pop_front() {
                self.deliver(event).await;
            }
            if let Some(deadline) = self.hangup_after_playback
                && (self.pending_playbacks.is_empty() || Instant::now() >= deadline)
            {
                return Ending::new(
                    CallStatus::Completed,
                    "plugin_hangup",
                    EndReason::PluginHangup,
                )
                .with_bye();
            }
            self.refer_when_due().await;
            let next_timer = self.timers.values().map(|(at, _)| *at).min();
            let wake_at = [
                next_timer,
                self.silence_deadline(),
                self.hangup_after_playback,
                self.transfer
                    .as_ref()
                    .filter(|t| !t.referred)
                    .map(|t| t.refer_at),
                self.duration_warning_at(),
                self.max_duration_at,
                self.turns.deadline().map(Instant::from_std),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let Some(media) = self.media.as_mut() else {
                return Ending::new(CallStatus::Failed, "media_missing", EndReason::HostShutdown)
                    .with_bye();
            };
            tokio::select! {
                signal = self.signals.recv() => match signal {
                    Some(CallSignal::Confirmed) => {
                        tracing::debug!("ACK received");
                        self.dialog_confirmed = true;
                    }
                    Some(CallSignal::Cancelled) => {
                        // Our 200 lost the race with the CANCEL: the call never connected.
                        self.answered_at = None;
                        return Ending::cancelled();
                    }
                    Some(CallSignal::Ended(CallEndReason::AckTimeout)) => {
                        return Ending::new(CallStatus::Failed, "no_ack", EndReason::NoAck);
                    }
                    Some(CallSignal::Ended(CallEndReason::SessionExpired)) => {
                        // The peer stopped refreshing the session: it is gone (RFC 4028 §10).
                        return Ending::new(CallStatus::Completed, "session_expired", EndReason::MediaTimeout);
                    }
                    Some(CallSignal::MediaChanged(negotiated)) => apply_media_change(media, &negotiated),
                    Some(CallSignal::OutboundProgress(_))
                    | Some(CallSignal::OutboundAnswered(_))
                    | Some(CallSignal::OutboundFailed { .. })
                    | Some(CallSignal::LegStarted(_))
                    | Some(CallSignal::LegRejected(_)) => {}
                    Some(CallSignal::Dtmf(digit)) => {
                        let at = self.media_ms();
                        self.on_dtmf(digit, at).await;
                    }
                    Some(CallSignal::TransferAccepted) => {
                        let at = self.media_ms();
                        self.record_event(at, "transfer.accepted", "").await;
                    }
                    Some(CallSignal::TransferFailed { status, reason }) => {
                        self.on_transfer_failed(status, reason).await;
                    }
                    Some(CallSignal::Ended(CallEndReason::Transferred)) => {
                        return Ending::new(CallStatus::Completed, "transferred", EndReason::Transferred);
                    }
                    Some(CallSignal::Ended(_)) if self.is_bridged() => {
                        // The caller hung up on the person they were transferred to.
                        return Ending::new(CallStatus::Completed, "transferred", EndReason::Transferred);
                    }
                    Some(CallSignal::Ended(_)) => {
                        return Ending::new(CallStatus::Completed, "caller_hangup", EndReason::CallerHangup);
                    }
                    Some(CallSignal::Shutdown) | None => {
                        return Ending::new(CallStatus::Completed, "host_shutdown", EndReason::HostShutdown).with_bye();
                    }
                },
                event = media.next_event() => match event {
                    Some(event) => {
                        if let Some(ending) = self.on_media_event(event).await {
                            return ending;
                        }
                    }
                    None => {
                        return Ending::new(CallStatus::Failed, "media_stopped", EndReason::HostShutdown).with_bye();
                    }
                },
                input = next_leg_input(&mut self.leg) => match input {
                    LegInput::Signal(signal) => {
                        if let Some(ending) = self.on_leg_signal(signal).await {
                            return ending;
                        }
                    }
                    LegInput::Media(event) => {
                        if let Some(ending) = self.on_leg_media_event(event).await {
                            return ending;
                        }
                    }
                    LegInput::Summary(audio) => self.on_leg_summary(audio).await,
                },
                Some(done) = self.speech_done_rx.recv() => self.on_speech_done(done).await,
                Some(done) = self.transcript_rx.recv() => self.on_transcript(done).await,
                Some(update) = self.conversation.next_update() => self.on_conversation_update(update).await,
                _ = sleep_until(wake_at) => {
                    self.on_wake().await;
                    if self.max_duration_at.is_some_and(|at| Instant::now() >= at) {
                        tracing::info!("maximum call duration reached");
                        return Ending::new(CallStatus::Completed, "max_duration", EndReason::MaxDuration).with_bye();
                    }
                }
            }
        }
    }

    fn silence_deadline(&self) -> Option<Instant> {
        let timeout = self.tenant.silence_timeout?;
        if self.plugin.is_none()
            || self.caller_speaking
            || self.conversation.is_busy()
            || !self.pending_playbacks.is_empty()
            || self.hangup_after_playback.is_some()
        {
            return None;
        }
        Some(self.last_activity + timeout)
    }

    /// When the maximum-duration warning is due, until it has been said.
    fn duration_warning_at(&self) -> Option<Instant> {
        if self.duration_warned {
            return None;
        }
        self.max_duration_at
            .map(|end| end.checked_sub(self.tenant.duration_warning).unwrap_or(end))
    }

    async fn on_wake(&mut self) {
        let now = Instant::now();
        if self.duration_warning_at().is_some_and(|at| now >= at) {
            self.duration_warned = true;
            let id = self.next_host_playback;
            self.next_host_playback += 1;
            let text = self.tenant.duration_warning_text.clone();
            self.queue_speech(id, text, None, None, false).await;
        }
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

    /// A key from the caller, by RFC 4733 on the RTP or by SIP INFO.
    async fn on_dtmf(&mut self, digit: char, media_ms: u32) {
        self.last_activity = Instant::now();
        tracing::info!(%digit, "DTMF");
        if let Err(error) = self
            .state
            .store
            .append_dtmf(self.tenant_id(), &self.call_id, digit)
            .await
        {
            tracing::warn!("could not store DTMF: {error}");
        }
        self.record_event(media_ms, "dtmf", &digit.to_string())
            .await;
        // What the caller said before the key is their turn, delivered first.
        if let Some(turn) = self.turns.interrupt() {
            self.queued_events.push_back(turn_event(turn));
        }
        self.queued_events.push_back(Event::Dtmf(digit));
    }

    async fn on_media_event(&mut self, event: MediaEvent) -> Option<Ending> {
        match event {
            MediaEvent::Dtmf { digit, media_ms } => self.on_dtmf(digit, media_ms).await,
            // The bridged transfer's SIP signals say when it starts and ends.
            MediaEvent::Bridged | MediaEvent::Unbridged { .. } => {}
            MediaEvent::Recorded { start_ms, audio } => {
                if let Some(recording) = self.recording.as_mut() {
                    recording.push(start_ms, audio);
                }
            }
            MediaEvent::DtmfSent { digits } => {
                let at = self.media_ms();
                self.record_event(at, "dtmf.sent", &digits).await;
            }
            MediaEvent::SpeechStarted { media_ms } => {
                self.meter.caller_speech_started(media_ms);
                self.turns.speech_started();
                self.caller_speaking = true;
                self.last_activity = Instant::now();
                self.record_event(media_ms, "speech.started", "").await;
                self.queued_events
                    .push_back(Event::SpeechStarted { media_ms });
            }
            MediaEvent::SpeechStopped { duration_ms } => {
                self.turns.speech_stopped(std::time::Instant::now());
                self.caller_speaking = false;
                self.last_activity = Instant::now();
                let at = self.media_ms();
                self.meter.caller_speech_ended(duration_ms, at);
                self.record_event(at, "speech.stopped", &format!("{duration_ms} ms"))
                    .await;
                self.queued_events
                    .push_back(Event::SpeechStopped { duration_ms });
            }
            MediaEvent::PlaybackStarted { id } => {
                tracing::debug!(playback = id, "playback started");
                self.meter.playback_started(id);
            }
            MediaEvent::PlaybackFinished { id } => {
                self.last_activity = Instant::now();
                self.playback_over(id);
                if let Some(recording) = self.recording.as_mut() {
                    recording.playback_over(id);
                }
            }
            MediaEvent::PlaybackStopped { id, .. } => {
                self.pending_playbacks.remove(&id);
                if let Some(recording) = self.recording.as_mut() {
                    recording.playback_over(id);
                }
            }
            MediaEvent::BargeIn { id, played_ms } => {
                tracing::debug!(id, played_ms, "barge-in");
                let at = self.media_ms();
                self.record_event(at, "playback.barge_in", &format!("after {played_ms} ms"))
                    .await;
                // The engine flushed what was playing; speech not yet synthesized must not
                // start talking over the caller either, nor speech this task handed to the
                // engine after the flush but before this event arrived.
                if let Some(media) = &self.media {
                    for (&playback, &interruptible) in &self.pending_playbacks {
                        if interruptible && playback != id {
                            let _ = media.flush(Some(playback));
                        }
                    }
                }
                // Spoken generations stop too: cut, cancelled, their tool calls dropped.
                let cut_part = self.conversation.is_part(id).then_some((id, played_ms));
                let interrupted = self.conversation.barge_in(cut_part);
                self.cancel_speech(|_, interruptible| interruptible);
                if id < HOST_PLAYBACK_BASE {
                    self.queued_events
                        .push_back(Event::BargeIn(vaani_sandbox::Interruption {
                            playback: id,
                            heard_ms: played_ms,
                            heard_text: None,
                        }));
                }
                for cut in interrupted {
                    self.queued_events
                        .push_back(Event::BargeIn(cut.interruption));
                    if cut.was_streaming {
                        self.queued_events.push_back(Event::GenerationFinished {
                            id: cut.generation,
                            outcome: GenerationOutcome::Cancelled,
                        });
                    }
                }
            }
            MediaEvent::Utterance {
                start_ms,
                end_ms,
                audio,
            } => {
                if self.state.stt.is_some() && !self.is_bridged() {
                    self.meter.utterance_queued(end_ms, !self.caller_speaking);
                    self.turns.utterance_queued(std::time::Instant::now());
                    self.utterance_queue.push_back(PendingUtterance {
                        start_ms,
                        end_ms,
                        audio,
                    });
                    self.pump_transcription();
                }
            }
            MediaEvent::RtpTimeout => {
                tracing::info!("no RTP from the caller: ending the call");
                return Some(
                    Ending::new(
                        CallStatus::Completed,
                        "media_timeout",
                        EndReason::MediaTimeout,
                    )
                    .with_bye(),
                );
            }
        }
        None
    }

    /// A playback ended by itself (played out, or could not be played): tell the plugin.
    fn playback_over(&mut self, id: u64) {
        if self.conversation.is_part(id) {
            self.pending_playbacks.remove(&id);
            if let Some(playback) = self.conversation.part_finished(id) {
                self.playback_over(playback);
            }
            return;
        }
        if self.pending_playbacks.remove(&id).is_some() && id < HOST_PLAYBACK_BASE {
            self.queued_events.push_back(Event::PlaybackFinished(id));
        }
    }

    /// Starts synthesizing the next queued job when none is in flight.
    fn pump_speech(&mut self) {
        if self.speech_in_flight.is_some() {
            return;
        }
        let Some(job) = self.speech_queue.pop_front() else {
            return;
        };
        let done_tx = self.speech_done_tx.clone();
        let playback = job.playback;
        let task = match job.source {
            SpeechSource::Text {
                text,
                voice,
                language,
            } => {
                let tts = self.state.tts.clone();
                self.meter.tts_text_sent(tts.name(), &text);
                tokio::spawn(async move {
                    let started = Instant::now();
                    let audio = tts
                        .synthesize(SpeechRequest {
                            text,
                            voice,
                            language,
                            sample_rate: 8000,
                        })
                        .await
                        .map_err(PlaybackAudioError::from);
                    let synthesis = started.elapsed();
                    let _ = done_tx
                        .send(SpeechDone {
                            playback,
                            audio,
                            synthesis,
                            spoken: true,
                        })
                        .await;
                })
            }
            SpeechSource::Asset(asset) => {
                let store = self.state.store.clone();
                let tenant = self.tenant.id.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    let audio = match store.asset_audio(&tenant, &asset).await {
                        Ok(Some(pcm8k)) if !pcm8k.is_empty() => Ok(SynthesizedAudio {
                            sample_rate: 8000,
                            samples: Arc::from(pcm8k),
                        }),
                        Ok(_) => Err(PlaybackAudioError::MissingAsset(asset)),
                        Err(error) => Err(PlaybackAudioError::AssetStore {
                            asset,
                            detail: error.to_string(),
                        }),
                    };
                    let _ = done_tx
                        .send(SpeechDone {
                            playback,
                            audio,
                            synthesis: started.elapsed(),
                            spoken: false,
                        })
                        .await;
                })
            }
        };
        self.speech_in_flight = Some((playback, task));
    }

    /// Starts transcribing the next utterance when none is in flight.
    fn pump_transcription(&mut self) {
        if self.transcription_in_flight.is_some() {
            return;
        }
        let Some(stt) = self.state.stt.clone() else {
            return;
        };
        let Some(utterance) = self.utterance_queue.pop_front() else {
            return;
        };
        let audio_ms =
            utterance.audio.len() as u64 * 1000 / u64::from(vaani_speech::WHISPER_SAMPLE_RATE);
        self.meter
            .stt_audio_sent(stt.name(), Duration::from_millis(audio_ms));
        let done_tx = self.transcript_tx.clone();
        self.transcription_in_flight = Some(tokio::spawn(async move {
            let result = stt
                .transcribe(TranscriptionRequest {
                    samples: utterance.audio,
                    sample_rate: vaani_speech::WHISPER_SAMPLE_RATE,
                    language: None,
                })
                .await;
            let _ = done_tx
                .send(TranscriptDone {
                    start_ms: utterance.start_ms,
                    end_ms: utterance.end_ms,
                    result,
                })
                .await;
        }));
    }

    /// Stores what the caller said and tells the plugin.
    async fn on_transcript(&mut self, done: TranscriptDone) {
        self.transcription_in_flight = None;
        match &done.result {
            Ok(transcript) => {
                self.meter
                    .transcript_ready(done.end_ms, &transcript.text, transcript.processing)
            }
            Err(_) => self.meter.transcript_failed(done.end_ms),
        }
        match done.result {
            Ok(transcript) if !transcript.text.is_empty() => {
                self.last_activity = Instant::now();
                tracing::info!(
                    ms = transcript.processing.as_millis() as u64,
                    "caller said {:?}",
                    transcript.text
                );
                self.said
                    .push(("caller".to_string(), transcript.text.clone()));
                let line = NewTranscriptLine {
                    speaker: Speaker::Caller,
                    text: transcript.text.clone(),
                    start_ms: i64::from(done.start_ms),
                    end_ms: i64::from(done.end_ms),
                    confidence: Some(f64::from(transcript.confidence)),
                };
                if let Err(error) = self
                    .state
                    .store
                    .add_transcript_line(self.tenant_id(), &self.call_id, &line)
                    .await
                {
                    tracing::warn!("could not store a transcript line: {error}");
                }
                // The plugin hears the whole turn once the caller has finished it.
                self.turns.transcribed(Some(TurnPart {
                    text: transcript.text,
                    confidence: transcript.confidence,
                    start_ms: done.start_ms,
                    end_ms: done.end_ms,
                }));
            }
            Ok(_) => self.turns.transcribed(None),
            Err(error) => {
                self.turns.transcribed(None);
                tracing::warn!("speech-to-text failed: {error}");
                self.record_event(done.end_ms, "stt.error", &error.to_string())
                    .await;
            }
        }
        self.pump_transcription();
    }

    /// Drops queued and in-flight speech whose (playback id, interruptible) matches.
    fn cancel_speech(&mut self, matches: impl Fn(u64, bool) -> bool) {
        let cancelled = |pending: &HashMap<u64, bool>, playback: u64| {
            matches(playback, pending.get(&playback).copied().unwrap_or(true))
        };
        let pending = &self.pending_playbacks;
        self.speech_queue
            .retain(|job| !cancelled(pending, job.playback));
        if let Some((playback, task)) = &self.speech_in_flight
            && cancelled(&self.pending_playbacks, *playback)
        {
            task.abort();
            self.speech_in_flight = None;
        }
        self.pending_playbacks
            .retain(|&playback, &mut interruptible| !matches(playback, interruptible));
        self.pump_speech();
    }

    async fn on_speech_done(&mut self, done: SpeechDone) {
        if self.speech_in_flight.as_ref().map(|(id, _)| *id) == Some(done.playback) {
            self.speech_in_flight = None;
        }
        if let Some(&interruptible) = self.pending_playbacks.get(&done.playback) {
            match done.audio {
                Ok(audio) => {
                    if done.spoken {
                        self.meter.tts_audio_ready(done.playback, done.synthesis);
                    }
                    tracing::debug!(
                        playback = done.playback,
                        interruptible,
                        ms = audio.samples.len() / 8,
                        "audio queued"
                    );
                    self.conversation
                        .part_audio(done.playback, (audio.samples.len() / 8) as u32);
                    if let Some(media) = &self.media
                        && let Err(error) =
                            media.enqueue(done.playback, audio.samples.clone(), interruptible)
                    {
                        tracing::warn!("could not queue audio: {error}");
                        self.playback_over(done.playback);
                    }
                }
                Err(error) => {
                    let kind = match &error {
                        PlaybackAudioError::Speech(_) => "tts.error",
                        PlaybackAudioError::MissingAsset(_) => "asset.missing",
                        PlaybackAudioError::AssetStore { .. } => "asset.error",
                    };
                    tracing::warn!(kind, "no audio to play: {error}");
                    let at = self.media_ms();
                    self.record_event(at, kind, &error.to_string()).await;
                    self.playback_over(done.playback);
                }
            }
        }
        self.pump_speech();
    }

    /// Sends one event to the plugin and applies its actions; a failure starts the fallback.
    async fn deliver(&mut self, event: Event) {
        if self.is_bridged() {
            return; // the caller talks to a person now
        }
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
                tracing::warn!(kind = %kind, "plugin failed: {}", failure.message);
                self.state.metrics.plugin_failed(&self.tenant.id, &kind);
                self.plugin = None;
                let detail = format!("{kind}: {}", failure.message);
                let at = self.media_ms();
                self.record_event(at, "plugin.failure", &detail).await;
                self.plugin_error = Some(detail);
                self.start_fallback().await;
            }
        }
    }

    /// The plugin asked for a transfer: check the target against the tenant's list, then send
    /// the REFER once what is being said has been said (a blind transfer puts the caller on
    /// hold at once, so words queued before it would be cut).
    async fn start_transfer(
        &mut self,
        target: String,
        mode: TransferMode,
        summary: Option<String>,
    ) {
        let at = self.media_ms();
        if self.transfer.is_some() || self.leg.is_some() {
            self.queue_transfer_failure(target, None, "another transfer is under way".into());
            return;
        }
        let Some(uri) = self.tenant.transfer_target(&target).map(str::to_string) else {
            tracing::info!(
                target = %mask_numbers_in(&target),
                "transfer target not in the tenant's transfer_targets"
            );
            self.queue_transfer_failure(
                target,
                None,
                "not one of the tenant's transfer targets".into(),
            );
            return;
        };
        if mode == TransferMode::Bridged {
            self.start_bridged_transfer(target, uri, summary).await;
            return;
        }
        self.record_event(at, "transfer.requested", &format!("{target} ({uri})"))
            .await;
        self.transfer = Some(PendingTransfer {
            target,
            uri,
            refer_at: Instant::now() + HANGUP_DRAIN_LIMIT,
            referred: false,
        });
    }

    /// Whether the caller is connected to a bridged transfer's target.
    fn is_bridged(&self) -> bool {
        self.leg
            .as_ref()
            .is_some_and(|leg| leg.phase == crate::bridge::LegPhase::Bridged)
    }

    /// Calls the target of a bridged transfer; the caller stays with the plugin meanwhile.
    async fn start_bridged_transfer(
        &mut self,
        target: String,
        uri: String,
        summary: Option<String>,
    ) {
        let at = self.media_ms();
        self.record_event(at, "transfer.dialling", &format!("{target} ({uri})"))
            .await;
        let trunk = self.trunk.clone();
        let from = self.dialled.clone();
        match crate::bridge::dial_leg(
            &self.state,
            trunk.as_ref(),
            &uri,
            &from,
            target.clone(),
            summary,
        )
        .await
        {
            Ok(leg) => self.leg = Some(leg),
            Err(reason) => {
                tracing::info!(
                    target = %mask_numbers_in(&target),
                    reason = %mask_numbers_in(&reason),
                    "bridged transfer not placed"
                );
                self.record_event(at, "transfer.failed", &format!("{target} {reason}"))
                    .await;
                self.queue_transfer_failure(target, None, reason);
            }
        }
    }

    /// A SIP signal of the bridged transfer's second leg.
    async fn on_leg_signal(&mut self, signal: Option<CallSignal>) -> Option<Ending> {
        use crate::bridge::LegPhase;
        let leg = self.leg.as_mut()?;
        let phase = leg.phase;
        if matches!(
            signal,
            Some(CallSignal::Ended(_)) | Some(CallSignal::OutboundFailed { .. })
        ) {
            leg.ended = true;
        }
        match signal {
            Some(CallSignal::LegStarted(key)) => {
                if let Some(leg) = self.leg.as_mut() {
                    leg.key = Some(key);
                }
            }
            Some(CallSignal::LegRejected(reason)) => self.fail_leg(None, reason).await,
            Some(CallSignal::OutboundAnswered(negotiated)) => {
                self.on_leg_answered(&negotiated).await
            }
            Some(CallSignal::OutboundFailed { status, reason }) => {
                self.fail_leg(Some(status), reason.as_str().to_string())
                    .await;
            }
            Some(CallSignal::MediaChanged(negotiated)) => {
                if let Some(media) = self.leg.as_ref().and_then(|leg| leg.media.as_ref()) {
                    apply_media_change(media, &negotiated);
                }
            }
            Some(CallSignal::Ended(_)) if phase == LegPhase::Bridged => {
                tracing::info!("the transfer target hung up: ending the call");
                return Some(
                    Ending::new(CallStatus::Completed, "transferred", EndReason::Transferred)
                        .with_bye(),
                );
            }
            Some(CallSignal::Ended(_)) | None => {
                self.fail_leg(
                    None,
                    "the target hung up before the caller was connected".into(),
                )
                .await;
            }
            Some(_) => {}
        }
        None
    }

    /// The target answered: tell them the summary, then connect the caller.
    async fn on_leg_answered(&mut self, negotiated: &NegotiatedMedia) {
        if self.hangup_after_playback.is_some() {
            // The call is ending (the plugin hung up, or its fallback runs): nobody to connect.
            self.drop_leg().await;
            return;
        }
        let Some(leg) = self.leg.as_mut() else {
            return;
        };
        let Some(lease) = leg.lease.take() else {
            return;
        };
        let mut config = self.state.session_config(negotiated);
        config.utterances = false;
        config.accept_from = leg.accept_from.clone();
        match self
            .state
            .media
            .open_session(lease, config, self.state.new_vad())
        {
            Ok(media) => leg.media = Some(media),
            Err(error) => {
                self.fail_leg(None, format!("no media for the second leg: {error}"))
                    .await;
                return;
            }
        }
        leg.phase = crate::bridge::LegPhase::Summary;
        let summary = leg.summary.clone();
        let target = leg.target.clone();
        let at = self.media_ms();
        self.record_event(at, "transfer.answered", &target).await;
        let Some(summary) = summary else {
            self.connect_leg().await;
            return;
        };
        // Synthesized off the call task, which keeps handling both calls meanwhile.
        let tts = self.state.tts.clone();
        self.meter.tts_text_sent(tts.name(), &summary);
        let (done, audio) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _ = done.send(
                tts.synthesize(SpeechRequest {
                    text: summary,
                    voice: None,
                    language: None,
                    sample_rate: 8000,
                })
                .await,
            );
        });
        if let Some(leg) = self.leg.as_mut() {
            leg.summary_audio = Some(audio);
        }
    }

    /// The summary's audio is ready: play it to the target (the bridge follows its end).
    async fn on_leg_summary(
        &mut self,
        audio: Option<Result<SynthesizedAudio, vaani_speech::SpeechError>>,
    ) {
        let Some(leg) = self.leg.as_mut() else {
            return;
        };
        leg.summary_audio = None;
        let queued = match (audio, leg.media.as_ref()) {
            (Some(Ok(audio)), Some(media)) => media
                .enqueue(crate::bridge::SUMMARY_PLAYBACK, audio.samples, false)
                .is_ok(),
            _ => false,
        };
        if !queued {
            tracing::warn!("the transfer summary could not be said; connecting at once");
            self.connect_leg().await;
        }
    }

    /// A media event of the second leg: the end of the summary connects the caller; a leg
    /// whose media stops fails the transfer, or, once connected, ends the call.
    async fn on_leg_media_event(&mut self, event: Option<MediaEvent>) -> Option<Ending> {
        use crate::bridge::LegPhase;
        let phase = self.leg.as_ref()?.phase;
        match event {
            Some(MediaEvent::PlaybackFinished { id })
            | Some(MediaEvent::PlaybackStopped { id, .. })
                if id == crate::bridge::SUMMARY_PLAYBACK && phase == LegPhase::Summary =>
            {
                self.connect_leg().await;
            }
            Some(MediaEvent::RtpTimeout) | None => {
                if phase == LegPhase::Bridged {
                    tracing::info!("the transfer target's media stopped: ending the call");
                    return Some(
                        Ending::new(CallStatus::Completed, "transferred", EndReason::Transferred)
                            .with_bye(),
                    );
                }
                self.fail_leg(None, "the target's media stopped".into())
                    .await;
            }
            Some(_) => {}
        }
        None
    }

    /// Connects the caller to the answered target: the plugin is done with this call.
    async fn connect_leg(&mut self) {
        let (Some(caller), Some(leg)) = (self.media.as_ref(), self.leg.as_mut()) else {
            return;
        };
        let Some(target_media) = leg.media.as_ref() else {
            return;
        };
        if self.hangup_after_playback.is_some() {
            self.drop_leg().await;
            return;
        }
        let _ = caller.flush(None);
        if let Err(error) = caller.bridge(target_media) {
            self.fail_leg(None, format!("could not connect the calls: {error}"))
                .await;
            return;
        }
        leg.phase = crate::bridge::LegPhase::Bridged;
        let target = leg.target.clone();
        tracing::info!(
            target = %mask_numbers_in(&target),
            "caller connected to the transfer target"
        );
        self.cancel_speech(|_, _| true);
        self.pending_playbacks.clear();
        self.timers.clear();
        self.queued_events.clear();
        self.conversation.shutdown();
        let at = self.media_ms();
        self.record_event(at, "transfer.bridged", &target).await;
    }

    /// The bridged transfer did not happen: hang up its leg and tell the plugin.
    async fn fail_leg(&mut self, status: Option<u16>, reason: String) {
        let Some(target) = self.leg.as_ref().map(|leg| leg.target.clone()) else {
            return;
        };
        self.drop_leg().await;
        let at = self.media_ms();
        let detail = match status {
            Some(status) => format!("{target} {status} {reason}"),
            None => format!("{target} {reason}"),
        };
        tracing::info!(%detail, "bridged transfer failed; the call goes on");
        self.record_event(at, "transfer.failed", &detail).await;
        self.queue_transfer_failure(target, status, reason);
    }

    /// Hangs up the second leg, if any, and frees what it held.
    async fn drop_leg(&mut self) {
        let Some(mut leg) = self.leg.take() else {
            return;
        };
        // The leg's INVITE may have gone out with its LegStarted still unread.
        leg.signals.close();
        let mut ended = false;
        while let Ok(signal) = leg.signals.try_recv() {
            match signal {
                CallSignal::LegStarted(key) => leg.key = Some(key),
                CallSignal::Ended(_) | CallSignal::OutboundFailed { .. } => ended = true,
                _ => {}
            }
        }
        if let Some(key) = leg.key {
            if let Ok(mut legs) = self.state.legs.lock() {
                legs.remove(&key);
            }
            if !ended && !leg.ended {
                self.state.sip_command(SipCommand::Hangup { key }).await;
            }
        }
        if let Some(media) = &self.media
            && leg.phase == crate::bridge::LegPhase::Bridged
        {
            let _ = media.unbridge();
        }
        if let Some(trunk) = &leg.limited_trunk {
            self.state.outbound_limiters.finish(trunk);
        }
    }

    /// Sends the pending transfer's REFER once the playback before it is done.
    async fn refer_when_due(&mut self) {
        let due = self.dialog_confirmed
            && self.transfer.as_ref().is_some_and(|t| {
                !t.referred && (self.pending_playbacks.is_empty() || Instant::now() >= t.refer_at)
            });
        if !due {
            return;
        }
        let Some(transfer) = self.transfer.as_mut() else {
            return;
        };
        transfer.referred = true;
        let target = transfer.uri.clone();
        tracing::info!(
            target = %mask_numbers_in(&target),
            "transferring the call (REFER)"
        );
        self.state
            .sip_command(SipCommand::Transfer {
                key: self.key,
                target,
            })
            .await;
    }

    /// The trunk did not transfer the call: tell the plugin, which decides what comes next.
    async fn on_transfer_failed(&mut self, status: Option<u16>, reason: String) {
        let Some(transfer) = self.transfer.take() else {
            return;
        };
        let at = self.media_ms();
        let detail = match status {
            Some(status) => format!("{} {status} {reason}", transfer.target),
            None => format!("{} {reason}", transfer.target),
        };
        self.record_event(at, "transfer.failed", &detail).await;
        self.queue_transfer_failure(transfer.target, status, reason);
    }

    fn queue_transfer_failure(&mut self, target: String, status: Option<u16>, reason: String) {
        self.queued_events
            .push_back(Event::TransferFailed(TransferFailure {
                target,
                status,
                reason,
            }));
    }

    /// The tenant's fallback: stop everything that was playing or queued, apologise, hang up.
    async fn start_fallback(&mut self) {
        self.conversation.shutdown();
        if let Some(media) = &self.media {
            let _ = media.flush(None);
        }
        self.cancel_speech(|_, _| true);
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
        self.pending_playbacks.insert(playback, interruptible);
        self.said.push(("agent".to_string(), text.clone()));
        let at = i64::from(self.media_ms());
        let line = NewTranscriptLine {
            speaker: Speaker::Agent,
            text: text.clone(),
            start_ms: at,
            end_ms: at,
            confidence: None,
        };
        if let Err(error) = self
            .state
            .store
            .add_transcript_line(self.tenant_id(), &self.call_id, &line)
            .await
        {
            tracing::warn!("could not store a transcript line: {error}");
        }
        // The queue is bounded by the plugin's per-call `say` quota.
        self.speech_queue.push_back(SpeechJob {
            playback,
            source: SpeechSource::Text {
                text,
                voice,
                language,
            },
        });
        self.pump_speech();
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
                self.meter.reply_queued(id);
                self.queue_speech(id, text, voice, language, interruptible)
                    .await;
            }
            Action::PlayAsset {
                id,
                asset_id,
                interruptible,
            } => {
                // In the speech queue, so it plays in order with what was said before it.
                let at = self.media_ms();
                self.record_event(at, "asset.play", &asset_id).await;
                self.pending_playbacks.insert(id, interruptible);
                self.speech_queue.push_back(SpeechJob {
                    playback: id,
                    source: SpeechSource::Asset(asset_id),
                });
                self.pump_speech();
            }
            Action::StopPlayback(id) => {
                // The host's own audio (warnings, spoken parts) is not the plugin's to stop.
                if id.is_some_and(|id| id >= HOST_PLAYBACK_BASE) {
                    return;
                }
                if let Some(generation) =
                    id.and_then(|id| self.conversation.generation_with_playback(id))
                {
                    self.stop_generation(generation);
                    return;
                }
                if id.is_none() {
                    for generation in self.conversation.spoken_generations() {
                        self.stop_generation(generation);
                    }
                }
                if let Some(media) = &self.media {
                    let _ = media.flush(id);
                }
                match id {
                    Some(id) => self.cancel_speech(|playback, _| playback == id),
                    None => self.cancel_speech(|playback, _| playback < HOST_PLAYBACK_BASE),
                }
            }
            Action::Hangup { reason } => {
                tracing::info!(reason = reason.as_deref().unwrap_or(""), "plugin hangs up");
                // Once: a plugin cannot keep the call open by hanging up again and again.
                self.hangup_after_playback
                    .get_or_insert(Instant::now() + HANGUP_DRAIN_LIMIT);
                self.timers.clear();
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
                    tracing::error!("could not store an extraction: {error}");
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
                tracing::info!(plugin_level = level_name, "plugin: {message}");
                let at = self.media_ms();
                self.record_event(at, "plugin.log", &format!("[{level_name}] {message}"))
                    .await;
            }
            Action::SetTimer { id, after_ms, tag } => {
                if self.hangup_after_playback.is_none() {
                    let at = Instant::now() + Duration::from_millis(u64::from(after_ms));
                    self.timers.insert(id, (at, tag));
                }
            }
            Action::CancelTimer(id) => {
                self.timers.remove(&id);
            }
            Action::Generate {
                id,
                playback,
                request,
            } => {
                let at = self.media_ms();
                match self.conversation.start(id, playback, &request) {
                    Ok(()) => {
                        self.meter.llm_request_started();
                        if let Some(playback) = playback {
                            self.pending_playbacks
                                .insert(playback, request.interruptible);
                        }
                        self.record_event(at, "llm.request", &format!("generation {id}"))
                            .await;
                    }
                    Err(error) => {
                        self.queued_events.push_back(Event::GenerationFinished {
                            id,
                            outcome: GenerationOutcome::Failed(error),
                        });
                        if let Some(playback) = playback {
                            self.queued_events
                                .push_back(Event::PlaybackFinished(playback));
                        }
                    }
                }
            }
            Action::CancelGeneration(id) => self.stop_generation(id),
            Action::Fetch { id, request } => {
                let at = self.media_ms();
                // Scheme, host and path only: a query string may carry the tenant's secrets.
                let shown = request
                    .url
                    .split(['?', '#'])
                    .next()
                    .unwrap_or("")
                    .to_string();
                self.record_event(at, "http.fetch", &shown).await;
                if let Some(outcome) = self.conversation.fetch(id, request) {
                    self.queued_events
                        .push_back(Event::FetchFinished { id, outcome });
                }
            }
            Action::ExpectInput(kind) => self.turns.expect(match kind {
                ExpectedInput::Speech => Expecting::Speech,
                ExpectedInput::Digits => Expecting::Digits,
                ExpectedInput::Number => Expecting::Number,
            }),
            Action::SetSummary { summary, sentiment } => {
                self.summary = Some((summary, sentiment));
            }
            Action::Transfer {
                target,
                mode,
                summary,
            } => {
                if self.hangup_after_playback.is_none() {
                    self.start_transfer(target, mode, summary).await;
                }
            }
            Action::SendDtmf { digits } => {
                let at = self.media_ms();
                let sent = match &self.media {
                    Some(media) => media.send_dtmf(&digits).map_err(|e| e.to_string()),
                    None => Err("no media session".to_string()),
                };
                if let Err(error) = sent {
                    tracing::info!(%digits, %error, "keys not sent");
                    self.record_event(at, "dtmf.failed", &format!("{digits}: {error}"))
                        .await;
                }
            }
        }
    }

    /// Stops generation `id` and its speech; the plugin hears `generation-finished(cancelled)`
    /// when it was still streaming, and nothing more of its playback.
    fn stop_generation(&mut self, id: u64) {
        let Some(cancelled) = self.conversation.cancel(id) else {
            return;
        };
        if let Some(media) = &self.media {
            for part in &cancelled.parts {
                let _ = media.flush(Some(*part));
            }
        }
        self.cancel_speech(|playback, _| cancelled.parts.contains(&playback));
        if let Some(playback) = cancelled.playback {
            self.pending_playbacks.remove(&playback);
        }
        if cancelled.was_streaming {
            self.queued_events.push_back(Event::GenerationFinished {
                id,
                outcome: GenerationOutcome::Cancelled,
            });
        }
    }

    /// An update of one of the plugin's generations or fetches.
    async fn on_conversation_update(&mut self, update: ConversationUpdate) {
        match update {
            ConversationUpdate::Generation(_, GenerationUpdate::FirstToken) => {
                self.meter.llm_first_token();
            }
            ConversationUpdate::Generation(id, GenerationUpdate::Sentence(text)) => {
                if let Some((part, interruptible)) = self.conversation.sentence(id, &text) {
                    self.meter.reply_queued(part);
                    self.queue_speech(part, text, None, None, interruptible)
                        .await;
                }
            }
            ConversationUpdate::Generation(id, GenerationUpdate::Finished(result)) => {
                match &result {
                    Ok(done) => {
                        if let Some(model) = self.conversation.model() {
                            self.meter.add_llm_usage(
                                model,
                                u64::from(done.prompt_tokens),
                                u64::from(done.completion_tokens),
                            );
                        }
                    }
                    Err(error) => {
                        tracing::warn!(generation = id, "LLM generation failed: {error}");
                        let at = self.media_ms();
                        self.record_event(at, "llm.error", error).await;
                    }
                }
                let (outcome, finished_playback) = self.conversation.finished(id, result);
                if let Some(outcome) = outcome {
                    self.queued_events
                        .push_back(Event::GenerationFinished { id, outcome });
                }
                if let Some(playback) = finished_playback {
                    self.playback_over(playback);
                }
            }
            ConversationUpdate::Fetch(id, outcome) => {
                self.queued_events
                    .push_back(Event::FetchFinished { id, outcome });
            }
        }
    }

    /// The caller's most recent earlier calls to this tenant, for `call-started`.
    async fn recent_calls(&mut self) -> Vec<PastCall> {
        match self
            .state
            .store
            .recent_calls(self.tenant_id(), &self.caller, &self.call_id, RECENT_CALLS)
            .await
        {
            Ok(calls) => calls
                .into_iter()
                .map(|call| PastCall {
                    call_id: call.call_id,
                    started_at_unix_ms: call.started_at_unix_ms.max(0) as u64,
                    duration_secs: call
                        .duration_secs
                        .unwrap_or(0)
                        .clamp(0, i64::from(u32::MAX)) as u32,
                    summary: call.summary,
                    extractions: call
                        .extractions
                        .into_iter()
                        .map(|e| PastExtraction {
                            schema_id: e.schema_id,
                            data_json: e.data_json,
                        })
                        .collect(),
                })
                .collect(),
            Err(error) => {
                tracing::warn!("could not load the caller's recent calls: {error}");
                Vec::new()
            }
        }
    }

    /// Stores the call's summary: the plugin's, else the tenant LLM's when it summarizes; the
    /// store writes the `call.analyzed` webhook event with it (or without one, when there is
    /// no summary).
    async fn store_summary(&mut self) {
        let summary = match self.summary.take() {
            Some(summary) => Some(summary),
            None => match &self.tenant.llm {
                Some(llm) if llm.settings().summarize && !self.said.is_empty() => {
                    match tokio::time::timeout(SUMMARY_LIMIT, llm.summarize(&self.said)).await {
                        Ok(Ok(summary)) => Some(summary),
                        Ok(Err(error)) => {
                            tracing::warn!("could not summarize the call: {error}");
                            None
                        }
                        Err(_) => {
                            tracing::warn!("summarizing the call took too long");
                            None
                        }
                    }
                }
                _ => None,
            },
        };
        let Some((summary, sentiment)) = summary else {
            // No summary to wait for: the analysis (the extractions) is complete now.
            if let Err(error) = self
                .state
                .store
                .mark_call_analyzed(self.tenant_id(), &self.call_id, now_unix_ms())
                .await
            {
                tracing::warn!("could not write the call.analyzed event: {error}");
            }
            return;
        };
        let sentiment = sentiment.and_then(|s| s.parse::<vaani_store::Sentiment>().ok());
        if let Err(error) = self
            .state
            .store
            .set_call_summary(self.tenant_id(), &self.call_id, &summary, sentiment)
            .await
        {
            tracing::warn!("could not store the call summary: {error}");
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
            tracing::warn!("could not store a call event: {error}");
        }
    }

    /// Tells the plugin, hangs up if needed, closes media and writes the call record.
    async fn finish(&mut self, ending: Ending) {
        self.drop_leg().await;
        if let Some((_, task)) = self.speech_in_flight.take() {
            task.abort();
        }
        self.speech_queue.clear();
        if let Some(task) = self.transcription_in_flight.take() {
            task.abort();
        }
        self.utterance_queue.clear();
        if self.answered_at.is_some()
            && let Some(plugin) = self.plugin.as_mut()
        {
            // Only data-saving actions matter once the call is over.
            match plugin.handle(Event::CallEnded(ending.plugin_reason)).await {
                Ok(actions) => {
                    for action in actions {
                        if matches!(
                            action,
                            Action::SetMemory(_)
                                | Action::SetCallerName(_)
                                | Action::SetSummary { .. }
                                | Action::Extraction { .. }
                                | Action::Log { .. }
                        ) {
                            self.apply(action).await;
                        }
                    }
                }
                Err(failure) => {
                    self.plugin_error
                        .get_or_insert_with(|| format!("call-ended: {}", failure.message));
                }
            }
        }
        self.plugin = None;
        self.conversation.shutdown();
        if ending.send_bye {
            self.state
                .sip_command(SipCommand::Hangup { key: self.key })
                .await;
        }
        let media_stats = self.media.take().map(|session| {
            let stats = session.stats();
            let metrics = &self.state.metrics;
            metrics.rtp_packets_received.inc_by(stats.packets_received);
            metrics.rtp_packets_sent.inc_by(stats.packets_sent);
            metrics.rtp_packets_lost.inc_by(stats.jitter.lost);
            metrics.observe_media_quality(&stats);
            session.close();
            crate::call_media::media_stats_json(&stats)
        });
        let outcome = CallOutcome {
            status: ending.status,
            ended_at_ms: now_unix_ms(),
            end_reason: ending.reason.to_string(),
            media_stats,
            error: self.plugin_error.clone(),
        };
        let report = self.meter.finish(self.answered_at.map(|at| at.elapsed()));
        let recording = match self.recording.take() {
            Some(recording) => recording.finish(&self.tenant.id, &self.call_id).await,
            None => None,
        };
        if let Err(error) = self
            .state
            .store
            .finish_call_with_report(self.tenant_id(), &self.call_id, &outcome, &report)
            .await
        {
            tracing::error!("could not store the call's end: {error}");
        }
        if let Some(recording) = recording
            && let Err(error) = self.state.store.set_recording(&recording).await
        {
            tracing::error!("could not store the call's recording: {error}");
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
            tracing::warn!("could not update the caller profile: {error}");
        }
        if self.answered_at.is_some() {
            self.store_summary().await;
        }
        let cost = self
            .answered_at
            .is_some()
            .then(|| report.cost_inr_micros as f64 / 1e6);
        self.state
            .metrics
            .call_ended(&self.tenant.id, ending.status.as_str(), cost);
        tracing::info!(
            status = ending.status.as_str(),
            reason = ending.reason,
            "call ended"
        );
    }
}

/// The plugin's event for a finished caller turn.
/// What the second leg of a bridged transfer brought.
enum LegInput {
    /// A SIP signal (`None`: its channel closed).
    Signal(Option<CallSignal>),
    /// A media event (`None`: its media session stopped).
    Media(Option<MediaEvent>),
    /// The summary's audio (`None`: the synthesis task is gone).
    Summary(Option<Result<SynthesizedAudio, vaani_speech::SpeechError>>),
}

/// The next signal or media event of a bridged transfer's second leg; pending while there is
/// no leg.
async fn next_leg_input(leg: &mut Option<crate::bridge::Leg>) -> LegInput {
    let Some(crate::bridge::Leg {
        signals,
        media,
        summary_audio,
        ..
    }) = leg.as_mut()
    else {
        return std::future::pending().await;
    };
    let media = async {
        match media.as_mut() {
            Some(media) => media.next_event().await,
            None => std::future::pending().await,
        }
    };
    let summary = async {
        match summary_audio.as_mut() {
            Some(audio) => audio.await.ok(),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        signal = signals.recv() => LegInput::Signal(signal),
        event = media => LegInput::Media(event),
        audio = summary => LegInput::Summary(audio),
    }
}

fn turn_event(turn: Turn) -> Event {
    tracing::debug!(parts = turn.parts, "caller turn: {:?}", turn.text);
    Event::TranscriptFinal(vaani_sandbox::Utterance {
        text: turn.text,
        confidence: turn.confidence,
        start_ms: turn.start_ms,
        end_ms: turn.end_ms,
    })
}

pub(crate) fn rand_session_id() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0 >> 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_all_but_the_last_four_digits() {
        assert_eq!(mask_number("+918000000001"), "+********0001");
        assert_eq!(mask_number("1234"), "****");
        assert_eq!(mask_number("anonymous"), "anonymous");
    }

    #[test]
    fn masks_every_number_in_a_transfer_target() {
        assert_eq!(mask_numbers_in("tel:+918000000009"), "tel:+********0009");
        assert_eq!(
            mask_numbers_in("sip:+918000000009@10.0.0.5:5060;transfer=tcp"),
            "sip:+********0009@10.0.0.5:5060;transfer=tcp"
        );
        assert_eq!(
            mask_numbers_in("sip:frontdesk@127.0.0.1:5999"),
            "sip:frontdesk@127.0.0.1:5999"
        );
        assert_eq!(mask_numbers_in("frontdesk"), "frontdesk");
        assert_eq!(mask_numbers_in("9876543210"), "******3210");
    }

    #[test]
    fn a_private_sdp_address_from_a_public_peer_means_nat() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Behind NAT: private or CGNAT SDP, public signalling source.
        assert!(behind_nat(ip("192.168.1.20"), ip("54.172.60.2")));
        assert!(behind_nat(ip("10.1.2.3"), ip("182.76.143.61")));
        assert!(behind_nat(ip("100.64.0.9"), ip("182.76.143.61")));
        assert!(behind_nat(ip("fd00::5"), ip("2001:db8::1")));
        // Not NAT: a public SDP address, or a peer on the same private network or loopback.
        assert!(!behind_nat(ip("168.86.130.7"), ip("54.172.60.2")));
        assert!(!behind_nat(ip("10.1.2.3"), ip("10.0.0.1")));
        assert!(!behind_nat(ip("192.168.1.20"), ip("127.0.0.1")));
        assert!(
            !behind_nat(ip("100.128.0.1"), ip("54.172.60.2")),
            "outside 100.64/10"
        );
    }
}
